"""BetaVAE score (vae.metrics.beta_vae_score): hand computations, invariances, and equality with the
disentanglement_lib recipe written point by point with scikit-learn."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from vae.data.ground_truth import ArrayGridData
from vae.metrics import beta_vae_score
from vae.metrics.beta_vae import beta_vae_features

SIZES = (3, 4, 5)
SMALL = dict(num_train=300, num_eval=150, batch_size=16)


def grid_data(sizes=SIZES, n_noise=2, seed=0) -> ArrayGridData:
    """Image of a factor combination = its scaled factors then ``n_noise`` fixed random pixels."""
    g = np.array(list(itertools.product(*[range(s) for s in sizes])))
    noise = np.random.default_rng(seed).random((len(g), n_noise))
    pixels = np.column_stack([g / (np.array(sizes) - 1.0), noise]).astype(np.float32)
    return ArrayGridData(pixels.reshape(len(g), 1, 1, -1), sizes)


def copy_code(x):
    """Each factor in its own dimension, then the noise dimensions."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def random_code(seed, d=4):
    w = np.random.default_rng(seed).normal(size=(len(SIZES) + 2, d))
    return lambda x: np.tanh(copy_code(x) @ w)


# --- the reference: disentanglement_lib's compute_beta_vae_sklearn, point by point ---------------------
def ref_beta_vae(fn, data, seed, batch_size, num_train, num_eval):
    rng = np.random.default_rng(seed)  # our documented stream: labels, then both factor batches
    k = data.num_factors

    def points(n):
        labels = rng.integers(k, size=n)
        f1 = data.sample_factors(n * batch_size, rng).reshape(n, batch_size, k)
        f2 = data.sample_factors(n * batch_size, rng).reshape(n, batch_size, k)
        feats = None
        for i in range(n):
            a, b = f1[i].copy(), f2[i].copy()
            b[:, labels[i]] = a[:, labels[i]]
            r1, r2 = fn(data.images_from_factors(a)), fn(data.images_from_factors(b))
            v = np.mean(np.abs(r1 - r2), axis=0)
            if feats is None:
                feats = np.zeros((n, v.shape[0]))
            feats[i] = v
        return feats, labels

    x_tr, y_tr = points(num_train)
    model = LogisticRegression(random_state=seed).fit(x_tr, y_tr)
    train_acc = np.mean(model.predict(x_tr) == y_tr)
    x_ev, y_ev = points(num_eval)
    return train_acc, model.score(x_ev, y_ev), x_tr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_the_point_by_point_reference_on_random_codes(seed):
    data, fn = grid_data(seed=seed), random_code(10 + seed)
    ours = beta_vae_score(fn, data, seed=seed, **SMALL, chunk_size=100)
    train_acc, eval_acc, x_tr = ref_beta_vae(fn, data, seed, 16, 300, 150)
    assert ours.score == pytest.approx(eval_acc, abs=1e-12)
    assert ours.train_accuracy == pytest.approx(train_acc, abs=1e-12)
    assert 0.3 < ours.score < 1.0  # a random code: informative, not perfect (the comparison means something)
    # the features themselves (same stream, encoded in chunks instead of per point)
    rng = np.random.default_rng(seed)
    labels = rng.integers(3, size=300)
    f1 = data.sample_factors(300 * 16, rng).reshape(300, 16, 3)
    f2 = data.sample_factors(300 * 16, rng).reshape(300, 16, 3)
    f2[np.arange(300), :, labels] = f1[np.arange(300), :, labels]
    np.testing.assert_allclose(beta_vae_features(fn, data, f1, f2, chunk_size=64), x_tr, rtol=1e-12, atol=1e-15)


def test_copied_factors_score_one():
    # Hand computation: the feature of a point that fixed factor k is exactly 0 in dimension k and
    # positive in the other factors' dimensions, so a linear classifier separates the classes: 1.0.
    res = beta_vae_score(copy_code, grid_data(), seed=0, **SMALL)
    assert res.score == 1.0 and res.train_accuracy == 1.0
    np.testing.assert_array_equal(res.per_factor, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(np.diag(res.confusion), res.confusion.sum(1))
    assert res.confusion.sum() == 150 and res.converged


@pytest.mark.parametrize("rot_seed", [3, 4, 5])
def test_random_rotation_scores_lower(rot_seed):
    # The BetaVAE score is known to be lenient with rotations (a linear classifier on mean absolute
    # differences can still tell which factor was fixed), so "lower", not "much lower".
    data = grid_data()
    z = copy_code(data.images_from_factors(data.factors_of(np.arange(data.num_images))))
    mean, std = z.mean(0), z.std(0)
    q, _ = np.linalg.qr(np.random.default_rng(rot_seed).normal(size=(5, 5)))
    aligned = beta_vae_score(lambda x: (copy_code(x) - mean) / std, data, seed=0, **SMALL).score
    rotated = beta_vae_score(lambda x: ((copy_code(x) - mean) / std) @ q, data, seed=0, **SMALL).score
    assert aligned == 1.0
    assert rotated < aligned


def test_permuting_latent_dimensions_changes_nothing():
    data, fn = grid_data(), random_code(4, d=5)
    perm = np.array([3, 0, 4, 2, 1])
    a = beta_vae_score(fn, data, seed=5, **SMALL)
    b = beta_vae_score(lambda x: fn(x)[:, perm], data, seed=5, **SMALL)
    assert a.score == pytest.approx(b.score, abs=1e-12)
    assert a.train_accuracy == pytest.approx(b.train_accuracy, abs=1e-12)
    np.testing.assert_allclose(a.per_factor, b.per_factor, atol=1e-12)


def test_result_dict_seed_and_errors():
    data = grid_data()
    res = beta_vae_score(copy_code, data, seed=0, **SMALL)
    d = json.loads(json.dumps(res.to_dict(["a", "b", "c"])))
    assert d["metric"] == "beta_vae" and d["score"] == 1.0 and set(d["per_factor"]) == {"a", "b", "c"}
    fn = random_code(1)
    assert beta_vae_score(fn, data, seed=3, **SMALL).score == beta_vae_score(fn, data, seed=3, **SMALL).score
    with pytest.raises(ValueError, match="representation function"):
        beta_vae_score(np.zeros((10, 3)), np.zeros((10, 2), int))
    with pytest.raises(ValueError, match=">= 2 factors"):
        beta_vae_score(copy_code, grid_data(sizes=(4,)), num_train=10, num_eval=5)
    with pytest.raises(ValueError, match="num_train"):
        beta_vae_score(copy_code, data, num_train=1)
