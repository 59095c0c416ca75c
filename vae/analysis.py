"""Latent-space analysis of a trained VAE: encoder means, PCA, per-factor scatter plots, traversals,
per-dimension KL (which latent dimensions are active).

Works with any model that has ``encode(x) -> (loc, scale)`` and ``decode(z)`` (``vae.model.VAE``);
``decode``'s output is mapped to a mean image by ``model.likelihood.mean`` when the model has one
(Bernoulli: sigmoid of the logits), else by a sigmoid.

>>> import torch
>>> from vae.model import VAE
>>> from vae.nets import MLPEncoder, MLPDecoder
>>> from vae.priors import StandardNormal
>>> m = VAE(MLPEncoder(3, (1, 4, 4), (8,)), MLPDecoder(3, (1, 4, 4), (8,)), StandardNormal(3))
>>> encode_means(m, torch.rand(10, 1, 4, 4)).shape
(10, 3)
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from vae.data.dataset import ImageDataset
from vae.device import resolve_device
from vae.modes import eval_mode
from vae.plots import _pyplot, save_image_grid
from vae.plots import save_figure

__all__ = [
    "encode_means",
    "encode_stats",
    "pca_2d",
    "plot_pca_by_factor",
    "latent_traversals",
    "per_dim_kl",
    "kl_per_dim_from_stats",
    "plot_per_dim_kl",
    "latent_plane_grid",
]


def _model_device(model: nn.Module, device) -> torch.device:
    from vae.device import module_device

    return resolve_device(device) if device is not None else module_device(model)


def _images(data) -> Tensor:
    if isinstance(data, ImageDataset):
        return data.images
    if torch.is_tensor(data):
        return data
    if isinstance(data, np.ndarray):
        return torch.from_numpy(data)
    raise ValueError(f"data must be an ImageDataset, a tensor or an array of images; got {type(data).__name__}")


def _to_mean_image(model: nn.Module, out: Tensor) -> Tensor:
    likelihood = getattr(model, "likelihood", None)
    if likelihood is not None and callable(getattr(likelihood, "mean", None)):
        return likelihood.mean(out)
    return torch.sigmoid(out)


@torch.no_grad()
def encode_stats(model: nn.Module, data, batch_size: int = 1024, device=None) -> tuple[np.ndarray, np.ndarray]:
    """(loc, scale) of q(z|x) for every image of ``data``, each an (N, D) float64 numpy array.

    The model runs in eval mode (BatchNorm uses its running statistics, dropout is off) without
    gradients, in batches of ``batch_size`` on ``device`` (default: where the model's parameters
    are); its training mode is restored afterwards.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    from vae.data.dataset import to_float_images

    images = data if isinstance(data, ImageDataset) else _images(data)
    if len(images) == 0:
        raise ValueError("data is empty: no images to encode")
    dev = _model_device(model, device)
    model.to(dev)
    locs, scales = [], []
    with eval_mode(model), torch.inference_mode():
        for i in range(0, len(images), int(batch_size)):
            if isinstance(images, ImageDataset):  # uint8 storage: convert per batch
                x = images.batch(torch.arange(i, min(i + int(batch_size), len(images)))).to(dev)
            else:
                x = to_float_images(images[i : i + int(batch_size)].to(dev, non_blocking=True))
                if not x.is_floating_point():
                    x = x.float()
            loc, scale = model.encode(x)
            locs.append(loc.detach().to("cpu", torch.float64))
            scales.append(scale.detach().to("cpu", torch.float64))
    return torch.cat(locs).numpy(), torch.cat(scales).numpy()


def encode_means(model: nn.Module, data, batch_size: int = 1024, device=None) -> np.ndarray:
    """(N, D) encoder means (the representation MIG uses) of ``data`` (ImageDataset or (N,C,H,W))."""
    return encode_stats(model, data, batch_size, device)[0]


def per_dim_kl(model: nn.Module, data, batch_size: int = 1024, device=None) -> np.ndarray:
    """(D,) mean over ``data`` of KL(q(z_d|x) || N(0, 1)) in nats, per latent dimension.

    ``0.5 (mu^2 + sigma^2 - 1) - log sigma``. Dimensions with a KL near 0 are inactive ("collapsed":
    the encoder ignores x there and the decoder ignores them); the usual threshold is ~0.01-0.1 nat.
    Measured against N(0, 1) whatever the model's prior (for a standard-Normal prior it is exactly
    the per-dimension split of the analytic KL).
    """
    return kl_per_dim_from_stats(*encode_stats(model, data, batch_size, device))


