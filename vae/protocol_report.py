"""Gather the finished runs of a study protocol into tables, figures and ``report.md``.

Reads every ``<out>/<run>/record.json`` written by :mod:`vae.protocol` (the runs may come from
several workers' shards: any folder layout under ``out`` works), and writes

* ``records.json``: the list of run records (β, seed, MIG, null, per-factor MIG, losses, steps,
  wall seconds, device, means file) — also copied to ``--results`` (e.g.
  ``benchmarks/results/dsprites_study_cpu.json``);
* ``summary.json``: per β the mean over seeds with an exact bootstrap interval;
* figures: MIG per β (seeds as points, bootstrap interval), MIG against training steps, per-dimension
  KL, and for **every** β the PCA of the encoder means by factor, reconstructions and traversals;
* ``report.md`` setting the numbers beside those of the original homework report (docs/exercises.md: MIG 0.0001–0.0003,
  reconstruction losses 7,200–7,700 nats per image).

``python -m vae.protocol_report --out runs/protocol_cpu --results benchmarks/results/dsprites_study_cpu.json``
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from vae.report import Report, write_json
from vae.stats import bootstrap_mean_ci
from vae.plots import save_figure

__all__ = ["load_records", "summarise", "write_protocol_report"]

ORIGINAL_MIG = (0.0001, 0.0003)
ORIGINAL_RECON = (7200, 7700)
ORDINAL_FACTORS = ("scale", "orientation", "posX", "posY")


def load_records(out: str | Path) -> list[dict[str, Any]]:
    """Every run record under ``out`` (recursively), sorted by (β, seed)."""
    recs = [json.loads(p.read_text()) for p in Path(out).rglob("record.json")]
    return sorted(recs, key=lambda r: (r["beta"], r["seed"]))


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per β: mean over seeds with exact bootstrap 95 % intervals of MIG, the null and each factor's MIG,
    plus mean final losses and active dimensions."""
    rows = []
    for beta in sorted({r["beta"] for r in records}):
        rs = [r for r in records if r["beta"] == beta]
        factors = list(rs[0]["per_factor"])
        row = {"beta": beta, "seeds": [r["seed"] for r in rs], "n_seeds": len(rs),
               "mig": bootstrap_mean_ci([r["mig"] for r in rs]),
               "null": bootstrap_mean_ci([r["null"] for r in rs]),
               "per_factor": {f: bootstrap_mean_ci([r["per_factor"][f] for r in rs]) for f in factors},
               "active_dims": float(np.mean([r["active_dims"] for r in rs])),
               "steps": rs[0]["steps"]}
        for key in ("val_loss", "val_recon", "val_kl", "train_loss", "train_recon", "train_kl"):
            vals = [r["final"].get(key) for r in rs if r["final"].get(key) is not None]
            row[key] = float(np.mean(vals)) if vals else None
        rows.append(row)
    return rows


def baseline_nll(indices) -> dict[str, float]:
    """Reconstruction NLL (nats per image) of models that ignore the image, on the dSprites images at
    ``indices``: the global pixel rate for every pixel, and each pixel's own marginal rate."""
    from vae.data.dsprites import generate_dsprites

    x = generate_dsprites(np.asarray(indices))[0].reshape(len(indices), -1).astype(np.float64)
    p = x.mean()
    global_nll = -x.shape[1] * (p * np.log(p) + (1 - p) * np.log(1 - p))
    pp = np.clip(x.mean(0), 1e-6, 1 - 1e-6)
    per_pixel = float(-(x * np.log(pp) + (1 - x) * np.log1p(-pp)).sum(1).mean())
    return {"pixel_rate": float(p), "global_rate_nll": float(global_nll), "per_pixel_rate_nll": per_pixel}


