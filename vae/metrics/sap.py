"""SAP, the Separated Attribute Predictability score (Kumar et al. 2018), the disentanglement_lib
recipe (``sap_score``, ``continuous_factors=False`` for dSprites).

1. **Points**: ``num_train`` = 10,000 training and ``num_test`` = 5,000 test points.
2. **Score matrix** ``S[d, k]``: discrete factors — the test accuracy of a one-feature linear SVM
   ``LinearSVC(C=0.01, class_weight="balanced")`` trained on code dimension ``d`` alone to predict
   factor ``k`` (one-vs-rest for more than two classes). Continuous factors
   (``continuous=True``) — the squared correlation ``cov(z_d, y_k)^2 / (var z_d var y_k)``
   (``ddof = 1``) on the training points, 0 where ``var z_d <= 1e-12`` (no test set is used).
3. **Score**: for each factor the gap between the two largest entries of its column, ``per_factor``;
   SAP is their mean. D >= 2.

Deliberate deviations: the SVM is solved in the primal (``dual=False``: what scikit-learn's
``dual="auto"`` picks for one feature; the library's era defaulted to the dual, which solves the
same problem but often stopped at ``max_iter`` = 1000 before converging); a factor with one class
among the training points is left out with a warning (NaN entry). The (d, k) fits are a loop over
pairs, each vectorised over the points; the continuous matrix is one matrix product.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np

from vae.metrics._common import DEFAULT_CHUNK, MetricResult, jsonable, observational_sets, varying_factor_mask

__all__ = ["SAPResult", "sap", "sap_score_matrix", "top_two_gap"]


@dataclass
class SAPResult(MetricResult):
    """``score``: SAP; ``per_factor`` (K,) top-two gaps; ``score_matrix`` (D, K)."""

    score: float
    per_factor: np.ndarray
    score_matrix: np.ndarray = field(repr=False)
    continuous: bool = False
    n_train: int = 0
    n_test: int = 0
    excluded: tuple[int, ...] = ()
    factor_names: tuple[str, ...] | None = None

    metric: ClassVar[str] = "sap"

    def to_dict(self, factor_names=None) -> dict:
        names = self.names(factor_names)
        return {"metric": self.metric, "score": jsonable(self.score), "per_factor": self.keyed(self.per_factor, factor_names),
                "score_matrix": jsonable(self.score_matrix), "continuous": self.continuous, "n_train": self.n_train,
                "n_test": self.n_test, "excluded": [names[j] for j in self.excluded]}


def top_two_gap(matrix: np.ndarray) -> np.ndarray:
    """(K,) largest minus second-largest entry of each column of a (D, K) matrix."""
    s = np.sort(matrix, axis=0)
    return s[-1] - s[-2]


def sap_score_matrix(x_train, y_train, x_test=None, y_test=None, *, continuous: bool = False, C: float = 0.01) -> np.ndarray:
    """(D, K) SAP score matrix (module docstring) from codes (N, D) and factor classes (N, K)."""
    x_train, y_train = np.asarray(x_train, dtype=np.float64), np.asarray(y_train)
    if continuous:
        xc = x_train - x_train.mean(0)
        yc = y_train - y_train.mean(0)
        n1 = max(len(x_train) - 1, 1)
        cov = xc.T @ yc / n1
        var_x, var_y = (xc**2).sum(0) / n1, (yc**2).sum(0) / n1
        out = np.divide(cov**2, var_x[:, None] * var_y[None, :], out=np.zeros_like(cov),
                        where=(var_x[:, None] > 1e-12) & (var_y[None, :] > 0))
        return out
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    x_test, y_test = np.asarray(x_test, dtype=np.float64), np.asarray(y_test)
    out = np.zeros((x_train.shape[1], y_train.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for d in range(x_train.shape[1]):  # a loop over (dimension, factor) pairs
            for k in range(y_train.shape[1]):
                clf = LinearSVC(C=C, class_weight="balanced", dual=False).fit(x_train[:, d : d + 1], y_train[:, k])
                out[d, k] = np.mean(clf.predict(x_test[:, d : d + 1]) == y_test[:, k])
    return out


def sap(representation, ground_truth, *, seed=0, num_train: int = 10_000, num_test: int = 5_000,
        continuous: bool = False, chunk_size: int = DEFAULT_CHUNK, test=None,
        factor_names: Sequence[str] | None = None) -> SAPResult:
    """SAP score of a representation (module docstring; calling convention in :mod:`vae.metrics`).

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, size=(600, 2))
    >>> z = np.column_stack([y + 0.1 * rng.normal(size=(600, 2)), rng.normal(size=600)])
    >>> res = sap(z, y)
    >>> bool(res.score > 0.4), res.score_matrix.shape
    (True, (3, 2))
    """
    sets = observational_sets(representation, ground_truth, num_train=num_train, num_test=0 if continuous else num_test,
                              seed=seed, chunk_size=chunk_size, test=test, factor_names=factor_names)
    if sets.train_codes.shape[1] < 2:
        raise ValueError(f"SAP is a gap between the two best dimensions: it needs D >= 2; got {sets.train_codes.shape[1]}")
    if not continuous and sets.test_codes is None:
        raise ValueError("SAP with discrete factors needs a test set: num_test must be >= 1")
    keep = varying_factor_mask(sets.train_factors, "SAP")
    y_te = sets.test_factors[:, keep] if sets.test_factors is not None else None
    m = sap_score_matrix(sets.train_codes, sets.train_factors[:, keep], sets.test_codes, y_te, continuous=continuous)
    k_all = sets.train_factors.shape[1]
    matrix = np.full((m.shape[0], k_all), np.nan)
    matrix[:, keep] = m
    per_factor = np.full(k_all, np.nan)
    per_factor[keep] = top_two_gap(m)
    return SAPResult(score=float(per_factor[keep].mean()), per_factor=per_factor, score_matrix=matrix,
                     continuous=bool(continuous), n_train=len(sets.train_codes),
                     n_test=0 if sets.test_codes is None else len(sets.test_codes),
                     excluded=tuple(int(j) for j in np.flatnonzero(~keep)), factor_names=sets.factor_names)
