"""Train a convolutional VQ-VAE on MNIST or dSprites and show codebook collapse and its fixes.

The same network, data, seed, codebook init and number of steps are trained with four codebook
schemes (--variants, default all four), so each fix's effect shows on its own:
  plain         codebook loss ||sg[z_e] - e||^2 + 0.25 ||z_e - sg[e]||^2, no maintenance
  plain+reseed  plain + re-seeding dead codes (running usage share < 3 % of uniform) at encoder
                outputs of the current batch, before the batch is assigned to codes
  ema           EMA codebook updates (Laplace smoothing) instead of the codebook loss
  ema+reseed    EMA + dead-code re-seeding
Codebooks start small by default (--init uniform: U(-1/K, 1/K), as in the reference
implementation), far below the encoder's output scale, which is what lets an unmaintained
codebook collapse; --init data / kmeans start it at encoder outputs of the first batch instead.
The decoder is linear at the output and trained with the unclamped squared error (a sigmoid
output trained with squared error saturates to an all-black image on MNIST).

Reported per variant, on held-out images (eval mode): perplexity exp(H) of the code-usage
distribution (max = K), fraction of codes used at least once, reconstruction PSNR, and the PSNR of
the mean-image baseline (the training set's mean image predicted for every test image); a variant
that does not beat the baseline by at least 1 dB is flagged with a loud warning.

Writes into --out (default runs/train_vqvae_<dataset>): reconstructions.png (held-out images, one
per digit class for MNIST, above each variant's reconstructions), code_usage.png (per-variant
histograms of code usage, codes sorted by frequency), usage_table.md and .csv, <variant>_loss.png
(reconstruction; the quantiser's terms as weighted in the loss, codebook x 1 and commitment x beta in
one panel: without EMA the two losses are the same number, only their gradients differ; perplexity),
<variant>_history.csv, summary.json.

Examples:
  python examples/train_vqvae.py --quick --json
  python examples/train_vqvae.py --dataset dsprites --epochs 5 --max-samples 20000
  python examples/train_vqvae.py --variants plain ema+reseed --n-codes 512 --init kmeans
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from vae.plots import save_figure
from vae.cli.options import (
    add_run_options, fraction, nonneg_float, positive_float, positive_int, progress_log, run_folder, run_main,
    set_threads, write_summary,
)

VARIANTS = {
    "plain": dict(ema=False, reseed=False),
    "plain+reseed": dict(ema=False, reseed=True),
    "ema": dict(ema=True, reseed=False),
    "ema+reseed": dict(ema=True, reseed=True),
}
# Model / optimisation settings per dataset; --quick: ~225 steps of a half-width model (~20-60 s
# per variant on 2 CPU cores), enough for every variant to beat the mean image clearly.
DEFAULTS = {
    "mnist": dict(epochs=20, max_samples=None, hidden=64, code_dim=16, batch_size=64),
    "dsprites": dict(epochs=10, max_samples=50_000, hidden=64, code_dim=16, batch_size=64),
}
QUICK = {
    "mnist": dict(epochs=5, max_samples=1500, hidden=32, code_dim=8, batch_size=32),
    "dsprites": dict(epochs=3, max_samples=1500, hidden=32, code_dim=8, batch_size=32),
}
MIN_GAIN_DB = 1.0  # a variant must beat the mean-image PSNR by this much


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("mnist", "dsprites"), default="mnist", help="data set (default: mnist)")
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS),
                   help="codebook schemes to train (default: all)")
    p.add_argument("--n-codes", type=positive_int, default=128, help="codebook size K (default: 128)")
    p.add_argument("--code-dim", type=positive_int, default=None, help="code vector length (default: 16; --quick: 8)")
    p.add_argument("--hidden", type=positive_int, default=None, help="conv channels (default: 64; --quick: 32)")
    p.add_argument("--init", choices=("uniform", "data", "kmeans"), default="uniform",
                   help="codebook init: uniform +-1/K (reference), data (encoder outputs of the first batch) "
                        "or kmeans (k-means on them) (default: uniform)")
    p.add_argument("--decay", type=fraction, default=0.99, help="EMA decay of the ema variants (default: 0.99)")
    p.add_argument("--beta", type=nonneg_float, default=0.25, help="commitment weight (default: 0.25)")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs (default: 20 MNIST, 10 dSprites; --quick: 5 / 3)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="batch size (default: 64; --quick: 32)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--max-samples", type=positive_int, default=None,
                   help="training images (default: all 4,500 MNIST / 50,000 dSprites; --quick: 1,500)")
    add_run_options(p, out=None, out_help="runs/train_vqvae_<dataset>",
                    quick="small run (1,500 images, 5 epochs, half-width model): about a minute per variant on 2 CPU cores",
                    threads_help="1 with --quick: the small model gains nothing from more, and a busy machine slows it "
                                 "down a lot")
    return p


def load_data(args):
    if args.dataset == "mnist":
        from vae.data.mnist import load_mnist

        return load_mnist(split="train", max_samples=args.max_samples, seed=args.seed), load_mnist(split="test")
    import numpy as np

    from vae.data.dsprites import load_dsprites

    n_test = 500
    data = load_dsprites(max_samples=args.max_samples + n_test, seed=args.seed, cache=not args.quick)
    # the subset is sorted by index (shape varies slowest): hold out a random 500, not the first 500
    perm = np.random.default_rng(args.seed).permutation(len(data))
    return data.subset(np.sort(perm[n_test:])), data.subset(np.sort(perm[:n_test]))


def showcase_indices(test, n: int = 10) -> list[int]:
    """Test images to show: the first of each class (MNIST digits 0-9), else n spread-out images."""
    if test.factors is not None and test.factor_names == ("digit",):
        labels = test.factors[:, 0]
        return [int((labels == c).nonzero()[0][0]) for c in sorted(set(labels.tolist()))]
    return [int(i) for i in range(0, len(test), max(len(test) // n, 1))][:n]


def psnr(mse: float) -> float:
    return float(10 * math.log10(1.0 / max(mse, 1e-12)))


def save_usage_plot(stats: dict, n_codes: int, path: Path) -> None:
    """One panel per variant: share of held-out assignments per code, codes sorted by usage."""
    from vae.plots import _pyplot

    plt = _pyplot()
    n = len(stats)
    ncols = 2 if n > 2 else n
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.4 * nrows), squeeze=False, sharey=True)
    floor = 1e-5
    for ax, (name, s) in zip(axes.flat, stats.items()):
        counts = sorted(s["counts"], reverse=True)
        total = max(sum(counts), 1)
        share = [c / total for c in counts]
        used = sum(c > 0 for c in counts)
        ax.bar(range(n_codes), [max(v, floor) if v > 0 else 0 for v in share], width=1.0, color="tab:blue")
        if used < n_codes:
            ax.axvspan(used - 0.5, n_codes - 0.5, color="tab:gray", alpha=0.15, label="unused codes")
        ax.axhline(1.0 / n_codes, color="tab:red", ls="--", lw=1, label="uniform share 1/K")
        ax.set_title(f"{name}: {used} of {n_codes} codes used ({s['usage']:.0%})\n"
                     f"perplexity {s['perplexity']:.1f}, PSNR {s['psnr']:.1f} dB", fontsize=10)
        ax.set_xlim(-0.5, n_codes - 0.5)
        ax.set_yscale("log")
        ax.set_ylim(floor, 1.0)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("code (sorted by usage)")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of held-out assignments")
    axes[0][0].legend(fontsize=8, loc="upper right")
    fig.suptitle("VQ-VAE code usage on held-out images", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def save_vq_loss_plot(history: list[dict], path: Path, *, ema: bool, beta: float, title: str) -> Path:
    """Per epoch, train and validation: reconstruction, the quantiser's terms, perplexity.

    Without EMA the codebook loss ||sg[z_e] - e||^2 and the commitment loss ||z_e - sg[e]||^2 are the
    same number (they differ only in which side the gradient moves), so they share one panel, each as
    it enters the loss: codebook x 1 and commitment x beta. With EMA the codebook moves by running
    averages and only the commitment term is in the loss.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from vae.plots import _pyplot

    plt = _pyplot()
    epochs = [row["epoch"] for row in history]

    def curve(key: str, split: str, scale: float = 1.0):
        return [np.nan if row.get(f"{split}_{key}") is None else scale * row[f"{split}_{key}"] for row in history]

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8), squeeze=False)
    ax_rec, ax_vq, ax_ppl = axes[0]
    for split, style in (("train", "-o"), ("val", "--s")):
        ax_rec.plot(epochs, curve("recon", split), style, ms=3, label=split)
        ax_ppl.plot(epochs, curve("perplexity", split), style, ms=3, label=split)
        if not ema:
            ax_vq.plot(epochs, curve("codebook", split), style, ms=3, color="tab:blue",
                       label=f"codebook ‖sg[z_e] − e‖² × 1 ({split})")
        ax_vq.plot(epochs, curve("commitment", split, beta), style, ms=3, color="tab:orange",
                   label=f"commitment ‖z_e − sg[e]‖² × β = {beta:g} ({split})")
    ax_rec.set_title("reconstruction")
    ax_rec.set_ylabel("squared error per image")
    ax_ppl.set_title("perplexity of the code usage")
    ax_ppl.set_ylabel("perplexity (max K)")
    if ema:
        ax_vq.set_title("commitment term (EMA updates the codebook:\nno codebook loss)", fontsize=10)
    else:
        ax_vq.set_title("codebook and commitment terms, as weighted in the loss\n(unweighted they are the same "
                        "number; only the gradient differs)", fontsize=10)
    ax_vq.set_ylabel("per image")
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7 if ax is ax_vq else 8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def run_cli(argv: list[str] | None = None) -> dict:
    """Parse, claim the run folder and train the variants; returns the summary. Errors propagate
    (:func:`main` handles them)."""
    args = build_parser().parse_args(argv)
    table = (QUICK if args.quick else DEFAULTS)[args.dataset]
    for key in ("epochs", "max_samples", "hidden", "code_dim", "batch_size"):
        if getattr(args, key) is None:
            setattr(args, key, table[key])
    out = Path(args.out or f"runs/train_vqvae_{args.dataset}")
    with run_folder(out, args):  # locked, never silently over a previous run, writable: checked up front
        return run(args, out)