def answer(summary: list[dict], records: list[dict]) -> str:
    """The study's answer in one paragraph, from the numbers: the best β against β = 1, the goal
    (mean MIG >= 0.1 at some β > 1, above β = 1's), and how MIG moved over the last slices."""
    top = max(summary, key=lambda s: s["mig"]["mean"])
    ref = next((s for s in summary if s["beta"] == 1.0), summary[0])
    met = top["beta"] > 1 and top["mig"]["mean"] >= 0.1 and top["mig"]["mean"] > ref["mig"]["mean"]
    ordered = all(a["mig"]["mean"] <= b["mig"]["mean"] for a, b in zip(summary, summary[1:]))
    trends = []
    for s in summary:
        curves = [r["mig_curve"] for r in records if r["beta"] == s["beta"] and len(r.get("mig_curve") or []) >= 2]
        if curves:
            last = float(np.mean([c[-1]["mig"] for c in curves]))
            prev = float(np.mean([c[-2]["mig"] for c in curves]))
            trends.append(f"β = {s['beta']:g}: {prev:.3f} → {last:.3f}")
    separated = top["mig"]["lo"] > ref["mig"]["hi"]
    text = (f"Highest mean MIG: β = {top['beta']:g}, {top['mig']['mean']:.3f} (95 % bootstrap interval "
            f"{top['mig']['lo']:.3f}–{top['mig']['hi']:.3f}); β = 1: {ref['mig']['mean']:.3f} "
            f"({ref['mig']['lo']:.3f}–{ref['mig']['hi']:.3f}). MIG {'rises' if ordered else 'does not rise monotonically'} "
            f"with β over this grid, and the intervals of the best β and of β = 1 "
            f"{'do not overlap' if separated else 'overlap'}. The goal (some β > 1 with mean MIG ≥ 0.1, above β = 1's) is "
            f"{'met' if met else 'not met'} by this protocol.")
    if trends:
        text += " Mean MIG over the last two slices (the last step of the MIG-vs-steps curve): " + "; ".join(trends) + "."
    return text


#: the study's metric settings: disentanglement_lib's recipes at 1/20 of their sample counts
#: (BetaVAE/FactorVAE batches, DCI/SAP/modularity points) and DCI with 10 boosted trees per factor
#: instead of 100, so that every metric of every β fits in minutes on a 2-core CPU.
STUDY_METRIC_SCALE = 0.05
STUDY_METRIC_OPTIONS = {"dci": {"gbt_params": {"n_estimators": 10}}}


def study_metrics(records: list[dict], seed: int = 0, cache: Path | None = None) -> dict[float, dict[str, float]]:
    """Every disentanglement metric (``vae.metrics.evaluate_all``) of the first-seed model of each β,
    at :data:`STUDY_METRIC_SCALE` of the recipes' sample counts; with ``cache`` (a folder) each run's
    scores are kept in ``<cache>/<run>.json`` and reused."""
    from vae.data.ground_truth import DSpritesData
    from vae.metrics import evaluate_all, headline_scores, representation_from_encoder

    out = {}
    for beta in sorted({r["beta"] for r in records}):
        rec = min((r for r in records if r["beta"] == beta), key=lambda r: r["seed"])
        from vae.protocol import run_name

        hit = None if cache is None else Path(cache) / f"{run_name(rec['beta'], rec['seed'])}.json"
        if hit is not None and hit.is_file():
            out[beta] = json.loads(hit.read_text())
            continue
        model = _run_model(rec)
        res = evaluate_all(representation_from_encoder(model), DSpritesData(), seed, sample_scale=STUDY_METRIC_SCALE,
                           options=STUDY_METRIC_OPTIONS)
        out[beta] = headline_scores(res)
        if hit is not None:
            hit.parent.mkdir(parents=True, exist_ok=True)
            hit.write_text(json.dumps(out[beta], indent=1))
    return out


def _run_model(rec: dict):
    """The trained model of a run record (rebuilt from the record, weights from its checkpoint)."""
    from vae.protocol import build_study_model
    from vae.train import restore_model

    model = build_study_model(rec["arch"], rec["beta"], rec["latent_dim"], rec["seed"])
    restore_model(model, rec["checkpoint"])
    return model.eval()


