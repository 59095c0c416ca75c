"""SAP (vae.metrics.sap): hand computations on full grids, invariances, and equality with
disentanglement_lib's per-pair LinearSVC / covariance recipe."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from sklearn import svm

from vae.metrics import sap
from vae.metrics.sap import top_two_gap


def grid(*cards):
    return np.array(list(itertools.product(*[range(c) for c in cards])), dtype=np.int64)


def standardise(z):
    z = np.asarray(z, dtype=np.float64)
    return (z - z.mean(0)) / z.std(0)


# --- the reference: disentanglement_lib's _compute_score_matrix and _compute_avg_diff_top_two -----------
def ref_sap(mus, ys, mus_test, ys_test, continuous):
    num_latents, num_factors = mus.shape[1], ys.shape[1]
    score_matrix = np.zeros([num_latents, num_factors])
    for i in range(num_latents):
        for j in range(num_factors):
            mu_i, y_j = mus[:, i], ys[:, j]
            if continuous:
                cov = np.cov(mu_i, y_j, ddof=1)
                cov_mu_y, var_mu, var_y = cov[0, 1] ** 2, cov[0, 0], cov[1, 1]
                score_matrix[i, j] = cov_mu_y / (var_mu * var_y) if var_mu > 1e-12 else 0.0
            else:
                classifier = svm.LinearSVC(C=0.01, class_weight="balanced")  # as the library writes it
                classifier.fit(mu_i[:, np.newaxis], y_j)
                pred = classifier.predict(mus_test[:, i][:, np.newaxis])
                score_matrix[i, j] = np.mean(pred == ys_test[:, j])
    s = np.sort(score_matrix, axis=0)
    return np.mean(s[-1, :] - s[-2, :]), score_matrix


def random_case(seed, n=300):
    rng = np.random.default_rng(seed)
    k, d = int(rng.integers(2, 4)), int(rng.integers(2, 6))
    y = np.column_stack([rng.integers(0, int(rng.integers(2, 6)), n) for _ in range(k)])
    z = rng.normal(size=(n, d)) + 0.7 * y @ rng.normal(size=(k, d))
    return z, y


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_equals_the_per_pair_linear_svc_reference(seed):
    z, y = random_case(seed, n=450)
    z, y, zt, yt = z[:300], y[:300], z[300:], y[300:]
    ours = sap(z, y, test=(zt, yt))
    ref_score, ref_matrix = ref_sap(z, y, zt, yt, continuous=False)
    np.testing.assert_array_equal(ours.score_matrix, ref_matrix)
    assert ours.score == pytest.approx(ref_score, abs=1e-15)
    np.testing.assert_allclose(ours.per_factor, top_two_gap(ref_matrix), atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_continuous_equals_the_covariance_reference(seed):
    z, y = random_case(seed)
    z[:, 0] = 1.5  # a constant dimension scores 0
    ours = sap(z, y, continuous=True)  # uses every row (no test set in the continuous recipe)
    ref_score, ref_matrix = ref_sap(z, y, None, None, continuous=True)
    np.testing.assert_allclose(ours.score_matrix, ref_matrix, rtol=1e-12, atol=1e-15)
    assert ours.score == pytest.approx(ref_score, abs=1e-12)
    assert np.all(ours.score_matrix[0] == 0) and ours.n_test == 0


def test_copied_binary_factors_on_a_full_grid_score_exactly_one_half():
    # Hand computation. Dimension k copies binary factor k (standardised to -1/+1): the SVM threshold
    # sits at 0 by symmetry, accuracy 1. Any other dimension is independent of factor k on a full
    # grid, so whatever the SVM predicts from it is right for exactly half of the points: 1/2. SAP =
    # 1 - 1/2 for every factor. The last dimension copies a nuisance factor (3 classes).
    g = np.concatenate([grid(2, 2, 2, 3)] * 4)
    z, y = standardise(g), g[:, :3]
    res = sap(z, y, test=(z, y))
    expected = np.full((4, 3), 0.5)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_array_equal(res.score_matrix, expected)
    assert res.score == 0.5
    # continuous: squared correlation 1 on the diagonal, exactly 0 elsewhere (independent columns)
    cont = sap(z, y, continuous=True)
    np.testing.assert_allclose(cont.score_matrix, np.eye(4, 3), atol=1e-15)
    assert cont.score == pytest.approx(1.0, abs=1e-15)


def test_multi_class_factors_off_diagonal_is_one_over_the_classes():
    # On a full grid, a dimension independent of a factor with c classes scores exactly 1/c, whatever
    # it predicts. The copy itself scores more (one feature, one-vs-rest linear SVMs: typically only
    # the extreme classes are ever predicted — SAP's known limit with many-valued factors).
    g = np.concatenate([grid(3, 4, 2)] * 4)
    z = standardise(g)
    res = sap(z, g, test=(z, g))
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(res.score_matrix[off], (1.0 / np.array([3, 4, 2]))[np.nonzero(off)[1]], atol=1e-15)
    assert np.all(np.diag(res.score_matrix) > 1.0 / np.array([3, 4, 2]))


def test_random_rotation_scores_lower():
    g = np.concatenate([grid(2, 2, 2, 3)] * 4)
    z, y = standardise(g), g[:, :3]
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    assert sap(z @ q, y, test=(z @ q, y)).score < 0.45
    assert sap(z @ q, y, continuous=True).score < 0.8


def test_permuting_latent_dimensions_changes_nothing():
    z, y = random_case(7)
    perm = np.random.default_rng(7).permutation(z.shape[1])
    a, b = sap(z, y, seed=1), sap(z[:, perm], y, seed=1)
    assert a.score == b.score
    np.testing.assert_array_equal(a.score_matrix[perm], b.score_matrix)
    c, d = sap(z, y, continuous=True), sap(z[:, perm], y, continuous=True)
    assert c.score == pytest.approx(d.score, abs=1e-15)


def test_excluded_factor_errors_and_result_dict():
    z, y = random_case(8)
    y1 = np.column_stack([y, np.full(len(y), 4)])
    with pytest.warns(RuntimeWarning, match="excluded from SAP"):
        res = sap(z, y1)
    assert np.isnan(res.per_factor[-1]) and res.score == pytest.approx(sap(z, y).score, abs=1e-15)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["metric"] == "sap" and d["per_factor"][f"factor_{y.shape[1]}"] is None
    with pytest.raises(ValueError, match="D >= 2"):
        sap(z[:, :1], y)
    with pytest.raises(ValueError, match="test set"):
        sap(z, y, num_test=0)
