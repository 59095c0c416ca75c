"""BatchNorm running statistics re-estimated from the data (short runs evaluate right)."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from vae.data.dataset import ImageDataset
from vae.modes import eval_mode
from vae.staging import DeviceImages, stage_views
from vae.training.batches import batch_bounds as _batch_bounds, check_int as _check_int

__all__ = ["recalibrate_batchnorm", "has_batchnorm"]

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
    from vae.device import module_device

    return module_device(model, default=data.device)
