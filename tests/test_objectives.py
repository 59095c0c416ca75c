"""Objectives (ELBO, annealed capacity, DIP-VAE, IWAE), the registry and the schedules, against hand
computations, Pyro's own ELBOs (Trace_ELBO, TraceMeanField_ELBO, RenyiELBO) and closed forms."""
import json
import math

import numpy as np
import pyro
import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from scipy.special import log_expit, logsumexp
from scipy.stats import multivariate_normal, norm

from helpers.models import LinearDecoder, LinearEncoder
from vae.likelihoods import GaussianLikelihood
from vae.model import VAE
from vae.objectives import (OBJECTIVES, IWAE, AnnealedCapacity, Context, Cyclical, DIPVAE1, DIPVAE2, ELBO,
                            LinearWarmup, NoPyroEquivalent, make_objective, make_schedule, objective_from_config)
from vae.objectives.dipvae import aggregate_covariance, covariance_of_means, dip_penalty
from vae.objectives.iwae import importance_log_weights, iwae_bound
from vae.priors import StandardNormal

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")

A = np.array([[0.5, -1.0], [0.3, 0.8]])   # loc = A f + a
a = np.array([0.1, -0.2])
C = np.array([[0.4, 0.2], [-0.6, 0.1]])   # log_var = C f + c
c = np.array([-0.5, 0.3])
W = np.array([[1.2, -0.7], [-0.4, 0.9]])  # logits = W z + b
b = np.array([0.2, -0.1])
X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])


def LinEnc():
    return LinearEncoder(A, a, C, c)


def LinDec():
    return LinearDecoder(W, b)


@pytest.fixture(autouse=True)
def _clean_param_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def _vae(beta=1.0, **kw) -> VAE:
    return VAE(LinEnc(), LinDec(), StandardNormal(2).double(), beta=beta, **kw)


def _x(rows=X) -> torch.Tensor:
    return torch.tensor(rows).view(len(rows), 1, 1, 2)


def _encode(x=X):
    loc = x @ A.T + a
    log_var = x @ C.T + c
    return loc, np.exp(0.5 * log_var), log_var


def _hand(seed: int, k: int | None = None):
    """(recon, analytic KL, one-sample KL, loc, scale, z) by hand, with torch's noise after ``seed``;
    with ``k``: z has shape (k, B, D)."""
    torch.manual_seed(seed)
    loc, s, log_var = _encode()
    shape = (len(X), 2) if k is None else (k, len(X), 2)
    eps = torch.empty(shape, dtype=torch.float64).normal_().numpy()
    z = loc + s * eps
    out = z @ W.T + b
    log_px = (X * log_expit(out) + (1 - X) * log_expit(-out)).sum(-1)
    kl_analytic = 0.5 * (loc**2 + s**2 - 1.0 - log_var).sum()
    log_q, log_p = norm.logpdf(z, loc, s).sum(-1), norm.logpdf(z).sum(-1)
    return -log_px.sum(), kl_analytic, (log_q - log_p).sum(), loc, s, z, log_px + log_p - log_q


# ------------------------------------------------------------------------------------------ ELBO
@pytest.mark.parametrize("model_beta", [1.0, 3.0])
def test_elbo_is_the_vaes_loss_and_the_hand_computation(model_beta):
    recon, kl, _, *_ = _hand(seed=4)
    vae = _vae(model_beta)
    torch.manual_seed(4)
    t = ELBO().loss_terms(vae, _x(), Context(dataset_size=4))
    assert float(t["recon"]) == pytest.approx(recon, rel=1e-12)
    assert float(t["kl"]) == pytest.approx(kl, rel=1e-12)
    assert float(t["loss"]) == pytest.approx(recon + model_beta * kl, rel=1e-12)
    assert float(t["beta"]) == pytest.approx(model_beta * 4)  # ×B: the trainer's per-image mean is β
    # the VAE's own loss, on a float32 copy (VAE.loss_terms computes in float32)
    vae32, x32 = _vae(model_beta).float(), _x().float()
    torch.manual_seed(4)
    own = vae32.loss_terms(x32)
    torch.manual_seed(4)
    ours = ELBO().loss_terms(vae32, x32)
    for key in ("loss", "recon", "kl"):
        assert float(own[key]) == pytest.approx(float(ours[key]), rel=1e-6), key
    # an explicit β overrides the model's
    torch.manual_seed(4)
    assert float(ELBO(beta=0.5).loss_terms(vae, _x())["loss"]) == pytest.approx(recon + 0.5 * kl, rel=1e-12)


