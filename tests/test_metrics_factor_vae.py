"""FactorVAE score (vae.metrics.factor_vae_score): hand computations, pruning, invariances, and equality
with the majority-vote recipe of disentanglement_lib written point by point."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from vae.data.ground_truth import ArrayGridData
from vae.metrics import factor_vae_score
from vae.metrics.factor_vae import majority_vote_accuracy

SIZES = (3, 4, 5)
SMALL = dict(num_train=200, num_eval=100, num_variance_estimate=500, batch_size=16)


def grid_data(sizes=SIZES, n_noise=2, seed=0) -> ArrayGridData:
    g = np.array(list(itertools.product(*[range(s) for s in sizes])))
    noise = np.random.default_rng(seed).random((len(g), n_noise))
    pixels = np.column_stack([g / (np.array(sizes) - 1.0), noise]).astype(np.float32)
    return ArrayGridData(pixels.reshape(len(g), 1, 1, -1), sizes)


def copy_code(x):
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def random_code(seed, d=4):
    w = np.random.default_rng(seed).normal(size=(len(SIZES) + 2, d))
    return lambda x: np.tanh(copy_code(x) @ w)


# --- the reference: disentanglement_lib's compute_factor_vae, point by point ----------------------------
def ref_factor_vae(fn, data, seed, batch_size, num_train, num_eval, num_variance_estimate, threshold=0.05):
    rng = np.random.default_rng(seed)  # our documented stream
    k = data.num_factors
    reps = fn(data.images_from_factors(data.sample_factors(num_variance_estimate, rng)))
    global_var = np.var(reps, axis=0, ddof=1)
    active = np.sqrt(global_var) >= threshold
    active_idx = np.flatnonzero(active)

    def votes(n):
        labels = rng.integers(k, size=n)
        f = data.sample_factors(n * batch_size, rng).reshape(n, batch_size, k)
        v = np.zeros((k, len(global_var)), dtype=np.int64)
        for i in range(n):
            factors = f[i].copy()
            factors[:, labels[i]] = factors[0, labels[i]]
            local = np.var(fn(data.images_from_factors(factors)), axis=0, ddof=1)
            argmin = np.argmin(local[active] / global_var[active])
            v[labels[i], active_idx[argmin]] += 1
        return v

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)
    other = np.arange(train_votes.shape[1])
    train_acc = np.sum(train_votes[classifier, other]) / np.sum(train_votes)
    eval_votes = votes(num_eval)
    eval_acc = np.sum(eval_votes[classifier, other]) / np.sum(eval_votes)
    return train_acc, eval_acc, train_votes, eval_votes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_the_majority_vote_reference_on_random_codes(seed):
    data, fn = grid_data(seed=seed), random_code(20 + seed)
    ours = factor_vae_score(fn, data, seed=seed, **SMALL, chunk_size=50)
    train_acc, eval_acc, votes_tr, votes_ev = ref_factor_vae(fn, data, seed, 16, 200, 100, 500)
    np.testing.assert_array_equal(ours.votes_train, votes_tr)
    np.testing.assert_array_equal(ours.votes_eval, votes_ev)
    assert ours.train_accuracy == pytest.approx(train_acc, abs=1e-15)
    assert ours.score == pytest.approx(eval_acc, abs=1e-15)
    assert 0.3 < ours.score < 1.0


def test_copied_factors_score_one_with_the_votes_a_hand_count_gives():
    # Hand computation: in a group that fixes factor k, dimension k has variance exactly 0 and every
    # other dimension a positive one, so each point votes (k, k): the training votes are diagonal
    # with the number of points that fixed each factor, which the documented stream gives.
    data = grid_data()
    res = factor_vae_score(copy_code, data, seed=4, **SMALL)
    rng = np.random.default_rng(4)
    data.sample_factors(500, rng)  # the variance sample comes first
    labels = rng.integers(3, size=200)
    expected = np.zeros((3, 5), dtype=np.int64)
    expected[:, :3] = np.diag(np.bincount(labels, minlength=3))
    np.testing.assert_array_equal(res.votes_train, expected)
    assert res.score == 1.0 and res.train_accuracy == 1.0
    np.testing.assert_array_equal(res.per_factor, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(res.classifier[:3], [0, 1, 2])
    assert res.n_active == 5 and res.active.all()
    # global variances of the scaled uniform factors: Var of {0, 1/(s-1), ..., 1}, estimated on 500 draws
    exact = np.array([np.var(np.arange(s) / (s - 1.0)) for s in SIZES])
    np.testing.assert_allclose(res.global_variance[:3], exact, rtol=0.15)


def test_collapsed_dimensions_are_pruned_and_never_vote():
    data = grid_data()

    def code(x):  # two collapsed dimensions: std 0.01 (< 0.05) and exactly constant
        z = copy_code(x)
        return np.column_stack([z, 0.01 * np.sin(1e3 * z.sum(1)), np.zeros(len(z))])

    res = factor_vae_score(code, data, seed=0, **SMALL)
    np.testing.assert_array_equal(res.active, [True] * 5 + [False, False])
    assert res.n_active == 5 and np.all(res.classifier[5:] == -1)
    assert res.votes_train[:, 5:].sum() == 0 and res.score == 1.0
    # why the library prunes: unpruned, the constant dimension's 0/0 normalised variance is NaN,
    # np.argmin returns it, and it takes every vote (the score falls to the largest factor share)
    with np.errstate(invalid="ignore"):
        no_prune = factor_vae_score(code, data, seed=0, **SMALL, prune_threshold=0.0)
    assert no_prune.active.all() and no_prune.votes_train[:, 6].sum() == 200
    assert no_prune.score == pytest.approx(no_prune.votes_eval.sum(1).max() / 100)
    dead = factor_vae_score(lambda x: np.zeros((len(x), 3)), data, seed=0, **SMALL)
    assert dead.score == 0.0 and dead.n_active == 0 and np.all(dead.classifier == -1)


def test_random_rotation_scores_lower():
    data = grid_data()
    z = copy_code(data.images_from_factors(data.factors_of(np.arange(data.num_images))))
    mean, std = z.mean(0), z.std(0)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(5, 5)))
    aligned = factor_vae_score(lambda x: (copy_code(x) - mean) / std, data, seed=0, **SMALL).score
    rotated = factor_vae_score(lambda x: ((copy_code(x) - mean) / std) @ q, data, seed=0, **SMALL).score
    assert aligned == 1.0
    assert rotated < 0.9


def test_permuting_latent_dimensions_changes_nothing():
    data, fn = grid_data(), random_code(7, d=5)
    perm = np.array([3, 0, 4, 2, 1])
    a = factor_vae_score(fn, data, seed=1, **SMALL)
    b = factor_vae_score(lambda x: fn(x)[:, perm], data, seed=1, **SMALL)
    assert a.score == b.score and a.train_accuracy == b.train_accuracy
    np.testing.assert_array_equal(a.votes_train[:, perm], b.votes_train)
    np.testing.assert_array_equal(a.classifier[perm], b.classifier)


def test_majority_vote_by_hand_and_result_dict():
    votes_tr = np.array([[5, 0, 1], [1, 4, 0]])  # dim 0 -> factor 0, dim 1 -> factor 1, dim 2 -> factor 0
    votes_ev = np.array([[2, 1, 0], [1, 3, 1]])
    classifier, tr, ev = majority_vote_accuracy(votes_tr, votes_ev)
    np.testing.assert_array_equal(classifier, [0, 1, 0])
    assert tr == pytest.approx(10 / 11) and ev == pytest.approx(5 / 8)
    res = factor_vae_score(copy_code, grid_data(), seed=0, **SMALL)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["metric"] == "factor_vae" and d["score"] == 1.0 and list(d["per_factor"]) == ["factor_0", "factor_1", "factor_2"]
    with pytest.raises(ValueError, match="representation function"):
        factor_vae_score(np.zeros((10, 3)), np.zeros((10, 2), int))
    with pytest.raises(ValueError, match="batch_size"):
        factor_vae_score(copy_code, grid_data(), batch_size=1)
