"""Closed forms for the Gamma exercise (Q1.4 of ``docs/exercises.md``) and its generalisations.

Model::

    z ~ Exponential(1)                       p(z) = exp(-z),            z >= 0
    x_i | z ~ Exponential(rate z), i=1..n    p(x_i | z) = z exp(-z x_i), x_i >= 0

Variational family::

    q(z) = Gamma(shape alpha, rate theta)

With ``n`` observations and ``S = sum(x)``:

* exact posterior            ``p(z | x) = Gamma(1 + n, 1 + S)``
* log evidence               ``log p(x) = log Gamma(n + 1) - (n + 1) log(1 + S)``
* ELBO                       ``(n + 1 - alpha) digamma(alpha) - (n + 1) log theta
  - (1 + S) alpha / theta + alpha + log Gamma(alpha)``  (from E_q[log z], E_q[z] and the entropy
  of q); for the exercise (n = 1, alpha = 2) this is ``2 - 2 log theta - 2 (x + 1) / theta``
* KL(q || posterior)         ``log p(x) - ELBO``
* optimal rate, alpha fixed  ``theta* = alpha (1 + S) / (1 + n)``  (matches the posterior mean);
  for the exercise ``theta* = x + 1``, where KL = 0 and ELBO = log p(x) = -2 log(x + 1).

Everything here is NumPy/SciPy (float64); no torch import.  ``alpha=None`` everywhere means
"the posterior's shape, 1 + n" -- which is 2 for a single observation, i.e. the exercise's family.

Example:
    >>> round(theta_star(3.0), 12)
    4.0
    >>> round(elbo(4.0, 3.0), 12) == round(log_evidence(3.0), 12) == round(-2 * math.log(4.0), 12)
    True
    >>> kl_to_posterior(4.0, 3.0) < 1e-12
    True
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
from scipy import special, stats

__all__ = [
    "check_data",
    "check_positive",
    "resolve_shape",
    "posterior_params",
    "posterior",
    "log_evidence",
    "elbo",
    "kl_to_posterior",
    "theta_star",
    "optimal_params",
    "q_distribution",
]

ArrayLike = Union[float, Sequence[float], np.ndarray]


def check_data(x: ArrayLike, name: str = "x") -> np.ndarray:
    """Validate observations and return them as a 1-D float64 array.

    Observations of ``Exponential(rate z)`` live in ``[0, inf)``; anything else (negative, NaN,
    +-inf, no observations, non-numbers, arrays of more than one dimension) raises ``ValueError``
    naming the offending value and the support, before any computation happens.

    Example:
        >>> check_data(2.5)
        array([2.5])
        >>> check_data([0.0, 1.2])
        array([0. , 1.2])
        >>> check_data(-1.0)
        Traceback (most recent call last):
        ...
        ValueError: x = -1.0 is outside the support [0, inf) of Exponential(rate z) observations
    """
    if hasattr(x, "detach"):  # a torch tensor: avoid importing torch just to check the type
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or a 1-D sequence of numbers in [0, inf); got {x!r}"
        ) from None
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence; got shape {arr.shape}")
    arr = np.atleast_1d(arr)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one observation in [0, inf)")
    label = (lambda i: name) if arr.size == 1 else (lambda i: f"{name}[{i}]")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{label(i)} = {float(arr[i])!r} is not finite: observations must lie in the support [0, inf)"
        )
    bad = np.flatnonzero(arr < 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{label(i)} = {float(arr[i])!r} is outside the support [0, inf) of Exponential(rate z) "
            "observations"
        )
    return arr


def check_positive(value: ArrayLike, name: str) -> np.ndarray:
    """Validate a positive, finite parameter (scalar or array); return it as float64 array.

    Example:
        >>> float(check_positive(2.0, "theta"))
        2.0
        >>> check_positive(0.0, "theta")
        Traceback (most recent call last):
        ...
        ValueError: theta = 0.0 is not allowed: theta must be a finite number > 0
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}") from None
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad):
        v = float(arr[bad].flat[0]) if arr.ndim else float(arr)
        raise ValueError(f"{name} = {v!r} is not allowed: {name} must be a finite number > 0")
    return arr


def resolve_shape(x: ArrayLike, alpha: float | None = None) -> float:
    """The Gamma shape to use: ``alpha`` if given (validated), else ``1 + n``.

    Example:
        >>> resolve_shape(3.0), resolve_shape([1, 2, 3]), resolve_shape(3.0, alpha=5)
        (2.0, 4.0, 5.0)
    """
    xs = check_data(x)
    if alpha is None:
        return float(1 + xs.size)
    return float(check_positive(alpha, "alpha"))


