"""``fit`` past one process: torch.distributed (DistributedDataParallel), launched by ``torchrun``.

When ``torchrun`` starts the script (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR`` set) or
the caller already ran ``torch.distributed.init_process_group``, :func:`current` joins (or creates)
the process group — gloo on CPU, NCCL on CUDA — and ``fit`` then:

* wraps the loss in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged across
  ranks during ``backward``; rank 0's initial parameters and buffers broadcast to all);
* gives every rank the same permutation of the epoch and the rank its contiguous share of each
  *global* batch of ``world · batch_size`` images, and scales each rank's loss by ``world / global
  batch``, so N ranks with batch B take exactly the steps of one process with batch N·B;
* sums the loss terms (training and validation) over the ranks before anything reads them, so the
  history, the NaN guard (every rank stops together) and early stopping agree everywhere;
* writes checkpoints and calls ``on_epoch_end`` on rank 0 only; every rank resumes from the file;
* BatchNorm: running statistics are *recalibrated* after each epoch by every rank on the same
  seeded batches of the full training data (each rank holds all of it), so they are identical
  everywhere without SyncBatchNorm; during training each rank normalises with its own batch.

Pyro's param store is not used by ``fit`` (torch's Adam over ``model.parameters()``), so nothing in
it can diverge. A plain ``pyro.infer.SVI`` loop is not made distributed by this module: wrap the
model in DDP and all-reduce yourself, or train with ``fit``. FactorVAE's discriminator steps its
own optimiser inside the objective and is trained per rank.

>>> current().world
1
"""
from __future__ import annotations

import atexit
import os
from datetime import timedelta
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["DistInfo", "current", "is_main_process", "all_reduce_sum", "barrier", "LossModule"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def current(device_type: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (or the one already
    initialised); a single process otherwise. ``device_type`` picks the backend (cuda: nccl)."""
    import torch.distributed as dist

    if not dist.is_available():
        return DistInfo()
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return DistInfo()
        backend = "nccl" if device_type == "cuda" and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        atexit.register(_shutdown)  # a group left alive at exit aborts the process (gloo's threads)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def _shutdown() -> None:
    """Destroy the process group this module created, before the interpreter tears down."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:  # no rank closes its connections while another is still using them
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=60))
        else:
            dist.barrier()
    except Exception:  # noqa: BLE001 - a peer already gone: nothing left to wait for
        pass
    dist.destroy_process_group()


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that writes files and prints."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def all_reduce_sum(t: Tensor, info: DistInfo) -> Tensor:
    """``t`` summed over the ranks (in place; unchanged in a single process)."""
    if info.active:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    if info.active:
        import torch.distributed as dist

        dist.barrier()


class LossModule(nn.Module):
    """The loss as a module, so DistributedDataParallel can hook its ``forward``: ``forward(x)``
    returns ``loss_fn(x, True)``; the parameters are the model's."""

    def __init__(self, model: nn.Module, loss_fn) -> None:
        super().__init__()
        self.model = model
        self._loss_fn = loss_fn

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self._loss_fn(x, True)


def rank_slice(s: int, e: int, info: DistInfo) -> tuple[int, int]:
    """This rank's contiguous part of the global batch [s, e) (sizes differ by at most one)."""
    n = e - s
    a = s + (n * info.rank) // info.world
    b = s + (n * (info.rank + 1)) // info.world
    return a, b
