"""The β-VAE study of the original homework report (a Persian course report on deep generative models; docs/exercises.md) on dSprites, redone right: training per β, losses, reconstructions,
traversals, per-dimension KL, MIG (disentanglement_lib's recipe) and PCA of the latent means.

Per β (default 1, 5, 10) the original report's network (vae.nets.ConvEncoder64 / ConvDecoder64, Bernoulli
likelihood, standard Normal prior) is trained with the report's hyper-parameters (50 epochs, 200,000
random images, batch 256, Adam 1e-3, validation 0.05, latent 16) through ``vae.train.fit``. Then
MIG is measured on the encoder means of ``--mig-samples`` (default 10,000) fresh random images of
the full 737,280-image grid, 20 bins per latent, factors shape, scale, orientation, posX, posY.

Written under ``--out`` (default runs/dsprites_study):
  beta_<b>/  history.csv|json, loss_curves.png, reconstructions.png, traversals.png,
             checkpoint.pt (for --resume)
  final_losses.csv|json   mig.csv|json   mig_bar.png   per_dim_kl.csv|json|png
  pca_beta_<max>.png (+ one PNG per factor)   summary.json   report.md (the write-up)

Examples:
  python examples/dsprites_study.py                      # the full study (GPU: ~1 h; CPU: days)
  python examples/dsprites_study.py --quick              # whole pipeline; ~6 min on a busy 2-core CPU
  python examples/dsprites_study.py --betas 1 4 10 --max-samples 20000 --epochs 5 --device cpu
  python examples/dsprites_study.py --resume             # continue interrupted runs per β
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from vae.cli.options import (add_run_options, float_in, fraction, int_at_least, int_in,
                             positive_float, positive_int, run_folder, run_main, set_threads)
from vae.cli.study_report import CODE_LABELS, mig_bar_chart, write_report

SEED_DEFAULTS = dict(betas=[1.0, 5.0, 10.0], epochs=50, max_samples=200_000, batch_size=256, lr=1e-3,
                     val_fraction=0.05, latent_dim=16, mig_samples=10_000)
# --quick trains on a few hundred images but scores MIG on the recipe's 10,000: on fewer points the
# plug-in estimator's bias dominates (random latents score ~0.005 at N = 500, ~0.0003 at N = 10,000).
QUICK_DEFAULTS = dict(betas=[1.0, 4.0], epochs=2, max_samples=20_000, batch_size=64, mig_samples=10_000, arch="standard")
NULL_N = 10_000  # the N at which the report compares the original values with the null MIG
ACTIVE_KL = 0.01  # nats: a latent dimension with a mean KL above this counts as active


def build_parser() -> argparse.ArgumentParser:
    """The command line (defaults filled in and checked by :func:`parse_args`)."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Written under"):],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("training (defaults: the original report's hyper-parameters)")
    g.add_argument("--betas", type=positive_float, nargs="+", default=None, metavar="B",
                   help="KL weights, one run each (default: 1 5 10; --quick: 1 10)")
    g.add_argument("--epochs", type=positive_int, default=None, help="epochs per run (default 50; --quick: 2)")
    g.add_argument("--max-samples", type=positive_int, default=None,
                   help="random training images from dSprites' 737,280 (default 200000; --quick: 256)")
    g.add_argument("--batch-size", type=positive_int, default=None, help="batch size (default 256; --quick: 32)")
    g.add_argument("--lr", type=positive_float, default=SEED_DEFAULTS["lr"], help="Adam learning rate (default 1e-3)")
    g.add_argument("--val-fraction", type=fraction, default=SEED_DEFAULTS["val_fraction"],
                   help="validation share of the training images (default 0.05)")
    g.add_argument("--latent-dim", type=positive_int, default=None, help="latent dimensions (default 16; 10 with --arch standard)")
    g.add_argument("--dropout", type=fraction, default=0.2,
                   help="encoder dropout rate (default 0.2, the nets' default; the original report does not state its rate; 0 removes it)")
    g.add_argument("--no-batchnorm", action="store_true", help="remove BatchNorm from encoder and decoder")
    g.add_argument("--arch", choices=("report", "standard"), default=None,
                   help="network: report (the original report's, latent 16) or standard (disentanglement_lib / "
                        "Burgess et al. 2018: 4x4 stride-2 convolutions 32-32-64-64, dense 256, latent 10) (default: report; --quick: standard)")
    pr = p.add_argument_group("protocols (a grid of β × seeds, resumable; see vae/protocol.py)")
    pr.add_argument("--protocol", choices=("cpu", "smoke", "report"), default=None,
                    help="run a documented protocol instead of the single-seed study: cpu (standard net, β 1/4/16 × "
                         "3 seeds, 5,000 steps each: about 100 min on a shared 2-core CPU), smoke (seconds), report "
                         "(the original report's study, a GPU run); rerunning continues unfinished runs")
    pr.add_argument("--shard", default=None, help="with --protocol: train only shard i/N of the runs")
    pr.add_argument("--claim", action="store_true",
                    help="with --protocol: share the runs with other workers on the same --out (a queue)")
    pr.add_argument("--results", default=None, help="with --protocol: also write the run records to this JSON file")
    g.add_argument("--resume", action="store_true",
                   help="continue each β from its checkpoint (out/beta_<b>/checkpoint.pt) when present")
    e = p.add_argument_group("evaluation")
    e.add_argument("--mig-samples", type=positive_int, default=None,
                   help="random images (full grid) whose encoder means MIG uses (default 10000, also with --quick)")
    e.add_argument("--mig-bins", type=int_at_least(2), default=20,
                   help="bins per latent dimension for MIG, at least 2 (default 20)")
    e.add_argument("--traversal-steps", type=int_in(1, 50), default=9, help="values per traversed dimension, 1 to 50 (default 9)")
    e.add_argument("--traversal-dims", type=positive_int, default=10,
                   help="traverse this many dimensions, the most active (highest KL) first (default 10)")
    e.add_argument("--traversal-span", type=float_in(0, 10, low_open=True), default=2.5,
                   help="traversal range ±span around 0, in (0, 10] prior standard deviations (default 2.5)")
    o = p.add_argument_group("run")
    o.add_argument("--data-path", default=None, help="official dsprites npz (default: procedural generator / cache)")
    o.add_argument("--cache", action="store_true",
                   help="build/use the 377 MB bit-packed cache of all 737,280 procedural images (default: render only what is needed)")
    add_run_options(o, out="runs/dsprites_study",
                    quick="a short run that shows shapes: the standard network, β 1 and 4, 20,000 training images, "
                          "2 epochs of batch 64 (about 600 steps), MIG on 10,000 images (explicit options still win)",
                    seed_help="seed of data subset, split, initialisation and batches (default 0)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, with the study's defaults (or --quick's) filled in and checked."""
    p = build_parser()
    args = p.parse_args(argv)
    base = dict(SEED_DEFAULTS)
    if args.quick:
        base.update(QUICK_DEFAULTS)
    for key in ("betas", "epochs", "max_samples", "batch_size", "mig_samples"):
        if getattr(args, key) is None:
            setattr(args, key, base[key])
    if args.arch is None:
        args.arch = base.get("arch", "report")
    if args.latent_dim is None:
        args.latent_dim = 10 if args.arch == "standard" else SEED_DEFAULTS["latent_dim"]
    if any(not (b > 0 and math.isfinite(b)) for b in args.betas):
        p.error(f"--betas must be positive numbers; got {args.betas}")
    if len(set(args.betas)) != len(args.betas):
        p.error(f"--betas must be distinct; got {args.betas}")
    for key in ("epochs", "max_samples", "batch_size", "latent_dim", "mig_samples", "mig_bins", "traversal_steps", "traversal_dims"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1; got {getattr(args, key)}")
    if args.latent_dim < 2:
        p.error("--latent-dim must be >= 2 (MIG is a gap between two latents)")
    if not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout must be in [0, 1); got {args.dropout}")
    return args


def beta_tag(beta: float) -> str:
    return f"{beta:g}".replace(".", "p")


def null_scores(latents, factors, n_bins: int, seed: int, n: int = NULL_N, repeats: int = 5) -> dict:
    """Null MIG (factors shuffled, ``repeats`` permutations) of ``n`` random rows of the latents —
    the score of a code without information at the N of the recipe; at the available N when fewer."""
    from vae.metrics import mig_null

    rng = np.random.default_rng(seed)
    n_used = min(n, len(latents))
    rows = np.sort(rng.choice(len(latents), n_used, replace=False)) if n_used < len(latents) else np.arange(n_used)
    scores = [mig_null(latents[rows], factors[rows], n_bins=n_bins, seed=seed + 1 + r).score for r in range(repeats)]
    return {"n_points": int(n_used), "scores": scores, "min": float(min(scores)), "max": float(max(scores))}


def per_factor(result, factor_names) -> dict:
    """A MIG result's per-factor scores by factor name (None for a factor that was left out)."""
    return {n: (None if np.isnan(v) else float(v)) for n, v in zip(factor_names, result.per_factor)}


def kl_label(d: int, kl: float, threshold: float = ACTIVE_KL) -> str:
    """Traversal row label: the KL to 3 significant digits and the verdict of the same threshold
    that counts active dimensions (so 0.0085 reads "0.0085, inactive", never "0.01")."""
    return f"z{d}: KL {kl:.3g} ({'active' if kl > threshold else 'inactive'})"


def build_model(args, beta: float):
    import torch

    from vae.model import VAE
    from vae.nets import ConvDecoder64, ConvEncoder64
    from vae.priors import StandardNormal

    from vae.nets import make_conv64

    torch.manual_seed(args.seed)  # identical initialisation for every β
    if getattr(args, "arch", "report") == "standard":
        enc, dec = make_conv64("standard", args.latent_dim)
    else:
        enc = ConvEncoder64(latent_dim=args.latent_dim, dropout=args.dropout, batchnorm=not args.no_batchnorm)
        dec = ConvDecoder64(latent_dim=args.latent_dim, batchnorm=not args.no_batchnorm)
    return VAE(enc, dec, StandardNormal(args.latent_dim), likelihood="bernoulli", beta=beta)


def baselines(images) -> dict:
    """Reconstruction NLL (nats/image) of models that ignore the image: the global pixel rate, and
    the per-pixel marginal rate — any reconstruction loss above these is meaningless."""
    import torch

    x = images.double()
    n_pix = x[0].numel()
    p = float(x.mean())
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p)) if 0 < p < 1 else 0.0
    pp = x.mean(0).clamp(1e-6, 1 - 1e-6)
    per_pixel = float(-(x * torch.log(pp) + (1 - x) * torch.log1p(-pp)).sum() / len(x))
    return {"pixel_rate": p, "global_rate_nll": n_pix * h, "per_pixel_rate_nll": per_pixel}


