"""Training: one ``fit`` loop for every model that exposes ``loss_terms(x) -> dict``.

Any ``nn.Module`` whose ``loss_terms(x)`` returns a dict of scalar tensors — per-batch *sums*, key
``"loss"`` required, others (``"recon"``, ``"kl"``, ``"commitment"``, ...) logged — trains with::

    >>> import torch
    >>> from vae.data import ImageDataset
    >>> class Toy(torch.nn.Module):          # squared error to a learned image
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.mu = torch.nn.Parameter(torch.zeros(1, 2, 2))
    ...     def loss_terms(self, x):
    ...         se = ((x - self.mu) ** 2).sum()
    ...         return {"loss": se, "se": se}
    >>> data = ImageDataset(torch.rand(64, 1, 2, 2))
    >>> history = fit(Toy(), data, epochs=3, batch_size=16, lr=0.1, progress=False)
    >>> [row["epoch"] for row in history.rows], sorted(history.final())
    ([1, 2, 3], ['epoch', 'seconds', 'train_loss', 'train_se', 'val_loss', 'val_se'])

For a :class:`vae.model.VAE`, ``loss_terms`` is Pyro's ELBO (``Trace_ELBO`` or, with analytic KL,
``TraceMeanField_ELBO``) read from one guide trace and the model replayed on it, so ``fit`` trains
exactly what ``pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam(...), vae.pyro_elbo())`` trains;
plain Pyro users can run that SVI loop themselves. ``fit`` uses ``torch.optim.Adam`` over
``model.parameters()`` — the same ``nn.Parameter`` objects ``pyro.module(name, vae)`` registers in
Pyro's param store. ``pyro.module`` registers *every* parameter of the module tree, the prior's
included (VampPrior pseudo-inputs, MoG weights/means/scales), so the plain SVI loop trains them too.

What ``fit`` does, in order:

* splits ``data`` with ``ImageDataset.split(val_fraction, seed)``;
* seeds torch, numpy, ``random`` and Pyro (``pyro.set_rng_seed``) and a private ``torch.Generator``
  for the batch permutation;
* keeps the images on the device when they fit (``keep_on_device=None``: under half the free GPU
  memory; exact ``k/255`` images are stored as uint8 there), else pins them in host memory and
  copies each batch asynchronously;
* calls ``loss_terms`` once on a small batch (eval mode, no gradient) before building the optimiser,
  so lazily created parameters exist and a malformed ``loss_terms`` fails early and clearly;
* refuses a model with BatchNorm when a training batch would hold a single image;
* minimises ``loss / batch_size`` with Adam; loss terms are accumulated *on the device* and read
  (one host synchronisation) every ``check_every`` steps and at the end of each epoch;
* after each epoch's training steps (before validation and the checkpoint) re-estimates BatchNorm
  running statistics with :func:`recalibrate_batchnorm` (models with BatchNorm only; a few no-grad
  passes over training batches, with its own seeded RNG: training itself is unchanged). Keras's
  momentum 0.99 (torch 0.01) leaves the running statistics near their initial values after short
  runs, so eval-mode outputs would otherwise be far from the train-mode ones;
* stops with :class:`TrainingDiverged` as soon as a loss or a parameter is NaN/Inf — the checkpoint
  on disk keeps the last good epoch, it is never overwritten with non-finite parameters;
* writes the checkpoint atomically (temporary file + ``os.replace``) after each epoch: model and
  optimiser state, history, epoch, every RNG state, configuration. ``resume=True`` continues from it
  and reproduces an uninterrupted run bit for bit on CPU. It refuses (``ValueError`` listing the
  differences) a checkpoint whose configuration — split, seed, batch size, loss terms, learning
  rate, model class, data, transform and every ``config`` entry — differs from this run's (only
  ``epochs`` may change), or whose parameters do not fit the model;
* on Ctrl-C raises :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) after the last completed
  epoch's checkpoint is on disk.

History rows hold per-image means: ``train_<k>`` is the sum of the batch values of term ``k`` over
the epoch divided by the number of training images (as Keras reports it, while the parameters move),
``val_<k>`` the same over the validation images after the epoch, in eval mode without gradients.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from vae.atomic import atomic_file
from vae.data.dataset import ImageDataset
from vae.device import resolve_device
from vae.modes import eval_mode
from vae.staging import DeviceImages, stage_views

__all__ = [
    "fit",
    "History",
    "TrainingDiverged",
    "TrainingInterrupted",
    "save_checkpoint",
    "load_checkpoint",
    "restore_model",
    "recalibrate_batchnorm",
    "has_batchnorm",
]

CHECKPOINT_FORMAT = 1
# Entries that may change on resume (everything else in the stored configuration must match).
_RESUME_FREE = ("epochs",)


class TrainingDiverged(RuntimeError):
    """A loss term or a parameter became NaN/Inf. ``epoch``/``step`` locate it; ``checkpoint`` is the
    file that still holds ``last_good_epoch`` (``None`` when no checkpoint was written); ``history``
    holds the completed epochs."""

    def __init__(self, message: str, *, epoch: int, step: int | None, checkpoint: Path | None,
                 last_good_epoch: int | None, history: "History") -> None:
        super().__init__(message)
        self.epoch, self.step = epoch, step
        self.checkpoint, self.last_good_epoch = checkpoint, last_good_epoch
        self.history = history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`; ``checkpoint`` holds epoch ``last_epoch`` (resume with
    ``resume=True``), ``history`` the completed epochs."""

    def __init__(self, message: str, *, last_epoch: int, checkpoint: Path | None, history: "History") -> None:
        super().__init__(message)
        self.last_epoch, self.checkpoint, self.history = last_epoch, checkpoint, history


