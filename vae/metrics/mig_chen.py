"""MIG with Chen et al. 2018's own estimator (β-TCVAE's ``metric_helpers/mi_metric.py``): no
binning, entropies of the aggregate posterior estimated by Monte Carlo on sampled codes.

A *different estimator* from :func:`vae.metrics.mig` (disentanglement_lib's, on binned means):
the two numbers are not comparable, which is why this one has its own name. It needs the encoder's
``loc`` and ``scale``, so it takes arrays only (not a representation function).
"""
from __future__ import annotations

import math

import numpy as np

from vae.metrics.info import _check_factors, _check_latents, _factor_codes, entropy
from vae.metrics.mig import MIGResult, sample_codes

__all__ = ["mig_chen"]


def _mc_entropy(z, loc, scale, chunk_s: int = 512, chunk_m: int = 4096):
    """(D,) Monte-Carlo entropy of the aggregate posterior per dimension, Chen et al.'s
    ``estimate_entropies``: ``-mean_s log( (1/M) sum_m N(z[s, d]; loc[m, d], scale[m, d]) )``.
    ``z`` (S, D), ``loc``/``scale`` (M, D) float64 torch tensors; chunked over S and M."""
    import torch

    s_n, m_n = z.shape[0], loc.shape[0]
    log_norm = -0.5 * math.log(2 * math.pi)
    total = torch.zeros(z.shape[1], dtype=torch.float64, device=z.device)
    for a in range(0, s_n, chunk_s):
        zs = z[a : a + chunk_s, None, :]  # (s, 1, D)
        acc = torch.full((zs.shape[0], z.shape[1]), -math.inf, dtype=torch.float64, device=z.device)
        for b in range(0, m_n, chunk_m):
            mu, sd = loc[None, b : b + chunk_m], scale[None, b : b + chunk_m]
            logp = log_norm - torch.log(sd) - 0.5 * ((zs - mu) / sd) ** 2  # (s, m, D)
            acc = torch.logaddexp(acc, torch.logsumexp(logp, dim=1))
        total += (acc - math.log(m_n)).sum(dim=0)
    return -(total / s_n)


def mig_chen(loc, scale, factors, n_samples: int = 10_000, seed: int = 0, device=None) -> MIGResult:
    """MIG with **Chen et al. 2018's estimator** (β-TCVAE, ``metric_helpers/mi_metric.py``) — a
    different estimator from :func:`mig` (disentanglement_lib); the two are not comparable.

    Inputs: the encoder's ``loc`` and ``scale`` (N, D) of q(z|x) for the whole data set (Chen et al.
    use all 737,280 dSprites images and 4 factors: scale, orientation, posX, posY — not shape) and
    ``factors`` (N, K) classes. No binning: for each latent d,
    ``I(z_d; v_k) = H(z_d) - sum_v p(v_k = v) H(z_d | v_k = v)``, every entropy estimated by Monte
    Carlo on sampled codes ``z ~ q(z|x)`` of ``min(n_samples, N)`` random points of the set (or of
    the subset with ``v_k = v``), the density being the mixture ``(1/M) sum_m q(z_d | x_m)`` over all
    M points of that set. Score per factor ``(top1 - top2) / H(v_k)`` (``H`` the plug-in entropy,
    ``log |values|`` on a full grid); MIG their mean. ``result.n_bins`` is 0 (no bins) and
    ``result.estimator`` is ``"chen2018"``. Cost: ~``n_samples x N x D`` Gaussian log-densities per
    entropy (GPU for the full data set: pass ``device="cuda"``).
    """
    import torch

    loc = _check_latents(loc)
    scale = np.asarray(scale)
    if scale.shape != loc.shape:
        raise ValueError(f"loc and scale must have the same shape; got {loc.shape} and {scale.shape}")
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError("scale must be finite and > 0")
    factors = _check_factors(factors, loc.shape[0])
    if loc.shape[1] < 2:
        raise ValueError(f"MIG needs at least 2 latent dimensions; got D = {loc.shape[1]}")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    gen = np.random.default_rng(seed)
    z_all = torch.as_tensor(sample_codes(loc, scale, seed=seed), device=dev)
    loc_t = torch.as_tensor(np.asarray(loc, dtype=np.float64), device=dev)
    scale_t = torch.as_tensor(np.asarray(scale, dtype=np.float64), device=dev)

    def entropy_of(rows):
        pick = rows if len(rows) <= n_samples else np.sort(gen.choice(rows, int(n_samples), replace=False))
        idx = torch.as_tensor(rows, device=dev)
        return _mc_entropy(z_all[torch.as_tensor(pick, device=dev)], loc_t[idx], scale_t[idx]).cpu().numpy()

    n = loc.shape[0]
    h_z = entropy_of(np.arange(n))  # (D,)
    fcodes, sizes = _factor_codes(factors)
    h_v = entropy(factors)
    m = np.zeros((loc.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        cond = np.zeros(loc.shape[1])
        for v in range(sizes[k]):
            rows = np.flatnonzero(fcodes[:, k] == v)
            if len(rows):
                cond += len(rows) / n * entropy_of(rows)
        m[:, k] = np.clip(h_z - cond, 0.0, None)
    excluded = tuple(int(j) for j in np.flatnonzero(h_v <= 0.0))
    if len(excluded) == factors.shape[1]:
        raise ValueError("every factor takes a single value; MIG is undefined (no factor varies)")
    sorted_m = np.sort(m, axis=0)[::-1]
    per_factor = np.full(factors.shape[1], np.nan)
    keep = h_v > 0.0
    per_factor[keep] = (sorted_m[0] - sorted_m[1])[keep] / h_v[keep]
    return MIGResult(score=float(np.mean(per_factor[keep])), per_factor=per_factor, mutual_info=m, entropy=h_v,
                     best_latent=np.argmax(m, axis=0), n_bins=0, n_points=int(n), excluded=excluded,
                     estimator="chen2018")