def run(args) -> dict:
    import torch

    from vae import analysis
    from vae.data.dsprites import load_dsprites
    from vae.device import resolve_device
    from vae.data.dsprites import SHAPE_NAMES
    from vae.metrics import mig, mig_null, sample_codes
    from vae.plots import save_image_grid, save_loss_curves
    from vae.report import write_csv, write_json
    from vae.train import fit

    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    progress = not args.no_progress
    print(f"dSprites β-VAE study: β = {args.betas}, {args.max_samples} images, {args.epochs} epochs, "
          f"batch {args.batch_size}, lr {args.lr:g}, latent {args.latent_dim}, device {device}, out {out}")

    # ---- data: the training subset (as the original report: random images) and a separate MIG sample
    t0 = time.time()
    data = load_dsprites(max_samples=args.max_samples, seed=args.seed, path=args.data_path, cache=args.cache)
    mig_data = load_dsprites(max_samples=args.mig_samples, seed=args.seed + 1, path=args.data_path, cache=args.cache)
    factor_names = list(data.factor_names)
    print(f"data: {len(data)} training images, {len(mig_data)} MIG images ({data.name}) in {time.time() - t0:.1f} s")
    _, val = data.split(args.val_fraction, args.seed)  # the split fit makes: held-out images for the figures
    show = (val if len(val) >= 8 else data).sample(8, seed=args.seed).images
    base = baselines(val.images if len(val) else data.images)

    loss_rows, mig_rows, mig_table, mig_full, kl_rows, per_beta = [], [], [], {}, {}, {}
    latents_by_beta = {}
    for beta in args.betas:
        tag = beta_tag(beta)
        bdir = out / f"beta_{tag}"
        bdir.mkdir(parents=True, exist_ok=True)
        ckpt = bdir / "checkpoint.pt"
        print(f"\n=== β = {beta:g} ===")
        model = build_model(args, beta)
        t0 = time.time()
        hist = fit(model, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                   val_fraction=args.val_fraction, device=device, seed=args.seed, checkpoint=ckpt,
                   resume=bool(args.resume and ckpt.is_file()), progress=progress,
                   config={"beta": beta, "latent_dim": args.latent_dim, "dropout": args.dropout,
                           "batchnorm": not args.no_batchnorm})
        train_s = time.time() - t0
        hist.to_csv(bdir / "history.csv")
        hist.to_json(bdir / "history.json")
        save_loss_curves(hist.rows, bdir / "loss_curves.png",
                         title=f"β = {beta:g}: per-image loss (nats), train and validation")
        model.eval()
        with torch.no_grad():
            recon = model.reconstruct(show.to(device)).cpu()
        save_image_grid([show, recon], bdir / "reconstructions.png", row_labels=["input", "recon."],
                        title=f"β = {beta:g}: 8 held-out images (top) and reconstructions (bottom)")
        latents, scales = analysis.encode_stats(model, mig_data, batch_size=512, device=device)
        kl = analysis.kl_per_dim_from_stats(latents, scales)
        order = [int(d) for d in np.argsort(-kl)][: args.traversal_dims]
        analysis.latent_traversals(
            model, show[:1], bdir / "traversals.png", dims=order, n_steps=args.traversal_steps,
            span=args.traversal_span, device=device,
            row_labels=[kl_label(d, kl[d]) for d in order],
            title=f"β = {beta:g}: each row sweeps one latent from −{args.traversal_span:g} to "
                  f"+{args.traversal_span:g}, the others fixed\n(rows by mean KL in nats; "
                  f"active = KL > {ACTIVE_KL:g})")
        latents_by_beta[beta] = latents
        n_active = int((kl > ACTIVE_KL).sum())
        res = mig(latents, mig_data.factors, n_bins=args.mig_bins)
        # the same images scored two more ways: sampled codes, and the null (factors shuffled)
        res_sampled = mig(sample_codes(latents, scales, seed=args.seed), mig_data.factors, n_bins=args.mig_bins)
        res_null = mig_null(latents, mig_data.factors, n_bins=args.mig_bins, seed=args.seed)
        null_ref = null_scores(latents, mig_data.factors, args.mig_bins, args.seed)
        mig_full[f"{beta:g}"] = res.to_dict(factor_names)
        mig_full[f"{beta:g}"]["sampled_codes"] = res_sampled.to_dict(factor_names)
        mig_full[f"{beta:g}"]["null_shuffled_factors"] = res_null.to_dict(factor_names)
        for code, r_ in (("means", res), ("sampled", res_sampled), ("null", res_null)):
            mig_table.append({"beta": beta, "code": code, "n_points": len(mig_data), "mig": r_.score,
                              **per_factor(r_, factor_names),
                              "active_dims": n_active if code != "null" else None})
        mig_rows.append({"beta": beta, "mig": res.score,
                         **per_factor(res, factor_names),
                         "active_dims": n_active, "mig_sampled": res_sampled.score, "mig_null": res_null.score,
                         "null_ref": null_ref,
                         "null_per_factor": per_factor(res_null, factor_names)})
        kl_rows[f"{beta:g}"] = kl
        fin = hist.final()
        loss_rows.append({"beta": beta, "epochs": int(fin.get("epoch", len(hist))),
                          **{k: fin.get(k) for k in ("train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl")},
                          "train_seconds": train_s})
        per_beta[f"{beta:g}"] = {"dir": bdir.name, "final": fin, "train_seconds": train_s,
                                 "mig": res.score, "per_dim_kl": kl, "best_latent": res.best_latent}
        print(f"β = {beta:g}: val loss {fin.get('val_loss', float('nan')):.1f}, recon {fin.get('val_recon', float('nan')):.1f}, "
              f"KL {fin.get('val_kl', float('nan')):.2f} nats/image; MIG {res.score:.4f} "
              f"({', '.join(f'{n} {v:.3f}' for n, v in zip(factor_names, res.per_factor))}); "
              f"sampled codes {res_sampled.score:.4f}; null (factors shuffled) {res_null.score:.4f}; "
              f"{n_active} active dims; {train_s:.0f} s")

    # ---- across β: tables, MIG chart, per-dim KL, PCA of the largest β
    write_csv(loss_rows, out / "final_losses.csv")
    write_json(loss_rows, out / "final_losses.json")
    mig_cols = ["beta", "code", "n_points", "mig", *factor_names, "active_dims"]
    write_csv(mig_table, out / "mig.csv", mig_cols)
    write_json({"rows": mig_rows, "table": mig_table, "details": mig_full, "n_points": len(mig_data),
                "n_bins": args.mig_bins,
                "recipe": "disentanglement_lib discrete MIG: encoder means, equal-width bins per latent, nats",
                "codes": CODE_LABELS},
               out / "mig.json")
    mig_bar_chart(mig_rows, factor_names, out / "mig_bar.png", n_points=len(mig_data), n_bins=args.mig_bins)
    kl_table = [{"dim": f"z{d}", **{f"beta={b}": float(v[d]) for b, v in kl_rows.items()}} for d in range(args.latent_dim)]
    write_csv(kl_table, out / "per_dim_kl.csv")
    write_json(kl_rows, out / "per_dim_kl.json")
    analysis.plot_per_dim_kl({f"β = {b}": v for b, v in kl_rows.items()}, out / "per_dim_kl.png", threshold=ACTIVE_KL,
                             title="active latent dimensions: mean KL(q(z_d|x) || N(0,1)) on the MIG images")
    b_max = max(args.betas)
    fv = mig_data.factor_values
    other_pca = {}
    for b in args.betas:  # PCA for every β (the largest β's panels also separately, as before)
        proj_b, ratio_b = analysis.pca_2d(latents_by_beta[b])
        paths_b = analysis.plot_pca_by_factor(
            proj_b, mig_data.factors, factor_names, out / f"pca_beta_{beta_tag(b)}.png", explained=ratio_b,
            title=f"PCA of encoder means, β = {b:g}", separate=b == b_max, seed=args.seed,
            class_labels={"shape": SHAPE_NAMES},
            factor_values={"scale": fv["scale"], "orientation": np.degrees(fv["orientation"]),
                           "posX": fv["posX"], "posY": fv["posY"]},
            factor_units={"orientation": "degrees", "posX": "0 = left, 1 = right", "posY": "0 = top, 1 = bottom"},
            cyclic=("orientation",))
        if b == b_max:
            pca_paths, ratio = paths_b, ratio_b
        else:
            other_pca[f"{b:g}"] = str(paths_b[0])
    per_beta_pca = other_pca
    wall = time.time() - t_start

    summary = {
        "settings": {k: getattr(args, k) for k in ("betas", "epochs", "max_samples", "batch_size", "lr", "val_fraction",
                                                   "latent_dim", "dropout", "mig_samples", "mig_bins", "seed", "quick")}
        | {"batchnorm": not args.no_batchnorm, "device": str(device), "data": data.name},
        "final_losses": loss_rows, "mig": mig_rows, "mig_table": mig_table, "baselines": base, "pca_explained_variance_ratio": ratio,
        "pca_beta": b_max, "pca_other_betas": per_beta_pca, "wall_seconds": wall, "torch": torch.__version__, "python": platform.python_version(),
        "per_beta": per_beta,
    }
    write_json(summary, out / "summary.json")
    write_report(out, args, summary, factor_names, mig_full, pca_paths)
    print("\nMIG by β (null with factors shuffled): "
          + ", ".join(f"β={r['beta']:g}: {r['mig']:.4f} ({r['mig_null']:.4f})" for r in mig_rows))
    print(f"wrote {out / 'report.md'} ({wall:.0f} s in all)")
    return summary


