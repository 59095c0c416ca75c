"""MIG (vae.metrics) against disentanglement_lib's recipe run through sklearn, and hand computations."""
from __future__ import annotations

import itertools
import json
import math
import warnings

import numpy as np
import pytest
import sklearn.metrics
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vae.metrics import (MIGResult, discretize, entropy, histogram_edges, joint_counts, mig, mig_null,
                         mutual_information_matrix, sample_codes)


# --- the reference: disentanglement_lib's compute_mig, written the way that library writes it -------
def ref_discretize(latents, n_bins=20):
    mus = latents.T
    out = np.zeros_like(mus)
    for i in range(mus.shape[0]):
        out[i, :] = np.digitize(mus[i, :], np.histogram(mus[i, :], n_bins)[1][:-1])
    return out.T  # codes 1 .. n_bins


def ref_mi_matrix(latents, factors, n_bins=20):
    codes = ref_discretize(latents, n_bins)
    return np.array(
        [[sklearn.metrics.mutual_info_score(factors[:, j], codes[:, i]) for j in range(factors.shape[1])] for i in range(codes.shape[1])]
    )


def ref_entropy(factors):
    return np.array([sklearn.metrics.mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])


def ref_mig(latents, factors, n_bins=20):
    m = ref_mi_matrix(latents, factors, n_bins)
    h = ref_entropy(factors)
    s = np.sort(m, axis=0)[::-1]
    per = (s[0] - s[1]) / h
    return float(np.mean(per)), per


def random_case(rng, n=None):
    n = int(rng.integers(30, 3000)) if n is None else n
    d, k = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    factors = np.column_stack([rng.integers(0, int(rng.integers(2, 45)), size=n) for _ in range(k)])
    latents = rng.normal(size=(n, d))
    for j in range(min(k, d)):  # some signal, some mixing
        latents[:, j] += rng.uniform(0.2, 3.0) * factors[:, j] + rng.uniform(-1, 1) * factors[:, (j + 1) % k]
    if rng.random() < 0.3:  # many ties and values sitting exactly on bin edges
        latents = np.round(latents, 1)
    if rng.random() < 0.5:
        latents = latents.astype(np.float32)
    return latents, factors


# --- equality with the reference ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_mig_equals_sklearn_reference(seed):
    rng = np.random.default_rng(seed)
    latents, factors = random_case(rng)
    n_bins = int(rng.choice([2, 5, 10, 20, 37]))
    ours = mig(latents, factors, n_bins=n_bins)
    ref_score, ref_per = ref_mig(latents, factors, n_bins)
    assert abs(ours.score - ref_score) <= 1e-9
    np.testing.assert_allclose(ours.per_factor, ref_per, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.mutual_info, ref_mi_matrix(latents, factors, n_bins), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.entropy, ref_entropy(factors), rtol=0, atol=1e-12)


def test_mig_reference_with_arbitrary_labels_and_constant_latent():
    rng = np.random.default_rng(7)
    n = 800
    labels = np.array(["square", "ellipse", "heart"])[rng.integers(0, 3, n)]
    neg = rng.integers(-5, 5, n)  # negative integers: relabelled, not used as indices
    big = rng.choice([10**7, 3, 10**9], n)  # huge labels
    z = np.column_stack([(labels == "heart") + rng.normal(0, 0.3, n), neg + rng.normal(0, 1, n), np.full(n, 2.5), big / 1e9])
    factors_ours = np.column_stack([np.unique(labels, return_inverse=True)[1], neg, big])
    for f in (factors_ours, np.column_stack([labels, neg.astype(str), big.astype(str)])):
        ours = mig(z, f)
        ref_score, ref_per = ref_mig(z, f)
        assert abs(ours.score - ref_score) <= 1e-9
        np.testing.assert_allclose(ours.per_factor, ref_per, atol=1e-9)
    assert np.all(mig(z, factors_ours).mutual_info[2] == 0.0)  # a constant latent carries nothing


