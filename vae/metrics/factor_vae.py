"""FactorVAE score (Kim & Mnih 2018), the disentanglement_lib recipe (``factor_vae_score``).

1. **Scale**: the empirical variance ``s_d^2`` (``ddof = 1``) of every code dimension over
   ``num_variance_estimate`` = 10,000 images whose factors are drawn from the data's factor prior
   (``data.sample_factors``). Dimensions with ``s_d < prune_threshold`` (0.05, the library's study
   configuration) are *collapsed* and pruned: they never receive a vote. No active dimension at
   all: score 0.
2. **Votes**: one training point = pick a factor ``k`` uniformly, draw ``batch_size`` = 64 factor
   combinations, set factor ``k`` of all of them to the value of the first, encode, and take the
   dimension ``d*`` with the smallest *normalised* variance ``var_b(z_bd) / s_d^2`` (``ddof = 1``)
   among the active ones: a vote ``(k, d*)``. ``num_train`` = 10,000 points make the (K, D)
   training vote matrix, ``num_eval`` = 5,000 fresh ones the evaluation votes.
3. **Classifier**: majority vote — dimension ``d`` predicts factor ``argmax_k votes_train[k, d]``
   (ties and dimensions without a vote: the lowest ``k``, as ``np.argmax``). Accuracy = the share of
   votes that fall on the predicted factor of their dimension; the score is the evaluation accuracy.

Conventions and deliberate deviations:

* **Sampling** is vectorised, with the stream ``rng = default_rng(seed)``: first the variance
  sample ``data.sample_factors(num_variance_estimate, rng)``, then for the training set
  ``labels = rng.integers(K, size=n)``, ``f = data.sample_factors(n * B, rng)`` reshaped (n, B, K)
  with ``f[i, :, labels[i]] = f[i, 0, labels[i]]``, then the same for the evaluation set. Same
  distribution as the library's point-by-point loop, not its numbers.
* Votes are indexed by the *original* dimension (the library indexes them by position among the
  active dimensions — the same classifier and accuracy, a clearer matrix); ``classifier[d]`` is -1
  for a pruned dimension; ``n_active`` is the number of active dimensions (the library's
  ``num_active_dims`` is ``len`` of a boolean mask, i.e. always D).
* ``per_factor``: evaluation accuracy of the points that fixed factor ``k`` (NaN if none did).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from vae.metrics._common import (DEFAULT_CHUNK, MetricResult, Representation, as_rng, codes_of, encode_factors,
                                 is_data, jsonable)

__all__ = ["FactorVAEResult", "factor_vae_score", "majority_vote_accuracy"]


@dataclass
class FactorVAEResult(MetricResult):
    """``score``: evaluation accuracy of the majority-vote classifier; ``train_accuracy``;
    ``per_factor`` (K,); ``votes_train`` / ``votes_eval`` (K, D); ``classifier`` (D,) factor predicted
    by each dimension (-1: pruned); ``active`` (D,) bool; ``global_variance`` (D,)."""

    score: float
    train_accuracy: float
    per_factor: np.ndarray
    votes_train: np.ndarray = field(repr=False)
    votes_eval: np.ndarray = field(repr=False)
    classifier: np.ndarray = field(repr=False)
    active: np.ndarray = field(repr=False)
    global_variance: np.ndarray = field(repr=False)
    n_active: int = 0
    n_train: int = 10_000
    n_eval: int = 5_000
    batch_size: int = 64
    prune_threshold: float = 0.05
    factor_names: tuple[str, ...] | None = None

    metric: ClassVar[str] = "factor_vae"

    def to_dict(self, factor_names=None) -> dict:
        return {"metric": self.metric, "score": jsonable(self.score), "eval_accuracy": jsonable(self.score),
                "train_accuracy": jsonable(self.train_accuracy), "per_factor": self.keyed(self.per_factor, factor_names),
                "n_active": self.n_active, "active": jsonable(self.active), "classifier": jsonable(self.classifier),
                "global_variance": jsonable(self.global_variance), "votes_train": jsonable(self.votes_train),
                "votes_eval": jsonable(self.votes_eval), "n_train": self.n_train, "n_eval": self.n_eval,
                "batch_size": self.batch_size, "prune_threshold": self.prune_threshold}


def majority_vote_accuracy(votes_train: np.ndarray, votes_eval: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(classifier (D,), train accuracy, eval accuracy)`` of the majority vote on (K, D) vote matrices."""
    classifier = np.argmax(votes_train, axis=0)
    cols = np.arange(votes_train.shape[1])
    acc = [float(v[classifier, cols].sum() / v.sum()) if v.sum() else float("nan") for v in (votes_train, votes_eval)]
    return classifier, acc[0], acc[1]


