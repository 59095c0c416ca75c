"""Closed forms of the Gamma exercise against independent numerics (quad, optimize, scipy.stats)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from vi import analytic

XS = [0.0, 0.5, 3.0, 10.0]
THETAS = [0.3, 1.0, 2.7, 11.0]
DATASETS = [[1.2, 0.4, 2.0], [0.0, 0.0], [5.0, 0.1, 0.7, 3.3, 9.9]]


# --- independent truth: direct numerical integration of the model's densities -----------------

def log_joint(z: float, xs: np.ndarray) -> float:
    """log p(x, z) = log e^{-z} + sum_i log(z e^{-z x_i}) written out from the model."""
    return -z + xs.size * math.log(z) - z * xs.sum()


def quad_log_evidence(xs) -> float:
    xs = np.atleast_1d(np.asarray(xs, float))
    val, err = integrate.quad(lambda z: math.exp(log_joint(z, xs)), 0, np.inf,
                              epsabs=0, epsrel=1e-12, limit=200)
    return math.log(val)


def log_q(z: float, theta: float, alpha: float) -> float:
    """Gamma(alpha, rate theta) log density, written out."""
    return alpha * math.log(theta) - math.lgamma(alpha) + (alpha - 1) * math.log(z) - theta * z


def _q_range(theta: float, alpha: float) -> tuple[float, float]:
    q = stats.gamma(alpha, scale=1 / theta)
    return float(q.ppf(1e-15)), float(q.isf(1e-15))


def quad_elbo(theta: float, xs, alpha: float) -> float:
    """E_q[log p(x, z) - log q(z)] by quad, q = Gamma(alpha, rate theta)."""
    xs = np.atleast_1d(np.asarray(xs, float))

    def f(z):
        lq = log_q(z, theta, alpha)
        return math.exp(lq) * (log_joint(z, xs) - lq)

    lo, hi = _q_range(theta, alpha)
    val, _ = integrate.quad(f, lo, hi, epsabs=1e-12, epsrel=1e-11, limit=400,
                            points=[alpha / theta])
    return val


def quad_kl(theta: float, xs, alpha: float, log_ev: float | None = None) -> float:
    """KL(q || posterior) by quad, posterior density = joint / quad-evidence (no closed form)."""
    xs = np.atleast_1d(np.asarray(xs, float))
    log_ev = quad_log_evidence(xs) if log_ev is None else log_ev

    def f(z):
        lq = log_q(z, theta, alpha)
        return math.exp(lq) * (lq - (log_joint(z, xs) - log_ev))

    lo, hi = _q_range(theta, alpha)
    val, _ = integrate.quad(f, lo, hi, epsabs=1e-12, epsrel=1e-11, limit=400,
                            points=[alpha / theta])
    return val


# --- the exercise ------------------------------------------------------------------------------

@pytest.mark.parametrize("x", XS)
def test_log_evidence_single_x(x):
    assert analytic.log_evidence(x) == pytest.approx(-2 * math.log(x + 1), abs=1e-12)
    assert analytic.log_evidence(x) == pytest.approx(quad_log_evidence(x), abs=1e-9)


@pytest.mark.parametrize("x", XS)
@pytest.mark.parametrize("theta", THETAS)
def test_elbo_and_kl_single_x_against_quad(x, theta):
    e = analytic.elbo(theta, x)              # alpha defaults to 2 for one observation
    assert e == pytest.approx(2 - 2 * math.log(theta) - 2 * (x + 1) / theta, abs=1e-12)
    assert e == pytest.approx(quad_elbo(theta, x, 2.0), abs=1e-8)
    assert analytic.kl_to_posterior(theta, x) == pytest.approx(quad_kl(theta, x, 2.0), abs=1e-8)


@pytest.mark.parametrize("x", XS)
def test_theta_star_is_the_numerical_minimiser_of_kl(x):
    log_ev = quad_log_evidence(x)
    res = optimize.minimize_scalar(lambda lt: quad_kl(math.exp(lt), x, 2.0, log_ev),
                                   bounds=(-3, 4), method="bounded",
                                   options={"xatol": 1e-7})
    assert analytic.theta_star(x) == x + 1
    assert math.exp(res.x) == pytest.approx(x + 1, rel=1e-4)
    # at theta*, q is the posterior: KL = 0 and ELBO = log p(x) = -2 log(x + 1)
    assert analytic.kl_to_posterior(x + 1, x) == pytest.approx(0, abs=1e-12)
    assert analytic.elbo(x + 1, x) == pytest.approx(-2 * math.log(x + 1), abs=1e-12)
    a, b = analytic.posterior_params(x)
    assert (a, b) == (2.0, x + 1)


def test_posterior_matches_normalised_joint():
    xs = np.array([1.2, 0.4, 2.0])
    post = analytic.posterior(xs)
    ev = math.exp(quad_log_evidence(xs))
    for z in [0.05, 0.3, 1.0, 2.5]:
        assert post.pdf(z) == pytest.approx(math.exp(log_joint(z, xs)) / ev, rel=1e-8)


# --- n observations and a general shape --------------------------------------------------------

@pytest.mark.parametrize("data", DATASETS)
def test_log_evidence_n_observations(data):
    n, s = len(data), sum(data)
    assert analytic.log_evidence(data) == pytest.approx(
        math.lgamma(n + 1) - (n + 1) * math.log1p(s), abs=1e-12)
    assert analytic.log_evidence(data) == pytest.approx(quad_log_evidence(data), abs=1e-8)
    assert analytic.posterior_params(data) == (1.0 + n, 1.0 + s)


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("alpha", [0.7, 2.0, 4.5])
@pytest.mark.parametrize("theta", [0.5, 3.0, 12.0])
def test_elbo_and_kl_general_shape_against_quad(data, alpha, theta):
    assert analytic.elbo(theta, data, alpha) == pytest.approx(
        quad_elbo(theta, data, alpha), abs=1e-7)
    assert analytic.kl_to_posterior(theta, data, alpha) == pytest.approx(
        quad_kl(theta, data, alpha), abs=1e-7)


@pytest.mark.parametrize("data, alpha", [(DATASETS[0], None), (DATASETS[0], 1.5),
                                         (DATASETS[2], 6.0), (DATASETS[1], 0.7)])
def test_theta_star_general_shape_is_numerical_maximiser(data, alpha):
    a = analytic.resolve_shape(data, alpha)
    res = optimize.minimize_scalar(lambda lt: -quad_elbo(math.exp(lt), data, a),
                                   bounds=(-4, 4), method="bounded", options={"xatol": 1e-7})
    assert analytic.theta_star(data, alpha) == pytest.approx(math.exp(res.x), rel=1e-4)
    assert analytic.theta_star(data, alpha) == pytest.approx(a * (1 + sum(data)) / (1 + len(data)))


@pytest.mark.parametrize("data", DATASETS)
def test_joint_optimum_is_the_posterior(data):
    res = optimize.minimize(lambda p: -analytic.elbo(math.exp(p[1]), data, math.exp(p[0])),
                            x0=[0.0, 0.0], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 5000})
    a, th = np.exp(res.x)
    a_star, th_star = analytic.optimal_params(data, learn_shape=True)
    assert (a_star, th_star) == analytic.posterior_params(data)
    assert a == pytest.approx(a_star, rel=1e-4)
    assert th == pytest.approx(th_star, rel=1e-4)
    assert -res.fun == pytest.approx(analytic.log_evidence(data), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.floats(0, 50), min_size=1, max_size=8),
    theta=st.floats(0.01, 100),
    alpha=st.floats(0.05, 30),
)
def test_elbo_never_exceeds_evidence_and_theta_star_is_best(data, theta, alpha):
    ev = analytic.log_evidence(data)
    e = analytic.elbo(theta, data, alpha)
    assert e <= ev + 1e-9
    assert analytic.kl_to_posterior(theta, data, alpha) >= 0
    assert analytic.elbo(analytic.theta_star(data, alpha), data, alpha) >= e - 1e-9


def test_elbo_is_vectorised_over_theta():
    th = np.array([0.5, 1.0, 4.0])
    out = analytic.elbo(th, 3.0)
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [analytic.elbo(t, 3.0) for t in th], rtol=0, atol=1e-14)


def test_doctests():
    failures, tried = doctest.testmod(analytic, raise_on_error=False)
    assert tried > 10 and failures == 0


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "bad, pattern",
    [
        (-1.0, r"x = -1\.0 is outside the support \[0, inf\)"),
        ([1.0, -0.5], r"x\[1\] = -0\.5 is outside the support \[0, inf\)"),
        (float("nan"), r"x = nan is not finite.*\[0, inf\)"),
        ([0.1, float("inf")], r"x\[1\] = inf is not finite.*\[0, inf\)"),
        (-float("inf"), r"x = -inf is not finite"),
        ([], r"empty.*at least one observation"),
        ("abc", r"must be a number.*\[0, inf\)"),
        ([[1.0, 2.0]], r"1-D"),
    ],
)
@pytest.mark.parametrize(
    "fn",
    [analytic.log_evidence, analytic.posterior, analytic.theta_star, analytic.posterior_params,
     lambda x: analytic.elbo(2.0, x), lambda x: analytic.kl_to_posterior(2.0, x)],
)
def test_bad_data_raises_value_error(fn, bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(bad)


@pytest.mark.parametrize("theta", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_theta_and_alpha(theta):
    with pytest.raises(ValueError, match=r"theta .* must be a finite number > 0"):
        analytic.elbo(theta, 1.0)
    with pytest.raises(ValueError, match=r"alpha .* must be a finite number > 0"):
        analytic.elbo(1.0, 1.0, alpha=theta)