# --- the small functions -----------------------------------------------------------------------------
def test_discretize_matches_digitize_and_puts_max_in_last_bin():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5000, 6))
    z[:, 1] = np.round(z[:, 1], 1)  # ties, values on edges
    z[:, 2] = np.linspace(0, 1, 5000)  # 0.05, 0.10, ... fall on edges up to rounding
    z[:, 3] = 4.0  # constant: numpy widens to [3.5, 4.5]
    z[:, 4] = np.arange(5000) % 21  # 21 integer values into 20 bins
    z[:, 5] = -np.arange(5000) * 1e-3
    for n_bins in (1, 2, 3, 20, 64, 300):
        codes = discretize(z, n_bins)
        np.testing.assert_array_equal(codes, ref_discretize(z, n_bins) - 1)
        assert codes.min() >= 0 and codes.max() <= n_bins - 1
        varying = [0, 1, 2, 4, 5]
        assert np.all(codes[z[:, varying].argmax(0), varying] == n_bins - 1)  # the max is in the last bin
        assert np.all(codes[z[:, varying].argmin(0), varying] == 0)
    np.testing.assert_array_equal(discretize(np.array([[0.0], [0.5], [1.0]]), 2).ravel(), [0, 1, 1])
    # equal width: bin b of a column is [lo + b w, lo + (b+1) w)
    np.testing.assert_array_equal(discretize(np.array([[0.0], [0.24], [0.25], [0.5], [0.99], [1.0]]), 4).ravel(), [0, 0, 1, 2, 3, 3])


def test_histogram_edges_are_numpys():
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64, np.int64):
        z = (rng.normal(size=(300, 4)) * 10).astype(dtype)
        z[:, 2] = 3
        edges = histogram_edges(z, 20)
        for d in range(4):
            ref = np.histogram(z[:, d], 20)[1]
            assert edges[d].dtype == ref.dtype or dtype is np.float32
            np.testing.assert_array_equal(edges[d], ref)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 3)), elements=st.floats(-1e3, 1e3, allow_nan=False)),
    st.integers(1, 25),
)
def test_discretize_property_equals_digitize(z, n_bins):
    try:
        ref = ref_discretize(z, n_bins) - 1
    except ValueError:  # numpy refuses: range too small for that many finite bins
        return
    np.testing.assert_array_equal(discretize(z, n_bins), ref)


def test_mutual_information_matrix_and_entropy_against_sklearn_and_scipy():
    from scipy.stats import entropy as scipy_entropy

    rng = np.random.default_rng(3)
    codes = rng.integers(0, 7, size=(1000, 3))
    codes[:, 1] = codes[:, 0] // 2  # deterministic function: MI = H(codes1)
    factors = np.column_stack([codes[:, 0], rng.integers(0, 4, 1000)])
    joint = joint_counts(codes, factors, n_bins=7)
    assert joint.shape == (3, 7, 2, 7)
    assert joint.sum() == 1000 * 3 * 2
    m = mutual_information_matrix(joint)
    for i, j in itertools.product(range(3), range(2)):
        assert m[i, j] == pytest.approx(sklearn.metrics.mutual_info_score(factors[:, j], codes[:, i]), abs=1e-13)
    h = entropy(factors)
    for j in range(2):
        assert h[j] == pytest.approx(scipy_entropy(np.bincount(factors[:, j])), abs=1e-13)
    assert m[1, 0] == pytest.approx(scipy_entropy(np.bincount(codes[:, 1])), abs=1e-13)
    assert m[0, 0] == pytest.approx(h[0], abs=1e-13)  # MI of a variable with itself is its entropy


def test_joint_counts_brute_force():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 4, size=(200, 2))
    factors = np.column_stack([rng.integers(0, 3, 200), rng.integers(0, 70, 200), rng.integers(0, 80, 200)])
    joint = joint_counts(codes, factors, n_bins=4)  # 3*70 = 210 then 80: grouping exercised
    for d, b, k in itertools.product(range(2), range(4), range(3)):
        for c in range(80):
            assert joint[d, b, k, c] == np.sum((codes[:, d] == b) & (factors[:, k] == c))


# --- hand computations -------------------------------------------------------------------------------
def grid(*cards):
    """Every combination once (a full factorial design): the factors are exactly independent."""
    return np.array(list(itertools.product(*[range(c) for c in cards])), dtype=np.int64)


def binned_copy_entropy(c: int, n_bins: int) -> float:
    """H of a uniform factor with values 0..c-1 binned into n_bins equal bins on [0, c-1] (exact ints).

    Value v is >= edge j = j (c-1)/n_bins iff n_bins v >= j (c-1); its bin is the number of inner
    edges below it. Hand rule: c <= n_bins values fall in distinct bins -> H = log c.
    """
    bins = [sum(1 for j in range(1, n_bins) if n_bins * v >= j * (c - 1)) for v in range(c)]
    counts = np.bincount(bins)
    p = counts[counts > 0] / c
    return float(-(p * np.log(p)).sum())


