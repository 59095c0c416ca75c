"""Start-up: wall time of the main job over that of `python -c "import pgmpy.models"`.

    python benchmarks/bench_startup.py [--repeats 5]

Runs the two commands alternately (to share the machine's load fairly), prints each wall time,
the medians and the ratio (target ≤ 1.15).  Not part of the tests.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{cmd} exited {r.returncode}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    job = [sys.executable, "examples/check_independence.py"]
    base = [sys.executable, "-c", "import pgmpy.models"]
    wall(base)  # warm the file cache
    tj, tb = [], []
    for i in range(a.repeats):
        tb.append(wall(base))
        tj.append(wall(job))
        print(f"run {i + 1}: import pgmpy.models {tb[-1]:.2f} s   main job {tj[-1]:.2f} s", flush=True)
    mb, mj = statistics.median(tb), statistics.median(tj)
    print(f"median: import pgmpy.models {mb:.2f} s, main job {mj:.2f} s; "
          f"ratio main job / import = {mj / mb:.3f}  (target ≤ 1.15)")


if __name__ == "__main__":
    main()
