"""Benchmark: ``fit`` in 1 process vs 2 processes (torchrun, gloo) on this machine — images/s, and the
largest parameter difference after the same number of global steps (2 ranks × batch B against one
process with batch 2B, same seed, the standard dSprites network). The timed model is the VAE; the
parameter comparison trains the same network with its sampling switched off (z = encoder mean), so
that the two runs see identical computations and only floating-point summation order differs (a VAE
draws its own noise on each rank).

    python benchmarks/bench_ddp.py --record benchmarks/results/ddp_bench_cpu.json

Each configuration runs in its own process(es) with one torch thread per process, so "1 process" uses
one core and "2 processes" two: on a 2-core CPU the ratio is the data-parallel speed-up of the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(out: str, batch: int, steps: int) -> None:
    """One training run (under torchrun or alone): writes images/s and the parameters."""
    import torch

    torch.set_num_threads(1)
    from vae.data.dsprites import load_dsprites
    from vae.protocol import build_study_model
    from vae.training import fit
    from vae.training.distributed import current

    info = current()
    data = load_dsprites(max_samples=batch * info.world * steps, seed=0, cache=False)
    model = build_study_model("standard", 4.0, None, 0)
    t0 = time.perf_counter()
    hist = fit(model, data, epochs=2, batch_size=batch, val_fraction=0.0, progress=False, seed=0, check_every=0)
    seconds = sum(r["seconds"] for r in hist.rows[1:])  # epoch 1 warms up
    det = Deterministic(build_study_model("standard", 4.0, None, 0))
    fit(det, data, epochs=2, batch_size=batch, val_fraction=0.0, progress=False, seed=0, check_every=0)
    if info.main:
        torch.save(det.state_dict(), os.path.join(out, f"params_{info.world}.pt"))
        with open(os.path.join(out, f"result_{info.world}.json"), "w") as f:
            json.dump({"images_per_s": len(data) / seconds, "world": info.world, "wall": time.perf_counter() - t0}, f)


def Deterministic(vae):
    """The VAE's networks with z = encoder mean: the same FLOPs, no random numbers."""
    import torch
    from torch import nn

    class Det(nn.Module):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def loss_terms(self, x):
            loc, _ = self.vae.encode(x)
            out = self.vae.decode(loc)
            recon = nn.functional.binary_cross_entropy_with_logits(out, x, reduction="sum")
            return {"loss": recon + 0.5 * (loc ** 2).sum(), "recon": recon}

    del torch
    return Det(vae)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32, help="per-process batch (default 32)")
    p.add_argument("--steps", type=int, default=20, help="global steps per epoch (default 20)")
    p.add_argument("--record", default=None)
    p.add_argument("--_worker", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._worker:
        worker(a._worker[0], int(a._worker[1]), int(a._worker[2]))
        return 0
    import torch

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    def pair(steps: int):
        with tempfile.TemporaryDirectory() as out:
            me = [str(Path(__file__).resolve()), "--_worker", out]
            subprocess.run([sys.executable, *me, str(2 * a.batch), str(steps)], check=True, env=env)
            subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                            "--master_addr=127.0.0.1", f"--master_port={_port()}", *me, str(a.batch), str(steps)],
                           check=True, env=env)
            one = json.loads(Path(out, "result_1.json").read_text())
            two = json.loads(Path(out, "result_2.json").read_text())
            p1 = torch.load(Path(out, "params_1.pt"), weights_only=True)
            p2 = torch.load(Path(out, "params_2.pt"), weights_only=True)
            return one, two, max(float((p1[k] - p2[k]).abs().max()) for k in p1)

    one, two, diff = pair(a.steps)
    _, _, diff_short = pair(1)  # 2 global steps: before Adam's amplification of summation-order noise
    result = {
        "command": "python benchmarks/bench_ddp.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": f"cpu ({platform.machine()}, {os.cpu_count()} cores), gloo, 1 thread per process",
        "torch": torch.__version__, "global_batch": 2 * a.batch, "global_steps": 2 * a.steps,
        "images_per_s_1_process": round(one["images_per_s"], 1), "images_per_s_2_processes": round(two["images_per_s"], 1),
        "speedup": round(two["images_per_s"] / one["images_per_s"], 3), "max_parameter_difference": diff,
        "max_parameter_difference_after_2_steps": diff_short,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    if a.record:
        Path(a.record).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
