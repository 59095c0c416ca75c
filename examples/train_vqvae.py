#!/usr/bin/env python
"""Train a convolutional VQ-VAE on MNIST or dSprites and show codebook collapse and its fixes.

The same network, data, seed and number of steps are trained with three codebook schemes
(--variants, default all three):
  plain    codebook loss ||sg[z_e] - e||^2 + 0.25 ||z_e - sg[e]||^2, no maintenance
  ema      EMA codebook updates (decay 0.99, Laplace smoothing) instead of the codebook loss
  reseed   EMA + re-seeding dead codes (running usage share < 3 % of uniform) at encoder outputs
Codebooks start small (uniform +-1/K, as in the reference implementation), which is what lets
the plain quantiser collapse onto a few codes.

Reported per variant, on held-out images (eval mode): perplexity exp(H) of the code-usage
distribution (max = K), fraction of codes used at least once, reconstruction PSNR.

Writes into --out (default runs/train_vqvae_<dataset>): reconstructions.png (test images above
each variant's reconstructions), code_usage.png (per-variant histograms of code usage, codes
sorted by frequency), usage_table.md and .csv, <variant>_loss.png, summary.json.

Examples:
  python examples/train_vqvae.py --quick --json
  python examples/train_vqvae.py --dataset dsprites --epochs 5 --max-samples 20000
  python examples/train_vqvae.py --variants plain reseed --n-codes 512
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

VARIANTS = {
    "plain": dict(ema=False, reseed=False),
    "ema": dict(ema=True, reseed=False),
    "reseed": dict(ema=True, reseed=True),
}
DEFAULTS = {"mnist": dict(epochs=20, max_samples=None), "dsprites": dict(epochs=10, max_samples=50_000)}
QUICK = {"mnist": dict(epochs=3, max_samples=1500), "dsprites": dict(epochs=2, max_samples=1500)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("mnist", "dsprites"), default="mnist", help="data set (default: mnist)")
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS),
                   help="codebook schemes to train (default: all)")
    p.add_argument("--n-codes", type=int, default=128, help="codebook size K (default: 128)")
    p.add_argument("--code-dim", type=int, default=16, help="code vector length (default: 16)")
    p.add_argument("--hidden", type=int, default=64, help="conv channels (default: 64)")
    p.add_argument("--beta", type=float, default=0.25, help="commitment weight (default: 0.25)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 20 MNIST, 10 dSprites; --quick: 3 / 2)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--max-samples", type=int, default=None,
                   help="training images (default: all 4,500 MNIST / 50,000 dSprites; --quick: 1,500)")
    p.add_argument("--quick", action="store_true", help="small run: well under a minute per variant on 2 CPU cores")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=None, help="output directory (default: runs/train_vqvae_<dataset>)")
    p.add_argument("--json", action="store_true", help="print the headline numbers as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    return p


def load_data(args):
    if args.dataset == "mnist":
        from vae.data.mnist import load_mnist

        return load_mnist(split="train", max_samples=args.max_samples, seed=args.seed), load_mnist(split="test")
    from vae.data.dsprites import load_dsprites

    n_test = 500
    data = load_dsprites(max_samples=args.max_samples + n_test, seed=args.seed, cache=not args.quick)
    return data.subset(slice(n_test, None)), data.subset(slice(0, n_test))


def save_usage_plot(stats: dict, n_codes: int, path: Path) -> None:
    from vae.plots import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(stats), figsize=(4.2 * len(stats), 3.4), squeeze=False, sharey=True)
    for ax, (name, s) in zip(axes[0], stats.items()):
        counts = sorted(s["counts"], reverse=True)
        share = [c / max(sum(counts), 1) for c in counts]
        ax.bar(range(n_codes), share, width=1.0, color="tab:blue")
        ax.axhline(1.0 / n_codes, color="tab:red", ls="--", lw=1, label="uniform")
        ax.set_title(f"{name}: {s['usage']:.0%} of codes used\nperplexity {s['perplexity']:.1f} / {n_codes}", fontsize=10)
        ax.set_xlabel("code (sorted by usage)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of assignments (held-out)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    table = QUICK if args.quick else DEFAULTS
    args.epochs = args.epochs or table[args.dataset]["epochs"]
    args.max_samples = args.max_samples or table[args.dataset]["max_samples"]
    out = Path(args.out or f"runs/train_vqvae_{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    import torch

    from vae.device import resolve_device
    from vae.plots import save_image_grid, save_loss_curves
    from vae.train import fit
    from vae.vq import VQVAE, codebook_usage

    args.device = str(resolve_device(args.device))
    train, test = load_data(args)
    if args.dataset == "dsprites" and args.max_samples is None:
        args.max_samples = len(train)
    log(f"{args.dataset}: {len(train)} training / {len(test)} held-out images, {args.epochs} epochs, "
        f"K = {args.n_codes}, device {args.device}")
    results, stats, recons = {}, {}, {}
    for name in args.variants:
        torch.manual_seed(args.seed)  # the same initial weights for every variant
        model = VQVAE(train.image_shape, n_codes=args.n_codes, code_dim=args.code_dim, hidden=args.hidden,
                      beta=args.beta, **VARIANTS[name])
        t0 = time.perf_counter()
        history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                      seed=args.seed, progress=not args.no_progress, config={"variant": name})
        seconds = time.perf_counter() - t0
        s = codebook_usage(model, test.images)
        stats[name] = s
        with torch.no_grad():
            model.eval()
            recons[name] = model.reconstruct(test.images[:10].to(args.device)).cpu()
        save_loss_curves(history.rows, out / f"{name}_loss.png", keys=("recon", "commitment", "codebook", "perplexity"),
                         title=f"VQ-VAE ({name}) on {args.dataset}")
        history.to_csv(out / f"{name}_history.csv")
        results[name] = {"perplexity": s["perplexity"], "usage": s["usage"], "codes_used": int((s["counts"] > 0).sum()),
                         "psnr": s["psnr"], "mse": s["mse"], "reseeded_codes": int(model.quantizer.total_reseeded),
                         "train_seconds": seconds}
        log(f"{name:>7}: perplexity {s['perplexity']:6.1f} / {args.n_codes}, codes used {s['usage']:.0%}, "
            f"PSNR {s['psnr']:.2f} dB, re-seeded {results[name]['reseeded_codes']}, {seconds:.1f} s")

    save_image_grid([test.images[:10]] + [recons[n] for n in args.variants], out / "reconstructions.png",
                    row_labels=["test"] + [f"{n}\n{results[n]['psnr']:.1f} dB" for n in args.variants],
                    title=f"VQ-VAE on {args.dataset}: held-out images and reconstructions")
    save_usage_plot(stats, args.n_codes, out / "code_usage.png")
    header = "| variant | perplexity (of K = %d) | codes used | PSNR (dB) | codes re-seeded |\n|---|---|---|---|---|\n" % args.n_codes
    lines = [f"| {n} | {r['perplexity']:.1f} | {r['codes_used']} ({r['usage']:.0%}) | {r['psnr']:.2f} | {r['reseeded_codes']} |"
             for n, r in results.items()]
    (out / "usage_table.md").write_text(header + "\n".join(lines) + "\n")
    with open(out / "usage_table.csv", "w") as f:
        f.write("variant,perplexity,usage,codes_used,psnr,reseeded_codes\n")
        for n, r in results.items():
            f.write(f"{n},{r['perplexity']:.4f},{r['usage']:.4f},{r['codes_used']},{r['psnr']:.4f},{r['reseeded_codes']}\n")
    log(header + "\n".join(lines))
    summary = {"dataset": args.dataset, "device": args.device, "quick": args.quick, "seed": args.seed,
               "epochs": args.epochs, "n_train": len(train), "n_test": len(test), "n_codes": args.n_codes,
               "variants": results}
    with open(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    if args.json:
        print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