def run(args, out: Path) -> dict:
    """Train the variants into the claimed folder ``out``; returns the summary."""
    log = progress_log(args.json)

    import torch

    from vae.device import resolve_device
    from vae.plots import save_image_grid
    from vae.train import fit
    from vae.vq import VQVAE, codebook_usage

    set_threads(1 if args.threads is None and args.quick else args.threads)
    args.device = str(resolve_device(args.device))
    train, test = load_data(args)
    baseline_mse = float(((test.images - train.images.mean(0, keepdim=True)) ** 2).mean())
    baseline_psnr = psnr(baseline_mse)
    log(f"{args.dataset}: {len(train)} training / {len(test)} held-out images, {args.epochs} epochs, "
        f"batch {args.batch_size}, K = {args.n_codes}, code dim {args.code_dim}, hidden {args.hidden}, "
        f"init {args.init}, device {args.device}")
    log(f"mean-image baseline (training mean predicted for every held-out image): PSNR {baseline_psnr:.2f} dB")
    show = showcase_indices(test)
    shown = test.images[show]
    results, stats, recons, failed = {}, {}, {}, []
    for name in args.variants:
        torch.manual_seed(args.seed)  # the same initial weights for every variant
        model = VQVAE(train.image_shape, n_codes=args.n_codes, code_dim=args.code_dim, hidden=args.hidden,
                      beta=args.beta, decay=args.decay, init=args.init, **VARIANTS[name])
        t0 = time.perf_counter()
        history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                      seed=args.seed, progress=not args.no_progress, config={"variant": name})
        seconds = time.perf_counter() - t0
        s = codebook_usage(model, test.images)
        stats[name] = s
        with torch.no_grad():
            model.eval()
            recons[name] = model.reconstruct(shown.to(args.device)).cpu()
        # without EMA codebook and commitment losses are one number (one panel); with EMA there is no codebook loss
        save_vq_loss_plot(history.rows, out / f"{name}_loss.png", ema=VARIANTS[name]["ema"], beta=args.beta,
                          title=f"VQ-VAE ({name}) on {args.dataset}")
        history.to_csv(out / f"{name}_history.csv")
        gain = s["psnr"] - baseline_psnr
        results[name] = {"perplexity": s["perplexity"], "usage": s["usage"], "codes_used": int((s["counts"] > 0).sum()),
                         "psnr": s["psnr"], "psnr_gain_over_mean_image": gain, "mse": s["mse"],
                         "beats_mean_image": bool(gain >= MIN_GAIN_DB),
                         "reseeded_codes": int(model.quantizer.total_reseeded), "train_seconds": seconds}
        log(f"{name:>12}: perplexity {s['perplexity']:6.1f} / {args.n_codes}, codes used {s['usage']:.0%}, "
            f"PSNR {s['psnr']:.2f} dB ({gain:+.2f} dB vs mean image), re-seeded "
            f"{results[name]['reseeded_codes']}, {seconds:.1f} s")
        if gain < MIN_GAIN_DB:
            failed.append(name)
            log("!" * 100 + f"\nWARNING: variant {name!r} does NOT beat the mean-image baseline by {MIN_GAIN_DB} dB "
                f"(PSNR {s['psnr']:.2f} vs {baseline_psnr:.2f} dB): its reconstructions are no better than the "
                "mean image, so its code-usage numbers say nothing. Train longer or check the settings.\n" + "!" * 100)

    labels = None
    if test.factors is not None and test.factor_names == ("digit",):
        labels = [f"digit {int(test.factors[i, 0])}" for i in show]
    save_image_grid([shown] + [recons[n] for n in args.variants], out / "reconstructions.png",
                    row_labels=["held-out"] + [f"{n}\n{results[n]['psnr']:.1f} dB\n{results[n]['codes_used']} codes"
                                               for n in args.variants],
                    title=f"VQ-VAE on {args.dataset} ({args.epochs} epochs, K = {args.n_codes}): held-out images "
                          f"({'one per digit' if labels else 'spread over the held-out set'}) and reconstructions; "
                          f"mean image {baseline_psnr:.1f} dB",
                    cell_inches=1.1)
    save_usage_plot(stats, args.n_codes, out / "code_usage.png")
    header = (f"| variant | perplexity (of K = {args.n_codes}) | codes used | PSNR (dB) | vs mean image (dB) | "
              "codes re-seeded |\n|---|---|---|---|---|---|\n")
    lines = [f"| {n} | {r['perplexity']:.1f} | {r['codes_used']} ({r['usage']:.0%}) | {r['psnr']:.2f} | "
             f"{r['psnr_gain_over_mean_image']:+.2f} | {r['reseeded_codes']} |" for n, r in results.items()]
    lines.append(f"| mean image (baseline) | – | – | {baseline_psnr:.2f} | 0 | – |")
    (out / "usage_table.md").write_text(header + "\n".join(lines) + "\n")
    with open(out / "usage_table.csv", "w") as f:
        f.write("variant,perplexity,usage,codes_used,psnr,psnr_gain_over_mean_image,reseeded_codes\n")
        for n, r in results.items():
            f.write(f"{n},{r['perplexity']:.4f},{r['usage']:.4f},{r['codes_used']},{r['psnr']:.4f},"
                    f"{r['psnr_gain_over_mean_image']:.4f},{r['reseeded_codes']}\n")
        f.write(f"mean_image,,,,{baseline_psnr:.4f},0,\n")
    log(header + "\n".join(lines))
    if failed:
        log(f"WARNING: {len(failed)} variant(s) do not beat the mean image by {MIN_GAIN_DB} dB: {', '.join(failed)}")
    summary = {"dataset": args.dataset, "device": args.device, "quick": args.quick, "seed": args.seed,
               "epochs": args.epochs, "batch_size": args.batch_size, "n_train": len(train), "n_test": len(test),
               "n_codes": args.n_codes, "code_dim": args.code_dim, "hidden": args.hidden, "init": args.init,
               "mean_image_psnr": baseline_psnr, "mean_image_mse": baseline_mse,
               "variants_not_beating_mean_image": failed, "variants": results}
    write_summary(summary, out / "summary.json", echo=args.json)
    return summary


def main(argv: list[str] | None = None) -> int:
    """The command: :func:`run_cli` with the commands' one error handling; returns the exit status."""
    return run_main(run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