# ---------------------------------------------------------------------------------------- history
@dataclass
class History:
    """Per-epoch training record. ``rows``: ``{"epoch", "train_<k>", "val_<k>", "seconds"}`` with
    per-image means; ``meta``: device, sizes and settings of the run."""

    rows: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def keys(self) -> list[str]:
        """Loss-term names (``loss``, ``recon``, ``kl``, ...) in logging order."""
        seen: list[str] = []
        for row in self.rows:
            for col in row:
                if col.startswith("train_") and col[6:] not in seen:
                    seen.append(col[6:])
        return seen

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols += [c for c in row if c not in cols]
        return cols

    def column(self, name: str) -> list[float]:
        """One column over the epochs (``NaN`` where a row lacks it), e.g. ``column("val_loss")``."""
        if not any(name in row for row in self.rows):
            raise KeyError(f"no column {name!r}; columns: {self.columns}")
        return [row.get(name, math.nan) for row in self.rows]

    def final(self) -> dict[str, float]:
        """The last epoch's row (a copy); ``{}`` before any epoch completed."""
        return dict(self.rows[-1]) if self.rows else {}

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = self.columns
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=cols, restval="")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        return path

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            json.dump({"meta": _jsonable(self.meta), "rows": _jsonable(self.rows)}, f, indent=2)
            f.write("\n")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> "History":
        with open(path) as f:
            obj = json.load(f)
        return cls(rows=list(obj["rows"]), meta=dict(obj.get("meta", {})))


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


# ------------------------------------------------------------------------------------ checkpoints
def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """``torch.save(state)`` atomically: written to a temporary file in the same directory, flushed
    to disk, then ``os.replace``-d over ``path``. A crash or Ctrl-C mid-write leaves the previous file
    intact and no temporary file behind."""
    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(dict(state), f)
        f.flush()
        os.fsync(f.fileno())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``weights_only=True``: tensors and plain Python data
    only). Keys: ``format``, ``epoch``, ``model``, ``optimizer``, ``history``, ``rng``, ``config``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): delete it and start again, or restore a copy")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as err:  # truncated zip, random bytes, a disallowed pickle global, ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"checkpoint {path} is unreadable (truncated or corrupt?): {type(err).__name__}: {first}. "
                         "Delete it and start again, or restore a copy") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a vae.train checkpoint (format {CHECKPOINT_FORMAT})")
    _check_checkpoint(state, path)
    return state


_CHECKPOINT_KEYS = {"epoch": int, "model": Mapping, "optimizer": Mapping, "history": list, "rng": Mapping,
                    "config": Mapping}