def test_copied_factors_score_exactly_the_hand_computation():
    # factors shape (3), scale (6), posX (32) and a nuisance factor (5) that the code copies too
    g = grid(3, 6, 32, 5)
    factors, latents = g[:, :3], g.astype(np.float64)
    res = mig(latents, factors)
    # 3 and 6 values: distinct bins -> MI = H -> gap/H = 1. 32 values in 20 bins: 12 bins hold two
    # values and 8 hold one, so H(bin) = 12/16 log 16 + 8/32 log 32 = 4.25 log 2 and gap/H = 4.25/5.
    assert binned_copy_entropy(32, 20) == pytest.approx(4.25 * math.log(2), abs=1e-14)
    np.testing.assert_allclose(res.per_factor, [1.0, 1.0, 0.85], atol=1e-12)
    assert res.score == pytest.approx((1 + 1 + 0.85) / 3, abs=1e-12)
    np.testing.assert_allclose(res.entropy, np.log([3, 6, 32]), atol=1e-12)
    np.testing.assert_array_equal(res.best_latent, [0, 1, 2])
    # the other latents are independent factors of a full grid: exactly zero information
    off = ~np.eye(4, 3, dtype=bool)
    assert np.abs(res.mutual_info[off]).max() < 1e-12
    # 31 bins: the edges sit on the integers and the last bin holds both 30 and 31 (the max is in the
    # last bin): H = 30/32 log 32 + 2/32 log 16 -> gap/H = 158/160; with 32 bins all values separate.
    assert binned_copy_entropy(32, 31) == pytest.approx((30 * 5 + 2 * 4) / 32 * math.log(2), abs=1e-14)
    assert mig(latents, factors, n_bins=31).score == pytest.approx((2 + 158 / 160) / 3, abs=1e-12)
    assert mig(latents, factors, n_bins=32).score == pytest.approx(1.0, abs=1e-12)
    assert binned_copy_entropy(32, 32) == pytest.approx(math.log(32), abs=1e-14)


def test_copied_factors_plus_noise_dimensions():
    rng = np.random.default_rng(5)
    g = grid(3, 6, 32, 5)
    noise = rng.normal(size=(len(g), 4))
    latents = np.column_stack([g[:, :3].astype(np.float64), noise])
    res = mig(latents, g[:, :3])
    # noise dimensions carry a small positive plug-in MI (finite sample) — computed with the reference
    m_noise = ref_mi_matrix(noise, g[:, :3])
    assert 0 < m_noise.max() < 0.1
    expected = (np.array([math.log(3), math.log(6), 4.25 * math.log(2)]) - m_noise.max(axis=0)) / np.log([3, 6, 32])
    np.testing.assert_allclose(res.per_factor, expected, atol=1e-12)
    assert 0.85 < res.score < 0.95


def test_random_rotation_scores_far_lower():
    rng = np.random.default_rng(6)
    g = grid(3, 6, 40, 32)
    latents = (g - g.mean(0)) / g.std(0)
    latents = np.column_stack([latents, 0.05 * rng.normal(size=(len(g), 4))])
    aligned = mig(latents, g).score
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    rotated = mig(latents @ q, g).score
    assert aligned > 0.8
    assert rotated < 0.25 * aligned


# --- invariances -------------------------------------------------------------------------------------
def test_invariant_to_permuting_latent_dimensions():
    rng = np.random.default_rng(8)
    latents, factors = random_case(rng, n=2000)
    perm = rng.permutation(latents.shape[1])
    a, b = mig(latents, factors), mig(latents[:, perm], factors)
    assert a.score == b.score
    np.testing.assert_array_equal(a.per_factor, b.per_factor)
    np.testing.assert_array_equal(a.mutual_info[perm], b.mutual_info)
    np.testing.assert_array_equal(perm[b.best_latent], a.best_latent)


@pytest.mark.parametrize("scale,shift", [(3.7, -1.2), (1e-3, 5.0), (250.0, 0.0)])
def test_invariant_to_positive_affine_rescaling_of_one_dimension(scale, shift):
    # The "invariant to monotone rescaling" holds only for affine maps x -> a x + b (a > 0) with
    # equal-width bins; a non-linear monotone map moves points between bins (next test).
    rng = np.random.default_rng(9)
    n = 3000
    factors = np.column_stack([rng.integers(0, 5, n), rng.integers(0, 8, n)])
    latents = rng.normal(size=(n, 4)) + np.column_stack([factors, factors[:, ::-1]]) * 0.7
    rescaled = latents.copy()
    rescaled[:, 1] = scale * rescaled[:, 1] + shift
    np.testing.assert_array_equal(discretize(latents), discretize(rescaled))
    a, b = mig(latents, factors), mig(rescaled, factors)
    assert a.score == pytest.approx(b.score, abs=1e-12)


