"""BetaVAE score (Higgins et al. 2017), the disentanglement_lib recipe (``beta_vae_sklearn``).

One *training point* is made from an intervention: pick a factor ``k`` uniformly, draw two batches
of ``batch_size`` = 64 factor combinations, copy factor ``k`` of the first batch into the second
(pair ``b`` shares its value of ``k``, the pairs differ from each other), encode both batches and
take the feature ``mean_b |z1_b - z2_b|`` (D,), labelled ``k``. A ``LogisticRegression()`` (scikit-
learn's defaults) is fitted on ``num_train`` = 10,000 such points and scored on ``num_eval`` =
5,000 fresh ones; the score is that evaluation accuracy (the one the library reports as
``eval_accuracy``). A representation that keeps factor ``k`` in its own dimensions has a zero there
exactly when ``k`` was fixed, so a linear classifier reads ``k`` off the feature: accuracy 1.

Conventions and deliberate deviations:

* **Sampling** is vectorised; the random stream is ``rng = default_rng(seed)``, then for the training
  set ``labels = rng.integers(K, size=n)``, ``f1 = data.sample_factors(n * B, rng)``,
  ``f2 = data.sample_factors(n * B, rng)`` (each reshaped to (n, B, K)) and
  ``f2[i, :, labels[i]] = f1[i, :, labels[i]]``; then the same for the evaluation set. Same
  distribution as the library's per-point loop, not the same numbers (its stream is a
  ``RandomState`` drawn point by point).
* **Classifier**: ``LogisticRegression(random_state=seed)`` with the *current* scikit-learn defaults
  (lbfgs, multinomial, C = 1, max_iter = 100). disentanglement_lib ran on scikit-learn < 0.22,
  whose default was liblinear one-vs-rest; the two agree on separable features (the case that
  matters, accuracy near 1) and may differ by a little elsewhere. Convergence warnings are not
  shown; ``result.converged`` says whether lbfgs converged.
* ``per_factor``: the evaluation accuracy of the points whose fixed factor was ``k`` (the recall of
  class ``k``), NaN when no evaluation point fixed ``k``; ``confusion[k, j]`` counts evaluation points
  with fixed factor ``k`` classified as ``j``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from vae.metrics._common import DEFAULT_CHUNK, MetricResult, Representation, as_rng, codes_of, is_data, jsonable

__all__ = ["BetaVAEResult", "beta_vae_score", "beta_vae_features"]


@dataclass
class BetaVAEResult(MetricResult):
    """``score``: evaluation accuracy; ``train_accuracy``; ``per_factor`` (K,) evaluation accuracy by
    fixed factor; ``confusion`` (K, K) evaluation counts (row: fixed factor, column: predicted)."""

    score: float
    train_accuracy: float
    per_factor: np.ndarray
    confusion: np.ndarray = field(repr=False)
    n_train: int = 10_000
    n_eval: int = 5_000
    batch_size: int = 64
    converged: bool = True
    factor_names: tuple[str, ...] | None = None

    metric: ClassVar[str] = "beta_vae"

    def to_dict(self, factor_names=None) -> dict:
        return {"metric": self.metric, "score": jsonable(self.score), "eval_accuracy": jsonable(self.score),
                "train_accuracy": jsonable(self.train_accuracy), "per_factor": self.keyed(self.per_factor, factor_names),
                "confusion": jsonable(self.confusion), "n_train": self.n_train, "n_eval": self.n_eval,
                "batch_size": self.batch_size, "converged": self.converged}


def _pair_factors(data, n: int, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``labels`` (n,), ``f1``, ``f2`` (n, B, K): pairs of batches sharing factor ``labels[i]`` (module doc)."""
    k = len(data.factor_sizes)
    labels = rng.integers(k, size=n)
    f1 = np.asarray(data.sample_factors(n * batch_size, rng)).reshape(n, batch_size, k)
    f2 = np.asarray(data.sample_factors(n * batch_size, rng)).reshape(n, batch_size, k)
    rows = np.arange(n)
    f2[rows, :, labels] = f1[rows, :, labels]
    return labels, f1, f2


