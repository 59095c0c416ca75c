"""β-TCVAE and FactorVAE: the total-correlation objectives against enumeration, hand computations,
grid integrals of the aggregate posterior and a closed-form Gaussian total correlation."""
import io
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import log_expit, logsumexp
from scipy.stats import norm
from torch import nn

from helpers.models import LinearDecoder, LinearEncoder
from vae.model import VAE
from vae.objectives import ELBO, BetaTCVAE, Context, FactorVAE, objective_from_config
from vae.objectives.btcvae import log_aggregate_posterior, tc_decomposition
from vae.objectives.factorvae import density_ratio_tc, discriminator_loss, permute_dims
from vae.priors import MixtureOfGaussians, StandardNormal

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")

A = np.array([[0.9, -1.1], [0.4, 0.8]])   # loc = A f + a
a = np.array([0.1, -0.2])
C = np.array([[0.4, 0.2], [-0.6, 0.1]])   # log_var = C f + c
c = np.array([-0.9, -0.4])
W = np.array([[1.2, -0.7], [-0.4, 0.9]])  # logits = W z + b
b = np.array([0.2, -0.1])
X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])   # the whole data set: N = 4


def _vae(prior=None, **kw) -> VAE:
    return VAE(LinearEncoder(A, a, C, c), LinearDecoder(W, b), prior if prior is not None else StandardNormal(2).double(), name="tc", **kw)


def _x(rows=X) -> torch.Tensor:
    return torch.tensor(rows).view(len(rows), 1, 1, 2)


def _encode(x=X):
    loc = x @ A.T + a
    return loc, np.exp(0.5 * (x @ C.T + c))


def _draw(seed: int, x=X):
    """loc, scale, z as the objective draws them after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    loc, s = _encode(x)
    eps = torch.empty(loc.shape, dtype=torch.float64).normal_().numpy()
    return loc, s, loc + s * eps


def _exact_terms(z, loc_b, s_b, loc_all, s_all):
    """Per-sample MI, TC, dwKL at z_i ~ q(z|x_i) with the exact aggregate posterior of the data set
    (loc_all, s_all: every image), q(z) = (1/N) Σ_n q(z|x_n)."""
    n = len(loc_all)
    comp = norm.logpdf(z[:, None, :], loc_all[None], s_all[None])           # (B, N, D)
    log_qz = logsumexp(comp.sum(-1), axis=1) - math.log(n)
    log_qzd = logsumexp(comp, axis=1) - math.log(n)
    log_qzx = norm.logpdf(z, loc_b, s_b).sum(-1)
    return log_qzx - log_qz, log_qz - log_qzd.sum(-1), (log_qzd - norm.logpdf(z)).sum(-1)


def _t(*arrays):
    return [torch.tensor(v) for v in arrays]


# --------------------------------------------------------------------------------------- β-TCVAE
def test_btcvae_with_mss_and_the_whole_data_set_is_exact():
    loc, s, z = _draw(seed=3)
    mi, tc, dw = _exact_terms(z, loc, s, loc, s)
    assert abs(tc.sum()) > 0.01 and mi.sum() > 0.1       # non-trivial (a one-sample TC may be negative)
    obj = BetaTCVAE(alpha=0.5, beta=3.0, gamma=2.0, estimator="mss")
    torch.manual_seed(3)
    t = obj.loss_terms(_vae(), _x(), Context(dataset_size=len(X)))
    assert float(t["mi"]) == pytest.approx(mi.sum(), rel=1e-10)
    assert float(t["tc"]) == pytest.approx(tc.sum(), rel=1e-10)
    assert float(t["dwkl"]) == pytest.approx(dw.sum(), rel=1e-10)
    out = z @ W.T + b
    recon = -(X * log_expit(out) + (1 - X) * log_expit(-out)).sum()
    assert float(t["recon"]) == pytest.approx(recon, rel=1e-12)
    assert float(t["loss"]) == pytest.approx(recon + 0.5 * mi.sum() + 3.0 * tc.sum() + 2.0 * dw.sum(), rel=1e-10)


def test_btcvae_mws_with_the_whole_data_set_is_shifted_by_log_n():
    loc, s, z = _draw(seed=5)
    mi, tc, dw = (v.sum() for v in _exact_terms(z, loc, s, loc, s))
    n, d = len(X), 2
    t = tc_decomposition(*_t(z, loc, s, norm.logpdf(z)), dataset_size=n, estimator="mws")
    # MWS estimates q(z) by q(z)/N here: MI + B log N, TC + B (D − 1) log N, dwKL − B D log N (sums over B = N)
    assert float(t["mi"]) == pytest.approx(mi + n * math.log(n), rel=1e-10)
    assert float(t["tc"]) == pytest.approx(tc + n * (d - 1) * math.log(n), rel=1e-10)
    assert float(t["dwkl"]) == pytest.approx(dw - n * d * math.log(n), rel=1e-10)


@pytest.mark.parametrize("batch", [2, 3])
def test_mss_is_unbiased_over_every_batch_by_enumeration(batch):
    """For z_i ~ q(z|x_i), the MSS estimate of q(z_i) (and of each q(z_id)), averaged over every batch
    of ``batch`` images that contains image i, is exactly the aggregate posterior's density."""
    loc, s, z = _draw(seed=7)
    n = len(X)
    comp = norm.logpdf(z[:, None, :], loc[None], s[None])                        # (N, N, D)
    q_exact = np.exp(comp.sum(-1)).mean(1)
    qd_exact = np.exp(comp).mean(1)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        est, est_d = [], []
        for rest in itertools.combinations(others, batch - 1):
            rows = [i, *rest]
            lq, lqd = log_aggregate_posterior(*_t(z[rows], loc[rows], s[rows]), dataset_size=n, estimator="mss")
            est.append(float(lq[0].exp()))
            est_d.append(lqd[0].exp().numpy())
        assert np.mean(est) == pytest.approx(q_exact[i], rel=1e-10)
        np.testing.assert_allclose(np.mean(est_d, 0), qd_exact[i], rtol=1e-10)
        if batch < n:
            assert np.std(est) > 1e-3 * q_exact[i]                              # single batches are not exact