@pytest.mark.parametrize("analytic_kl, pyro_cls", [(True, TraceMeanField_ELBO), (False, Trace_ELBO)])
def test_elbo_equals_pyro_elbo_value_and_gradients(analytic_kl, pyro_cls):
    vae = _vae(2.0, analytic_kl=analytic_kl)
    obj = ELBO()
    assert isinstance(obj.pyro_elbo(vae), pyro_cls)
    torch.manual_seed(1)
    ours = obj.loss_terms(vae, _x())["loss"]
    g1 = torch.autograd.grad(ours, list(vae.parameters()))
    torch.manual_seed(1)
    ref = pyro_cls().differentiable_loss(vae.model, vae.guide, _x())
    g2 = torch.autograd.grad(ref, list(vae.parameters()))
    assert float(ours) == pytest.approx(float(ref), rel=1e-12)
    for u, v in zip(g1, g2):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12)
    # a β the model/guide do not carry has no Pyro equivalent, and says so
    with pytest.raises(NoPyroEquivalent, match="model.beta"):
        ELBO(beta=4.0).pyro_elbo(vae)
    with pytest.raises(NoPyroEquivalent):
        ELBO(beta=LinearWarmup(0.0, 2.0, steps=10)).pyro_elbo(vae)
    assert isinstance(ELBO(beta=2.0).pyro_elbo(vae), pyro_cls)


def test_elbo_with_a_warm_up_schedule():
    recon, kl, *_ = _hand(seed=2)
    obj = ELBO(beta=LinearWarmup(start=0.0, end=2.0, steps=100, delay=10))
    for step, beta in ((0, 0.0), (10, 0.0), (35, 0.5), (60, 1.0), (110, 2.0), (10**6, 2.0)):
        torch.manual_seed(2)
        t = obj.loss_terms(_vae(), _x(), Context(step=step))
        assert float(t["loss"]) == pytest.approx(recon + beta * kl, rel=1e-12), step


# ------------------------------------------------------------------------------ annealed capacity
def test_capacity_schedule_values():
    obj = AnnealedCapacity(gamma=1000.0, c_min=0.0, c_max=25.0, n_steps=100_000)
    steps = [0, 1, 40_000, 99_999, 100_000, 250_000]
    assert [obj.capacity(s) for s in steps] == pytest.approx([0.0, 25e-5, 10.0, 25.0 - 25e-5, 25.0, 25.0])
    up = AnnealedCapacity(c_min=5.0, c_max=1.0, n_steps=4)  # any direction
    assert [up.capacity(s) for s in range(6)] == pytest.approx([5.0, 4.0, 3.0, 2.0, 1.0, 1.0])
    assert obj.config() == {"name": "annealed", "gamma": 1000.0, "capacity": {
        "schedule": "linear_warmup", "start": 0.0, "end": 25.0, "steps": 100_000, "delay": 0}}


@pytest.mark.parametrize("step", [0, 50, 100])
def test_annealed_loss_by_hand_on_both_sides_of_the_capacity(step):
    recon, kl, *_ = _hand(seed=6)
    n = len(X)
    obj = AnnealedCapacity(gamma=7.0, c_min=0.0, c_max=4.0 * kl / n, n_steps=100)  # C crosses KL/B at step 25
    vae = _vae()
    torch.manual_seed(6)
    t = obj.loss_terms(vae, _x(), Context(step=step))
    cap = min(1.0, step / 100) * 4.0 * kl / n
    assert float(t["capacity"]) == pytest.approx(cap * n)
    assert float(t["loss"]) == pytest.approx(recon + 7.0 * n * abs(kl / n - cap), rel=1e-12)
    # the KL is pushed down when above C and up when below it: ∇ regularizer = ±γ ∇ KL
    params = list(vae.encoder.parameters())
    g_reg = torch.autograd.grad(t["regularizer"], params, retain_graph=True)
    g_kl = torch.autograd.grad(t["kl"], params)
    sign = 1.0 if kl / n > cap else -1.0
    for u, v in zip(g_reg, g_kl):
        torch.testing.assert_close(u, sign * 7.0 * v)


# ---------------------------------------------------------------------------------------- DIP-VAE
def _penalty_by_hand(cov: np.ndarray, lod: float, ld: float) -> float:
    total = 0.0
    for i in range(cov.shape[0]):
        for j in range(cov.shape[1]):
            total += ld * (cov[i, j] - 1.0) ** 2 if i == j else lod * cov[i, j] ** 2
    return total


