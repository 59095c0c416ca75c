"""DCI (vae.metrics.dci): hand computations, invariances, and equality with disentanglement_lib's
gradient-boosted-trees recipe written with scikit-learn and scipy."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier

from vae.metrics import dci, disentanglement_completeness

QUICK = {"n_estimators": 15}  # the recipe uses scikit-learn's 100 trees; fewer keep the tests fast


def grid(*cards):
    return np.array(list(itertools.product(*[range(c) for c in cards])), dtype=np.int64)


# --- the reference: disentanglement_lib's compute_importance_gbt + disentanglement/completeness ----------
def ref_dci(x_train, y_train, x_test, y_test, seed, n_estimators):
    num_factors, num_codes = y_train.shape[1], x_train.shape[1]
    importance = np.zeros((num_codes, num_factors))
    train_acc, test_acc = [], []
    for i in range(num_factors):
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        model.fit(x_train, y_train[:, i])
        importance[:, i] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(x_train) == y_train[:, i]))
        test_acc.append(np.mean(model.predict(x_test) == y_test[:, i]))
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])
    code_w = importance.sum(axis=1) / importance.sum()
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])
    factor_w = importance.sum(axis=0) / importance.sum()
    return (np.sum(per_code * code_w), np.sum(per_factor * factor_w), np.mean(train_acc), np.mean(test_acc), importance)


def random_case(seed, n=240):
    rng = np.random.default_rng(seed)
    k, d = int(rng.integers(2, 4)), int(rng.integers(3, 6))
    y = np.column_stack([rng.integers(0, int(rng.integers(2, 5)), n) for _ in range(k)])
    z = rng.normal(size=(n, d)) + 0.8 * y @ rng.normal(size=(k, d))
    return z, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_the_gradient_boosted_reference_on_random_inputs(seed):
    z, y = random_case(seed)
    perm = np.random.default_rng(seed).permutation(len(z))  # ours splits the rows 2 : 1 with this
    tr, te = np.sort(perm[: len(z) - len(z) // 3]), np.sort(perm[len(z) - len(z) // 3 :])
    # Ours hands the trees the dimensions in lexicographic column order (what makes it exactly
    # permutation-invariant); the reference, like the library, uses the given order. Give the
    # columns in that order, so both fit the very same problem.
    z = z[:, np.lexsort(z[tr][::-1])]
    ours = dci(z, y, seed=seed, gbt_params=QUICK)
    d, c, i_tr, i_te, importance = ref_dci(z[tr], y[tr], z[te], y[te], seed, QUICK["n_estimators"])
    np.testing.assert_allclose(ours.importance, importance, rtol=0, atol=1e-12)
    assert ours.score == pytest.approx(d, abs=1e-12)
    assert ours.completeness == pytest.approx(c, abs=1e-12)
    assert ours.informativeness_train == pytest.approx(i_tr, abs=1e-12)
    assert ours.informativeness_test == pytest.approx(i_te, abs=1e-12)
    assert 0.05 < ours.score < 0.95  # an entangled code: the comparison is not between trivial values


def test_copied_factors_score_what_the_formula_gives_for_an_identity_importance():
    # Factors of a full grid, each copied into its own dimension, plus a nuisance copy and a noise
    # dimension: every tree splits only on its factor's copy (any other split gains less: at most
    # rounding, ~1e-16), so R is the identity padded with zero rows. Then D_d = C_k = 1 - H((1+e, e, e)/(1+3e)) (base 3
    # and base 5), the padded rows weigh nothing, and the classifiers are exact: informativeness 1.
    g = np.concatenate([grid(3, 4, 5, 2)] * 2)
    z = np.column_stack([g.astype(float), np.random.default_rng(0).normal(size=len(g))])
    y = g[:, :3]
    res = dci(z, y, test=(z, y), gbt_params=QUICK)
    expected_r = np.zeros((5, 3))
    expected_r[:3] = np.eye(3)
    np.testing.assert_allclose(res.importance, expected_r, rtol=0, atol=1e-14)
    e = 1e-11
    d_copy = 1 + sum(p * math.log(p) for p in np.array([1 + e, e, e]) / (1 + 3 * e)) / math.log(3)
    c_fac = 1 + sum(p * math.log(p) for p in np.array([1 + e] + [e] * 4) / (1 + 5 * e)) / math.log(5)
    assert res.score == pytest.approx(d_copy, abs=1e-12) and res.score > 1 - 1e-9
    assert res.completeness == pytest.approx(c_fac, abs=1e-12)
    np.testing.assert_allclose(res.per_code[:3], d_copy, atol=1e-12)
    assert res.informativeness_train == 1.0 and res.informativeness_test == 1.0


def test_importance_matrices_by_hand():
    d, c, per_code, per_factor = disentanglement_completeness(np.array([[0.5, 0.5], [0.0, 0.0]]))
    # one code used equally by both factors: D_0 = 1 - log 2 / log 2 = 0 (up to the 1e-11), weight 1
    assert d == pytest.approx(0.0, abs=1e-9)
    # each factor uses only code 0: C_k = 1 (up to the smoothing)
    assert c == pytest.approx(1.0, abs=1e-9)
    d, c, _, _ = disentanglement_completeness(np.ones((4, 2)))  # everything everywhere: 0 and 0
    assert d == pytest.approx(0.0, abs=1e-12) and c == pytest.approx(0.0, abs=1e-12)
    d, c, _, _ = disentanglement_completeness(np.zeros((3, 2)))  # nothing used: uniform weights, zero scores
    assert d == pytest.approx(0.0, abs=1e-12) and c == pytest.approx(0.0, abs=1e-12)
    # two codes for one factor: code-level D = 1 each, completeness of that factor 1 - log 2 / log 3
    d, c, _, pf = disentanglement_completeness(np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]]))
    assert d == pytest.approx(1.0, abs=1e-9)
    assert pf[0] == pytest.approx(1 - math.log(2) / math.log(3), abs=1e-9)
    assert c == pytest.approx(0.5 * pf[0] + 0.5 * 1.0, abs=1e-9)


def test_random_rotation_scores_lower():
    g = np.concatenate([grid(3, 4, 5, 2)] * 2)
    rng = np.random.default_rng(1)
    z = np.column_stack([g.astype(float), rng.normal(size=len(g))])
    z = (z - z.mean(0)) / z.std(0)
    y = g[:, :3]
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    aligned = dci(z, y, test=(z, y), gbt_params=QUICK)
    rotated = dci(z @ q, y, test=(z @ q, y), gbt_params=QUICK)
    assert aligned.score > 0.999 and rotated.score < 0.8
    assert rotated.completeness < 0.8 * aligned.completeness


@pytest.mark.parametrize("seed", [0, 4, 5])
def test_permuting_latent_dimensions_changes_nothing(seed):
    # Exactly, thanks to the canonical column order: scikit-learn's trees alone would credit the
    # first-visited of two dimensions that induce the same split, which moves D and C by ~1e-3.
    z, y = random_case(seed)
    perm = np.random.default_rng(seed).permutation(z.shape[1])
    a = dci(z, y, seed=3, gbt_params=QUICK)
    b = dci(z[:, perm], y, seed=3, gbt_params=QUICK)
    np.testing.assert_array_equal(a.importance[perm], b.importance)  # the same trees
    assert a.score == pytest.approx(b.score, abs=1e-14)  # sums in another order
    assert a.completeness == pytest.approx(b.completeness, abs=1e-14)
    assert a.informativeness_test == b.informativeness_test


def test_single_valued_factor_is_excluded_and_result_dict():
    z, y = random_case(6)
    y = np.column_stack([y, np.zeros(len(y), dtype=int)])
    with pytest.warns(RuntimeWarning, match="excluded from DCI"):
        res = dci(z, y, gbt_params=QUICK, n_jobs=2)
    ref = dci(z, y[:, :-1], gbt_params=QUICK)
    assert res.excluded == (y.shape[1] - 1,) and np.isnan(res.per_factor[-1])
    assert res.score == pytest.approx(ref.score, abs=1e-12)  # n_jobs: the same numbers
    np.testing.assert_array_equal(res.importance[:, -1], 0.0)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["metric"] == "dci" and d["excluded"] == [f"factor_{y.shape[1] - 1}"]
    assert d["per_factor"][f"factor_{y.shape[1] - 1}"] is None
    with pytest.raises(ValueError, match="test set"):
        dci(z, y[:, :-1], num_test=0)