def test_non_linear_monotone_map_changes_the_score():
    # The documented limitation is real: exp() keeps the order of the values but squeezes most of them
    # into the lowest equal-width bins, so the binned latent (and MIG) change.
    rng = np.random.default_rng(9)
    n = 3000
    factors = np.column_stack([rng.integers(0, 5, n), rng.integers(0, 8, n)])
    latents = rng.normal(size=(n, 4)) + np.column_stack([factors, factors[:, ::-1]]) * 0.7
    warped = latents.copy()
    warped[:, 1] = np.exp(2.0 * warped[:, 1])
    assert np.all(np.argsort(warped[:, 1], kind="stable") == np.argsort(latents[:, 1], kind="stable"))  # monotone
    assert not np.array_equal(discretize(latents)[:, 1], discretize(warped)[:, 1])
    a, b = mig(latents, factors), mig(warped, factors)
    assert b.mutual_info[1, 1] < 0.8 * a.mutual_info[1, 1]  # the warped dim loses most of its binned information
    assert abs(a.score - b.score) > 0.01


def test_invariant_to_negation_up_to_edge_ownership():
    # x -> -x mirrors the bins; only half-open edge ownership differs, so on continuous data MIG is equal.
    rng = np.random.default_rng(10)
    factors = rng.integers(0, 6, size=(2000, 2))
    latents = rng.normal(size=(2000, 3)) + np.column_stack([factors, factors.sum(1)])
    flipped = latents.copy()
    flipped[:, 0] *= -1
    assert mig(latents, factors).score == pytest.approx(mig(flipped, factors).score, abs=1e-12)