def test_btcvae_terms_sum_to_the_one_sample_kl_and_unit_weights_give_the_elbo():
    vae = _vae(analytic_kl=False)
    x = _x(X[:3])
    for estimator in ("mss", "mws"):
        torch.manual_seed(11)
        t = BetaTCVAE(alpha=1.0, beta=1.0, gamma=1.0, estimator=estimator).loss_terms(vae, x, Context(dataset_size=50))
        torch.manual_seed(11)
        e = ELBO().loss_terms(vae, x)
        assert float(t["mi"] + t["tc"] + t["dwkl"]) == pytest.approx(float(e["kl"]), rel=1e-10)
        assert float(t["loss"]) == pytest.approx(float(e["loss"]), rel=1e-10)
        g1 = torch.autograd.grad(t["loss"], list(vae.parameters()))
        g2 = torch.autograd.grad(e["loss"], list(vae.parameters()))
        for u, v in zip(g1, g2):
            torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-12)


def test_btcvae_terms_average_to_the_aggregate_posterior_decomposition():
    """E[MI], E[TC], E[dwKL] of the full-batch MSS estimator against grid integrals of q(z) = (1/N) Σ_n q(z|x_n)."""
    loc, s = _encode()
    n = len(X)
    g = np.linspace(-7.0, 7.0, 561)
    dz = g[1] - g[0]
    comp1 = norm.logpdf(g[None, :, None], loc[:, None, :], s[:, None, :])         # (N, G, D)
    log_qd = logsumexp(comp1, axis=0) - math.log(n)                             # (G, D) marginals
    log_qn = comp1[:, :, None, 0] + comp1[:, None, :, 1]                       # (N, G, G) q(z|x_n)
    log_q = logsumexp(log_qn, axis=0) - math.log(n)
    q = np.exp(log_q)
    mi_true = np.mean([(np.exp(l) * (l - log_q)).sum() * dz * dz for l in log_qn])
    tc_true = (q * (log_q - log_qd[:, None, 0] - log_qd[None, :, 1])).sum() * dz * dz
    dw_true = sum((np.exp(log_qd[:, d]) * (log_qd[:, d] - norm.logpdf(g))).sum() * dz for d in range(2))
    assert q.sum() * dz * dz == pytest.approx(1.0, abs=1e-6) and tc_true > 0.01
    lt, st = _t(loc, s)
    gen = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(1500):
        z = lt + st * torch.randn(lt.shape, generator=gen, dtype=torch.float64)
        t = tc_decomposition(z, lt, st, torch.distributions.Normal(0.0, 1.0).log_prob(z), dataset_size=n)
        draws.append([float(t[k]) / n for k in ("mi", "tc", "dwkl")])
    draws = np.array(draws)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    for m, e, true in zip(mean, se, (mi_true, tc_true, dw_true)):
        assert abs(m - true) < 4 * e + 1e-4, (mean, se, (mi_true, tc_true, dw_true))