def posterior_params(x: ArrayLike) -> tuple[float, float]:
    """(shape, rate) of the exact posterior ``p(z | x) = Gamma(1 + n, 1 + sum(x))``.

    Example:
        >>> posterior_params(3.0)
        (2.0, 4.0)
        >>> posterior_params([1.0, 2.0])
        (3.0, 4.0)
    """
    xs = check_data(x)
    return float(1 + xs.size), float(1.0 + xs.sum())


def posterior(x: ArrayLike):
    """The exact posterior as a frozen ``scipy.stats.gamma`` distribution.

    Example:
        >>> round(float(posterior(3.0).mean()), 12)   # shape / rate = 2 / 4
        0.5
    """
    a, b = posterior_params(x)
    return stats.gamma(a, scale=1.0 / b)


def q_distribution(theta: float, alpha: float = 2.0):
    """``q = Gamma(alpha, rate theta)`` as a frozen ``scipy.stats.gamma``.

    Example:
        >>> round(float(q_distribution(4.0).mean()), 12)
        0.5
    """
    th = float(check_positive(theta, "theta"))
    a = float(check_positive(alpha, "alpha"))
    return stats.gamma(a, scale=1.0 / th)


def log_evidence(x: ArrayLike) -> float:
    """``log p(x_1..n) = log Gamma(n + 1) - (n + 1) log(1 + sum(x))``; ``-2 log(x + 1)`` for one x.

    Example:
        >>> round(log_evidence(3.0), 12) == round(-2 * math.log(4.0), 12)
        True
    """
    xs = check_data(x)
    n = xs.size
    return float(special.gammaln(n + 1) - (n + 1) * math.log1p(xs.sum()))


def elbo(theta: ArrayLike, x: ArrayLike, alpha: float | None = None) -> float | np.ndarray:
    """Closed-form ELBO of ``q = Gamma(alpha, rate theta)``; vectorised over ``theta``.

    ``alpha=None`` means ``1 + n`` (= 2 for one observation, the exercise).  For the exercise
    ``ELBO(theta) = 2 - 2 log(theta) - 2 (x + 1) / theta``.

    Example:
        >>> th = 2.5
        >>> round(elbo(th, 3.0), 12) == round(2 - 2 * math.log(th) - 2 * 4.0 / th, 12)
        True
        >>> elbo([1.0, 4.0], 3.0).shape
        (2,)
    """
    xs = check_data(x)
    a = resolve_shape(xs, alpha)
    th = check_positive(theta, "theta")
    n, s = xs.size, xs.sum()
    e_log_z = special.digamma(a) - np.log(th)
    e_z = a / th
    entropy = a - np.log(th) + special.gammaln(a) + (1.0 - a) * special.digamma(a)
    out = n * e_log_z - (1.0 + s) * e_z + entropy  # E_q[log p(x, z)] + H[q]
    return float(out) if np.ndim(out) == 0 else out


def kl_to_posterior(
    theta: ArrayLike, x: ArrayLike, alpha: float | None = None
) -> float | np.ndarray:
    """``KL(q_theta || p(z | x)) = log p(x) - ELBO(theta)`` (closed form, >= 0).

    Example:
        >>> kl_to_posterior(4.0, 3.0) < 1e-12 < kl_to_posterior(2.0, 3.0)
        True
    """
    out = log_evidence(x) - elbo(theta, x, alpha)
    # Cancellation can leave a tiny negative number at the optimum; KL is >= 0 by definition.
    return np.maximum(out, 0.0) if np.ndim(out) else max(float(out), 0.0)


def theta_star(x: ArrayLike, alpha: float | None = None) -> float:
    """Rate maximising the ELBO for a fixed shape: ``alpha (1 + sum x) / (1 + n)``.

    Setting ``d ELBO / d theta = -(n + 1) / theta + (1 + S) alpha / theta^2`` to zero.  With the
    default shape (``1 + n``) this is ``1 + sum(x)``; for the exercise ``theta* = x + 1``.

    Example:
        >>> theta_star(3.0), theta_star([1.0, 2.0]), theta_star([1.0, 2.0], alpha=2.0)
        (4.0, 4.0, 2.6666666666666665)
    """
    xs = check_data(x)
    a = resolve_shape(xs, alpha)
    return float(a * (1.0 + xs.sum()) / (1 + xs.size))


def optimal_params(x: ArrayLike, alpha: float | None = None, learn_shape: bool = False
                   ) -> tuple[float, float]:
    """(alpha*, theta*) of the best q: the posterior's if the shape is learned, else (alpha, θ*).

    Example:
        >>> optimal_params([1.0, 2.0], learn_shape=True)
        (3.0, 4.0)
        >>> optimal_params(3.0, alpha=4.0)
        (4.0, 8.0)
    """
    if learn_shape:
        return posterior_params(x)
    a = resolve_shape(x, alpha)
    return a, theta_star(x, a)
