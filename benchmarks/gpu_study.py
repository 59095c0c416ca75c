"""The full β-VAE study of the original homework report (a Persian course report on deep generative
models, see docs/exercises.md) on one GPU, sized to a 5-minute budget, with wall time per phase.

What runs: protocol ``report`` of :mod:`vae.protocol` — the report's network (ConvEncoder64 /
ConvDecoder64, latent 16), β 1, 5, 10, 50 epochs × 200,000 random dSprites images, batch 256,
Adam 1e-3, validation 0.05 (≈111,000 steps in all) — then MIG on the encoder means of 10,000 fixed
images, the null, per-factor MIG, figures and ``report.md`` (:mod:`vae.protocol_report`).

The GPU path: the uint8 images stay resident on the device (``vae.staging``; 0.8 GB for 200,000),
converted to float per batch; bf16 autocast for the networks with the losses summed in float32;
fused Adam; ``cudnn.benchmark``; no host synchronisation per step (``check_every=0``: the losses
are read once per epoch); one checkpoint at the end of each run instead of an fsync'd one per
epoch; ``--compile`` adds ``nn.Module.compile`` (the trace-free ``VAE.loss_terms`` compiles as
one graph). CUDA runs are not bit-reproducible (TF32, atomics in cuDNN's backward): compare a GPU
and a CPU run with a tolerance, never exactly.

    python benchmarks/gpu_study.py --device cuda --out runs/gpu_study --record benchmarks/results/gpu_study_cuda.json
    python benchmarks/gpu_study.py --tiny --device cpu --out /tmp/gpu_tiny     # the same code path, seconds on a CPU

Writes ``--record`` (JSON: command, device, date, wall seconds per phase, MIG per β) and prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def gpu_protocol(tiny: bool, compile_model: bool):
    from vae.protocol import PROTOCOLS

    opts = {"autocast": "bf16", "check_every": 0, "compile": compile_model}
    p = PROTOCOLS["report"]
    if tiny:  # the same options and code path at toy size
        p = replace(p, betas=(1.0, 5.0), epochs=1, max_samples=160, batch_size=32, mig_samples=300, null_repeats=1)
    return replace(p, fit_options={**opts, "checkpoint_every": p.epochs})


def main(argv=None) -> int:
    import torch

    from vae.device import resolve_device
    from vae.protocol import run_protocol
    from vae.protocol_report import summarise, write_protocol_report

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="runs/gpu_study")
    ap.add_argument("--record", default=None, help="write the timings and MIG table to this JSON file")
    ap.add_argument("--tiny", action="store_true", help="toy sizes: the code path in seconds (tests, CPU)")
    ap.add_argument("--compile", action="store_true", help="nn.Module.compile the model (GPU)")
    ap.add_argument("--no-figures", action="store_true")
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    proto = gpu_protocol(a.tiny, a.compile)
    out = Path(a.out)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    lines: list[str] = []
    log = lambda msg: (print(msg, flush=True), lines.append(msg))  # noqa: E731
    records = run_protocol(proto, out, out / "means", device, log=log)
    phases["data_train_score"] = time.perf_counter() - t0
    phases["train_per_run"] = {f"beta={r['beta']:g}": r["wall_seconds"] for r in records}
    t1 = time.perf_counter()
    write_protocol_report(out, figures=not a.no_figures)
    phases["report_figures"] = time.perf_counter() - t1
    phases["total"] = time.perf_counter() - t0
    summary = summarise(records)
    result = {
        "command": "python benchmarks/gpu_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU",
        "torch": torch.__version__, "protocol": proto.name, "tiny": a.tiny, "fit_options": proto.fit_options,
        "steps_per_run": records[0]["steps"] if records else None, "wall_seconds": phases,
        "mig": [{"beta": s["beta"], "mig": s["mig"]["mean"], "null": s["null"]["mean"],
                 "per_factor": {f: v["mean"] for f, v in s["per_factor"].items()}} for s in summary],
        "log": lines,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.record:
        Path(a.record).parent.mkdir(parents=True, exist_ok=True)
        Path(a.record).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