def test_btcvae_needs_the_data_set_size_and_a_factorised_prior():
    obj = BetaTCVAE()
    with pytest.raises(ValueError, match="dataset_size"):
        obj.loss_terms(_vae(), _x())
    with pytest.raises(ValueError, match="batch size"):
        obj.loss_terms(_vae(), _x(), Context(dataset_size=2))
    with pytest.raises(ValueError, match="factorises"):
        obj.loss_terms(_vae(prior=MixtureOfGaussians(2, 3).double()), _x(), Context(dataset_size=10))
    with pytest.raises(ValueError, match="estimator"):
        BetaTCVAE(estimator="exact")
    # a batch of one image: q(z) ≈ q(z|x), so MI = TC = 0 and the KL is all dimension-wise
    torch.manual_seed(0)
    t = obj.loss_terms(_vae(analytic_kl=False), _x(X[:1]), Context(dataset_size=10))
    assert float(t["mi"]) == 0.0 and float(t["tc"]) == pytest.approx(0.0, abs=1e-12)
    assert float(t["dwkl"]) == pytest.approx(float(t["kl"]), rel=1e-12)


# ------------------------------------------------------------------------------------- FactorVAE
RHO = 0.8


class Oracle(nn.Module):
    """The optimal discriminator for q(z) = N(0, [[1, ρ], [ρ, 1]]) against Π_d q(z_d) = N(0, I):
    logits (log q(z), log q̄(z)), so logit_0 − logit_1 = log q(z)/q̄(z). No parameters: fixed."""

    def forward(self, z):
        cov = torch.tensor([[1.0, RHO], [RHO, 1.0]], dtype=z.dtype)
        joint = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=z.dtype), cov).log_prob(z)
        return torch.stack([joint, torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)], -1)


def _correlated(n, seed, rho=RHO):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([e[:, 0], rho * e[:, 0] + math.sqrt(1 - rho**2) * e[:, 1]], -1)


def test_density_ratio_estimate_with_a_fixed_discriminator_is_the_total_correlation():
    z = _correlated(20_000, seed=1)
    per = Oracle()(z)
    tc = float(density_ratio_tc(per)) / len(z)
    se = float((per[:, 0] - per[:, 1]).std()) / math.sqrt(len(z))
    assert tc == pytest.approx(-0.5 * math.log(1 - RHO**2), abs=4 * se)


def test_factorvae_loss_by_hand_with_a_fixed_discriminator():
    obj = FactorVAE(latent_dim=2, gamma=3.0, discriminator=Oracle())
    loc, s, z = _draw(seed=2)
    out = z @ W.T + b
    recon = -(X * log_expit(out) + (1 - X) * log_expit(-out)).sum()
    kl = 0.5 * (loc**2 + s**2 - 1.0 - 2 * np.log(s)).sum()
    cov = np.array([[1.0, RHO], [RHO, 1.0]])
    from scipy.stats import multivariate_normal
    tc = (multivariate_normal(np.zeros(2), cov).logpdf(z) - norm.logpdf(z).sum(-1)).sum()
    for training in (False, True):                      # nothing to train: the same numbers
        torch.manual_seed(2)
        t = obj.loss_terms(_vae(), _x(), Context(training=training))
        assert float(t["tc"]) == pytest.approx(tc, rel=1e-10)
        assert float(t["loss"]) == pytest.approx(recon + kl + 3.0 * tc, rel=1e-10)
        assert set(t) == {"loss", "recon", "regularizer", "kl", "tc", "d_loss"}


