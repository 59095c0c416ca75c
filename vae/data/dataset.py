"""A small in-memory image data set with optional ground-truth factors."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class ImageDataset:
    """Images as one float tensor, plus the factors that generated them when known.

    ``images``: (N, C, H, W) float32 in [0, 1]. ``factors``: (N, K) int64 class indices
    (dSprites factors, or MNIST labels as K = 1), or ``None``. ``factor_names`` names the K columns.

    >>> ds = ImageDataset(torch.zeros(10, 1, 4, 4), np.arange(10)[:, None], ("label",), "toy")
    >>> train, val = ds.split(0.2, seed=0)
    >>> len(train), len(val)
    (8, 2)
    """

    images: torch.Tensor
    factors: np.ndarray | None = None
    factor_names: tuple[str, ...] = ()
    name: str = "images"
    factor_values: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W); got shape {tuple(self.images.shape)}")
        if self.factors is not None:
            self.factors = np.asarray(self.factors)
            if self.factors.ndim == 1:
                self.factors = self.factors[:, None]
            if len(self.factors) != len(self.images):
                raise ValueError(f"{len(self.factors)} factor rows for {len(self.images)} images")
            if self.factor_names and len(self.factor_names) != self.factors.shape[1]:
                raise ValueError(f"{len(self.factor_names)} factor names for {self.factors.shape[1]} columns")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "ImageDataset":
        """The images (and factors) at ``index`` (array of ints, slice or boolean mask)."""
        index_t = torch.as_tensor(index) if not isinstance(index, slice) else index
        index_np = np.asarray(index) if not isinstance(index, slice) else index
        return ImageDataset(
            self.images[index_t],
            None if self.factors is None else self.factors[index_np],
            self.factor_names,
            self.name,
            self.factor_values,
        )

    def split(self, val_fraction: float, seed: int = 0) -> tuple["ImageDataset", "ImageDataset"]:
        """Random train/validation split (deterministic for a seed)."""
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_val = int(round(val_fraction * len(self)))
        return self.subset(np.sort(perm[n_val:])), self.subset(np.sort(perm[:n_val]))

    def sample(self, n: int, seed: int = 0) -> "ImageDataset":
        """``n`` images drawn without replacement (all of them when ``n >= len``)."""
        if n >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False)))