def beta_vae_features(representation_fn: Representation, data, f1: np.ndarray, f2: np.ndarray,
                      chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """(n, D) features ``mean_b |z(f1[i, b]) - z(f2[i, b])|`` for factor batches ``f1``, ``f2`` (n, B, K),
    encoded about ``chunk_size`` images at a time (whole groups per call; no loop over points)."""
    n, b, k = f1.shape
    groups = max(1, int(chunk_size) // b)
    out = []
    for a in range(0, n, groups):  # a loop over chunks of groups
        g1, g2 = f1[a : a + groups].reshape(-1, k), f2[a : a + groups].reshape(-1, k)
        z1 = codes_of(representation_fn, data.images_from_factors(g1))
        z2 = codes_of(representation_fn, data.images_from_factors(g2))
        out.append(np.abs(z1 - z2).reshape(-1, b, z1.shape[1]).mean(axis=1))
    return np.concatenate(out)


def beta_vae_score(representation_fn: Representation, data, *, seed=0, batch_size: int = 64,
                   num_train: int = 10_000, num_eval: int = 5_000, chunk_size: int = DEFAULT_CHUNK) -> BetaVAEResult:
    """BetaVAE score of a representation function on a ground-truth data set (module docstring).

    >>> from vae.data.ground_truth import ArrayGridData
    >>> g = np.stack(np.meshgrid(range(3), range(4), indexing="ij"), -1).reshape(-1, 1, 1, 2)
    >>> data = ArrayGridData(g.astype(np.float32), (3, 4))
    >>> res = beta_vae_score(lambda x: x.reshape(len(x), -1), data, num_train=200, num_eval=100, batch_size=8)
    >>> res.score, res.per_factor.tolist()
    (1.0, [1.0, 1.0])
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if not callable(representation_fn) or not is_data(data):
        raise ValueError("the BetaVAE score intervenes on the factors: it needs a representation function "
                         "images -> codes and a GroundTruthData, not arrays of codes and factors")
    for name, v, lo in (("batch_size", batch_size, 1), ("num_train", num_train, 2), ("num_eval", num_eval, 1)):
        if int(v) < lo:
            raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}")
    k = len(data.factor_sizes)
    if k < 2:
        raise ValueError(f"the BetaVAE score classifies which factor was fixed: it needs >= 2 factors; got {k}")
    rng = as_rng(seed)
    lab_tr, f1, f2 = _pair_factors(data, int(num_train), int(batch_size), rng)
    x_tr = beta_vae_features(representation_fn, data, f1, f2, chunk_size)
    lab_ev, f1, f2 = _pair_factors(data, int(num_eval), int(batch_size), rng)
    x_ev = beta_vae_features(representation_fn, data, f1, f2, chunk_size)
    if len(np.unique(lab_tr)) < 2:
        raise ValueError("every training point fixed the same factor; increase num_train")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(random_state=seed if isinstance(seed, (int, np.integer)) else None).fit(x_tr, lab_tr)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    train_acc = float(np.mean(clf.predict(x_tr) == lab_tr))
    pred = clf.predict(x_ev)
    confusion = np.bincount(lab_ev * k + pred, minlength=k * k).reshape(k, k)
    counts = confusion.sum(axis=1)
    per_factor = np.divide(np.diag(confusion), counts, out=np.full(k, np.nan), where=counts > 0)
    names = tuple(getattr(data, "factor_names", ())) or None
    return BetaVAEResult(score=float(np.mean(pred == lab_ev)), train_accuracy=train_acc, per_factor=per_factor,
                         confusion=confusion, n_train=int(num_train), n_eval=int(num_eval), batch_size=int(batch_size),
                         converged=converged, factor_names=names)