def _fixed_groups(data, n: int, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = len(data.factor_sizes)
    labels = rng.integers(k, size=n)
    f = np.asarray(data.sample_factors(n * batch_size, rng)).reshape(n, batch_size, k)
    rows = np.arange(n)
    f[rows, :, labels] = f[rows, 0, labels][:, None]
    return labels, f


def _votes(representation_fn, data, labels, f, global_var, active, chunk_size) -> np.ndarray:
    """(K, D) votes: per group, the active dimension of least normalised variance."""
    n, b, k = f.shape
    d = len(global_var)
    act = np.flatnonzero(active)
    groups = max(1, int(chunk_size) // b)
    best = np.empty(n, dtype=np.int64)
    for a in range(0, n, groups):  # a loop over chunks of groups
        z = codes_of(representation_fn, data.images_from_factors(f[a : a + groups].reshape(-1, k)))
        if z.shape[1] != d:
            raise ValueError(f"the representation returned {z.shape[1]} dimensions, earlier {d}")
        local = z.reshape(-1, b, d).var(axis=1, ddof=1)
        best[a : a + groups] = act[np.argmin(local[:, act] / global_var[act], axis=1)]
    return np.bincount(labels * d + best, minlength=k * d).reshape(k, d)


def factor_vae_score(representation_fn: Representation, data, *, seed=0, batch_size: int = 64,
                     num_train: int = 10_000, num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                     prune_threshold: float = 0.05, chunk_size: int = DEFAULT_CHUNK) -> FactorVAEResult:
    """FactorVAE score of a representation function on a ground-truth data set (module docstring).

    >>> from vae.data.ground_truth import ArrayGridData
    >>> g = np.stack(np.meshgrid(range(3), range(4), indexing="ij"), -1).reshape(-1, 1, 1, 2)
    >>> data = ArrayGridData(g.astype(np.float32), (3, 4))
    >>> res = factor_vae_score(lambda x: x.reshape(len(x), -1), data, num_train=100, num_eval=50,
    ...                        num_variance_estimate=200, batch_size=8)
    >>> res.score, res.classifier.tolist()
    (1.0, [0, 1])
    """
    if not callable(representation_fn) or not is_data(data):
        raise ValueError("the FactorVAE score intervenes on the factors: it needs a representation function "
                         "images -> codes and a GroundTruthData, not arrays of codes and factors")
    for name, v, lo in (("batch_size", batch_size, 2), ("num_train", num_train, 1), ("num_eval", num_eval, 1),
                        ("num_variance_estimate", num_variance_estimate, 2)):
        if int(v) < lo:
            raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}")
    if not prune_threshold >= 0:
        raise ValueError(f"prune_threshold must be >= 0; got {prune_threshold!r}")
    rng = as_rng(seed)
    k = len(data.factor_sizes)
    names = tuple(getattr(data, "factor_names", ())) or None
    z = encode_factors(representation_fn, data, data.sample_factors(int(num_variance_estimate), rng), chunk_size)
    global_var = z.var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    d = len(global_var)
    common = dict(n_train=int(num_train), n_eval=int(num_eval), batch_size=int(batch_size),
                  prune_threshold=float(prune_threshold), factor_names=names)
    if not active.any():
        zeros = np.zeros((k, d), dtype=np.int64)
        return FactorVAEResult(score=0.0, train_accuracy=0.0, per_factor=np.zeros(k), votes_train=zeros,
                               votes_eval=zeros, classifier=np.full(d, -1), active=active,
                               global_variance=global_var, n_active=0, **common)
    lab_tr, f = _fixed_groups(data, int(num_train), int(batch_size), rng)
    votes_tr = _votes(representation_fn, data, lab_tr, f, global_var, active, chunk_size)
    lab_ev, f = _fixed_groups(data, int(num_eval), int(batch_size), rng)
    votes_ev = _votes(representation_fn, data, lab_ev, f, global_var, active, chunk_size)
    classifier, train_acc, eval_acc = majority_vote_accuracy(votes_tr, votes_ev)
    correct = votes_ev * (classifier[None, :] == np.arange(k)[:, None])
    per_factor = np.divide(correct.sum(1), votes_ev.sum(1), out=np.full(k, np.nan), where=votes_ev.sum(1) > 0)
    return FactorVAEResult(score=eval_acc, train_accuracy=train_acc, per_factor=per_factor, votes_train=votes_tr,
                           votes_eval=votes_ev, classifier=np.where(active, classifier, -1), active=active,
                           global_variance=global_var, n_active=int(active.sum()), **common)