def kl_per_dim_from_stats(loc, scale) -> np.ndarray:
    """(D,) mean KL(N(loc, scale) || N(0, 1)) per dimension from (N, D) encoder outputs (see :func:`per_dim_kl`)."""
    loc, scale = np.asarray(loc, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    return (0.5 * (loc**2 + scale**2 - 1.0) - np.log(scale)).mean(axis=0)


def pca_2d(latents) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, D) latents on their first two principal components.

    Returns ``(proj (N, 2), explained_variance_ratio (2,))``, the ratio being each component's share
    of the total variance (as sklearn's ``PCA(2).explained_variance_ratio_``). Centred, then SVD;
    signs fixed so that each component's largest-magnitude loading is positive (deterministic).
    """
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"latents must be (N, D) with N >= 2; got shape {z.shape}")
    z = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    if vt.shape[0] < 2:  # D = 1: pad a zero component
        vt = np.vstack([vt, np.zeros_like(vt)])
        s = np.append(s, 0.0)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
    signs[signs == 0] = 1.0
    comps = comps * signs[:, None]
    total = float((s**2).sum())
    ratio = (s[:2] ** 2) / total if total > 0 else np.zeros(2)
    return z @ comps.T, ratio


def plot_pca_by_factor(
    proj,
    factors,
    factor_names: Sequence[str],
    path: str | Path,
    explained=None,
    title: str | None = None,
    max_points: int = 5000,
    seed: int = 0,
    separate: bool = False,
    axis_labels: tuple[str, str] = ("PC 1", "PC 2"),
    class_labels: Mapping[str, Sequence[str]] | None = None,
    factor_values: Mapping[str, Sequence[float]] | None = None,
    factor_units: Mapping[str, str] | None = None,
    cyclic: Sequence[str] = (),
) -> list[Path]:
    """Scatter the 2-d projection once per factor, points coloured by the factor's class.

    ``proj`` (N, 2), ``factors`` (N, K) classes, ``factor_names`` (K,). One figure with K panels
    at ``path``; with ``separate=True`` also one PNG per factor next to it
    (``<stem>_<name>.png``). At most ``max_points`` random points are drawn (readable, small files).
    ``axis_labels`` name the two coordinates (a 2-d latent's own axes: ``("z1", "z2")``); with
    ``explained`` each gets its share of the variance. Returns the written paths (the combined
    figure first).

    The colour bars say what the classes mean, per factor name (factors not listed keep their class
    indices): ``class_labels[name]`` is a label per class index (``("square", "ellipse", "heart")``);
    ``factor_values[name]`` the value of each class index (dSprites' ``factor_values``: the 6 scales,
    40 orientations, 32 positions), used as the ticks of a categorical factor and as the colour of an
    ordinal one; ``factor_units[name]`` is added to the colour bar's label.

    Colours: a factor with class labels (or without values and at most 10 classes) is categorical,
    one distinct hue per class (dSprites' shape); a factor with values is ordinal, drawn on an
    ordered scale (viridis: scale, positions), or on a cyclic one (twilight) when it is named in
    ``cyclic`` (orientation: 0° and 360° are the same angle).
    """
    class_labels = dict(class_labels or {})
    factor_values = {k: np.asarray(v, dtype=np.float64) for k, v in (factor_values or {}).items()}
    factor_units = dict(factor_units or {})
    plt = _pyplot()
    proj = np.asarray(proj)
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    if proj.ndim != 2 or proj.shape[1] != 2:
        raise ValueError(f"proj must be (N, 2); got shape {proj.shape}")
    if len(factors) != len(proj):
        raise ValueError(f"{len(proj)} projected points but {len(factors)} factor rows")
    if len(factor_names) != factors.shape[1]:
        raise ValueError(f"{len(factor_names)} factor names for {factors.shape[1]} factor columns")
    idx = np.arange(len(proj))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), max_points, replace=False))
    p, f = proj[idx], factors[idx]
    size = 5 if len(idx) > 2000 else 12  # small dots for dense clouds, visible ones for a few hundred
    xlabel, ylabel = axis_labels
    if explained is not None:
        xlabel, ylabel = (f"{a} ({100 * e:.1f}% var.)" for a, e in zip(axis_labels, explained))

    from matplotlib.colors import BoundaryNorm, ListedColormap

    def value_of(name, c):
        """The value class index ``c`` stands for (None when unknown)."""
        vals = factor_values.get(name)
        try:
            return float(vals[int(c)]) if vals is not None and 0 <= int(c) < len(vals) else None
        except (TypeError, ValueError):
            return None

    def tick_label(name, c):
        labels = class_labels.get(name)
        if labels is not None:
            try:
                return str(labels[int(c)])
            except (IndexError, TypeError, ValueError):
                pass
        v = value_of(name, c)
        return f"{v:.4g}" if v is not None else str(c)

    def draw(ax, k):
        name = factor_names[k]
        classes = np.unique(factors[:, k])
        n_classes = len(classes)
        named = name in class_labels or name in factor_values
        categorical = name in class_labels or (name not in factor_values and n_classes <= 10)
        if n_classes <= 10:  # one colour per class, ticks at the classes
            codes = np.searchsorted(classes, f[:, k])
            if categorical:  # unordered classes (shape): distinct hues
                cmap = ListedColormap(plt.get_cmap("tab10").colors[:n_classes])
            else:  # few ordered values (scale): steps of an ordered colour scale
                cmap = ListedColormap(plt.get_cmap("twilight" if name in cyclic else "viridis")(
                    np.linspace(0.0, 1.0 if name not in cyclic else 1.0 - 1.0 / n_classes, n_classes)))
            norm = BoundaryNorm(np.arange(n_classes + 1) - 0.5, n_classes)
            sc = ax.scatter(p[:, 0], p[:, 1], c=codes, cmap=cmap, norm=norm, s=size, alpha=0.75, linewidths=0, rasterized=True)
            cb = plt.colorbar(sc, ax=ax, fraction=0.046, pad=0.03, ticks=np.arange(n_classes))
            cb.set_ticklabels([tick_label(name, c) for c in classes])
        else:  # many ordered values (orientation, positions): a continuous ordered (or cyclic) scale
            vals = [value_of(name, c) for c in classes]
            if name in factor_values and all(v is not None for v in vals):
                colour = np.asarray(vals)[np.searchsorted(classes, f[:, k])]
            else:
                colour, named = f[:, k], False
            sc = ax.scatter(p[:, 0], p[:, 1], c=colour, cmap="twilight" if name in cyclic else "viridis", s=size,
                            alpha=0.75, linewidths=0, rasterized=True)
            cb = plt.colorbar(sc, ax=ax, fraction=0.046, pad=0.03)
        unit = factor_units.get(name)
        cb.set_label((f"{name} ({unit})" if unit else name) if named else f"{name} class")
        ax.set_title(f"coloured by {factor_names[k]} ({n_classes} values)", fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)

    n = factors.shape[1]
    n_cols = min(n, 3)
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(max(4.6 * n_cols, 6.0), max(4.0 * n_rows, 5.0)), squeeze=False)
    for k in range(n):
        draw(axes.flat[k], k)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=90)
    written = [path]
    if separate:
        for k in range(n):
            fig, ax = plt.subplots(figsize=(5.0, 4.2))
            draw(ax, k)
            if title:
                ax.set_title(f"{title}\ncoloured by {factor_names[k]}", fontsize=10)
            fig.tight_layout()
            out = path.with_name(f"{path.stem}_{factor_names[k]}.png")
            save_figure(fig, out, dpi=90)
            written.append(out)
    return written


@torch.no_grad()
def latent_traversals(
    model: nn.Module,
    x,
    path: str | Path | None = None,
    dims: Sequence[int] | None = None,
    n_steps: int = 9,
    span: float = 2.5,
    device=None,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    reference: bool = True,
) -> Tensor:
    """Decode sweeps of single latent dimensions around an image's code.

    ``x``: one image (C, H, W) or a batch whose first image is used. Its encoder mean is the base
    code; row ``r`` sets dimension ``dims[r]`` to each of ``n_steps`` values evenly spaced in
    ``[-span, span]`` (the prior's ±2.5σ by default), the other dimensions fixed. Returns the
    decoded mean images, (len(dims), n_steps, C, H, W) on the CPU; with ``path`` also saves the grid
    (rows: dimensions, columns: values, each column headed by its value; with ``reference`` a first
    column repeats the input image, and each row label gives the dimension's own code value).
    """
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}")
    images = _images(x)
    if images.dim() == 3:
        images = images[None]
    dev = _model_device(model, device)
    model.to(dev)
    with eval_mode(model):
        xb = images[:1].to(dev)
        if not xb.is_floating_point():
            xb = xb.float()
        loc, _ = model.encode(xb)
        d_total = loc.shape[1]
        dims = list(range(d_total)) if dims is None else [int(d) for d in dims]
        bad = [d for d in dims if not 0 <= d < d_total]
        if bad or not dims:
            raise ValueError(f"dims must be indices in 0..{d_total - 1}; got {dims}")
        values = torch.linspace(-float(span), float(span), int(n_steps), device=dev, dtype=loc.dtype)
        z = loc.repeat(len(dims) * int(n_steps), 1).view(len(dims), int(n_steps), d_total)
        for r, d in enumerate(dims):
            z[r, :, d] = values
        out = _to_mean_image(model, model.decode(z.view(-1, d_total)))
        grid = out.view(len(dims), int(n_steps), *out.shape[1:]).cpu()
    if path is not None:
        labels = list(row_labels) if row_labels is not None else [f"z{d}" for d in dims]
        base = loc[0].detach().cpu()
        labels = [f"{lab}\n(code {float(base[d]):+.2f})" for lab, d in zip(labels, dims)]
        cols = [f"{float(v):+.2g}" for v in values.cpu()]
        rows = list(grid)
        if reference:
            ref = xb[:1].float().clamp(0, 1).cpu()
            rows = [torch.cat([ref, r]) for r in rows]
            cols = ["input"] + cols
        save_image_grid(rows, path, row_labels=labels, title=title, cell_inches=0.62, col_labels=cols)
    return grid


def plot_per_dim_kl(kl_by_run: dict[str, np.ndarray], path: str | Path, threshold: float = 0.01, title: str | None = None) -> Path:
    """Bar chart of per-dimension KL (nats) for one or several runs (e.g. one per β); log scale."""
    plt = _pyplot()
    names = list(kl_by_run)
    if not names:
        raise ValueError("kl_by_run is empty")
    d = len(next(iter(kl_by_run.values())))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * d * max(1, len(names)) ** 0.5 + 2), 3.6))
    for i, name in enumerate(names):
        ax.bar(np.arange(d) + (i - (len(names) - 1) / 2) * width, np.maximum(kl_by_run[name], 1e-4), width, label=name)
    ax.axhline(threshold, color="k", lw=0.8, ls=":", label=f"{threshold} nat (active above)")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(d))
    ax.set_xticklabels([f"z{j}" for j in range(d)], fontsize=8)
    ax.set_ylabel("mean KL(q(z_d|x) || N(0,1)) [nats]")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title or "per-dimension KL")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=90)
    return path


@torch.no_grad()
def latent_plane_grid(
    model: nn.Module,
    path: str | Path | None = None,
    n: int = 15,
    quantile: float = 0.05,
    device=None,
    title: str | None = None,
) -> tuple[Tensor, np.ndarray]:
    """Decode an ``n`` x ``n`` grid over a 2-d latent plane (the manifold plot of Kingma & Welling).

    The grid's values on each axis are standard-Normal quantiles evenly spaced from ``quantile`` to
    ``1 - quantile``, so equal areas of prior mass get equal room. Returns ``(images (n, n, C, H, W)
    on the CPU, values (n,))``; row ``i`` has ``z2 = values[n - 1 - i]`` (up is positive), column
    ``j`` has ``z1 = values[j]``. With ``path`` the grid is saved as one tiled PNG with the z values
    on its axes.

    >>> from vae.model import VAE
    >>> from vae.nets import MLPEncoder, MLPDecoder
    >>> from vae.priors import StandardNormal
    >>> m = VAE(MLPEncoder(2, (1, 4, 4), (8,)), MLPDecoder(2, (1, 4, 4), (8,)), StandardNormal(2))
    >>> images, values = latent_plane_grid(m, n=5)
    >>> tuple(images.shape), round(float(values[2]), 6)
    ((5, 5, 1, 4, 4), 0.0)
    """
    if not 0 < float(quantile) < 0.5:
        raise ValueError(f"quantile must be in (0, 0.5); got {quantile!r}")
    if int(n) < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    if getattr(model, "latent_dim", None) != 2:
        raise ValueError(f"latent_plane_grid needs a model with a 2-d latent; "
                         f"this one has {getattr(model, 'latent_dim', 'no')} latent dimensions")
    n = int(n)
    dev = _model_device(model, device)
    probs = torch.linspace(float(quantile), 1.0 - float(quantile), n, dtype=torch.float64)
    values = torch.distributions.Normal(0.0, 1.0).icdf(probs)
    values = 0.5 * (values - values.flip(0))  # exactly antisymmetric: the middle value is 0
    z1 = values.repeat(n)                       # columns: z1 increasing
    z2 = values.flip(0).repeat_interleave(n)    # rows: z2 decreasing, so up is positive
    z = torch.stack([z1, z2], 1).to(dev, torch.float32)
    with eval_mode(model):
        out = _to_mean_image(model, model.decode(z)).cpu()
    images = out.view(n, n, *out.shape[1:])
    if path is not None:
        _save_plane(images, values.numpy(), Path(path), title)
    return images, values.numpy()


def _save_plane(images: Tensor, values: np.ndarray, path: Path, title: str | None) -> Path:
    plt = _pyplot()
    n, _, c, h, w = images.shape
    tiles = images.clamp(0, 1).permute(0, 3, 1, 4, 2).reshape(n * h, n * w, c).numpy()
    fig, ax = plt.subplots(figsize=(8.0, 8.0))
    ax.imshow(tiles[..., 0] if c == 1 else tiles, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    centres = np.arange(n) * w + (w - 1) / 2
    step = max(1, n // 8)
    ax.set_xticks(centres[::step])
    ax.set_xticklabels([f"{v:.2f}" for v in values[::step]])
    ax.set_yticks(centres[::step])
    ax.set_yticklabels([f"{v:.2f}" for v in values[::-1][::step]])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title or "decoded latent plane")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=90)
    return path