# --- single-valued factors and errors ----------------------------------------------------------------
def test_single_valued_factor_is_excluded_with_a_warning():
    rng = np.random.default_rng(11)
    n = 1000
    f = np.column_stack([rng.integers(0, 4, n), np.zeros(n, dtype=int), rng.integers(0, 3, n)])
    z = rng.normal(size=(n, 3)) + f
    with pytest.warns(RuntimeWarning, match="factor 1 takes a single value"):
        res = mig(z, f)
    assert np.isnan(res.per_factor[1])
    assert res.excluded == (1,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rest = mig(z, f[:, [0, 2]])
    np.testing.assert_allclose(res.per_factor[[0, 2]], rest.per_factor, atol=0)
    assert res.score == pytest.approx(rest.score, abs=1e-15)
    assert res.score == pytest.approx(np.nanmean(res.per_factor))
    d = res.to_dict(["a", "colour", "b"])
    assert d["per_factor"]["colour"] is None and d["excluded"] == ["colour"]
    json.dumps(d)


def test_errors():
    rng = np.random.default_rng(12)
    z, f = rng.normal(size=(100, 3)), rng.integers(0, 3, size=(100, 2))
    with pytest.raises(ValueError, match="at least 2 latent"):
        mig(z[:, :1], f)
    with pytest.raises(ValueError, match="must match"):
        mig(z, f[:99])
    with pytest.raises(ValueError, match="2-d"):
        mig(z[:, 0], f)
    with pytest.raises(ValueError, match="NaN or Inf"):
        bad = z.copy()
        bad[3, 1] = np.nan
        mig(bad, f)
    with pytest.raises(ValueError, match="n_bins"):
        mig(z, f, n_bins=0)
    with pytest.raises(ValueError, match="every factor"), pytest.warns(RuntimeWarning):
        mig(z, np.ones((100, 2), dtype=int))
    with pytest.raises(ValueError, match="N = 0"):
        mig(np.zeros((0, 3)), np.zeros((0, 2), dtype=int))


def test_result_object_and_1d_factor():
    rng = np.random.default_rng(13)
    f = rng.integers(0, 4, 500)
    z = np.column_stack([f + rng.normal(0, 0.1, 500), rng.normal(size=500)])
    res = mig(z, f)  # a 1-d factor array is one factor
    assert isinstance(res, MIGResult) and res.per_factor.shape == (1,)
    assert res.mutual_info.shape == (2, 1) and res.n_points == 500 and res.n_bins == 20
    assert 0.0 <= res.score <= 1.0
    assert json.loads(json.dumps(res.to_dict()))["mig"] == pytest.approx(res.score)


# --- the null (shuffled factors) and sampled codes ----------------------------------------------------
def dsprites_like_factors(rng, n):
    return np.column_stack([rng.integers(0, c, n) for c in (3, 6, 40, 32, 32)])


def test_mig_null_is_mig_of_shuffled_factors():
    rng = np.random.default_rng(11)
    factors = dsprites_like_factors(rng, 2000)
    latents = rng.normal(size=(2000, 6))
    perm = np.random.default_rng(3).permutation(2000)
    null = mig_null(latents, factors, n_bins=20, seed=3)
    assert null.score == mig(latents, factors[perm]).score
    assert null.n_points == 2000
    with pytest.raises(ValueError):
        mig_null(latents, factors[:10])


def test_mig_null_of_informative_latents_is_far_below_their_mig():
    rng = np.random.default_rng(12)
    n = 5000
    factors = dsprites_like_factors(rng, n)
    scaled = factors / (np.array([3, 6, 40, 32, 32]) - 1.0)
    latents = np.column_stack([scaled + 0.05 * rng.normal(size=(n, 5)), rng.normal(size=(n, 5))])
    real = mig(latents, factors).score
    null = mig_null(latents, factors, seed=0).score
    assert real > 0.5
    assert null < 0.01 * real
    assert null > 0  # the plug-in estimator's bias: positive MI between independent variables


@pytest.mark.parametrize("n", [500, 5000])
def test_mig_null_of_random_latents_matches_their_score(n):
    # Random latents carry no information, so their MIG IS a null score: the two are draws of the same
    # bias, of equal size (random latents vs dSprites-like factors: ~0.005 at N=500, ~0.0005 at N=5000).
    rng = np.random.default_rng(13)
    factors = dsprites_like_factors(rng, n)
    latents = rng.normal(size=(n, 16))
    scores = [mig(latents, factors).score] + [mig_null(latents, factors, seed=s).score for s in range(8)]
    nulls = np.array(scores[1:])
    assert scores[0] < 4 * nulls.mean() and nulls.mean() < 4 * scores[0]
    assert nulls.mean() < 5.0 / n  # a bias that shrinks ~1/N
    # both are far above zero relative to the other N: bias, not signal
    assert abs(scores[0] - nulls.mean()) < 3 * nulls.std() + 0.5 * nulls.mean()


def test_sample_codes_are_normal_draws_around_the_means():
    rng = np.random.default_rng(14)
    loc, scale = rng.normal(size=(20000, 3)), np.array([0.1, 1.0, 3.0]) * np.ones((20000, 3))
    z = sample_codes(loc, scale, seed=1)
    r = (z - loc) / scale
    np.testing.assert_allclose(r.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(r.std(0), 1, atol=0.03)
    np.testing.assert_array_equal(z, sample_codes(loc, scale, seed=1))
    np.testing.assert_array_equal(sample_codes(loc, 0 * scale), loc)
    with pytest.raises(ValueError):
        sample_codes(loc, scale[:, :2])


# --- Chen et al. 2018's estimator (a different one, under its own name) -------------------------------
def test_mig_chen_matches_the_analytic_mutual_information_of_a_gaussian_mixture():
    from vae.metrics import mig_chen

    # q(z0|x) = N(v, 0.5^2) with v the factor (4 values); q(z1|x) = N(0, 1) whatever x: no information.
    # I(z0; v) = H(mixture of the 4 Gaussians) - H(N(0, 0.5^2)), the mixture entropy by quadrature.
    rng = np.random.default_rng(0)
    n, c, s = 2000, 4, 0.5
    v = rng.integers(0, c, n)
    loc = np.column_stack([v.astype(float), np.zeros(n)])
    scale = np.column_stack([np.full(n, s), np.ones(n)])
    res = mig_chen(loc, scale, v[:, None], n_samples=1000, seed=1)
    p = np.bincount(v) / n
    x = np.linspace(-6, c + 5, 200_001)
    dens = sum(pk * np.exp(-0.5 * ((x - k) / s) ** 2) / (s * math.sqrt(2 * math.pi)) for k, pk in enumerate(p))
    mi = -(dens * np.log(np.maximum(dens, 1e-300))).sum() * (x[1] - x[0]) - 0.5 * math.log(2 * math.pi * math.e * s * s)
    h_v = -(p * np.log(p)).sum()
    assert res.mutual_info[0, 0] == pytest.approx(mi, abs=0.03)
    assert res.mutual_info[1, 0] < 0.03
    assert res.score == pytest.approx((res.mutual_info[0, 0] - res.mutual_info[1, 0]) / h_v, abs=1e-12)
    assert res.score == pytest.approx(mi / h_v, abs=0.03)
    assert res.estimator == "chen2018" and res.n_bins == 0 and res.to_dict()["estimator"] == "chen2018"
    assert mig(loc, v[:, None]).to_dict()["estimator"] == "disentanglement_lib"
    with pytest.raises(ValueError):
        mig_chen(loc, -scale, v[:, None])
