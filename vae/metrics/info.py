"""Information-theory building blocks shared by the metrics: discretisation, joint counts, the
mutual-information matrix and entropies, all plug-in estimates in nats, vectorised over the points.

Conventions are disentanglement_lib's (``histogram_discretizer``, ``sklearn.metrics.mutual_info_score``):
each latent dimension is binned on its own into ``n_bins`` equal-width bins with exactly
``np.histogram``'s edges; a value gets the bin ``np.digitize(x, edges[:-1])`` gives it, minus one
(codes ``0 .. n_bins-1``; the maximum lands in the last bin). See :func:`discretize`.

>>> codes = discretize(np.array([[0.0], [0.5], [1.0], [0.2]]), n_bins=2)
>>> factors = np.array([[0], [1], [1], [0]])
>>> float(mutual_information_matrix(joint_counts(codes, factors, 2))[0, 0]) == float(entropy(factors)[0])
True
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "discretize",
    "histogram_edges",
    "joint_counts",
    "mutual_information_matrix",
    "discrete_mutual_info",
    "entropy",
]

# Factor columns whose values are small non-negative integers are counted directly; anything else
# (negative, huge or non-integer labels) is first relabelled 0..C-1 with np.unique.
_DIRECT_LABEL_LIMIT = 1 << 12
# Factors are counted jointly in groups whose product of class counts stays below this.
_GROUP_LIMIT = 4096


def _check_latents(latents) -> np.ndarray:
    latents = np.asarray(latents)
    if latents.ndim != 2:
        raise ValueError(f"latents must be a 2-d (N, D) array; got shape {latents.shape}")
    if latents.shape[0] == 0:
        raise ValueError("latents has no rows (N = 0)")
    if not np.issubdtype(latents.dtype, np.number) or np.issubdtype(latents.dtype, np.complexfloating):
        raise ValueError(f"latents must be real numbers; got dtype {latents.dtype}")
    if not np.all(np.isfinite(latents)):
        raise ValueError("latents contain NaN or Inf; the metrics need finite codes")
    return latents


def _check_factors(factors, n: int | None = None) -> np.ndarray:
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.ndim != 2:
        raise ValueError(f"factors must be a 2-d (N, K) array of class labels; got shape {factors.shape}")
    if factors.shape[1] == 0:
        raise ValueError("factors has no columns (K = 0)")
    if n is not None and factors.shape[0] != n:
        raise ValueError(f"latents have {n} rows but factors have {factors.shape[0]}; they must match")
    return factors


def _edges_from_range(lo, hi, n_bins: int) -> np.ndarray:
    """``np.histogram``'s edges for data whose min is ``lo`` and max is ``hi`` (numpy scalars)."""
    return np.histogram_bin_edges(np.array([lo, hi]), int(n_bins))


def _check_bins(n_bins) -> int:
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    return int(n_bins)


def histogram_edges(latents, n_bins: int = 20) -> np.ndarray:
    """(D, n_bins + 1) bin edges, row ``d`` equal to ``np.histogram(latents[:, d], n_bins)[1]``.

    numpy's edges depend only on the column's min, max and dtype, so they are computed from those
    (same function, same dtype), without a pass per column.
    """
    latents = _check_latents(latents)
    n_bins = _check_bins(n_bins)
    lo, hi = latents.min(axis=0), latents.max(axis=0)
    return np.stack([_edges_from_range(a, b, n_bins) for a, b in zip(lo, hi)])


def discretize(latents, n_bins: int = 20) -> np.ndarray:
    """Bin each column of ``latents`` (N, D) separately into ``n_bins`` equal-width bins.

    Returns (N, D) codes (uint8 when ``n_bins <= 256``, else int64) in ``0 .. n_bins - 1``, equal to
    disentanglement_lib's ``np.digitize(x, np.histogram(x, n_bins)[1][:-1]) - 1`` column by column:
    the code is the number of inner edges ``e_1 .. e_{n_bins-1}`` that are ``<= x`` (the max is in
    the last bin). Computed exactly by counting comparisons against numpy's own edges —
    branch-free and vectorised over the points; no floating-point division that could put a value
    sitting on an edge into the neighbouring bin.

    >>> discretize(np.array([[0.0], [0.5], [1.0]]), n_bins=2).ravel().tolist()
    [0, 1, 1]
    """
    latents = _check_latents(latents)
    n_bins = _check_bins(n_bins)
    cols = np.ascontiguousarray(latents.T)  # (D, N): each dimension contiguous
    lo, hi = cols.min(axis=1), cols.max(axis=1)
    dtype = np.uint8 if n_bins <= 256 else np.int64
    out = np.zeros(cols.shape, dtype=dtype)
    mask = np.empty(cols.shape[1], dtype=bool)
    for d in range(cols.shape[0]):  # a loop over the D dimensions, not the points
        edges = _edges_from_range(lo[d], hi[d], n_bins)
        acc = out[d]
        for edge in edges[1:-1]:
            np.greater_equal(cols[d], edge, out=mask)
            acc += mask
    return out.T


