"""Batches of an epoch: bounds, the stream of seeded permutations for ``epoch_size`` slices, checks
and on-device accumulation of the loss terms."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import Tensor

__all__ = ["batch_bounds", "stream_positions", "check_int", "check_terms", "accumulate", "all_finite"]


def _batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) batches; a trailing batch of one image joins the previous batch
    (BatchNorm cannot train on a single image)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


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
    """The terms as one (len(keys),) tensor in ``dtype``: one stack, then one cast (not a cast per term)."""
    values = [terms[k].detach() for k in keys]
    return torch.stack([v if v.dim() == 0 else v.reshape(()) for v in values]).to(dtype)


def _all_finite(params: list[Tensor]) -> Tensor:
    return torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()


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


batch_bounds, stream_positions, check_int, check_terms = _batch_bounds, _stream_positions, _check_int, _check_terms
accumulate, all_finite = _accumulate, _all_finite
