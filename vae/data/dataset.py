"""A small in-memory image data set with optional ground-truth factors, stored compactly.

Images live in one *storage* tensor, float32 in [0, 1] or uint8 ``k`` meaning ``k / 255`` (4× less
memory: all 737,280 dSprites images are 2.9 GB as uint8, 11.9 GB as float32). ``subset``, ``split``
and ``sample`` return *views*: they share the storage and keep only an index, so splitting the
whole dSprites set costs a few MB, not another copy. Float conversion happens per batch
(:meth:`ImageDataset.batch`), on whatever device the batch is on.

>>> ds = ImageDataset(torch.zeros(10, 1, 4, 4, dtype=torch.uint8), np.arange(10)[:, None], ("label",), "toy")
>>> train, val = ds.split(0.2, seed=0)
>>> len(train), len(val), train.storage is ds.storage
(8, 2, True)
>>> train.batch([0, 1]).dtype
torch.float32
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["ImageDataset", "to_float_images"]


def to_float_images(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``k`` -> float32 ``k / 255`` (correctly rounded); float tensors pass unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x


class ImageDataset:
    """Images (N, C, H, W) plus the factors that generated them when known.

    Args:
        images: (N, C, H, W) float32 in [0, 1], or uint8 (``k`` stands for ``k / 255``).
        factors: (N, K) int class indices (dSprites factors, or MNIST labels as K = 1), or ``None``.
        factor_names: names of the K factor columns.
        name: the data set's name (stored in checkpoints, compared on resume).
        factor_values: per factor name, the value of each class (e.g. dSprites' scale grid).
        index: positions into ``images`` that this data set consists of (``None``: all of them);
            normally made by :meth:`subset` / :meth:`split`, not by hand.
    """

    def __init__(self, images: torch.Tensor, factors: np.ndarray | None = None, factor_names: tuple[str, ...] = (),
                 name: str = "images", factor_values: dict[str, np.ndarray] | None = None,
                 index: torch.Tensor | np.ndarray | None = None) -> None:
        if not torch.is_tensor(images) or images.ndim != 4:
            raise ValueError(f"images must be an (N, C, H, W) tensor; got shape {tuple(getattr(images, 'shape', ()))}")
        if not (images.is_floating_point() or images.dtype == torch.uint8):
            raise ValueError(f"images must be float (values in [0, 1]) or uint8 (k/255); got {images.dtype}")
        self.storage = images
        self.factor_names = tuple(factor_names)
        self.name = name
        self.factor_values = dict(factor_values or {})
        self.index = None if index is None else torch.as_tensor(np.asarray(index), dtype=torch.long)
        if self.index is not None and len(self.index) and (int(self.index.min()) < 0 or int(self.index.max()) >= len(images)):
            raise ValueError(f"index out of range for {len(images)} stored images")
        self._base_factors = None
        if factors is not None:
            f = np.asarray(factors)
            if f.ndim == 1:
                f = f[:, None]
            if len(f) != len(images):
                raise ValueError(f"{len(f)} factor rows for {len(images)} images")
            if self.factor_names and len(self.factor_names) != f.shape[1]:
                raise ValueError(f"{len(self.factor_names)} factor names for {f.shape[1]} columns")
            self._base_factors = f
        self._factors_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ sizes and views
    def __len__(self) -> int:
        return len(self.storage) if self.index is None else len(self.index)

    def __repr__(self) -> str:
        view = "" if self.index is None else f", view of {len(self.storage)}"
        return f"ImageDataset({self.name!r}, {len(self)} images {self.image_shape} {self.storage.dtype}{view})"

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.storage.shape[1:])

    @property
    def is_view(self) -> bool:
        """True when this data set is an index into a larger (shared) storage."""
        return self.index is not None

    def storage_index(self, positions: Any = None) -> torch.Tensor:
        """Positions in :attr:`storage` of this data set's images (all, or those at ``positions``)."""
        if positions is None:
            return torch.arange(len(self)) if self.index is None else self.index
        pos = positions if torch.is_tensor(positions) else torch.as_tensor(np.asarray(positions), dtype=torch.long)
        return pos if self.index is None else self.index[pos.to(self.index.device)]

    @property
    def factors(self) -> np.ndarray | None:
        """(N, K) factor classes of this data set's images (``None`` without factors)."""
        if self._base_factors is None:
            return None
        if self.index is None:
            return self._base_factors
        if self._factors_cache is None:
            self._factors_cache = self._base_factors[self.index.numpy()]
        return self._factors_cache

    # ------------------------------------------------------------------ images
    def raw(self, positions: Any = None) -> torch.Tensor:
        """Images at ``positions`` in the storage's dtype (uint8 or float), a gathered copy."""
        if positions is None and self.index is None:
            return self.storage
        return self.storage[self.storage_index(positions)]

    def batch(self, positions: Any) -> torch.Tensor:
        """float32 images in [0, 1] at ``positions`` (relative to this data set)."""
        return to_float_images(self.raw(positions))

    @property
    def images(self) -> torch.Tensor:
        """All images as one float32 (N, C, H, W) tensor in [0, 1]: the storage itself for a float
        data set that is not a view, else a converted copy — for large uint8 data use :meth:`batch`."""
        if self.index is None and self.storage.is_floating_point():
            return self.storage
        return to_float_images(self.raw())

    # ------------------------------------------------------------------ subsets
    def subset(self, index) -> "ImageDataset":
        """A view of the images (and factors) at ``index`` (array of ints, slice or boolean mask);
        shares the storage, copies nothing but the index."""
        if isinstance(index, slice):
            pos = torch.arange(len(self))[index]
        else:
            arr = np.asarray(index.cpu() if torch.is_tensor(index) else index)
            if arr.dtype == bool:
                if len(arr) != len(self):
                    raise ValueError(f"boolean mask of length {len(arr)} for {len(self)} images")
                arr = np.flatnonzero(arr)
            pos = torch.as_tensor(arr.astype(np.int64, copy=False)).reshape(-1)
            if len(pos) and (int(pos.min()) < -len(self) or int(pos.max()) >= len(self)):
                raise IndexError(f"subset index out of range for {len(self)} images")
            pos = torch.where(pos < 0, pos + len(self), pos)
        view = ImageDataset.__new__(ImageDataset)
        view.storage, view.factor_names, view.name = self.storage, self.factor_names, self.name
        view.factor_values, view._base_factors, view._factors_cache = self.factor_values, self._base_factors, None
        view.index = self.storage_index(pos).clone()
        return view

    def split(self, val_fraction: float, seed: int = 0) -> tuple["ImageDataset", "ImageDataset"]:
        """Random train/validation split (deterministic for a seed); both are views."""
        if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_val = int(round(val_fraction * len(self)))
        return self.subset(np.sort(perm[n_val:])), self.subset(np.sort(perm[:n_val]))

    def sample(self, n: int, seed: int = 0) -> "ImageDataset":
        """``n`` images drawn without replacement (all of them when ``n >= len``)."""
        if n >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False)))

    def nbytes(self) -> int:
        """Bytes held by the storage (shared by every view of it)."""
        return self.storage.numel() * self.storage.element_size()
