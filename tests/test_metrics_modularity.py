"""Modularity and explicitness (vae.metrics.modularity): hand computations on full grids, invariances,
and equality with disentanglement_lib's recipe written with sklearn (mutual_info_score per pair,
LogisticRegression, MultiLabelBinarizer + roc_auc_score)."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import sklearn.metrics
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from vae.metrics import modularity
from vae.metrics.modularity import macro_auc, modularity_from_mi


def grid(*cards):
    return np.array(list(itertools.product(*[range(c) for c in cards])), dtype=np.int64)


# --- the reference: disentanglement_lib's compute_modularity_explicitness, its way ------------------------
def ref_modularity(mus_train, ys_train, mus_test, ys_test, n_bins=20):
    mus, ys = mus_train.T, ys_train.T  # the library's (codes, points) layout
    disc = np.zeros_like(mus)
    for i in range(mus.shape[0]):
        disc[i, :] = np.digitize(mus[i, :], np.histogram(mus[i, :], n_bins)[1][:-1])
    mi = np.array([[sklearn.metrics.mutual_info_score(ys[j], disc[i]) for j in range(ys.shape[0])] for i in range(mus.shape[0])])
    sq = np.square(mi)
    top = np.max(sq, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mod = 1.0 - (np.sum(sq, axis=1) - top) / (top * (sq.shape[1] - 1.0))
    mod[top == 0.0] = 0.0
    mean, std = np.mean(mus, axis=1), np.std(mus, axis=1)
    x_train = ((mus - mean[:, None]) / std[:, None]).T
    x_test = ((mus_test.T - mean[:, None]) / std[:, None]).T
    e_train, e_test = [], []
    for j in range(ys.shape[0]):
        clf = LogisticRegression().fit(x_train, ys_train[:, j])
        mlb = MultiLabelBinarizer()
        e_train.append(roc_auc_score(mlb.fit_transform(np.expand_dims(ys_train[:, j], 1)), clf.predict_proba(x_train)))
        e_test.append(roc_auc_score(mlb.fit_transform(np.expand_dims(ys_test[:, j], 1)), clf.predict_proba(x_test)))
    return np.mean(mod), mod, mi, np.mean(e_train), np.mean(e_test)


def random_case(seed, n=450):
    rng = np.random.default_rng(seed)
    k, d = int(rng.integers(2, 4)), int(rng.integers(2, 6))
    y = np.column_stack([rng.integers(0, int(rng.integers(2, 5)), n) for _ in range(k)])
    z = rng.normal(size=(n, d)) + 0.6 * y @ rng.normal(size=(k, d))
    return z, y


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_equals_the_library_recipe_on_random_inputs(seed):
    z, y = random_case(seed)
    z, y, zt, yt = z[:300], y[:300], z[300:], y[300:]
    ours = modularity(z, y, test=(zt, yt), seed=seed)
    score, per_code, mi, e_train, e_test = ref_modularity(z, y, zt, yt)
    np.testing.assert_allclose(ours.mutual_info, mi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.per_code, per_code, rtol=0, atol=1e-12)
    assert ours.score == pytest.approx(score, abs=1e-12)
    assert ours.explicitness_train == pytest.approx(e_train, abs=1e-12)
    assert ours.explicitness == pytest.approx(e_test, abs=1e-12)
    assert 0.1 < ours.score < 0.99


def test_copied_factors_on_a_full_grid_by_hand():
    # Dimension k copies factor k; dimension 3 copies a nuisance factor. On a full grid the plug-in MI
    # between independent columns is exactly 0, so each copy informs about one factor (modularity 1)
    # and the nuisance copy about none: the library's convention scores it 0, so the mean is 3/4.
    # A linear classifier ranks every class of a copied factor perfectly: explicitness 1.
    g = np.concatenate([grid(3, 4, 2, 3)] * 3)
    z, y = g.astype(float), g[:, :3]
    res = modularity(z, y, test=(z, y))
    np.testing.assert_array_equal(res.per_code, [1.0, 1.0, 1.0, 0.0])
    assert res.score == 0.75
    np.testing.assert_allclose(np.diag(res.mutual_info), np.log([3, 4, 2]), atol=1e-12)
    assert np.abs(res.mutual_info[~np.eye(4, 3, dtype=bool)]).max() < 1e-12
    assert res.explicitness == 1.0 and res.explicitness_train == 1.0


def test_modularity_formula_and_auc_by_hand():
    # [1, 0]: one factor only -> 1; [1, 1]: 1 - (2 - 1) / (1 * 1) = 0; [2, 1]: 1 - 1 / (4 * 1) = 3/4;
    # nothing -> 0 (the library's convention).
    np.testing.assert_allclose(modularity_from_mi(np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 1.0], [0.0, 0.0]])),
                               [1.0, 0.0, 0.75, 0.0])
    # three factors: [3, 1, 1] -> 1 - (9 + 1 + 1 - 9) / (9 * 2) = 8/9
    assert modularity_from_mi(np.array([[3.0, 1.0, 1.0]]))[0] == pytest.approx(8 / 9)
    # AUC: positives ranked above all negatives but one tie -> (2*2 - 0.5) / 4
    y = np.array([1, 1, 0, 0])
    proba = np.column_stack([1 - np.array([0.9, 0.5, 0.5, 0.1]), [0.9, 0.5, 0.5, 0.1]])
    assert macro_auc(y, proba, [0, 1]) == pytest.approx(0.875)
    rng = np.random.default_rng(0)
    yy = rng.integers(0, 4, 200)
    pp = np.round(rng.random((200, 4)), 1)  # many ties
    ref = roc_auc_score(MultiLabelBinarizer().fit_transform(yy[:, None]), pp)
    assert macro_auc(yy, pp, np.arange(4)) == pytest.approx(ref, abs=1e-14)
    assert np.isnan(macro_auc(np.zeros(5, int), np.ones((5, 1)), [0]))


def test_random_rotation_scores_lower():
    # Without noise dimensions the aligned code scores 1; a rotation spreads each factor over every
    # dimension. Explicitness (a linear read-out of the whole code) does not care about rotations.
    g = np.concatenate([grid(3, 4, 2)] * 4)
    z = (g - g.mean(0)) / g.std(0)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    aligned, rotated = modularity(z, g, test=(z, g)), modularity(z @ q, g, test=(z @ q, g))
    assert aligned.score == 1.0
    assert rotated.score < 0.8
    assert rotated.explicitness > 0.99


def test_permuting_latent_dimensions_changes_nothing():
    z, y = random_case(9)
    perm = np.random.default_rng(9).permutation(z.shape[1])
    a, b = modularity(z, y, seed=2), modularity(z[:, perm], y, seed=2)
    assert a.score == pytest.approx(b.score, abs=1e-15)
    np.testing.assert_array_equal(a.per_code[perm], b.per_code)
    assert a.explicitness == pytest.approx(b.explicitness, abs=1e-9)


def test_deviations_constant_dimension_missing_class_and_result_dict():
    z, y = random_case(10)
    z[:, 0] = 2.0  # constant: std 1 instead of a division by zero
    y[:5, 0] = y[:, 0].max() + 1  # a class that exists only in the first rows
    res = modularity(z, y, test=(z[100:], y[100:]))  # absent from the test set: skipped in the average
    assert np.isfinite(res.explicitness) and res.per_code[0] == 0.0
    y2 = np.column_stack([y, np.zeros(len(y), int)])
    with pytest.warns(RuntimeWarning, match="excluded from modularity"):
        r2 = modularity(z, y2, test=(z[100:], y2[100:]))
    assert np.isnan(r2.per_factor[-1]) and r2.score == pytest.approx(res.score, abs=1e-15)
    d = json.loads(json.dumps(r2.to_dict()))
    assert d["metric"] == "modularity" and d["per_factor"][f"factor_{y.shape[1]}"] is None
    assert d["explicitness"] == pytest.approx(res.explicitness)