def test_dip_covariances_and_penalty_by_hand():
    loc, s, _ = _encode()
    cov_mu = np.cov(loc.T, bias=True)                        # divisor B
    assert np.abs(cov_mu[0, 1]) > 0.05                       # off-diagonal terms are really tested
    lt, st = torch.tensor(loc), torch.tensor(s)
    np.testing.assert_allclose(covariance_of_means(lt).numpy(), cov_mu, rtol=1e-12)
    cov_z = cov_mu + np.diag((s**2).mean(0))
    np.testing.assert_allclose(aggregate_covariance(lt, st).numpy(), cov_z, rtol=1e-12)
    # the aggregate posterior's covariance, by brute force: many z from the mixture (1/B) Σ N(μ_i, σ_i²)
    rng = np.random.default_rng(0)
    comp = rng.integers(0, len(X), 400_000)
    zs = loc[comp] + s[comp] * rng.standard_normal((400_000, 2))
    np.testing.assert_allclose(np.cov(zs.T), cov_z, atol=0.02)
    assert float(dip_penalty(torch.tensor(cov_z), 2.0, 3.0)) == pytest.approx(_penalty_by_hand(cov_z, 2.0, 3.0))


@pytest.mark.parametrize("cls, kind", [(DIPVAE1, "i"), (DIPVAE2, "ii")])
def test_dip_losses_by_hand(cls, kind):
    recon, kl, *_ = _hand(seed=8)
    loc, s, _ = _encode()
    cov = np.cov(loc.T, bias=True) + (np.diag((s**2).mean(0)) if kind == "ii" else 0.0)
    obj = cls(lambda_od=2.0, lambda_d=3.0)
    torch.manual_seed(8)
    t = obj.loss_terms(_vae(), _x())
    pen = len(X) * _penalty_by_hand(cov, 2.0, 3.0)
    assert float(t["penalty"]) == pytest.approx(pen, rel=1e-12)
    assert float(t["loss"]) == pytest.approx(recon + kl + pen, rel=1e-12)
    # the paper's default ratios
    assert DIPVAE1(lambda_od=5.0).lambda_d(0) == 50.0 and DIPVAE2(lambda_od=5.0).lambda_d(0) == 5.0


# ------------------------------------------------------------------------------------------- IWAE
def test_iwae_by_hand_and_k1_equals_the_monte_carlo_elbo():
    *_, log_w = _hand(seed=3, k=3)                                       # (3, B)
    torch.manual_seed(3)
    t = IWAE(k=3).loss_terms(_vae(), _x())
    assert float(t["loss"]) == pytest.approx(-(logsumexp(log_w, axis=0) - math.log(3)).sum(), rel=1e-12)
    # k = 1: the one-sample ELBO, under the same RNG state
    vae = _vae(analytic_kl=False)
    torch.manual_seed(9)
    elbo = ELBO().loss_terms(vae, _x())
    torch.manual_seed(9)
    iw = IWAE(k=1).loss_terms(vae, _x())
    for key in ("loss", "recon", "kl"):
        assert float(iw[key]) == pytest.approx(float(elbo[key]), rel=1e-12), key


def test_iwae_equals_pyro_renyi_elbo_value_and_gradients():
    vae = _vae()
    obj = IWAE(k=4)
    renyi = obj.pyro_elbo(vae)
    assert isinstance(renyi, RenyiELBO) and renyi.alpha == 0 and renyi.num_particles == 4
    torch.manual_seed(5)
    ours = obj.loss_terms(vae, _x())["loss"]
    ours.backward()
    g1 = [p.grad.clone() for p in vae.parameters()]
    vae.zero_grad()
    torch.manual_seed(5)
    ref = renyi.loss_and_grads(vae.model, vae.guide, _x())   # Pyro's surrogate: normalised weights
    g2 = [p.grad.clone() for p in vae.parameters()]
    assert float(ours) == pytest.approx(ref, rel=1e-12)
    for u, v in zip(g1, g2):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-12)
    with pytest.raises(NoPyroEquivalent, match="beta"):
        obj.pyro_elbo(_vae(beta=2.0))


def test_iwae_shares_its_log_weights_with_the_evaluation():
    from vae.evaluate import iwae_log_likelihood

    vae = _vae()
    torch.manual_seed(12)
    train = IWAE(k=6).loss_terms(vae, _x())["loss"]
    # one chunk, the same noise (a generator seeded as the global one was)
    ev = iwae_log_likelihood(vae, _x(), n_samples=6, chunk_size=1000, seed=12)
    assert float(train) == pytest.approx(-float(ev.sum()), rel=1e-12)


def _linear_gaussian():
    """Decoder N(x; W z + b, 0.5² I) with N(0, I) prior: log p(x) in closed form; the encoder is not
    the posterior."""
    vae = VAE(LinEnc(), LinDec(), StandardNormal(2).double(), likelihood=GaussianLikelihood(scale=0.5))
    return vae, multivariate_normal(b, W @ W.T + 0.25 * np.eye(2))


