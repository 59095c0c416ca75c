"""Pyro model/guide and SVI against the closed forms (answer key: theta* = x + 1, ELBO* = log p(x))."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine

from vi import analytic
from vi.pyro_model import GammaGuide, as_tensor, model
from vi.svi import estimate_elbo, fit

DATA = [1.2, 0.4, 2.0]


# --- the Pyro pieces ---------------------------------------------------------------------------

def test_model_log_joint_matches_formula():
    x = as_tensor(DATA)
    z = torch.tensor(0.7, dtype=torch.float64)
    tr = poutine.trace(poutine.condition(model, data={"z": z})).get_trace(x)
    got = float(tr.log_prob_sum())
    want = -0.7 + len(DATA) * math.log(0.7) - 0.7 * sum(DATA)
    assert got == pytest.approx(want, abs=1e-12)
    assert tr.nodes["obs"]["value"].shape == (3,)


def test_guide_is_gamma_with_positive_params():
    pyro.clear_param_store()
    g = GammaGuide(alpha=2.0, theta_init=3.0)
    tr = poutine.trace(g).get_trace(as_tensor(1.0))
    fn = tr.nodes["z"]["fn"]
    assert isinstance(fn, pyro.distributions.Gamma)
    assert float(fn.concentration) == 2.0
    assert float(fn.rate.detach()) == pytest.approx(3.0, rel=1e-12)
    assert "alpha" not in pyro.get_param_store()  # fixed shape is not a parameter
    pyro.clear_param_store()
    GammaGuide(learn_shape=True, alpha_init=1.5)(as_tensor(1.0))
    store = pyro.get_param_store()
    assert set(store.keys()) == {"alpha", "theta"}
    assert float(store["alpha"].detach()) == pytest.approx(1.5, rel=1e-12)
    assert float(store["theta"].detach()) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("theta, alpha", [(1.3, 2.0), (6.0, 2.0), (2.0, 3.5)])
def test_monte_carlo_elbo_matches_closed_form(theta, alpha):
    """Pyro's traces of model and guide give the closed-form ELBO (within 5 standard errors)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    x = as_tensor(DATA if alpha != 2.0 else [3.0])
    m, se = estimate_elbo(x, GammaGuide(alpha=alpha, theta_init=theta), 40_000)
    want = analytic.elbo(theta, x.numpy(), alpha)
    assert 0 < se < 0.02
    assert abs(m - want) < 5 * se


def test_monte_carlo_elbo_is_exact_at_the_posterior():
    pyro.clear_param_store()
    m, se = estimate_elbo(as_tensor(3.0), GammaGuide(alpha=2.0, theta_init=4.0), 100)
    assert m == pytest.approx(-2 * math.log(4.0), abs=1e-10) and se < 1e-10


# --- SVI within the targets --------------------------------------------------------------------

@pytest.mark.parametrize("x", [0.0, 0.5, 3.0, 10.0])
def test_svi_recovers_theta_star_and_log_evidence(x):
    r = fit(x, seed=0)
    assert r.theta_analytic == x + 1 and r.alpha == 2.0
    assert abs(r.theta - (x + 1)) / (x + 1) <= 0.01
    assert abs(r.elbo - (-2 * math.log(x + 1))) <= 0.02
    assert abs(r.elbo_analytic - r.log_evidence) <= 0.02
    assert r.log_evidence == pytest.approx(-2 * math.log(x + 1), abs=1e-12)
    assert 0 <= r.kl < 2e-4               # a 1% error in theta costs about 1e-4 nats
    assert r.theta_trace.shape == r.elbo_trace.shape == (500,)
    assert np.isfinite(r.elbo_trace).all()


def test_svi_n_observations():
    r = fit(DATA, seed=1)
    a, b = analytic.posterior_params(DATA)  # Gamma(4, 4.6)
    assert (r.alpha, r.theta_analytic) == (a, b)
    assert abs(r.theta / b - 1) <= 0.01
    assert abs(r.elbo - analytic.log_evidence(DATA)) <= 0.02


