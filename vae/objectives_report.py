"""The objectives compared on the cpu protocol: one table and one figure of MIG and reconstruction.

Each objective of :data:`vae.protocol.OBJECTIVE_CONFIGS` is trained by its own protocol
(``python -m vae.protocol --protocol cpu-btcvae --out runs/objectives/btcvae``: the cpu protocol's
network, data, batch and 5,000 steps, seed 0); the β-VAE rows (β = 1, 4, 16, three seeds each) are
the study's own records. This module gathers the finished records into

* ``benchmarks/results/objectives_cpu.json`` (command, device, date, one row per objective with its
  configuration, MIG, the shuffled-factor null, per-factor MIG, reconstruction and KL on the
  validation images, active dimensions and wall time) and ``objectives_cpu.txt`` (the table);
* ``benchmarks/results/objectives_cpu/means_<objective>.npz`` (the encoder means the MIG was
  computed on, with their dSprites indices: every MIG can be recomputed);
* ``docs/figures/objectives_mig.png`` (MIG against reconstruction loss, one point per run).

    python -m vae.objectives_report --runs runs/objectives --study benchmarks/results/dsprites_study_cpu.json

>>> row_of({"mig": 0.2, "null": 0.01, "active_dims": 3, "per_factor": {}, "wall_seconds": 5.0,
...         "final": {"val_recon": 90.0, "val_kl": 20.0}, "seed": 0}, "btcvae", {"beta": 6.0})["recon"]
90.0
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

__all__ = ["gather", "row_of", "summarise", "table", "figure"]

ROOT = Path(__file__).resolve().parents[1]


def row_of(rec: dict, objective: str, config: dict) -> dict[str, Any]:
    """One run's row: objective, its configuration, seed, MIG, null, recon and KL (validation, nats
    per image), active dimensions, wall time."""
    f = rec["final"]
    return {"objective": objective, "config": config, "seed": rec["seed"], "mig": rec["mig"], "null": rec["null"],
            "per_factor": rec["per_factor"], "recon": f["val_recon"], "kl": f["val_kl"],
            "active_dims": rec["active_dims"], "wall_seconds": rec["wall_seconds"]}


def gather(runs: Path, study: Path) -> tuple[list[dict], dict, dict[str, dict]]:
    """Rows of the study's β-VAE records and of every finished objective run; the study's record
    file; the finished objective runs' records by objective name."""
    from vae.protocol import OBJECTIVE_CONFIGS, run_name

    s = json.loads(study.read_text())
    rows = [row_of(r, f"β-VAE β={r['beta']:g}", {"name": "elbo", "beta": r["beta"]}) for r in s["records"]]
    found = {}
    for name, cfg in OBJECTIVE_CONFIGS.items():
        rec_path = runs / name / run_name(1.0, 0) / "record.json"
        if rec_path.is_file():
            found[name] = json.loads(rec_path.read_text())
            rows.append(row_of(found[name], name, cfg))
    return rows, s, found


def summarise(rows: list[dict]) -> list[dict[str, Any]]:
    """Per objective, in order of appearance: its config, the number of runs and the mean over them
    of MIG, null, reconstruction, KL and active dimensions."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["objective"], []).append(r)
    return [{"objective": name, "config": rs[0]["config"], "runs": len(rs),
             **{k: statistics.mean(r[k] for r in rs) for k in ("mig", "null", "recon", "kl", "active_dims")}}
            for name, rs in groups.items()]


def table(rows: list[dict]) -> str:
    """Mean over seeds per objective: MIG (null), reconstruction, KL, active dimensions."""
    lines = [f"{'objective':<16} {'seeds':>5} {'MIG':>7} {'null':>7} {'recon':>8} {'KL':>6} {'active':>6}  weights"]
    for m in summarise(rows):
        cfg = {k: v for k, v in m["config"].items() if k != "name"}
        lines.append(f"{m['objective']:<16} {m['runs']:>5} {m['mig']:>7.3f} {m['null']:>7.4f} {m['recon']:>8.1f} "
                     f"{m['kl']:>6.1f} {m['active_dims']:>6.1f}  {json.dumps(cfg)}")
    return "\n".join(lines)


def figure(rows: list[dict], path: Path) -> Path:
    """MIG against reconstruction loss, one marker per run, labelled by objective."""
    import matplotlib.pyplot as plt

    from vae.plots import save_figure

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    names = list(dict.fromkeys(r["objective"] for r in rows))
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        rs = [r for r in rows if r["objective"] == name]
        ax.scatter([r["recon"] for r in rs], [r["mig"] for r in rs], s=45, color=cmap(i % 10), label=name,
                   marker="o" if name.startswith("β-VAE") else "D", edgecolor="black", linewidth=0.5)
    ax.axhline(max(r["null"] for r in rows), color="grey", ls=":", lw=1, label="largest shuffled-factor null")
    ax.set_xscale("log")  # a run that learns no code sits an order of magnitude to the right
    from matplotlib.ticker import NullFormatter

    ax.set_xticks([t for t in (50, 100, 200, 500, 1000)
                   if 0.8 * min(r["recon"] for r in rows) <= t <= 1.25 * max(r["recon"] for r in rows)])
    ax.set_xticklabels([str(int(t)) for t in ax.get_xticks()])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("reconstruction loss on the validation images (nats per image, log scale, lower is better)")
    ax.set_ylabel("MIG (higher: more disentangled)")
    ax.set_title("Objectives on the cpu protocol (dSprites, standard net, 5,000 steps of batch 64)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vae.objectives_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs/objectives", help="folder of the objective protocols' outputs")
    p.add_argument("--study", default=str(ROOT / "benchmarks" / "results" / "dsprites_study_cpu.json"))
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), help="where the result files go")
    p.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "objectives_mig.png"))
    a = p.parse_args(argv)
    runs, study = Path(a.runs), Path(a.study)
    if not study.is_file():
        p.error(f"no study record at {study}")
    rows, s, found = gather(runs, study)
    if not found:
        p.error(f"no finished objective run under {runs} (train them with python -m vae.protocol --protocol cpu-<objective>)")
    res = Path(a.results)
    means = res / "objectives_cpu"
    means.mkdir(parents=True, exist_ok=True)
    runs_on: dict[str, list[str]] = {s["device"]: ["the β-VAE rows"]}  # device: what ran on it
    for name, rec in found.items():
        shutil.copyfile(rec["means_file"], means / f"means_{name}.npz")
        runs_on.setdefault(rec["device"], []).append(name)
    device = (next(iter(runs_on)) if len(runs_on) == 1
              else "; ".join(f"{dev} for {', '.join(names)}" for dev, names in runs_on.items()))
    text = table(rows)
    head = {"command": "python -m vae.objectives_report " + " ".join(sys.argv[1:] if argv is None else argv),
            "device": device,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "protocol": "cpu (standard net, latent 10, batch 64, Adam 1e-3 for-loop, 5,000 steps, all 737,280 images)"}
    (res / "objectives_cpu.json").write_text(json.dumps({**head, "summary": summarise(rows), "rows": rows}, indent=1) + "\n")
    (res / "objectives_cpu.txt").write_text("\n".join(f"{k}: {v}" for k, v in head.items()) + "\n\n" + text + "\n")
    figure(rows, Path(a.figure))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
