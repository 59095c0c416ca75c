"""Modularity and explicitness (Ridgeway & Mozer 2018), the disentanglement_lib recipe
(``modularity_explicitness``).

**Modularity** (training points only): ``m[d, k]`` the plug-in mutual information between code
dimension ``d`` binned into ``n_bins`` = 20 equal-width bins (the library's histogram discretizer,
exactly as :func:`vae.metrics.mig`) and factor ``k``. Per code, with ``t_d = max_k m[d, k]^2``,
``modularity_d = 1 - (sum_k m[d, k]^2 - t_d) / (t_d (K - 1))``: 1 when the dimension informs about
one factor only. A dimension with no information at all (``t_d = 0``) scores **0** (the library's
convention — so a pure-noise dimension lowers the score). The score is the mean over dimensions.

**Explicitness**: codes standardised with the training mean and standard deviation (``ddof = 0``);
per factor a ``LogisticRegression()`` (scikit-learn's defaults) on the whole code, and the macro
ROC-AUC of its ``predict_proba`` one-vs-rest over the classes; ``explicitness`` is the mean over
factors on the test points (``explicitness_train`` on the training points).

Deliberate deviations: a constant code dimension is standardised with std 1 instead of 0 (the
library would divide by zero); a class absent from the evaluated points is skipped in the macro
average (the library's ``MultiLabelBinarizer`` would then mismatch the columns and raise); the
AUC is computed with the rank (Mann-Whitney) formula, ties counting one half — the value of
``roc_auc_score``; a factor with one class among the training points is left out with a warning;
with a single factor left, a dimension with any information has modularity 1. Logistic-regression
convergence warnings are not shown; ``converged`` says whether every fit converged.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np

from vae.metrics._common import DEFAULT_CHUNK, MetricResult, jsonable, observational_sets, varying_factor_mask
from vae.metrics.info import discrete_mutual_info

__all__ = ["ModularityResult", "modularity", "modularity_from_mi", "explicitness", "macro_auc"]


@dataclass
class ModularityResult(MetricResult):
    """``score``: modularity; ``per_code`` (D,); ``mutual_info`` (D, K); ``explicitness`` (test) and
    ``explicitness_train``; ``per_factor`` (K,) test explicitness, ``per_factor_train`` (K,)."""

    score: float
    per_code: np.ndarray
    explicitness: float
    explicitness_train: float
    per_factor: np.ndarray
    per_factor_train: np.ndarray = field(repr=False)
    mutual_info: np.ndarray = field(repr=False)
    n_bins: int = 20
    n_train: int = 0
    n_test: int = 0
    converged: bool = True
    excluded: tuple[int, ...] = ()
    factor_names: tuple[str, ...] | None = None

    metric: ClassVar[str] = "modularity"

    @property
    def modularity(self) -> float:
        return self.score

    def to_dict(self, factor_names=None) -> dict:
        names = self.names(factor_names)
        return {"metric": self.metric, "score": jsonable(self.score), "modularity": jsonable(self.score),
                "explicitness": jsonable(self.explicitness), "explicitness_train": jsonable(self.explicitness_train),
                "per_factor": self.keyed(self.per_factor, factor_names),
                "per_factor_train": self.keyed(self.per_factor_train, factor_names),
                "per_code": jsonable(self.per_code), "mutual_info": jsonable(self.mutual_info), "n_bins": self.n_bins,
                "n_train": self.n_train, "n_test": self.n_test, "converged": self.converged,
                "excluded": [names[j] for j in self.excluded]}


def modularity_from_mi(mutual_info) -> np.ndarray:
    """(D,) per-code modularity from a (D, K) mutual-information matrix (module docstring).

    >>> modularity_from_mi(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])).tolist()
    [1.0, 0.0, 0.0]
    """
    sq = np.square(np.asarray(mutual_info, dtype=np.float64))
    top = sq.max(axis=1)
    k = sq.shape[1]
    if k < 2:
        return (top > 0).astype(np.float64)
    delta = np.divide(sq.sum(axis=1) - top, top * (k - 1), out=np.zeros_like(top), where=top > 0)
    return np.where(top > 0, 1.0 - delta, 0.0)


def macro_auc(y, proba, classes) -> float:
    """Mean over ``classes`` (those with positives and negatives in ``y``) of the ROC-AUC of
    ``proba[:, c]`` for ``y == classes[c]``; NaN if no class qualifies. Vectorised rank formula."""
    from scipy.stats import rankdata

    pos = np.asarray(y)[:, None] == np.asarray(classes)[None, :]
    n_pos = pos.sum(axis=0)
    n_neg = len(pos) - n_pos
    ok = (n_pos > 0) & (n_neg > 0)
    if not ok.any():
        return float("nan")
    ranks = rankdata(proba[:, ok], axis=0)  # average ranks: ties count one half
    u = (ranks * pos[:, ok]).sum(axis=0) - n_pos[ok] * (n_pos[ok] + 1) / 2.0
    return float(np.mean(u / (n_pos[ok] * n_neg[ok])))


def explicitness(x_train, y_train, x_test, y_test, *, seed=0) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(train AUC (K,), test AUC (K,), converged)`` of one logistic regression per factor on
    standardised codes (module docstring)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    xs_tr, xs_te = (x_train - mean) / std, (x_test - mean) / std
    tr, te, converged = [], [], True
    rs = seed if isinstance(seed, (int, np.integer)) else None
    for k in range(y_train.shape[1]):  # a loop over factors
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf = LogisticRegression(random_state=rs).fit(xs_tr, y_train[:, k])
        converged &= not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        tr.append(macro_auc(y_train[:, k], clf.predict_proba(xs_tr), clf.classes_))
        te.append(macro_auc(y_test[:, k], clf.predict_proba(xs_te), clf.classes_))
    return np.array(tr), np.array(te), bool(converged)


def modularity(representation, ground_truth, *, seed=0, num_train: int = 10_000, num_test: int = 5_000,
               n_bins: int = 20, chunk_size: int = DEFAULT_CHUNK, test=None,
               factor_names: Sequence[str] | None = None) -> ModularityResult:
    """Modularity (``score``) and explicitness of a representation (module docstring; calling
    convention in :mod:`vae.metrics`).

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, size=(900, 2))
    >>> z = np.column_stack([y, y[:, 0] + y[:, 1]]).astype(float)
    >>> res = modularity(z, y)
    >>> [round(float(v), 1) for v in res.per_code], res.explicitness   # the sum informs about both
    ([1.0, 1.0, 0.0], 1.0)
    """
    sets = observational_sets(representation, ground_truth, num_train=num_train, num_test=num_test, seed=seed,
                              chunk_size=chunk_size, test=test, factor_names=factor_names)
    if sets.test_codes is None:
        raise ValueError("explicitness needs a test set: num_test must be >= 1")
    keep = varying_factor_mask(sets.train_factors, "modularity and explicitness")
    k_all = sets.train_factors.shape[1]
    mi = np.zeros((sets.train_codes.shape[1], k_all))
    mi[:, keep] = discrete_mutual_info(sets.train_codes, sets.train_factors[:, keep], n_bins)
    per_code = modularity_from_mi(mi[:, keep])
    tr, te, converged = explicitness(sets.train_codes, sets.train_factors[:, keep], sets.test_codes,
                                     sets.test_factors[:, keep], seed=seed)
    per_factor, per_factor_train = np.full(k_all, np.nan), np.full(k_all, np.nan)
    per_factor[keep], per_factor_train[keep] = te, tr
    return ModularityResult(score=float(per_code.mean()), per_code=per_code, explicitness=float(np.nanmean(te)),
                            explicitness_train=float(np.nanmean(tr)), per_factor=per_factor,
                            per_factor_train=per_factor_train, mutual_info=mi, n_bins=int(n_bins),
                            n_train=len(sets.train_codes), n_test=len(sets.test_codes), converged=converged,
                            excluded=tuple(int(j) for j in np.flatnonzero(~keep)), factor_names=sets.factor_names)