def test_svi_fixed_shape_outside_the_posterior_family():
    """alpha = 2 with 3 observations: q cannot be the posterior; SVI finds the constrained
    optimum theta* = 2 (1 + S) / (1 + n) and its ELBO, which stays below log p(x) by KL > 0."""
    r = fit(DATA, alpha=2.0, seed=2)
    th = 2 * (1 + sum(DATA)) / (1 + len(DATA))
    assert r.theta_analytic == pytest.approx(th)
    assert abs(r.theta / th - 1) <= 0.01
    best = analytic.elbo(th, DATA, 2.0)
    assert abs(r.elbo - best) <= 0.02
    assert r.kl == pytest.approx(analytic.kl_to_posterior(th, DATA, 2.0), abs=1e-3)
    assert r.kl > 0.1 and r.elbo < r.log_evidence - 0.1


def test_svi_learned_shape_recovers_posterior():
    r = fit(DATA, learn_shape=True, steps=1000, seed=0)
    assert (r.alpha_analytic, r.theta_analytic) == (4.0, pytest.approx(4.6))
    assert abs(r.alpha / 4.0 - 1) <= 0.03      # looser: alpha and theta trade off along a ridge
    assert abs(r.theta / 4.6 - 1) <= 0.03
    assert abs(r.elbo - analytic.log_evidence(DATA)) <= 0.02
    assert r.alpha_trace[0] < 1.2              # it started at the prior's shape, 1


@pytest.mark.slow
@pytest.mark.parametrize("data, seed", [(DATA, 0), (DATA, 1), ([0.3, 5.0, 1.1, 0.0, 2.2], 0)])
def test_svi_learned_shape_within_one_percent_with_more_steps(data, seed):
    r = fit(data, learn_shape=True, steps=2000, seed=seed)
    a, b = analytic.posterior_params(data)
    assert abs(r.alpha / a - 1) <= 0.01
    assert abs(r.theta / b - 1) <= 0.01
    assert abs(r.elbo - analytic.log_evidence(data)) <= 0.02


def test_trace_elbo_estimator_also_meets_the_targets():
    r = fit(3.0, loss="trace", seed=0)
    assert abs(r.theta / 4.0 - 1) <= 0.01
    assert abs(r.elbo - analytic.log_evidence(3.0)) <= 0.02


def test_seeded_runs_repeat_and_seeds_differ():
    a = fit(2.0, steps=40, seed=7, eval_particles=100)
    b = fit(2.0, steps=40, seed=7, eval_particles=100)
    c = fit(2.0, steps=40, seed=8, eval_particles=100)
    np.testing.assert_array_equal(a.theta_trace, b.theta_trace)
    np.testing.assert_array_equal(a.elbo_trace, b.elbo_trace)
    assert a.elbo == b.elbo
    assert not np.array_equal(a.elbo_trace, c.elbo_trace)


def test_result_to_dict_is_json_ready():
    import json

    d = fit(1.0, steps=20, eval_particles=100).to_dict()
    s = json.loads(json.dumps(d))
    for k in ("theta_analytic", "theta_svi", "elbo", "log_evidence", "kl", "alpha"):
        assert isinstance(s[k], float)
    assert "theta_trace" not in s
    assert len(fit(1.0, steps=20, eval_particles=100).to_dict(traces=True)["theta_trace"]) == 20


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "x, pattern",
    [(-0.1, r"x = -0\.1 is outside the support \[0, inf\)"),
     (float("nan"), r"x = nan is not finite"),
     (float("inf"), r"x = inf is not finite"),
     ([1.0, -2.0], r"x\[1\] = -2\.0 is outside the support"),
     ([], r"empty")],
)
def test_fit_rejects_bad_data_before_computing(x, pattern):
    pyro.clear_param_store()
    pyro.param("sentinel", torch.tensor(1.0))
    with pytest.raises(ValueError, match=pattern):
        fit(x)
    assert "sentinel" in pyro.get_param_store()   # raised before touching Pyro's state


@pytest.mark.parametrize(
    "kwargs, pattern",
    [({"steps": 0}, "steps"), ({"num_particles": 0}, "num_particles"),
     ({"loss": "bogus"}, "loss must be one of"), ({"alpha": -1.0}, "alpha"),
     ({"lr": 0.0}, "lr"), ({"theta_init": float("nan")}, "theta_init")],
)
def test_fit_rejects_bad_settings(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fit(1.0, **kwargs)
