"""The training loop: ``fit`` for every model with ``loss_terms(x)`` or any objective.

One run's state and steps (set-up, resume, an epoch, validation, record, checkpoint) live in
:class:`vae.training.run._Run`, so that :func:`fit` reads as the loop it is.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from vae.data.dataset import ImageDataset
from vae.training import distributed as dd
from vae.training.batchnorm import recalibrate_batchnorm
from vae.training.errors import TrainingInterrupted
from vae.training.history import History
from vae.training.run import _Run

__all__ = ["fit"]


def fit(
    model: nn.Module,
    data: ImageDataset | Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    adam_impl: str = "fused",
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
        adam_impl: the default Adam's implementation: ``"fused"`` (one kernel over every parameter;
            the fastest on CPU and GPU), ``"foreach"`` or ``"for-loop"`` (one parameter at a time:
            what ``torch.optim.Adam`` does on CPU by default). The same algorithm; the numbers
            differ in rounding only, so resuming under another implementation is allowed.
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
            ``optimizer(params) -> Optimizer``; default ``torch.optim.Adam(params, lr)`` (see ``adam_impl``).
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
