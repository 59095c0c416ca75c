"""One training run's state and steps, behind :func:`vae.training.loop.fit`.

:class:`_Run` holds the data staged on the device, the loss function (the model's ``loss_terms`` or
an objective's), the optimiser, the history, the checkpoint and the distributed rank, and does each
step of a run: set-up and checks, resume, one training epoch, validation, the epoch's record, early
stopping, the checkpoint and the end, so that ``fit`` reads as the loop it is.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from vae.data.dataset import ImageDataset
from vae.device import resolve_device
from vae.modes import eval_mode
from vae.staging import DeviceImages, stage_views
from vae.training import distributed as dd
from vae.training.batches import accumulate, all_finite, batch_bounds, check_int, check_terms, stream_positions
from vae.training.batchnorm import _single_batch_error, has_batchnorm
from vae.training.checkpoints import (CHECKPOINT_FORMAT, _callable_name, _check_resume_config, _load_model_state,
                                      _non_finite, _rng_state, _set_rng_state, load_checkpoint, save_checkpoint)
from vae.training.errors import TrainingDiverged
from vae.training.history import History, jsonable

__all__ = ["_Run", "ADAM_IMPLS"]

#: ``fit(adam_impl=...)``: torch.optim.Adam's keyword arguments for each implementation.
ADAM_IMPLS: dict[str, dict] = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}


def _use_adam_impl(opt: torch.optim.Optimizer, impl: str) -> None:
    """Switch a (resumed) Adam to implementation ``impl``: its groups' flags, and for the fused kernel
    each ``step`` counter as a float32 tensor on its parameter's device."""
    flags = {"fused": None, "foreach": None, **ADAM_IMPLS[impl]}
    for group in opt.param_groups:
        group.update(flags)
        for p in group["params"]:
            st = opt.state.get(p)
            if flags["fused"] and st and torch.is_tensor(st.get("step")):
                st["step"] = st["step"].to(dtype=torch.float32, device=p.device)


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
        if o["adam_impl"] not in ADAM_IMPLS:
            raise ValueError(f"adam_impl must be one of {sorted(ADAM_IMPLS)}; got {o['adam_impl']!r}")
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
        return torch.optim.Adam(self.params, lr=o["lr"], **ADAM_IMPLS[o["adam_impl"]])

    def _config(self, o: dict) -> dict:
        obj = o["objective"]
        return {
            "batch_size": o["batch_size"], "seed": o["seed"], "val_fraction": float(o["val_fraction"]),
            "n_train": len(self.train_set), "n_val": len(self.val_set), "loss_keys": self.keys, "epochs": o["epochs"],
            "lr": float(o["lr"]), **({"adam_impl": o["adam_impl"]} if o["optimizer"] is None else {}),
            "model": type(self.model).__name__, "data": self.data.name,
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
        if o["optimizer"] is None:  # load_state_dict restored the saved groups' implementation: use the asked one
            _use_adam_impl(self.opt, o["adam_impl"])
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
