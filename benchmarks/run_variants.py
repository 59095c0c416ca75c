"""The variants' numbers for the README: run each variant command at its defaults and collect what it
reports (its ``--json`` summary) into one result file with command, device and date; the Gamma VI
exercise's table (``python -m vi.cli --json``, seconds) is always run afresh.

    python benchmarks/run_variants.py --record benchmarks/results/variants_cpu.json           # runs them (~15 min, 2 cores)
    python benchmarks/run_variants.py --collect runs/variants --record ...                   # gathers runs already made
                                                                                              # with the same commands
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {  # name: module of the command; each runs at its defaults
    "autoencoder": "vae.cli.autoencoder",
    "latent_plane": "vae.cli.latent_plane",
    "vqvae": "vae.cli.vqvae",
    "scvae": "vae.cli.scvae",
}


def command(name: str, out: Path) -> list[str]:
    return [sys.executable, "-m", COMMANDS[name], "--out", str(out / name), "--overwrite", "--no-progress",
            "--threads", "2", "--json"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/variants", help="run folders (default runs/variants)")
    p.add_argument("--collect", default=None, help="gather the --json outputs already in this folder instead")
    p.add_argument("--record", required=True)
    a = p.parse_args(argv)
    out = Path(a.collect or a.out)
    results = {}
    for name in COMMANDS:
        if not a.collect:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / f"{name}.json", "w") as f:
                subprocess.run(command(name, out), check=True, stdout=f)
        text = (out / f"{name}.json").read_text()
        results[name] = json.loads(text[text.index("{"):])
    import torch

    record = {
        "commands": {n: " ".join(["python", "-m", COMMANDS[n], "--out", f"{out}/{n}", "--overwrite", "--no-progress",
                                  "--threads", "2", "--json"]) for n in COMMANDS},
        "device": f"cpu ({platform.machine()}, {os.cpu_count()} cores), torch {torch.__version__}, 2 threads",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "results": results,
    }
    gamma = [sys.executable, "-m", "vi.cli", "--json", "--threads", "1"]
    g = subprocess.run(gamma, check=True, capture_output=True, text=True).stdout
    record["commands"]["gamma_vi"] = "python -m vi.cli --json --threads 1"
    record["results"]["gamma_vi"] = json.loads(g[g.index("{"):])
    Path(a.record).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {a.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