def plot_metrics(table: dict[float, dict[str, float]], path: Path) -> Path:
    plt = _plt()
    names = list(next(iter(table.values())))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(table)
    for i, (beta, scores) in enumerate(table.items()):
        xs = np.arange(len(names)) + (i - (len(table) - 1) / 2) * width
        ax.bar(xs, [scores[n] for n in names], width, label=f"β = {beta:g}")
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels([n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title("Disentanglement metrics per β (first seed; recipes at 1/20 of their sample counts)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def _plt():
    from vae.plots import _pyplot

    return _pyplot()


def plot_mig_by_beta(records, summary, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    betas = [s["beta"] for s in summary]
    xs = np.arange(len(betas))
    for x, s in zip(xs, summary):
        m = s["mig"]
        ax.errorbar([x], [m["mean"]], yerr=[[m["mean"] - m["lo"]], [m["hi"] - m["mean"]]], fmt="o", color="C0",
                    capsize=6, ms=8, label="mean over seeds, 95% bootstrap interval" if x == 0 else None)
        ax.scatter(np.full(len(m["values"]), x) + 0.12, m["values"], color="C1", s=18, zorder=3,
                   label="one seed" if x == 0 else None)
        ax.hlines(s["null"]["mean"], x - 0.3, x + 0.3, colors="k", lw=1.2, label="null: factors shuffled" if x == 0 else None)
        ax.annotate(f"{m['mean']:.3f}", (x - 0.08, m["mean"]), textcoords="offset points", xytext=(-30, 0), fontsize=8)
    ax.axhspan(*ORIGINAL_MIG, color="r", alpha=0.3, label="original report's MIG (0.0001–0.0003)")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"β = {b:g}" for b in betas])
    ax.set_ylabel("MIG (encoder means, 10,000 images)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left")
    steps = summary[0]["steps"]
    ax.set_title(f"Does MIG rise with β? {summary[0]['n_seeds']} seeds per β, {steps:,} steps each", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def plot_mig_curves(records, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    betas = sorted({r["beta"] for r in records})
    for i, b in enumerate(betas):
        for j, r in enumerate(x for x in records if x["beta"] == b):
            c = r.get("mig_curve") or []
            if c:
                ax.plot([p["step"] for p in c], [p["mig"] for p in c], "-o", ms=3, color=f"C{i}", alpha=0.8,
                        label=f"β = {b:g}" if j == 0 else None)
    ax.set_xlabel("training step (batch %d)" % records[0]["batch_size"])
    ax.set_ylabel("MIG (encoder means)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("MIG against training steps (one line per seed)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def _per_beta_figures(rec: dict, out: Path, fig_dir: Path) -> dict[str, str]:
    """PCA by factor, reconstructions and traversals for one run (its checkpoint and means file)."""
    import torch

    from vae import analysis
    from vae.data.dsprites import LATENTS_POSSIBLE_VALUES, SHAPE_NAMES, VARYING_FACTOR_NAMES, generate_dsprites, index_to_classes
    from vae.plots import save_image_grid
    from vae.protocol import run_name

    tag = run_name(rec["beta"], rec["seed"])
    with np.load(rec["means_file"], allow_pickle=False) as f:
        means, indices = f["means"], f["indices"]
    factors = index_to_classes(indices)[:, 1:]
    proj, ratio = analysis.pca_2d(means)
    fv = LATENTS_POSSIBLE_VALUES
    pca = analysis.plot_pca_by_factor(
        proj, factors, list(VARYING_FACTOR_NAMES), fig_dir / f"pca_{tag}.png", explained=ratio,
        title=f"PCA of encoder means, β = {rec['beta']:g} (seed {rec['seed']})", seed=0,
        class_labels={"shape": SHAPE_NAMES},
        factor_values={"scale": fv["scale"], "orientation": np.degrees(fv["orientation"]), "posX": fv["posX"], "posY": fv["posY"]},
        factor_units={"orientation": "degrees", "posX": "0 = left, 1 = right", "posY": "0 = top, 1 = bottom"},
            cyclic=("orientation",))
    model = _run_model(rec)
    show_idx = indices[np.linspace(0, len(indices) - 1, 8).astype(int)]
    imgs = torch.from_numpy(generate_dsprites(show_idx)[0]).float()[:, None]
    with torch.no_grad():
        recon = model.reconstruct(imgs)
    recon_path = save_image_grid([imgs, recon], fig_dir / f"recon_{tag}.png", row_labels=["input", "recon."],
                                 title=f"β = {rec['beta']:g}: 8 MIG images (top) and reconstructions (bottom)")
    kl = np.asarray(rec["kl_per_dim"])
    order = [int(d) for d in np.argsort(-kl)]
    labels = [f"z{d}: KL {kl[d]:.2f}" + ("" if kl[d] > 0.01 else " (inactive)") for d in order]
    trav = analysis.latent_traversals(model, imgs[:1], fig_dir / f"traversals_{tag}.png", dims=order, n_steps=9,
                                      span=2.5, row_labels=labels,
                                      title=f"β = {rec['beta']:g}: one latent per row, −2.5 … +2.5 around an image's code")
    del trav
    return {"pca": str(pca[0]), "recon": str(recon_path), "traversals": str(fig_dir / f"traversals_{tag}.png")}


def write_protocol_report(out: str | Path, results: str | Path | None = None, docs_dir: str | Path | None = None,
                          figures: bool = True, metrics: bool = False) -> Path:
    """Write records, summary, figures and ``report.md`` for the runs under ``out``; returns the report."""
    out = Path(out)
    records = load_records(out)
    if not records:
        raise ValueError(f"no finished runs (record.json) under {out}")
    summary = summarise(records)
    slim = [{k: v for k, v in r.items()} for r in records]
    write_json(slim, out / "records.json")
    write_json(summary, out / "summary.json")
    if results is not None:  # the committed result file: what ran, where, when, and every run's numbers
        import time

        write_json({"command": f"python -m vae.protocol --protocol {records[0]['protocol']} (then vae.protocol_report)",
                    "device": records[0]["device"], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "summary": summary, "records": slim}, results)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    plot_mig_by_beta(records, summary, fig_dir / "mig_by_beta.png")
    plot_mig_curves(records, fig_dir / "mig_vs_steps.png")
    per_beta = {}
    if figures:
        for beta in sorted({r["beta"] for r in records}):
            first = min((r for r in records if r["beta"] == beta), key=lambda r: r["seed"])
            per_beta[beta] = _per_beta_figures(first, out, fig_dir)
    table = None
    if metrics:
        table = study_metrics(records, cache=out / "metrics")
        write_json({f"{b:g}": v for b, v in table.items()}, out / "metrics.json")
        plot_metrics(table, fig_dir / "metrics_by_beta.png")
    with np.load(records[0]["means_file"], allow_pickle=False) as f:
        base = baseline_nll(f["indices"])
    write_json(base, out / "baselines.json")
    report = _markdown(records, summary, per_beta, out, base, table)
    path = report.save(out / "report.md")
    if docs_dir is not None:  # the report and its figures for the repository's docs (figures/study_*.png)
        d = Path(docs_dir)
        (d / "figures").mkdir(parents=True, exist_ok=True)
        for p in fig_dir.glob("*.png"):
            shutil.copy(p, d / "figures" / f"study_{p.name}")
        (d / "study_report.md").write_text(path.read_text().replace("](figures/", "](figures/study_"))
    return path


def _markdown(records, summary, per_beta, out: Path, base: dict, table=None) -> Report:
    r0 = records[0]
    r = Report("β-VAE on dSprites: does MIG rise with β?")
    beta_list = ", ".join(f"{s['beta']:g}" for s in summary)
    r.text(f"Protocol `{r0['protocol']}`: the {r0['arch']} network (latent {r0['latent_dim']}), Bernoulli likelihood, "
           f"standard Normal prior, batch {r0['batch_size']}, Adam {r0['lr']:g}, {r0['steps']:,} steps "
           f"({r0['images_seen']:,} images) per run on all 737,280 dSprites images; β ∈ "
           f"{{{beta_list}}} × {summary[0]['n_seeds']} seeds. MIG: "
           f"disentanglement_lib's recipe on the encoder means of {r0['mig_samples']:,} fixed random images "
           f"({r0['mig_bins']} equal-width bins per latent, nats). Device: {r0['device']}.")
    rows = []
    for s in summary:
        m, n = s["mig"], s["null"]
        rows.append({"beta": f"{s['beta']:g}", "mig": f"{m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]",
                     "seeds": ", ".join(f"{v:.3f}" for v in m["values"]), "null": f"{n['mean']:.4f}",
                     **{f: f"{v['mean']:.3f}" for f, v in s["per_factor"].items()},
                     "active": f"{s['active_dims']:.1f}", "recon": s["val_recon"], "kl": s["val_kl"]})
    factors = list(summary[0]["per_factor"])
    r.heading("MIG per β")
    r.table(rows, ["beta", "mig", "seeds", "null", *factors, "active", "recon", "kl"], floatfmt=".1f",
            headers={"beta": "β", "mig": "MIG mean [95% bootstrap]", "seeds": "per seed", "null": "null",
                     "active": "active dims", "recon": "val recon (nats)", "kl": "val KL (nats)"},
            caption="Mean over seeds; the interval is the exact percentile bootstrap of the mean (all n^n resamples). "
                    "null: the same means with the factors shuffled (what a code without information scores at this N). "
                    "Per-factor columns: that factor's MIG term (gap / entropy), mean over seeds.")
    r.figure(out / "figures" / "mig_by_beta.png", "MIG per β: seeds, mean and bootstrap interval; the null; the original report's range", out)
    r.figure(out / "figures" / "mig_vs_steps.png", "MIG against training steps, one line per run", out)
    r.heading("Answer")
    r.text(answer(summary, records))
    r.heading("Reading the numbers")
    from vae.protocol import ACTIVE_KL

    r.text(f"*Active dimension*: a latent dimension whose KL(q(z_d|x) ‖ N(0, 1)), averaged over the MIG images, "
           f"exceeds {ACTIVE_KL:g} nats. An inactive dimension's posterior is the prior for every image: it carries "
           "no information, the decoder ignores it, and its traversal row shows one unchanging image. A larger β "
           "makes each nat of KL dearer, so fewer dimensions stay active (the table's column).")
    r.text(f"*Training loss above validation loss*: each epoch's training loss is the mean over the epoch's "
           "batches, each scored with the weights of its own step, so early batches count with older, worse weights; "
           "the validation loss is scored once, after the epoch, with the final weights (in eval mode, on the "
           "same random numbers every epoch). While the loss is still falling, as here (training and validation "
           "images come from the same 737,280-image grid and no run overfits in {r0['steps']:,} steps), the end-of-epoch "
           "validation loss is the lower one. A validation loss above the training loss would signal overfitting.")
    if table:
        r.heading("Every metric")
        names = list(next(iter(table.values())))
        r.table([{"beta": f"{b:g}", **v} for b, v in table.items()], ["beta", *names], floatfmt=".3f",
                headers={"beta": "β"},
                caption="vae.metrics.evaluate_all on the first seed's model of each β: disentanglement_lib's recipes "
                        f"at {STUDY_METRIC_SCALE:g} of their sample counts, DCI with 10 trees per factor "
                        "(`STUDY_METRIC_OPTIONS`); MIG here is on its own sample, not the fixed images above.")
        r.figure(out / "figures" / "metrics_by_beta.png", "every metric per β", out)
    r.heading("Beside the original report")
    recon = [s["val_recon"] for s in summary if s["val_recon"] is not None]
    r.text(f"The original report (a Persian homework report for a course on deep generative models; "
           f"docs/exercises.md in the repository) gave MIG {ORIGINAL_MIG[0]}–{ORIGINAL_MIG[1]} for every β: here the null alone is "
           f"{min(s['null']['mean'] for s in summary):.4f}–{max(s['null']['mean'] for s in summary):.4f} and the trained "
           f"codes score {min(s['mig']['mean'] for s in summary):.3f}–{max(s['mig']['mean'] for s in summary):.3f}, "
           f"so the original values are what an uninformative code scores (see `vae/metrics` and the study's "
           f"`mig_null`). Its reconstruction losses ({ORIGINAL_RECON[0]:,}–{ORIGINAL_RECON[1]:,} nats per image) exceed "
           f"what a model that ignores the image scores on these images: {base['global_rate_nll']:.0f} nats with the "
           f"global pixel rate ({base['pixel_rate']:.3f}) for every pixel, {base['per_pixel_rate_nll']:.0f} with each "
           f"pixel's own marginal rate; these runs reach {min(recon):.0f}–{max(recon):.0f} nats per image (validation), "
           f"so the original numbers cannot be per-image Bernoulli NLLs of a working model." if recon else "")
    for beta, figs in per_beta.items():
        r.heading(f"β = {beta:g}", 3)
        r.figure(figs["recon"], f"β = {beta:g}: reconstructions", out)
        r.figure(figs["traversals"], f"β = {beta:g}: latent traversals", out)
        r.figure(figs["pca"], f"β = {beta:g}: PCA of the encoder means coloured by each factor", out)
    return r


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m vae.protocol_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the protocol's run folder(s) root")
    p.add_argument("--results", default=None, help="also write the run records to this JSON file")
    p.add_argument("--docs", default=None, help="copy the key figures and report.md into this folder")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--metrics", action="store_true",
                   help="also score every disentanglement metric (BetaVAE, FactorVAE, DCI, SAP, modularity) per β")
    a = p.parse_args(argv)
    path = write_protocol_report(a.out, a.results, a.docs, figures=not a.no_figures, metrics=a.metrics)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
