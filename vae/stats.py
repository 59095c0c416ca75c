"""Across-seed summaries: the mean with a percentile bootstrap interval.

With few seeds (the study has 3 per β) the bootstrap distribution of the mean is computed
*exactly*, by enumerating all n^n resamples (27 for n = 3), so the interval is a property of the
sample, not of a random number generator; larger samples use ``n_boot`` seeded resamples.

>>> r = bootstrap_mean_ci([0.0, 1.0, 2.0])
>>> r["mean"], round(r["lo"], 4), round(r["hi"], 4), r["exact"]
(1.0, 0.2167, 1.7833, True)
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

__all__ = ["bootstrap_mean_ci", "resample_means"]

EXACT_MAX_N = 6  # 6^6 = 46,656 resamples: enumerated exactly up to this sample size


def resample_means(values: Sequence[float], n_boot: int = 10_000, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Means of bootstrap resamples of ``values``: all n^n of them when n <= 6 (``exact=True``),
    else ``n_boot`` uniform resamples under ``seed``. Returns ``(means, exact)``."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"values must be a non-empty 1-d sample; got shape {x.shape}")
    n = len(x)
    if n <= EXACT_MAX_N:
        idx = np.array(list(itertools.product(range(n), repeat=n)), dtype=np.int64)
        return x[idx].mean(axis=1), True
    rng = np.random.default_rng(seed)
    return x[rng.integers(0, n, size=(int(n_boot), n))].mean(axis=1), False


def bootstrap_mean_ci(values: Sequence[float], level: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> dict:
    """``{"mean", "lo", "hi", "level", "n", "exact", "values"}``: the sample mean and the percentile
    bootstrap interval of the mean at ``level`` (``numpy.quantile``, linear interpolation, on the
    resample means of :func:`resample_means`)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    means, exact = resample_means(values, n_boot, seed)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    x = [float(v) for v in values]
    return {"mean": float(np.mean(x)), "lo": float(lo), "hi": float(hi), "level": level, "n": len(x),
            "exact": exact, "values": x}
