"""The training loop: ``fit`` for every model with ``loss_terms(x)`` or any objective.

:class:`_Run` holds one run's state (data staged on the device, loss function, optimiser, history,
checkpoint, distributed rank) and its steps — set-up, resume, one training epoch, validation, the
epoch's record and checkpoint — so that :func:`fit` reads as the loop it is.
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from vae.data.dataset import ImageDataset
from vae.device import resolve_device
from vae.modes import eval_mode
from vae.staging import DeviceImages, stage_views
from vae.training import distributed as dd
from vae.training.batches import accumulate, all_finite, batch_bounds, check_int, check_terms, stream_positions
from vae.training.batchnorm import _single_batch_error, has_batchnorm, recalibrate_batchnorm
from vae.training.checkpoints import (CHECKPOINT_FORMAT, _callable_name, _check_resume_config, _load_model_state,
                                      _non_finite, _rng_state, _set_rng_state, load_checkpoint, save_checkpoint)
from vae.training.errors import TrainingDiverged, TrainingInterrupted
from vae.training.history import History, jsonable

__all__ = ["fit"]


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
    early_stopping_start: int = 0,
    restore_best: bool = True,
    val_seed: int | None = None,
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
        early_stopping_start: epochs not compared for early stopping (the best epoch is sought
            after it): the length of a warm-up, while a scheduled weight still changes the loss.
        restore_best: see ``early_stopping``.
        val_seed: validate every epoch on the same random numbers, drawn from this seed (a random
            ``transform``, the model's sampling), without touching the training stream: epochs are
            then compared on equal terms, as early stopping wants. ``None``: validation draws from
            the training stream (what runs recorded before this option did).
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
    from tqdm.auto import tqdm

    run = _Run(model, data, dict(locals()))
    o = run.opts
    epoch = run.start
    try:
        for epoch in range(run.start + 1, o["epochs"] + 1):
            t0 = time.perf_counter()
            bar = tqdm(total=len(run.bounds), desc=f"epoch {epoch}/{o['epochs']}", unit="batch",
                       disable=not (o["progress"] and run.dist.main), leave=True, dynamic_ncols=True)
            sums, seen = run.train_epoch(epoch, bar)
            if run.uses_bn and o["bn_recalibration"]:
                recalibrate_batchnorm(model, run.train_imgs, o["transform"], o["bn_recalibration"], o["batch_size"],
                                      forward=run.loss, seed=o["seed"] * 1_000_003 + epoch)
            val_sums = run.validate()
            row = run.record(epoch, sums, seen, val_sums, time.perf_counter() - t0, bar)
            stop = run.early_stop(epoch, row)
            if run.checkpoint is not None and (stop or epoch % o["checkpoint_every"] == 0 or epoch == o["epochs"]):
                run.save(epoch)
            if on_epoch_end is not None and run.dist.main:
                on_epoch_end(epoch, row)
            if stop:
                break
    except KeyboardInterrupt as err:
        if isinstance(err, TrainingInterrupted):
            raise
        done = len(run.history.rows) and run.history.rows[-1]["epoch"]
        kept = (f"checkpoint {run.checkpoint} holds epoch {run.last_saved}; continue with resume=True"
                if run.last_saved is not None else "no checkpoint written")
        raise TrainingInterrupted(f"training interrupted during epoch {epoch} after {done} completed epoch(s); {kept}",
                                  last_epoch=int(done), checkpoint=run.checkpoint if run.last_saved is not None else None,
                                  history=run.history) from None
    dd.barrier(run.dist)
    return run.finish()


class _Run:
    """One training run's state and steps (see :func:`fit`)."""

    def __init__(self, model: nn.Module, data, opts: dict) -> None:
        import pyro

        self.model, self.opts = model, opts
        o = self._check(model, data, opts)
        self.dist = dd.current(o["device_type"])
        dev = resolve_device(o["device"])
        if self.dist.active and dev.type == "cuda":
            dev = torch.device("cuda", self.dist.local_rank)
        self.dev = dev
        self.train_set, self.val_set = self.data.split(o["val_fraction"], o["seed"])
        if len(self.train_set) == 0:
            raise ValueError(f"val_fraction={o['val_fraction']} leaves no training images out of {len(self.data)}")
        self.uses_bn = has_batchnorm(model)
        if self.uses_bn and min(o["batch_size"], len(self.train_set)) < 2:
            raise _single_batch_error(f"got batch_size={o['batch_size']} and {len(self.train_set)} training image(s)")
        pyro.set_rng_seed(o["seed"] + self.dist.rank)  # torch (CPU and CUDA), numpy, random; own noise per rank
        self.perm_gen = torch.Generator().manual_seed(o["seed"])  # the same permutation on every rank
        model.to(dev)
        self.train_imgs, val_imgs = stage_views([self.train_set, self.val_set], dev, o["keep_on_device"])
        self.val_imgs = val_imgs if len(self.val_set) else None
        self.clock = {"step": 0, "epoch": 0}
        self.loss = self._loss_fn(o["objective"])
        self.keys = _probe(model, self.train_imgs, o["transform"], type(model).__name__, self.loss)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = self._optimizer(o)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if o["compile"]:
            model.compile()
        self.step_module = None
        if self.dist.active:  # parameters the loss never uses (e.g. a head an objective ignores) need DDP told
            unused = _unused_parameters(model, self.train_imgs, o["transform"], self.loss, self.params)
            self.step_module = torch.nn.parallel.DistributedDataParallel(dd.LossModule(model, self.loss),
                                                                         find_unused_parameters=unused)
        self.acc_dtype = torch.float64 if dev.type in ("cpu", "cuda") else torch.float32
        self.config = self._config(o)
        self.history = History(meta={**self.config, "device": str(dev), "data_on_device": self.train_imgs.on_device,
                                     "torch": torch.__version__, "pyro": pyro.__version__, "world_size": self.dist.world})
        global_batch = o["batch_size"] * self.dist.world
        self.bounds = batch_bounds(o["epoch_size"] or len(self.train_set), global_batch)
        if self.dist.active:  # every rank needs images (two with BatchNorm) in every global batch
            self.bounds = [b for b in self.bounds if b[1] - b[0] >= self.dist.world * (2 if self.uses_bn else 1)]
        self.start, self.best = 0, {}
        self.last_saved = None
        if o["resume"]:
            self._resume()

    # ------------------------------------------------------------------ set-up
    def _check(self, model, data, o: dict) -> dict:
        who = type(model).__name__
        if not isinstance(model, nn.Module) or not callable(getattr(model, "loss_terms", None)):
            raise ValueError(f"model must be an nn.Module with a loss_terms(x) -> dict method "
                             f"(per-batch sums, key 'loss'); {who} has none")
        for name, low in (("epochs", 1), ("batch_size", 1), ("check_every", 0), ("seed", 0), ("bn_recalibration", 0),
                          ("checkpoint_every", 1), ("early_stopping_start", 0)):
            o[name] = check_int(name, o[name], low)
        for name in ("epoch_size", "early_stopping", "val_batch_size"):
            if o[name] is not None:
                o[name] = check_int(name, o[name], 1)
        if o["val_seed"] is not None:
            o["val_seed"] = check_int("val_seed", o["val_seed"], 0)
        o["val_batch_size"] = o["val_batch_size"] or o["batch_size"]
        lr = o["lr"]
        if o["optimizer"] is None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a finite number > 0; got {lr!r}")
        if o["grad_clip"] is not None and not (o["grad_clip"] > 0):
            raise ValueError(f"grad_clip must be > 0 or None; got {o['grad_clip']!r}")
        if o["early_stopping"] is not None and not o["val_fraction"]:
            raise ValueError("early_stopping needs a validation split (val_fraction > 0)")
        if o["objective"] is not None and not callable(getattr(o["objective"], "loss_terms", None)):
            raise ValueError(f"objective must have loss_terms(model, x, ctx); got {type(o['objective']).__name__}")
        if o["autocast"] not in (None, "bf16"):
            raise ValueError(f"autocast must be None or 'bf16'; got {o['autocast']!r}")
        data = ImageDataset(data) if torch.is_tensor(data) else data
        if not isinstance(data, ImageDataset):
            raise ValueError(f"data must be an ImageDataset or an (N, C, H, W) tensor; got {type(data).__name__}")
        if len(data) == 0:
            raise ValueError("data is empty: no images to train on")
        if o["resume"] and o["checkpoint"] is None:
            raise ValueError("resume=True needs checkpoint=PATH")
        self.checkpoint = None if o["checkpoint"] is None else Path(o["checkpoint"])
        if o["resume"] and not self.checkpoint.is_file():
            raise FileNotFoundError(f"resume=True, but there is no checkpoint at {self.checkpoint}")
        self.data = data
        o["device_type"] = resolve_device(o["device"]).type
        return o

    def _loss_fn(self, objective):
        from vae.objectives import Context

        if objective is None:
            return lambda x, training=False: self.model.loss_terms(x)
        objective.to(self.dev)

        def loss(x: Tensor, training: bool = False) -> dict:
            ctx = Context(dataset_size=len(self.train_set), step=self.clock["step"], epoch=self.clock["epoch"],
                          training=training)
            return objective.loss_terms(self.model, x, ctx)
        return loss

    def _optimizer(self, o: dict) -> torch.optim.Optimizer:
        if isinstance(o["optimizer"], torch.optim.Optimizer):
            return o["optimizer"]
        if o["optimizer"] is not None:
            return o["optimizer"](self.params)
        if not self.params:
            raise ValueError(f"{type(self.model).__name__} has no trainable parameters")
        return torch.optim.Adam(self.params, lr=o["lr"], fused=self.dev.type == "cuda")

    def _config(self, o: dict) -> dict:
        obj = o["objective"]
        return {
            "batch_size": o["batch_size"], "seed": o["seed"], "val_fraction": float(o["val_fraction"]),
            "n_train": len(self.train_set), "n_val": len(self.val_set), "loss_keys": self.keys, "epochs": o["epochs"],
            "lr": float(o["lr"]), "model": type(self.model).__name__, "data": self.data.name,
            "transform": _callable_name(o["transform"]),
            **({"epoch_size": o["epoch_size"]} if o["epoch_size"] is not None else {}),
            **({"objective": obj.config()} if obj is not None and hasattr(obj, "config") else {}),
            **({"early_stopping": o["early_stopping"], "early_stopping_start": o["early_stopping_start"]}
               if o["early_stopping"] is not None else {}),
            **({"world_size": self.dist.world} if self.dist.active else {}),
            **dict(o["config"] or {}),
        }

    def _resume(self) -> None:
        o, path = self.opts, self.checkpoint
        state = load_checkpoint(path)
        _check_resume_config(state["config"], jsonable(self.config), path, compare_lr=o["optimizer"] is None)
        _load_model_state(self.model, state["model"], path)
        try:
            self.opt.load_state_dict(state["optimizer"])
        except (ValueError, RuntimeError, KeyError, TypeError, IndexError) as err:
            raise ValueError(f"checkpoint {path}: the saved optimiser state does not fit this optimiser "
                             f"({str(err).splitlines()[0]})") from None
        self.history.rows = [dict(r) for r in state["history"]]
        self.start = int(state["epoch"])
        if o["objective"] is not None and "objective" in state:
            o["objective"].load_state_dict(state["objective"])
        self.best = state.get("best") or {}
        try:
            _set_rng_state(state["rng"], self.perm_gen, self.dev)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
            raise ValueError(f"checkpoint {path}: the saved random-number state is malformed "
                             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
        bad: list[str] = []
        _non_finite({n: p for n, p in self.model.named_parameters()}, "model", bad)
        _non_finite(self.opt.state_dict(), "optimizer", bad)
        if bad:  # the loaded state itself (e.g. an optimiser given by the caller)
            raise ValueError(f"checkpoint {path}: resumed state holds NaN/Inf in {', '.join(bad)}")
        self.last_saved = self.start
        if self.best.get("stopped"):
            self.start = o["epochs"]  # an early-stopped run is finished

    # ------------------------------------------------------------------ one epoch
    def _amp(self):
        if self.opts["autocast"] == "bf16":
            return torch.autocast(self.dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_epoch(self, epoch: int, bar) -> tuple[Tensor, int]:
        o, model = self.opts, self.model
        model.train()
        n = len(self.train_set)
        index = (torch.randperm(n, generator=self.perm_gen) if o["epoch_size"] is None
                 else stream_positions(epoch, n, o["epoch_size"], o["seed"])).to(self.train_imgs.index_device)
        sums = torch.zeros(len(self.keys), dtype=self.acc_dtype, device=self.dev)
        seen, self.clock["epoch"] = 0, epoch
        scale = float(self.dist.world)
        for step, (s, e) in enumerate(self.bounds, start=1):
            self.clock["step"] = (epoch - 1) * len(self.bounds) + step - 1
            a, b = dd.rank_slice(s, e, self.dist) if self.dist.active else (s, e)
            x = self.train_imgs.batch(index[a:b])
            if o["transform"] is not None:
                x = o["transform"](x)
            with self._amp():
                terms = self.step_module(x) if self.step_module is not None else self.loss(x, True)
            self.opt.zero_grad(set_to_none=True)
            (terms["loss"] * (scale / (e - s))).backward()  # DDP averages over ranks: the global batch mean
            if o["grad_clip"] is not None:
                nn.utils.clip_grad_norm_(self.params, o["grad_clip"])
            self.opt.step()
            sums += accumulate(terms, self.keys, self.acc_dtype)
            seen += e - s
            bar.update(1)
            if o["check_every"] and step % o["check_every"] == 0 and step < len(self.bounds):
                host = dd.all_reduce_sum(sums.clone(), self.dist).cpu()
                if not torch.isfinite(host).all():
                    bad = [k for k, v in zip(self.keys, host.tolist()) if not math.isfinite(v)]
                    raise self.diverged(epoch, step, "training " + ", ".join(bad))
                bar.set_postfix(loss=f"{host[0].item() / seen:.4g}")
        return dd.all_reduce_sum(sums, self.dist), seen

    def validate(self) -> Tensor | None:
        if self.val_imgs is None:
            return None
        args = (self.model, self.val_imgs, self.opts["transform"], self.keys, self.opts["val_batch_size"],
                self.acc_dtype, self.loss, self.dist)
        if self.opts["val_seed"] is None:
            return dd.all_reduce_sum(_evaluate(*args), self.dist)
        # the same random numbers every epoch (a random transform, the reparameterised sample), so
        # epochs are compared on equal terms; the training stream is left where it was
        with torch.random.fork_rng(devices=[self.dev] if self.dev.type == "cuda" else [], device_type=self.dev.type):
            torch.manual_seed(self.opts["val_seed"] * 1_000_003 + 7_919 * (self.dist.rank + 1))
            sums = _evaluate(*args)
        return dd.all_reduce_sum(sums, self.dist)

    def record(self, epoch: int, sums: Tensor, seen: int, val_sums: Tensor | None, seconds: float, bar) -> dict:
        """The epoch's row (one host synchronisation), or :class:`TrainingDiverged`."""
        host = torch.cat([sums, val_sums if val_sums is not None else sums[:0]]).cpu()
        params_ok = bool(all_finite(self.params).cpu())
        values, k = host.tolist(), len(self.keys)
        train_means = {key: v / seen for key, v in zip(self.keys, values[:k])}
        val_means = {key: v / len(self.val_set) for key, v in zip(self.keys, values[k:])}
        bad = [f"training {key}" for key, v in train_means.items() if not math.isfinite(v)]
        bad += [f"validation {key}" for key, v in val_means.items() if not math.isfinite(v)]
        bad += [] if params_ok else ["a parameter"]
        if bad:
            bar.close()
            raise self.diverged(epoch, None, ", ".join(bad))
        row: dict[str, float] = {"epoch": epoch, **{f"train_{key}": v for key, v in train_means.items()},
                                 **{f"val_{key}": v for key, v in val_means.items()}, "seconds": seconds}
        self.history.rows.append(row)
        post = {"loss": f"{train_means['loss']:.4g}"}
        if val_means:
            post["val_loss"] = f"{val_means['loss']:.4g}"
        bar.set_postfix(post)
        bar.close()
        return row

    def early_stop(self, epoch: int, row: dict) -> bool:
        patience = self.opts["early_stopping"]
        if patience is None or epoch <= self.opts["early_stopping_start"]:
            return False
        if not self.best.get("model") or row["val_loss"] < self.best["val_loss"]:
            self.best = {"epoch": epoch, "val_loss": row["val_loss"],
                         "model": {k: t.detach().to("cpu", copy=True) for k, t in self.model.state_dict().items()}}
        elif epoch - self.best["epoch"] >= patience:
            self.best["stopped"] = epoch
            return True
        return False

    def save(self, epoch: int) -> None:
        obj = self.opts["objective"]
        if self.dist.main:
            save_checkpoint({
                "format": CHECKPOINT_FORMAT, "epoch": epoch, "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "history": self.history.rows,
                "rng": _rng_state(self.perm_gen, self.dev), "config": jsonable(self.config),
                **({"objective": obj.state_dict()} if obj is not None else {}),
                **({"best": self.best} if self.best else {}),
            }, self.checkpoint)
        self.last_saved = epoch

    def diverged(self, epoch: int, step: int | None, what: str) -> TrainingDiverged:
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        if self.last_saved is not None:
            kept = f"checkpoint {self.checkpoint} still holds epoch {self.last_saved} (finite parameters)"
        elif self.checkpoint is not None:
            kept = f"no checkpoint was written in this run ({self.checkpoint} untouched)"
        else:
            kept = "no checkpoint path was given"
        return TrainingDiverged(
            f"training diverged at {where}: {what} is NaN/Inf; {kept}. Try a lower learning rate "
            f"(lr={self.opts['lr']}), grad_clip=..., or check the data and the model's loss_terms.",
            epoch=epoch, step=step, checkpoint=self.checkpoint if self.last_saved is not None else None,
            last_good_epoch=self.last_saved, history=self.history)

    def finish(self) -> History:
        if self.best.get("model"):
            self.history.meta["best_epoch"] = self.best["epoch"]
            self.history.meta["stopped_early_at"] = self.best.get("stopped")
            if self.opts["restore_best"]:
                self.model.load_state_dict(self.best["model"])
        return self.history


def _probe(model: nn.Module, images: DeviceImages, transform, who: str, forward=None) -> list[str]:
    """One loss call on a small batch (eval mode, gradients on but not applied): creates lazy
    parameters, checks the returned dict. Does not touch BatchNorm statistics."""
    n = min(images.n, 8)
    x = images.batch(torch.arange(n, device=images.index_device))
    if transform is not None:
        x = transform(x)
    with eval_mode(model):
        terms = (forward or model.loss_terms)(x)
        keys = check_terms(terms, who)
    del terms
    return keys


def _unused_parameters(model: nn.Module, images: DeviceImages, transform, forward, params) -> bool:
    """Whether some trainable parameter gets no gradient from the loss (one backward on 8 images,
    gradients discarded)."""
    x = images.batch(torch.arange(min(images.n, 8), device=images.index_device))
    if transform is not None:
        x = transform(x)
    with eval_mode(model):
        grads = torch.autograd.grad(forward(x, False)["loss"], params, allow_unused=True)
    return any(g is None for g in grads)


@torch.inference_mode()
def _evaluate(model: nn.Module, images: DeviceImages, transform, keys: list[str], batch_size: int,
              dtype: torch.dtype, forward=None, info: dd.DistInfo | None = None) -> Tensor:
    """Sums of the loss terms over ``images`` (this rank's strided share of them), eval mode."""
    model.eval()
    sums = torch.zeros(len(keys), dtype=dtype, device=images.device)
    index = torch.arange(images.n, device=images.index_device)
    if info is not None and info.active:
        index = index[info.rank::info.world]
    for s in range(0, len(index), batch_size):
        x = images.batch(index[s:s + batch_size])
        if transform is not None:
            x = transform(x)
        sums += accumulate((forward or model.loss_terms)(x), keys, dtype)
    model.train()
    return sums