def test_iwae_bound_grows_with_k_on_average_towards_log_px():
    vae, marginal = _linear_gaussian()
    x = np.array([[0.5, -0.3]])
    reps = 4000
    xt = torch.tensor(np.repeat(x, reps, 0)).view(reps, 1, 1, 2)
    means, ses = {}, {}
    for k in (1, 2, 8, 64):
        torch.manual_seed(k)
        with torch.no_grad():
            loss = IWAE(k=k).loss_terms(vae, xt)["loss"]
            torch.manual_seed(k)
            loc, scale = vae.encode(xt)
            per_image = iwae_bound(importance_log_weights(vae, xt, IWAE.posterior(loc, scale).rsample((k,)), loc, scale))
        assert float(-loss) == pytest.approx(float(per_image.sum()), rel=1e-12)
        means[k], ses[k] = float(per_image.mean()), float(per_image.std()) / math.sqrt(reps)
    log_px = float(marginal.logpdf(x[0]))
    ks = sorted(means)
    assert log_px - means[1] > 0.3                                    # a real gap to close
    for lo, hi in zip(ks, ks[1:]):
        assert means[hi] - means[lo] > 4 * math.hypot(ses[lo], ses[hi]), (lo, hi, means)
    assert means[64] < log_px + 4 * ses[64]
    assert log_px - means[64] < 0.1 * (log_px - means[1])


# ------------------------------------------------------------------------------ registry and config
def test_registry_names_configs_and_pyro_equivalents():
    assert set(OBJECTIVES) == {"elbo", "annealed", "btcvae", "factorvae", "dipvae1", "dipvae2", "iwae"}
    vae = _vae()
    for name in OBJECTIVES:
        kwargs = {"latent_dim": 2, "hidden": (8,)} if name == "factorvae" else {}
        obj = make_objective(name, **kwargs)
        cfg = obj.config()
        assert cfg["name"] == name and json.loads(json.dumps(cfg)) == cfg
        again = objective_from_config(cfg)
        assert type(again) is type(obj) and again.config() == cfg
        if name not in ("elbo", "iwae"):
            with pytest.raises(NoPyroEquivalent, match="plain ELBO"):
                obj.pyro_elbo(vae)
        torch.manual_seed(0)
        t = obj.loss_terms(vae, _x(), Context(dataset_size=10))
        assert t["loss"].requires_grad and t["loss"].dim() == 0 and "kl" in t
    sched = make_objective("elbo", beta={"schedule": "cyclical", "period": 10}).config()
    assert objective_from_config(sched).beta(7) == Cyclical(period=10)(7) == 1.0
    with pytest.raises(ValueError, match="unknown objective 'vae'.*allowed"):
        make_objective("vae")
    with pytest.raises(ValueError, match="iwae"):
        make_objective("iwae", kk=3)
    with pytest.raises(ValueError, match="k must be"):
        IWAE(k=0)


# ---------------------------------------------------------------------------------------- schedules
def test_linear_warmup_values():
    s = LinearWarmup(start=0.0, end=1.0, steps=4, delay=2)
    assert [s(t) for t in range(8)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_cyclical_schedule_values_against_fu_et_al():
    # Fu et al. 2019: T iterations, M cycles, proportion R; β_t = τ/R if τ ≤ R else 1,
    # τ = mod(t − 1, ⌈T/M⌉) / (T/M), t = 1..T
    T, M, R = 40, 4, 0.5
    s = Cyclical(start=0.0, end=1.0, period=math.ceil(T / M), ratio=R, cycles=M)
    for t in range(1, T + 1):
        tau = ((t - 1) % math.ceil(T / M)) / (T / M)
        assert s(t - 1) == pytest.approx(tau / R if tau <= R else 1.0), t
    assert s(T) == s(10**6) == 1.0                      # after M cycles: the end value
    assert Cyclical(start=2.0, end=1.0, period=4, ratio=1.0)(6) == 1.5
    assert [Cyclical(period=4, ratio=0.5)(t) for t in range(9)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 0.0]


def test_schedule_configs_and_errors():
    for s in (LinearWarmup(0.0, 3.0, steps=7, delay=1), Cyclical(0.5, 1.0, period=6, ratio=0.25, cycles=3)):
        assert make_schedule(json.loads(json.dumps(s.config()))) == s
    assert make_schedule(2)(5) == 2.0
    for bad in ({"schedule": "cosine"}, {"schedule": "cyclical", "periode": 3}, "1.0", True):
        with pytest.raises(ValueError):
            make_schedule(bad)
    for bad in (dict(steps=0), dict(start=math.nan), dict(delay=-1)):
        with pytest.raises(ValueError):
            LinearWarmup(**bad)
    with pytest.raises(ValueError, match="ratio"):
        Cyclical(ratio=0.0)
    with pytest.raises(ValueError, match="step"):
        LinearWarmup()(-1)