def run_protocol_cli(args) -> dict:
    """``--protocol``: train the protocol's grid (resumable) and write its report."""
    from vae.protocol import PROTOCOLS, run_protocol
    from vae.protocol_report import summarise, write_protocol_report

    out = Path(args.out if args.out != "runs/dsprites_study" else f"runs/protocol_{args.protocol}")
    records = run_protocol(PROTOCOLS[args.protocol], out, out / "means", args.device, args.shard, args.data_path,
                           progress=not args.no_progress, claim=args.claim)
    done = {(r["beta"], r["seed"]) for r in records}
    if set(PROTOCOLS[args.protocol].runs()) <= done:
        print(f"wrote {write_protocol_report(out, results=args.results)}")
    else:
        print(f"{len(done)} of {len(PROTOCOLS[args.protocol].runs())} runs finished; rerun (or gather) when all are done")
    return {"mig": summarise(records) if records else [], "final_losses": [], "wall_seconds": None}


def run_cli(argv: list[str] | None = None) -> dict:
    """Parse and run the study (or ``--protocol``); returns the summary. Errors propagate
    (:func:`main` handles them)."""
    args = parse_args(argv)
    set_threads(args.threads)
    if args.protocol:  # the protocol's own claims let several workers share one --out
        return run_protocol_cli(args)
    with run_folder(args.out, args, can_resume=True):  # locked, never silently over a previous run, writable
        summary = run(args)
    if args.json:
        print(json.dumps({"mig": summary["mig"], "final_losses": summary["final_losses"],
                          "wall_seconds": summary["wall_seconds"]}, indent=2, default=float))
    return summary


def main(argv: list[str] | None = None) -> int:
    """The command: :func:`run_cli` with the commands' one error handling; returns the exit status."""
    return run_main(run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