def _non_finite(obj: Any, where: str, out: list[str], depth: int = 0) -> None:
    """Append to ``out`` the places in ``obj`` (tensors, floats, nested dicts/lists) holding NaN/Inf."""
    if len(out) >= 6 or depth > 20:
        return
    if torch.is_tensor(obj):
        if (obj.is_floating_point() or obj.is_complex()) and obj.numel() and not bool(torch.isfinite(obj).all()):
            out.append(where)
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            out.append(where)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _non_finite(v, f"{where}.{k}" if where else str(k), out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _non_finite(v, f"{where}[{i}]", out, depth + 1)


def _check_checkpoint(state: Mapping[str, Any], path: Path) -> None:
    """``ValueError`` naming the file and the problem: a missing or mistyped entry, or NaN/Inf in the
    model or optimiser state (``fit`` never saves those: the file was damaged or written elsewhere)."""
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint {path} is incomplete: missing {', '.join(missing)} (a vae.train checkpoint "
                         f"holds {', '.join(['format', *_CHECKPOINT_KEYS])})")
    wrong = [f"{k} is {type(state[k]).__name__}, not {t.__name__}" for k, t in _CHECKPOINT_KEYS.items()
             if not isinstance(state[k], t) or (t is int and isinstance(state[k], bool))]
    wrong += [f"model.{k} is {type(v).__name__}, not a tensor" for k, v in state.get("model", {}).items()
              if not torch.is_tensor(v)][:3] if isinstance(state.get("model"), Mapping) else []
    if not wrong and state["epoch"] < 0:
        wrong.append(f"epoch is {state['epoch']}")
    if not wrong and not all(k in state["optimizer"] for k in ("state", "param_groups")):
        wrong.append("optimizer lacks state/param_groups")
    if wrong:
        raise ValueError(f"checkpoint {path} is malformed: " + "; ".join(wrong))
    bad: list[str] = []
    _non_finite(state["model"], "model", bad)
    _non_finite(state["optimizer"], "optimizer", bad)
    if bad:
        raise ValueError(f"checkpoint {path} holds NaN/Inf values in {', '.join(bad)}: a run cannot continue from "
                         "it (fit never saves non-finite state, so the file was damaged or written elsewhere). "
                         "Delete it and start again, or restore a copy")


def restore_model(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a :func:`fit` checkpoint's parameters into ``model`` (any device); returns the checkpoint.
    A checkpoint of another architecture raises ``ValueError`` naming the mismatching entries."""
    state = load_checkpoint(path)
    _load_model_state(model, state["model"], path)
    return state


def _state_mismatch(model: nn.Module, saved: Mapping[str, Tensor]) -> list[str]:
    """Human-readable differences between ``model.state_dict()`` and ``saved`` (empty: they fit)."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in saved]
    problems += [f"unexpected {k}" for k in saved if k not in own]
    problems += [f"{k}: shape {tuple(saved[k].shape)} in the checkpoint, {tuple(v.shape)} in the model"
                 for k, v in own.items() if k in saved and tuple(saved[k].shape) != tuple(v.shape)]
    return problems


def _load_model_state(model: nn.Module, saved: Mapping[str, Tensor], path) -> None:
    problems = _state_mismatch(model, saved)
    if problems:
        more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
        raise ValueError(f"checkpoint {path} does not fit this {type(model).__name__} (another architecture, "
                         f"latent size, prior or number of components?): " + "; ".join(problems[:6]) + more)
    model.load_state_dict(saved)


def _rng_state(perm_gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
        "permutation": perm_gen.get_state(),
    }


def _set_rng_state(state: Mapping[str, Any], perm_gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state["cuda"]:
        # only the device in use (older checkpoints stored every GPU's state: take the matching one)
        saved = state["cuda"]
        index = device.index if device.index is not None else torch.cuda.current_device()
        own = saved[0] if len(saved) == 1 else saved[min(index, len(saved) - 1)]
        torch.cuda.set_rng_state(own.cpu(), device)
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    perm_gen.set_state(state["permutation"].cpu())


# ----------------------------------------------------------------------------------------- data
def _batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) batches; a trailing batch of one image joins the previous batch
    (BatchNorm cannot train on a single image)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


# -------------------------------------------------------------------------------------- batchnorm
_BatchNorm = nn.modules.batchnorm._BatchNorm


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` contains a BatchNorm layer that keeps running statistics."""
    return any(isinstance(m, _BatchNorm) and m.track_running_stats for m in model.modules())


def _single_batch_error(what: str) -> ValueError:
    return ValueError(f"BatchNorm needs batches of at least 2 images; {what} (use batch_size >= 2 and at "
                      "least 2 training images, or a model without BatchNorm)")


def _default_forward(model: nn.Module) -> Callable[[Tensor], Any]:
    terms = getattr(model, "loss_terms", None)
    return terms if callable(terms) else model


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    images: Tensor | ImageDataset,
    transform: Callable[[Tensor], Tensor] | None = None,
    n_batches: int = 10,
    batch_size: int = 256,
    seed: int = 0,
    forward: Callable[[Tensor], Any] | None = None,
) -> int:
    """Re-estimate every BatchNorm layer's running mean/variance from ``images``.

    Runs ``forward(x)`` (default: ``model.loss_terms`` if present, else ``model``) without gradients
    on up to ``n_batches`` batches of ``batch_size`` images drawn (seeded permutation) from
    ``images``, with the BatchNorm layers in train mode and every other layer in eval mode (no
    Dropout), each BatchNorm's running statistics reset and its ``momentum`` set to ``None``
    (cumulative average over the batches). Afterwards momenta and train/eval modes are restored and
    torch's global RNG is as before (the passes use a forked RNG seeded with ``seed``). Returns the
    number of images used; 0 (and nothing touched) when the model has no BatchNorm.

    After it, eval-mode BatchNorm layers normalise with the statistics the data actually has at
    their inputs — what a long run's exponential average converges to.
    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return 0
    if isinstance(images, ImageDataset):
        images = stage_views([images], _module_device(model, images.storage))[0]
    data = images
    n_batches = _check_int("n_batches", n_batches, 1)
    batch_size = _check_int("batch_size", batch_size, 2)
    if isinstance(data, DeviceImages):
        total, dev = data.n, data.device
        take = lambda idx: data.batch(idx.to(data.index_device))  # noqa: E731
    else:
        total, dev = len(data), _module_device(model, data)
        take = lambda idx: data[idx.to(data.device)].to(dev)  # noqa: E731
    if total < 2:
        raise _single_batch_error(f"recalibration got {total} image(s)")
    n = min(total, n_batches * batch_size)
    index = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
    forward = forward or _default_forward(model)
    momenta = [(m, m.momentum) for m in layers]
    with eval_mode(model):  # BatchNorm layers alone in train mode; every mode restored afterwards
        try:
            for m in layers:
                m.reset_running_stats()
                m.momentum = None
                m.train()
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                _seed_device(seed, dev)
                for s, e in _batch_bounds(n, batch_size):
                    x = take(index[s:e])
                    forward(transform(x) if transform is not None else x)
        finally:
            for m, momentum in momenta:
                m.momentum = momentum
    return n


def _seed_device(seed: int, device: torch.device) -> None:
    """Seed torch's CPU generator and (only) ``device``'s CUDA generator."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _module_device(model: nn.Module, data: Tensor) -> torch.device:
    p = next(model.parameters(), None)
    return data.device if p is None else p.device


# ----------------------------------------------------------------------------------------- checks
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_terms(terms, who: str) -> list[str]:
    if not isinstance(terms, Mapping):
        raise ValueError(f"{who}.loss_terms(x) must return a dict of scalar tensors; got {type(terms).__name__}")
    if "loss" not in terms:
        raise ValueError(f"{who}.loss_terms(x) must return a dict with key 'loss'; got keys {sorted(terms)}")
    keys = ["loss"] + [k for k in terms if k != "loss"]
    for k in keys:
        v = terms[k]
        if not torch.is_tensor(v) or v.numel() != 1:
            raise ValueError(f"{who}.loss_terms(x)[{k!r}] must be a scalar tensor (a per-batch sum); got "
                             f"{type(v).__name__}{tuple(v.shape) if torch.is_tensor(v) else ''}")
    if not terms["loss"].requires_grad:
        raise ValueError(f"{who}.loss_terms(x)['loss'] does not depend on any trainable parameter")
    return keys


def _accumulate(terms: Mapping[str, Tensor], keys: list[str], dtype: torch.dtype) -> Tensor:
    return torch.stack([terms[k].detach().reshape(()).to(dtype) for k in keys])


def _all_finite(params: list[Tensor]) -> Tensor:
    return torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()


# ------------------------------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    data: ImageDataset | Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    val_fraction: float = 0.05,
    device: str | torch.device | None = None,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    transform: Callable[[Tensor], Tensor] | None = None,
    optimizer: torch.optim.Optimizer | Callable[[list[Tensor]], torch.optim.Optimizer] | None = None,
    grad_clip: float | None = None,
    check_every: int = 100,
    keep_on_device: bool | None = None,
    val_batch_size: int | None = None,
    config: Mapping[str, Any] | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    bn_recalibration: int = 10,
    epoch_size: int | None = None,
    autocast: str | None = None,
    compile: bool = False,
    checkpoint_every: int = 1,
    objective=None,
    early_stopping: int | None = None,
    restore_best: bool = True,
) -> History:
    """Train ``model`` (any ``nn.Module`` with ``loss_terms(x) -> dict``) on ``data``.

    Args:
        model: ``loss_terms(x)`` returns per-batch sums (scalar tensors); ``"loss"`` is minimised
            (divided by the batch size), every key is logged.
        data: an :class:`ImageDataset` (or an (N, C, H, W) tensor).
        epochs: total number of epochs (with ``resume``, the run continues up to this epoch).
        batch_size: images per optimisation step.
        lr: Adam learning rate (ignored when ``optimizer`` is given).
        val_fraction: share of ``data`` held out for validation (``0``: no validation columns).
        device: ``None``/``"auto"`` (cuda when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        seed: seeds the split, torch/numpy/random/Pyro and the batch permutation.
        checkpoint: path of the checkpoint file, rewritten atomically after each epoch.
        resume: continue from ``checkpoint`` (which must exist and match this run's configuration —
            batch size, seed, split, lr, model, data, transform, ``config`` — except ``epochs``).
        progress: a tqdm bar per epoch (postfix: running train loss, then validation loss).
        transform: ``transform(x) -> x`` applied on the device to every batch, training and
            validation (e.g. ``vae.data.mnist.dynamic_binarize``).
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters, or a factory
            ``optimizer(params) -> Optimizer``; default ``torch.optim.Adam(params, lr)``.
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        check_every: read the accumulated losses (one host sync) every this many steps to catch
            NaN/Inf early and refresh the progress bar; ``0``: only at the end of each epoch.
        keep_on_device: keep the images on the GPU (``None``: when they use under half its free memory).
        val_batch_size: batch size for validation (default ``batch_size``).
        config: extra JSON-able entries stored in the checkpoint and ``History.meta``.
        on_epoch_end: ``on_epoch_end(epoch, row)`` after each epoch (and its checkpoint).
        bn_recalibration: batches (of ``batch_size`` training images) for
            :func:`recalibrate_batchnorm` after each epoch's training steps, for models with
            BatchNorm; ``0`` keeps the exponential running averages as they are.
        epoch_size: training images per epoch (``None``: the whole training set). Smaller values
            make an "epoch" a slice of one continuing stream of seeded permutations (permutation
            ``p`` of the training set is ``randperm`` under seed ``seed·1000003 + p + 1``), so a long
            run over a large data set is validated, checkpointed and resumable every
            ``epoch_size`` images while still visiting each image once per pass.
        autocast: ``"bf16"`` runs the forward pass under ``torch.autocast`` in bfloat16 (GPU tensor
            cores; the losses themselves are summed in float32 — ``VAE.loss_terms`` casts the
            network outputs up before the likelihood and the KL); ``None``: float32 throughout.
        compile: ``model.compile()`` before training (``nn.Module.compile`` keeps the state-dict
            keys, so checkpoints and resume are unchanged). Worth it on a GPU; on a 2-core CPU the
            compile time exceeds what short runs gain.
        objective: a :class:`vae.objectives.Objective` (β-VAE ELBO, annealed capacity, β-TCVAE,
            FactorVAE, DIP-VAE, IWAE, ...) whose ``loss_terms(model, x, ctx)`` is minimised instead of
            ``model.loss_terms(x)``; ``ctx`` carries the training-set size, the global step and the
            epoch. Its configuration and state (e.g. FactorVAE's discriminator and its optimiser)
            are saved in the checkpoint and restored on resume.
        early_stopping: stop when the validation loss has not improved for this many epochs
            (``None``: never); with ``restore_best`` the model ends with the best epoch's weights
            (``History.meta["best_epoch"]``), kept in the checkpoint so that resume knows them.
        restore_best: see ``early_stopping``.
        checkpoint_every: write the checkpoint every this many epochs (and always after the last);
            large values spare a fast GPU run the per-epoch host work of an fsync'd checkpoint.

    Returns:
        a :class:`History` (also stored in the checkpoint).

    Raises:
        ValueError: bad arguments, empty data, a model without a proper ``loss_terms``, a checkpoint
            that does not match on ``resume``.
        TrainingDiverged: a loss or parameter became NaN/Inf (the checkpoint keeps the last good epoch).
        TrainingInterrupted: Ctrl-C (a ``KeyboardInterrupt``); the checkpoint holds the last
            completed epoch.
    """
    import pyro
    from tqdm.auto import tqdm

    # ---- arguments
    who = type(model).__name__
    if not isinstance(model, nn.Module) or not callable(getattr(model, "loss_terms", None)):
        raise ValueError(f"model must be an nn.Module with a loss_terms(x) -> dict method "
                         f"(per-batch sums, key 'loss'); {who} has none")
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    check_every = _check_int("check_every", check_every, 0)
    seed = _check_int("seed", seed, 0)
    val_batch_size = batch_size if val_batch_size is None else _check_int("val_batch_size", val_batch_size, 1)
    if optimizer is None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0; got {lr!r}")
    if grad_clip is not None and not (grad_clip > 0):
        raise ValueError(f"grad_clip must be > 0 or None; got {grad_clip!r}")
    bn_recalibration = _check_int("bn_recalibration", bn_recalibration, 0)
    if epoch_size is not None:
        epoch_size = _check_int("epoch_size", epoch_size, 1)
    checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1)
    if early_stopping is not None:
        early_stopping = _check_int("early_stopping", early_stopping, 1)
        if not val_fraction:
            raise ValueError("early_stopping needs a validation split (val_fraction > 0)")
    if objective is not None and not callable(getattr(objective, "loss_terms", None)):
        raise ValueError(f"objective must have loss_terms(model, x, ctx); got {type(objective).__name__}")
    if autocast not in (None, "bf16"):
        raise ValueError(f"autocast must be None or 'bf16'; got {autocast!r}")
    if torch.is_tensor(data):
        data = ImageDataset(data)
    if not isinstance(data, ImageDataset):
        raise ValueError(f"data must be an ImageDataset or an (N, C, H, W) tensor; got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data is empty: no images to train on")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH")
    checkpoint = None if checkpoint is None else Path(checkpoint)
    if resume and not checkpoint.is_file():
        raise FileNotFoundError(f"resume=True, but there is no checkpoint at {checkpoint}")
    train_set, val_set = data.split(val_fraction, seed)
    if len(train_set) == 0:
        raise ValueError(f"val_fraction={val_fraction} leaves no training images out of {len(data)}")
    dev = resolve_device(device)
    uses_bn = has_batchnorm(model)
    if uses_bn and min(batch_size, len(train_set)) < 2:
        raise _single_batch_error(f"got batch_size={batch_size} and {len(train_set)} training image(s)")

    # ---- state: seeds, data on the device, parameters, optimiser
    pyro.set_rng_seed(seed)  # torch (CPU and CUDA), numpy, random
    perm_gen = torch.Generator().manual_seed(seed)
    model.to(dev)
    train_imgs, val_imgs = stage_views([train_set, val_set], dev, keep_on_device)
    if not len(val_set):
        val_imgs = None
    from vae.objectives import Context

    clock = {"step": 0, "epoch": 0}
    if objective is not None:
        objective.to(dev)

        def forward(x: Tensor, training: bool = False) -> dict:
            return objective.loss_terms(model, x, Context(dataset_size=len(train_set), step=clock["step"],
                                                          epoch=clock["epoch"], training=training))
    else:
        def forward(x: Tensor, training: bool = False) -> dict:
            return model.loss_terms(x)
    keys = _probe(model, train_imgs, transform, who, forward)
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    elif optimizer is not None:
        opt = optimizer(params)
    else:
        if not params:
            raise ValueError(f"{who} has no trainable parameters")
        opt = torch.optim.Adam(params, lr=lr, fused=dev.type == "cuda")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if compile:
        model.compile()

    def amp():
        return torch.autocast(dev.type, dtype=torch.bfloat16) if autocast == "bf16" else contextlib.nullcontext()

    acc_dtype = torch.float64 if dev.type in ("cpu", "cuda") else torch.float32

    run_config = {
        "batch_size": batch_size, "seed": seed, "val_fraction": float(val_fraction),
        "n_train": len(train_set), "n_val": len(val_set), "loss_keys": keys, "epochs": epochs,
        "lr": float(lr), "model": who, "data": data.name, "transform": _callable_name(transform),
        **({"epoch_size": epoch_size} if epoch_size is not None else {}),
        **({"objective": objective.config()} if objective is not None and hasattr(objective, "config") else {}),
        **({"early_stopping": early_stopping} if early_stopping is not None else {}),
        **dict(config or {}),
    }
    history = History(meta={**run_config, "device": str(dev),
                            "data_on_device": train_imgs.on_device, "torch": torch.__version__,
                            "pyro": pyro.__version__})
    start = 0
    best: dict[str, Any] = {}
    if resume:
        state = load_checkpoint(checkpoint)
        _check_resume_config(state["config"], _jsonable(run_config), checkpoint, compare_lr=optimizer is None)
        _load_model_state(model, state["model"], checkpoint)
        try:
            opt.load_state_dict(state["optimizer"])
        except (ValueError, RuntimeError, KeyError, TypeError, IndexError) as err:
            raise ValueError(f"checkpoint {checkpoint}: the saved optimiser state does not fit this optimiser "
                             f"({str(err).splitlines()[0]})") from None
        history.rows = [dict(r) for r in state["history"]]
        start = int(state["epoch"])
        if objective is not None and "objective" in state:
            objective.load_state_dict(state["objective"])
        best = state.get("best") or best
        try:
            _set_rng_state(state["rng"], perm_gen, dev)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
            raise ValueError(f"checkpoint {checkpoint}: the saved random-number state is malformed "
                             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
        bad: list[str] = []
        _non_finite({n: p for n, p in model.named_parameters()}, "model", bad)
        _non_finite(opt.state_dict(), "optimizer", bad)
        if bad:  # the loaded state itself (e.g. an optimiser given by the caller)
            raise ValueError(f"checkpoint {checkpoint}: resumed state holds NaN/Inf in {', '.join(bad)}")
    last_saved = start if (resume and checkpoint is not None) else None
    if resume and best.get("stopped"):
        start = epochs  # an early-stopped run is finished

    def diverged(epoch: int, step: int | None, what: str) -> TrainingDiverged:
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        if last_saved is not None:
            kept = f"checkpoint {checkpoint} still holds epoch {last_saved} (finite parameters)"
        elif checkpoint is not None:
            kept = f"no checkpoint was written in this run ({checkpoint} untouched)"
        else:
            kept = "no checkpoint path was given"
        return TrainingDiverged(
            f"training diverged at {where}: {what} is NaN/Inf; {kept}. Try a lower learning rate "
            f"(lr={lr}), grad_clip=..., or check the data and the model's loss_terms.",
            epoch=epoch, step=step, checkpoint=checkpoint if last_saved is not None else None,
            last_good_epoch=last_saved, history=history)

    bounds = _batch_bounds(epoch_size or len(train_set), batch_size)
    epoch = start
    try:
        for epoch in range(start + 1, epochs + 1):
            t0 = time.perf_counter()
            bar = tqdm(total=len(bounds), desc=f"epoch {epoch}/{epochs}", unit="batch",
                       disable=not progress, leave=True, dynamic_ncols=True)
            # -- training
            model.train()
            if epoch_size is None:
                index = torch.randperm(len(train_set), generator=perm_gen)
            else:
                index = _stream_positions(epoch, len(train_set), epoch_size, seed)
            index = index.to(train_imgs.index_device)
            sums = torch.zeros(len(keys), dtype=acc_dtype, device=dev)
            seen = 0
            clock["epoch"] = epoch
            for step, (s, e) in enumerate(bounds, start=1):
                clock["step"] = (epoch - 1) * len(bounds) + step - 1
                x = train_imgs.batch(index[s:e])
                if transform is not None:
                    x = transform(x)
                with amp():
                    terms = forward(x, True)
                opt.zero_grad(set_to_none=True)
                (terms["loss"] / (e - s)).backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                sums += _accumulate(terms, keys, acc_dtype)
                seen += e - s
                bar.update(1)
                if check_every and step % check_every == 0 and step < len(bounds):
                    host = sums.cpu()
                    if not torch.isfinite(host).all():
                        bad = [k for k, v in zip(keys, host.tolist()) if not math.isfinite(v)]
                        raise diverged(epoch, step, "training " + ", ".join(bad))
                    bar.set_postfix(loss=f"{host[0].item() / seen:.4g}")
            if uses_bn and bn_recalibration:
                recalibrate_batchnorm(model, train_imgs, transform, bn_recalibration, batch_size, forward=forward,
                                      seed=seed * 1_000_003 + epoch)
            # -- validation
            val_sums = (_evaluate(model, val_imgs, transform, keys, val_batch_size, acc_dtype, forward)
                        if val_imgs else None)
            finite_params = _all_finite(params)
            # -- one host synchronisation for the epoch
            host = torch.cat([sums, val_sums if val_sums is not None else sums[:0]]).cpu()
            params_ok = bool(finite_params.cpu())
            seconds = time.perf_counter() - t0
            values = host.tolist()
            train_means = {k: v / seen for k, v in zip(keys, values[:len(keys)])}
            val_means = {k: v / len(val_set) for k, v in zip(keys, values[len(keys):])}
            bad = [f"training {k}" for k, v in train_means.items() if not math.isfinite(v)]
            bad += [f"validation {k}" for k, v in val_means.items() if not math.isfinite(v)]
            if not params_ok:
                bad.append("a parameter")
            if bad:
                bar.close()
                raise diverged(epoch, None, ", ".join(bad))
            row: dict[str, float] = {"epoch": epoch}
            row.update({f"train_{k}": v for k, v in train_means.items()})
            row.update({f"val_{k}": v for k, v in val_means.items()})
            row["seconds"] = seconds
            history.rows.append(row)
            post = {"loss": f"{train_means['loss']:.4g}"}
            if val_means:
                post["val_loss"] = f"{val_means['loss']:.4g}"
            bar.set_postfix(post)
            bar.close()
            stop = False
            if early_stopping is not None:
                if not best.get("model") or val_means["loss"] < best["val_loss"]:
                    best = {"epoch": epoch, "val_loss": val_means["loss"],
                            "model": {k: t.detach().to("cpu", copy=True) for k, t in model.state_dict().items()}}
                elif epoch - best["epoch"] >= early_stopping:
                    stop, best["stopped"] = True, epoch
            if checkpoint is not None and (stop or epoch % checkpoint_every == 0 or epoch == epochs):
                save_checkpoint({
                    "format": CHECKPOINT_FORMAT, "epoch": epoch, "model": model.state_dict(),
                    "optimizer": opt.state_dict(), "history": history.rows,
                    "rng": _rng_state(perm_gen, dev), "config": _jsonable(run_config),
                    **({"objective": objective.state_dict()} if objective is not None else {}),
                    **({"best": best} if best else {}),
                }, checkpoint)
                last_saved = epoch
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
            if stop:
                break
    except KeyboardInterrupt as err:
        if isinstance(err, TrainingInterrupted):
            raise
        done = len(history.rows) and history.rows[-1]["epoch"]
        kept = (f"checkpoint {checkpoint} holds epoch {last_saved}; continue with resume=True"
                if last_saved is not None else "no checkpoint written")
        raise TrainingInterrupted(f"training interrupted during epoch {epoch} after {done} completed "
                                  f"epoch(s); {kept}", last_epoch=int(done), checkpoint=checkpoint
                                  if last_saved is not None else None, history=history) from None
    if best.get("model"):
        history.meta["best_epoch"] = best["epoch"]
        history.meta["stopped_early_at"] = best.get("stopped")
        if restore_best:
            model.load_state_dict(best["model"])
    return history


def _stream_positions(epoch: int, n: int, epoch_size: int, seed: int) -> Tensor:
    """Training positions of ``epoch`` (1-based) when epochs are ``epoch_size``-image slices of a
    stream of permutations of ``range(n)``; permutation ``p`` is seeded with ``seed·1000003 + p + 1``."""
    start = (epoch - 1) * epoch_size
    parts, need = [], epoch_size
    while need:
        p, off = divmod(start, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + p + 1))
        take = perm[off:off + need]
        parts.append(take)
        need -= len(take)
        start += len(take)
    return torch.cat(parts)


def _callable_name(fn) -> str:
    """A stable name for a transform (no memory addresses): ``__qualname__`` or the type's name."""
    if fn is None:
        return "None"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _check_resume_config(saved: Mapping[str, Any], now: Mapping[str, Any], path, compare_lr: bool) -> None:
    """``ValueError`` listing every setting (other than ``epochs``) that differs from the checkpoint's."""
    skip = set(_RESUME_FREE) | (set() if compare_lr else {"lr"})
    keys = [k for k in now if k not in skip]  # keys only older checkpoints stored are not compared
    diffs = [f"{k}={saved.get(k, '<absent>')!r} in the checkpoint, {now.get(k, '<absent>')!r} now"
             for k in keys if saved.get(k, "<absent>") != now.get(k, "<absent>")]
    if diffs:
        raise ValueError(f"checkpoint {path} was written with other settings: " + "; ".join(diffs)
                         + ". Resume with the checkpoint's settings (only the number of epochs may change), "
                         "or start a new run in another output directory")


def _probe(model: nn.Module, images: DeviceImages, transform, who: str, forward=None) -> list[str]:
    """One ``loss_terms`` call on a small batch (eval mode, gradients on but not applied): creates
    lazy parameters, checks the returned dict. Does not touch BatchNorm statistics."""
    n = min(images.n, 8)
    x = images.batch(torch.arange(n, device=images.index_device))
    if transform is not None:
        x = transform(x)
    with eval_mode(model):
        terms = (forward or model.loss_terms)(x)
        keys = _check_terms(terms, who)
    del terms
    return keys


@torch.inference_mode()
def _evaluate(model: nn.Module, images: DeviceImages, transform, keys: list[str], batch_size: int,
              dtype: torch.dtype, forward=None) -> Tensor:
    model.eval()
    sums = torch.zeros(len(keys), dtype=dtype, device=images.device)
    index = torch.arange(images.n, device=images.index_device)
    for s in range(0, images.n, batch_size):
        x = images.batch(index[s:s + batch_size])
        if transform is not None:
            x = transform(x)
        sums += _accumulate((forward or model.loss_terms)(x), keys, dtype)
    model.train()
    return sums