def _factor_codes(factors: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(N, K) labels -> (N, K) int64 codes in ``0 .. C_k - 1`` (may include empty classes) and C_k."""
    out = np.empty(factors.shape, dtype=np.int64)
    sizes = []
    for k in range(factors.shape[1]):
        col = factors[:, k]
        if (
            np.issubdtype(col.dtype, np.integer)
            and col.min() >= 0
            and col.max() < _DIRECT_LABEL_LIMIT
        ):
            out[:, k] = col
            sizes.append(int(col.max()) + 1)
        else:
            _, inv = np.unique(col, return_inverse=True)
            out[:, k] = inv.ravel()
            sizes.append(int(inv.max()) + 1)
    return out, sizes


def _group_factors(sizes: list[int], limit: int = _GROUP_LIMIT) -> list[list[int]]:
    """Consecutive factors grouped while the product of their class counts stays <= ``limit``."""
    groups, current, prod = [], [], 1
    for k, c in enumerate(sizes):
        if current and prod * c > limit:
            groups.append(current)
            current, prod = [], 1
        current.append(k)
        prod *= c
    groups.append(current)
    return groups


def joint_counts(codes, factors, n_bins: int | None = None) -> np.ndarray:
    """Joint counts (D, n_bins, K, C) of (binned latent d = b, factor k = c), C the most classes.

    ``codes``: (N, D) ints in ``0 .. n_bins-1`` (from :func:`discretize`); ``factors``: (N, K)
    labels. Classes of factor ``k`` are its sorted distinct labels (or the labels themselves when
    they are small non-negative ints); entries beyond a factor's classes are zero.

    How: factors are grouped (dSprites: shape·scale·orientation = 720 joint classes, posX·posY =
    1,024), each group's joint class ``g`` is one integer, and for every latent dimension one
    ``np.bincount`` of ``b * P + g`` gives the (n_bins, P) table, marginalised to each factor of the
    group. Work: D x (number of groups) bincounts over the N points — vectorised over the points.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, D); got shape {codes.shape}")
    factors = _check_factors(factors, codes.shape[0])
    if n_bins is None:
        n_bins = int(codes.max()) + 1
    if codes.min() < 0 or codes.max() >= n_bins:
        raise ValueError(f"codes must lie in 0 .. {n_bins - 1}")
    fcodes, sizes = _factor_codes(factors)
    n_dims, n_factors = codes.shape[1], factors.shape[1]
    out = np.zeros((n_dims, n_bins, n_factors, max(sizes)), dtype=np.int64)
    cols = np.ascontiguousarray(codes.T).astype(np.int64, copy=False)  # (D, N)
    for group in _group_factors(sizes):
        shape = [sizes[k] for k in group]
        prod = int(np.prod(shape))
        g = np.ravel_multi_index(tuple(fcodes[:, k] for k in group), shape)  # joint class of the group
        for d in range(n_dims):
            table = np.bincount(cols[d] * prod + g, minlength=n_bins * prod).reshape([n_bins] + shape)
            for i, k in enumerate(group):
                others = tuple(1 + j for j in range(len(group)) if j != i)
                out[d, :, k, : sizes[k]] = table.sum(axis=others) if others else table
    return out


def _plugin_entropy(counts: np.ndarray, axis: int = -1) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=axis, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    logp = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logp).sum(axis=axis)


def mutual_information_matrix(joint: np.ndarray) -> np.ndarray:
    """(D, K) plug-in mutual information in nats from joint counts (D, n_bins, K, C).

    ``m[d, k] = sum_{b,c} p(b,c) log(p(b,c) / (p(b) p(c)))`` with the empirical probabilities, as
    ``sklearn.metrics.mutual_info_score``; clipped at 0 against rounding like sklearn.
    """
    joint = np.asarray(joint, dtype=np.float64)
    if joint.ndim != 4:
        raise ValueError(f"joint counts must be (D, n_bins, K, C); got shape {joint.shape}")
    n = joint.sum(axis=(1, 3), keepdims=True)  # (D, 1, K, 1): points per (d, k) = N
    row = joint.sum(axis=3, keepdims=True)  # (D, n_bins, K, 1): latent-bin counts
    col = joint.sum(axis=1, keepdims=True)  # (D, 1, K, C): factor-class counts
    nz = joint > 0
    ratio = np.divide(joint * n, row * col, out=np.ones_like(joint), where=nz)
    terms = np.where(nz, joint / np.where(n > 0, n, 1.0) * np.log(ratio), 0.0)
    return np.clip(terms.sum(axis=(1, 3)), 0.0, None)


def entropy(factors) -> np.ndarray:
    """(K,) plug-in entropy in nats of each factor column (= ``mutual_info_score(y, y)``)."""
    factors = _check_factors(factors)
    fcodes, sizes = _factor_codes(factors)
    return np.array([_plugin_entropy(np.bincount(fcodes[:, k], minlength=c)) for k, c in enumerate(sizes)])


def discrete_mutual_info(latents, factors, n_bins: int = 20) -> np.ndarray:
    """(D, K) plug-in MI in nats between each binned latent (:func:`discretize`) and each factor:
    disentanglement_lib's ``discrete_mutual_info(make_discretizer(mus), ys)``, vectorised."""
    latents = _check_latents(latents)
    factors = _check_factors(factors, latents.shape[0])
    return mutual_information_matrix(joint_counts(discretize(latents, n_bins), factors, n_bins))
