"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018), the
disentanglement_lib recipe (``dci`` with ``compute_importance_gbt``).

1. **Points**: ``num_train`` = 10,000 training and ``num_test`` = 5,000 test points (codes, factors).
2. **Importances**: for each factor ``k`` a ``GradientBoostingClassifier`` (scikit-learn's defaults:
   100 trees of depth 3, learning rate 0.1) predicts factor ``k``'s class from the whole code;
   ``R[d, k] = |feature_importances_[d]|`` (each column sums to 1: impurity-decrease importances).
   *Informativeness* is that classifier's accuracy, averaged over the factors, on the training and
   on the test points (the library calls these ``informativeness_train/test``; they are accuracies,
   higher is better — not Eastwood & Williams' prediction error).
3. **Disentanglement**: per code ``D_d = 1 - H_K(P_d.)`` with ``P_dk = (R_dk + 1e-11) / sum_k (R_dk +
   1e-11)`` and ``H_K`` the entropy in base K; the score is ``sum_d rho_d D_d`` with ``rho_d =
   sum_k R_dk / sum R`` (a dimension no tree uses weighs nothing). **Completeness**: per factor
   ``C_k = 1 - H_D(P_.k)`` with the column normalised the same way, weighted by
   ``sum_d R_dk / sum R``. The ``1e-11`` is the library's; an all-zero ``R`` gets uniform weights.

Deliberate deviations: the boosted trees get ``random_state=seed`` (the library leaves it unset,
so its tie-breaking between equally good splits is not reproducible), and they see the code
dimensions in a *canonical order* — the lexicographic order of the training columns — with the
importances mapped back: scikit-learn's trees credit the first-visited of two features that make
the same split, so without this, merely permuting the dimensions moved D and C by up to ~0.01 in
our tests; with it DCI is exactly invariant to permuting them (inputs already in that order are
fitted in the given order, as the library does); a factor with a single class
among the training points is left out with a warning (NaN entries; the library's classifier would
raise); with one factor left ``D_d = 1`` (base-1 entropy is undefined), with one code dimension
``C_k = 1``. ``n_jobs`` fits the factors' classifiers in parallel (joblib threads), the same numbers.

Cost: one tree per class per boosting stage, so dSprites' orientation (40 classes) alone is 4,000
trees; the whole recipe took ~225 CPU seconds at 10,000 + 5,000 points in
``benchmarks/bench_metrics.py`` (the same as the library's way: the estimator is the cost).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np

from vae.metrics._common import DEFAULT_CHUNK, MetricResult, jsonable, observational_sets, varying_factor_mask

__all__ = ["DCIResult", "dci", "disentanglement_completeness", "gbt_importance", "canonical_column_order"]

EPS = 1e-11


@dataclass
class DCIResult(MetricResult):
    """``score`` = ``disentanglement``; ``completeness``; ``informativeness_train`` / ``_test`` (mean
    accuracies); ``importance`` (D, K); ``per_code`` (D,) disentanglement; ``per_factor`` (K,)
    completeness; ``per_factor_informativeness`` (K,) test accuracy; ``excluded`` factors."""

    score: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray = field(repr=False)
    per_code: np.ndarray = field(repr=False)
    per_factor: np.ndarray = field(repr=False)
    per_factor_informativeness: np.ndarray = field(repr=False)
    n_train: int = 0
    n_test: int = 0
    excluded: tuple[int, ...] = ()
    factor_names: tuple[str, ...] | None = None

    metric: ClassVar[str] = "dci"

    @property
    def disentanglement(self) -> float:
        return self.score

    def to_dict(self, factor_names=None) -> dict:
        names = self.names(factor_names)
        return {"metric": self.metric, "score": jsonable(self.score), "disentanglement": jsonable(self.score),
                "completeness": jsonable(self.completeness), "informativeness_train": jsonable(self.informativeness_train),
                "informativeness_test": jsonable(self.informativeness_test),
                "per_factor": self.keyed(self.per_factor, factor_names),
                "per_factor_informativeness": self.keyed(self.per_factor_informativeness, factor_names),
                "per_code": jsonable(self.per_code), "importance": jsonable(self.importance),
                "n_train": self.n_train, "n_test": self.n_test, "excluded": [names[j] for j in self.excluded]}


def _one_minus_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """1 - entropy (base = size of ``axis``) of ``p + EPS`` normalised along ``axis``."""
    n = p.shape[axis]
    if n < 2:
        return np.ones(p.shape[1 - axis])
    q = (p + EPS) / (p + EPS).sum(axis=axis, keepdims=True)
    return 1.0 + (q * np.log(q)).sum(axis=axis) / np.log(n)


def disentanglement_completeness(importance) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``(disentanglement, completeness, per_code (D,), per_factor (K,))`` from a (D, K) importance
    matrix, with the module's formulas (``1e-11`` smoothing, importance weights).

    >>> d, c, _, _ = disentanglement_completeness(np.eye(3))
    >>> round(d, 8), round(c, 8)
    (1.0, 1.0)
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    if r.ndim != 2:
        raise ValueError(f"importance must be (D, K); got shape {r.shape}")
    per_code = _one_minus_entropy(r, axis=1)
    per_factor = _one_minus_entropy(r, axis=0)
    w = r if r.sum() > 0 else np.ones_like(r)
    return (float(per_code @ (w.sum(1) / w.sum())), float(per_factor @ (w.sum(0) / w.sum())), per_code, per_factor)


def canonical_column_order(x) -> np.ndarray:
    """(D,) the order of the columns of ``x`` (N, D) sorted lexicographically (by row 0, then row 1,
    ...): it depends only on the set of columns, not on how they were ordered (stable for equal ones)."""
    x = np.asarray(x)
    return np.lexsort(x[::-1]) if x.shape[0] else np.arange(x.shape[1])


def gbt_importance(x_train, y_train, x_test, y_test, *, seed=0, gbt_params: dict | None = None,
                   n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(R (D, K), train accuracy (K,), test accuracy (K,))``: one gradient-boosted classifier per factor."""
    from sklearn.ensemble import GradientBoostingClassifier

    params = dict(gbt_params or {})
    params.setdefault("random_state", seed if isinstance(seed, (int, np.integer)) else None)
    order = canonical_column_order(x_train)
    x_train, x_test = np.ascontiguousarray(x_train[:, order]), np.ascontiguousarray(x_test[:, order])

    def fit(k):
        model = GradientBoostingClassifier(**params).fit(x_train, y_train[:, k])
        importance = np.empty(len(order))
        importance[order] = np.abs(model.feature_importances_)  # back to the caller's dimensions
        return (importance, np.mean(model.predict(x_train) == y_train[:, k]),
                np.mean(model.predict(x_test) == y_test[:, k]))

    ks = range(y_train.shape[1])
    if n_jobs is not None and n_jobs != 1:
        from joblib import Parallel, delayed

        out = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(fit)(k) for k in ks)  # tree fitting releases the GIL
    else:
        out = [fit(k) for k in ks]
    return (np.stack([o[0] for o in out], axis=1), np.array([o[1] for o in out], dtype=float),
            np.array([o[2] for o in out], dtype=float))


def dci(representation, ground_truth, *, seed=0, num_train: int = 10_000, num_test: int = 5_000,
        chunk_size: int = DEFAULT_CHUNK, test=None, factor_names: Sequence[str] | None = None,
        gbt_params: dict | None = None, n_jobs: int | None = None) -> DCIResult:
    """DCI of a representation (module docstring; calling convention in :mod:`vae.metrics`).

    ``gbt_params`` override GradientBoostingClassifier's arguments (the recipe: none), e.g.
    ``{"n_estimators": 20}`` for a quick look.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, size=(300, 2))
    >>> z = np.column_stack([y, rng.normal(size=300)])
    >>> res = dci(z, y, gbt_params={"n_estimators": 10})
    >>> round(res.score, 3), round(res.completeness, 3), res.informativeness_test
    (1.0, 1.0, 1.0)
    """
    sets = observational_sets(representation, ground_truth, num_train=num_train, num_test=num_test, seed=seed,
                              chunk_size=chunk_size, test=test, factor_names=factor_names)
    if sets.test_codes is None:
        raise ValueError("DCI needs a test set: num_test must be >= 1")
    keep = varying_factor_mask(sets.train_factors, "DCI")
    k_all = sets.train_factors.shape[1]
    r, acc_tr, acc_te = gbt_importance(sets.train_codes, sets.train_factors[:, keep], sets.test_codes,
                                       sets.test_factors[:, keep], seed=seed, gbt_params=gbt_params, n_jobs=n_jobs)
    d_score, c_score, per_code, per_factor_kept = disentanglement_completeness(r)
    importance = np.zeros((r.shape[0], k_all))
    importance[:, keep] = r
    per_factor = np.full(k_all, np.nan)
    per_factor[keep] = per_factor_kept
    info = np.full(k_all, np.nan)
    info[keep] = acc_te
    return DCIResult(score=d_score, completeness=c_score, informativeness_train=float(acc_tr.mean()),
                     informativeness_test=float(acc_te.mean()), importance=importance, per_code=per_code,
                     per_factor=per_factor, per_factor_informativeness=info, n_train=len(sets.train_codes),
                     n_test=len(sets.test_codes), excluded=tuple(int(j) for j in np.flatnonzero(~keep)),
                     factor_names=sets.factor_names)
