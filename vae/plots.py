"""Figures saved as PNG: image grids and loss curves. matplotlib is imported lazily (Agg backend)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as a PNG at ``path`` (parent folders created) and close it: the one
    way every module of the package writes a figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _as_numpy_images(images) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) tensor/array -> (N, H, W) or (N, H, W, 3) numpy in [0, 1]."""
    if hasattr(images, "detach"):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else np.transpose(images, (0, 2, 3, 1))
    return np.clip(images, 0.0, 1.0)


def save_image_grid(
    rows: Sequence,
    path: str | Path,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    cell_inches: float = 1.0,
    col_labels: Sequence[str] | None = None,
) -> Path:
    """Save rows of images as one PNG grid; each row is an (N, C, H, W) tensor or array.
    ``row_labels`` go left of the rows, ``col_labels`` above the columns.

    >>> import torch
    >>> save_image_grid([torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28)], "/tmp/grid.png",
    ...                 row_labels=["input", "reconstruction"])  # doctest: +ELLIPSIS
    PosixPath('/tmp/grid.png')
    """
    plt = _pyplot()
    rows = [_as_numpy_images(r) for r in rows]
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(cell_inches * n_cols + (1.2 if row_labels else 0), cell_inches * len(rows) + 0.4),
        squeeze=False,
    )
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(row[j], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        if row_labels:
            axes[i, 0].set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=9)
    for j, label in enumerate(list(col_labels or [])[:n_cols]):
        axes[0, j].set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100)
    return path


def save_loss_curves(
    history: Sequence[Mapping[str, float]],
    path: str | Path,
    keys: Sequence[str] = ("loss", "recon", "kl"),
    title: str | None = None,
    units: Mapping[str, str] | None = None,
) -> Path:
    """One panel per key, train and validation curves per epoch (history rows as written by ``fit``).

    A history row holds ``epoch`` and ``train_<key>`` / ``val_<key>`` values; keys absent from the
    history are skipped. ``units`` maps a key to its y-axis label; by default ``loss``, ``recon``
    and ``kl`` are "nats per image" (a VAE's terms) and other keys are labelled with their name.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in keys if any(f"train_{k}" in row for row in history)]
    if not keys:
        raise ValueError("history has no train_<key> columns to plot")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, key in zip(axes[0], keys):
        for split, style in (("train", "-o"), ("val", "--s")):
            values = [row.get(f"{split}_{key}") for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style, ms=3, label=split)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        default = "nats per image" if key in ("loss", "recon", "kl") else key
        ax.set_ylabel((units or {}).get(key, default))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100)
    return path
