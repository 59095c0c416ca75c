"""Evaluating VAEs: importance-weighted log-likelihood, ELBO per image, reconstruction and sample grids.

The log-likelihood estimate is the one of the VampPrior paper (Tomczak & Welling 2018, S = 5,000):

    log p(x) ≈ logsumexp_s [log p(x|z_s) + log p(z_s) − log q(z_s|x)] − log S,   z_s ~ q(z|x),

a lower bound that tightens (increases) with S; S = 1 gives an unbiased estimate of the ELBO.
Samples are drawn in chunks so that at most ``chunk_size`` (image, sample) pairs go through the
decoder at once: memory stays bounded for any S.

>>> import torch
>>> from vae.model import VAE
>>> from vae.nets import MLPEncoder, MLPDecoder
>>> from vae.priors import StandardNormal
>>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2))
>>> iwae_log_likelihood(vae, torch.ones(3, 1, 2, 2), n_samples=100, seed=0).shape
torch.Size([3])
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from vae.modes import eval_mode
from vae.objectives.iwae import importance_log_weights
from vae.plots import save_image_grid

__all__ = ["iwae_log_likelihood", "elbo_per_image", "log_weights", "reconstruction_grid", "prior_samples_grid"]


def _device_of(module: torch.nn.Module, fallback: torch.device) -> torch.device:
    from vae.device import module_device

    return module_device(module, default=fallback)


def _plan(n_images: int, n_samples: int, chunk_size: int) -> tuple[int, int]:
    """(images per block, samples per chunk) with at most max(chunk_size, 1) pairs per pass."""
    if n_samples >= chunk_size:
        return 1, chunk_size
    return max(1, min(n_images, chunk_size // n_samples)), n_samples


def log_weights(vae, x: Tensor, n_samples: int, chunk_size: int = 1000, seed: int | None = None) -> Iterator[tuple[slice, Tensor]]:
    """Yield ``(image slice, log w)`` with log w = log p(x|z) + log p(z) − log q(z|x), shape (S_c, b),
    over blocks of images and chunks of samples (the log-weights of
    :func:`vae.objectives.iwae.importance_log_weights`, which the IWAE training bound shares). Call
    inside eval mode / no_grad (the public functions do)."""
    if n_samples < 1 or chunk_size < 1:
        raise ValueError(f"n_samples and chunk_size must be positive integers; got {n_samples}, {chunk_size}")
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device).manual_seed(int(seed))
    prior = vae.prior.distribution()
    b, s_c = _plan(len(x), n_samples, chunk_size)
    for start in range(0, len(x), b):
        idx = slice(start, min(start + b, len(x)))
        xb = x[idx]
        loc, scale = vae.encode(xb)
        done = 0
        while done < n_samples:
            s = min(s_c, n_samples - done)
            eps = torch.randn((s, *loc.shape), generator=gen, device=loc.device, dtype=loc.dtype)
            z = loc + scale * eps                                                   # (s, b, D)
            yield idx, importance_log_weights(vae, xb, z, loc, scale, prior)        # (s, b)
            done += s


def _prepare(vae, x: Tensor) -> tuple[Tensor, torch.device]:
    if not torch.is_tensor(x) or x.dim() < 2:
        raise ValueError(f"x must be a tensor of images (N, C, H, W); got {getattr(x, 'shape', type(x))}")
    return x.to(_device_of(vae, x.device)), x.device


def iwae_log_likelihood(
    vae,
    x: Tensor,
    n_samples: int = 5000,
    chunk_size: int = 1000,
    seed: int | None = None,
    progress: bool = False,
) -> Tensor:
    """Importance-weighted estimate of log p(x) per image (nats), shape (N,), on x's device.

    ``n_samples``: S importance samples from q(z|x) per image. ``chunk_size``: the most
    (image, sample) pairs decoded at once (memory ∝ chunk_size × image size). ``seed``: a private
    generator for reproducible estimates (else torch's global RNG). The model runs in eval mode
    under ``torch.no_grad`` (its mode is restored afterwards). The NLL is ``-iwae_log_likelihood(...).mean()``.
    """
    x, out_device = _prepare(vae, x)
    lse = torch.full((len(x),), -math.inf, device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)
    with eval_mode(vae), torch.no_grad():
        chunks = log_weights(vae, x, n_samples, chunk_size, seed)
        if progress:
            from tqdm.auto import tqdm

            b, s_c = _plan(len(x), n_samples, chunk_size)
            chunks = tqdm(chunks, total=math.ceil(len(x) / b) * math.ceil(n_samples / s_c), desc="IWAE", leave=False)
        for idx, lw in chunks:
            lse[idx] = torch.logaddexp(lse[idx], torch.logsumexp(lw, dim=0))
    return (lse - math.log(n_samples)).to(out_device)


def elbo_per_image(vae, x: Tensor, n_samples: int = 100, chunk_size: int = 1000, seed: int | None = None) -> Tensor:
    """Monte Carlo ELBO per image (β = 1, whatever ``vae.beta``): mean over S samples of log w, shape (N,)."""
    x, out_device = _prepare(vae, x)
    total = None
    with eval_mode(vae), torch.no_grad():
        for idx, lw in log_weights(vae, x, n_samples, chunk_size, seed):
            if total is None:
                total = torch.zeros(len(x), device=lw.device, dtype=lw.dtype)
            total[idx] += lw.sum(0)
    return (total / n_samples).to(out_device)


def reconstruction_grid(vae, x: Tensor, path: str | Path, n: int = 8, title: str | None = None) -> Path:
    """Save ``n`` images (top row) above their reconstructions (bottom row) as a PNG; returns the path."""
    x, _ = _prepare(vae, x)
    x = x[:n]
    with eval_mode(vae), torch.no_grad():
        recon = vae.reconstruct(x)
    return save_image_grid([x, recon], path, row_labels=["input", "reconstruction"], title=title)


def prior_samples_grid(vae, n: int, path: str | Path, n_cols: int = 8, seed: int | None = None,
                       title: str | None = None) -> Path:
    """Save ``n`` samples (mean of p(x|z), z ~ p(z)) in rows of ``n_cols`` as a PNG; returns the path."""
    if int(n) < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    with eval_mode(vae), torch.no_grad():
        if seed is not None:
            device = _device_of(vae, torch.device("cpu"))
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                images = vae.sample(int(n))
        else:
            images = vae.sample(int(n))
    rows = [images[i : i + n_cols] for i in range(0, len(images), n_cols)]
    return save_image_grid(rows, path, title=title)