def test_permute_dims_shuffles_each_dimension_separately():
    z = torch.arange(40.0).view(20, 2)
    p = permute_dims(z, torch.Generator().manual_seed(0))
    for d in range(2):
        assert torch.equal(p[:, d].sort().values, z[:, d])                  # a permutation of the column
    assert not torch.equal(p[:, 0] - p[:, 1], z[:, 0] - z[:, 1])           # the rows' pairing is broken
    assert not torch.equal(p[:, 0], z[:, 0]) and not torch.equal(p[:, 1], z[:, 1])


def test_discriminator_steps_only_in_training_and_gets_no_vae_gradient():
    vae = _vae()
    obj = FactorVAE(latent_dim=2, gamma=5.0, hidden=(8,)).double()
    before = [p.detach().clone() for p in obj.parameters()]
    obj.loss_terms(vae, _x(), Context(training=False))
    with torch.no_grad():
        obj.loss_terms(vae, _x(), Context(training=True))
    assert all(torch.equal(u, v) for u, v in zip(before, obj.parameters()))
    t = obj.loss_terms(vae, _x(), Context(training=True))
    assert not all(torch.equal(u, v) for u, v in zip(before, obj.parameters()))
    assert obj.optimizer.state                                               # Adam moments exist now
    obj.optimizer.zero_grad(set_to_none=True)
    t["loss"].backward()
    assert all(p.grad is None for p in obj.parameters())                    # the VAE's loss leaves D alone
    assert float(vae.encoder.A.grad.abs().sum()) > 0
    # γ·TC reaches the encoder: its gradient changes with γ
    torch.manual_seed(0)
    g5 = torch.autograd.grad(obj.loss_terms(vae, _x())["loss"], vae.encoder.A)[0]
    obj.gamma = obj.weight(0.0)
    torch.manual_seed(0)
    g0 = torch.autograd.grad(obj.loss_terms(vae, _x())["loss"], vae.encoder.A)[0]
    assert not torch.allclose(g5, g0)


def test_discriminator_learns_the_total_correlation_of_correlated_codes():
    torch.manual_seed(0)
    obj = FactorVAE(latent_dim=2, hidden=(32, 32), lr=1e-3)
    first = None
    for step in range(600):
        loss = obj.discriminator_step(_correlated(256, seed=100 + step).float())
        first = float(loss) if first is None else first
    z = _correlated(20_000, seed=1).float()
    with torch.no_grad():
        tc = float(density_ratio_tc(obj.discriminator(z))) / len(z)
        final = float(discriminator_loss(obj.discriminator(z), obj.discriminator(permute_dims(z))))
    assert first == pytest.approx(math.log(2), abs=0.05) and final < math.log(2) - 0.1
    assert tc == pytest.approx(-0.5 * math.log(1 - RHO**2), abs=0.15)


def test_factorvae_state_dict_restores_the_discriminator_and_its_optimiser():
    def fresh():
        torch.manual_seed(123)
        return FactorVAE(latent_dim=2, hidden=(8, 8), lr=1e-2)

    obj = fresh()
    for step in range(3):
        obj.discriminator_step(_correlated(32, seed=step).float())
    buf = io.BytesIO()
    torch.save(obj.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    resumed = fresh()
    resumed.load_state_dict(state)
    weights_only = fresh()
    weights_only.discriminator.load_state_dict(obj.discriminator.state_dict())
    for o in (obj, resumed, weights_only):
        torch.manual_seed(7)
        o.discriminator_step(_correlated(32, seed=99).float())
    for u, v, w in zip(obj.parameters(), resumed.parameters(), weights_only.parameters()):
        assert torch.equal(u, v)
    assert not all(torch.equal(u, w) for u, w in zip(obj.parameters(), weights_only.parameters()))


def test_factorvae_config_and_latent_dim_check():
    obj = FactorVAE(latent_dim=3, gamma=20.0, hidden=(16,))
    assert obj.config() == {"name": "factorvae", "latent_dim": 3, "gamma": 20.0, "hidden": [16], "lr": 1e-4,
                            "betas": [0.5, 0.9]}
    with pytest.raises(ValueError, match="latent_dim=3"):
        obj.loss_terms(_vae(), _x())
    custom = FactorVAE(latent_dim=2, discriminator=Oracle()).config()
    assert custom["discriminator"] == "Oracle"
    with pytest.raises(ValueError, match="custom discriminator"):
        objective_from_config(custom)
