"""The VAE model/guide: ELBO against hand computations, exact β scaling, plain Pyro SVI, API."""
import numpy as np
import pyro
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from scipy.special import log_expit
from scipy.stats import norm

from helpers.models import LinearDecoder, LinearEncoder
from vae.likelihoods import GaussianLikelihood
from vae.model import VAE
from vae.nets import MLPDecoder, MLPEncoder
from vae.priors import MixtureOfGaussians, Prior, StandardNormal, VampPrior

A = np.array([[0.5, -1.0], [0.3, 0.8]])   # loc = A f + a
a = np.array([0.1, -0.2])
C = np.array([[0.4, 0.2], [-0.6, 0.1]])   # log_var = C f + c
c = np.array([-0.5, 0.3])
W = np.array([[1.2, -0.7], [-0.4, 0.9]])  # logits = W z + b
b = np.array([0.2, -0.1])
X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")


def LinEnc():
    return LinearEncoder(A, a, C, c)


def LinDec():
    return LinearDecoder(W, b)


@pytest.fixture(autouse=True)
def _clean_param_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def _x() -> torch.Tensor:
    return torch.tensor(X).view(3, 1, 1, 2)


def _hand(seed: int, gaussian_sigma: float | None = None):
    """recon, analytic KL and one-sample KL by hand, with the noise torch draws after ``seed``."""
    torch.manual_seed(seed)
    eps = torch.empty(3, 2, dtype=torch.float64).normal_().numpy()
    loc = X @ A.T + a
    log_var = X @ C.T + c
    s = np.exp(0.5 * log_var)
    z = loc + s * eps
    out = z @ W.T + b
    if gaussian_sigma is None:
        recon = -(X * log_expit(out) + (1 - X) * log_expit(-out)).sum()
    else:
        recon = -norm.logpdf(X, out, gaussian_sigma).sum()
    kl_analytic = 0.5 * (loc**2 + s**2 - 1.0 - log_var).sum()
    kl_mc = (norm.logpdf(z, loc, s) - norm.logpdf(z)).sum()
    return recon, kl_analytic, kl_mc, z


def _tiny(beta=1.0, prior=None, **kw) -> VAE:
    return VAE(LinEnc(), LinDec(), prior if prior is not None else StandardNormal(2).double(), beta=beta, **kw)


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_loss_terms_analytic_kl_against_hand_computation(beta):
    recon, kl, _, _ = _hand(seed=11)
    vae = _tiny(beta)
    assert vae.analytic_kl
    torch.manual_seed(11)
    t = vae.loss_terms(_x())
    assert float(t["recon"]) == pytest.approx(recon, rel=1e-12)
    assert float(t["kl"]) == pytest.approx(kl, rel=1e-12)
    assert float(t["loss"]) == pytest.approx(recon + beta * kl, rel=1e-12)
    # Pyro's own analytic-KL ELBO gives the same number with the same noise
    torch.manual_seed(11)
    assert float(TraceMeanField_ELBO().differentiable_loss(vae.model, vae.guide, _x())) == pytest.approx(
        recon + beta * kl, rel=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_loss_terms_monte_carlo_kl_against_hand_computation(beta):
    recon, _, kl_mc, _ = _hand(seed=5)
    vae = _tiny(beta, analytic_kl=False)
    torch.manual_seed(5)
    t = vae.loss_terms(_x())
    assert float(t["recon"]) == pytest.approx(recon, rel=1e-12)
    assert float(t["kl"]) == pytest.approx(kl_mc, rel=1e-12)
    torch.manual_seed(5)
    assert float(Trace_ELBO().differentiable_loss(vae.model, vae.guide, _x())) == pytest.approx(
        recon + beta * kl_mc, rel=1e-12)


def test_gaussian_likelihood_fixed_scale_against_hand_computation():
    recon, kl, _, _ = _hand(seed=2, gaussian_sigma=0.3)
    vae = _tiny(1.0, likelihood=GaussianLikelihood(scale=0.3)).double()
    torch.manual_seed(2)
    t = vae.loss_terms(_x())
    assert float(t["recon"]) == pytest.approx(recon, rel=1e-9)
    assert float(t["kl"]) == pytest.approx(kl, rel=1e-12)
    assert not list(vae.likelihood.parameters())
    learned = VAE(LinEnc(), LinDec(), StandardNormal(2).double(), likelihood="gaussian").double()
    assert [n for n, _ in learned.likelihood.named_parameters()] == ["log_scale"]
    assert float(learned.likelihood.sigma()) == pytest.approx(0.1)


def test_mixture_prior_monte_carlo_kl_against_hand_computation():
    prior = MixtureOfGaussians(2, 3).double()
    recon, _, _, z = _hand(seed=9)
    vae = _tiny(2.0, prior=prior)
    assert not vae.analytic_kl
    torch.manual_seed(9)
    t = vae.loss_terms(_x())
    loc = X @ A.T + a
    s = np.exp(0.5 * (X @ C.T + c))
    w = torch.softmax(prior.logits.detach(), 0).numpy()
    m, sc = prior.locs.detach().numpy(), prior.log_scales.detach().exp().numpy()
    log_p = np.log(sum(w[k] * np.exp(norm.logpdf(z, m[k], sc[k]).sum(1)) for k in range(3)))
    kl_mc = (norm.logpdf(z, loc, s).sum(1) - log_p).sum()
    assert float(t["kl"]) == pytest.approx(kl_mc, rel=1e-10)
    assert float(t["loss"]) == pytest.approx(recon + 2.0 * kl_mc, rel=1e-10)


@pytest.mark.parametrize("elbo_cls", [Trace_ELBO, TraceMeanField_ELBO])
def test_beta_changes_pyro_loss_by_exactly_beta_times_kl(elbo_cls):
    x = _x()
    losses = {}
    for beta in (1.0, 4.0):
        vae = _tiny(beta)
        torch.manual_seed(3)
        losses[beta] = float(elbo_cls().differentiable_loss(vae.model, vae.guide, x))
        pyro.clear_param_store()
    _, kl_analytic, kl_mc, _ = _hand(seed=3)
    kl = kl_mc if elbo_cls is Trace_ELBO else kl_analytic
    assert losses[4.0] - losses[1.0] == pytest.approx(3.0 * kl, rel=1e-10)


def test_beta_with_vamp_prior_trace_mean_field_falls_back_to_monte_carlo():
    enc = MLPEncoder(2, (1, 2, 2), (4,))
    vae1 = VAE(enc, MLPDecoder(2, (1, 2, 2), (4,)), VampPrior(enc, 3, (1, 2, 2)), beta=1.0)
    x = torch.rand(6, 1, 2, 2).round()
    torch.manual_seed(0)
    t = vae1.loss_terms(x)
    vae1.beta = 2.5
    out = {}
    for name, elbo in (("mc", Trace_ELBO()), ("mf", TraceMeanField_ELBO())):
        torch.manual_seed(0)
        out[name] = float(elbo.differentiable_loss(vae1.model, vae1.guide, x))
    assert out["mc"] == pytest.approx(float(t["recon"] + 2.5 * t["kl"]), rel=1e-5)
    assert out["mf"] == pytest.approx(out["mc"], rel=1e-6)


def test_loss_terms_equal_pyro_elbo_value_and_gradients():
    torch.manual_seed(0)
    vae = VAE(MLPEncoder(3, (1, 3, 3), (8,)), MLPDecoder(3, (1, 3, 3), (8,)), MixtureOfGaussians(3, 4), beta=2.0)
    x = torch.rand(5, 1, 3, 3).round()
    torch.manual_seed(1)
    ours = vae.loss_terms(x)["loss"]
    g1 = torch.autograd.grad(ours, list(vae.parameters()))
    torch.manual_seed(1)
    ref = vae.pyro_elbo().differentiable_loss(vae.model, vae.guide, x)
    g2 = torch.autograd.grad(ref, list(vae.parameters()))
    assert float(ours) == pytest.approx(float(ref), rel=1e-6)
    for u, v in zip(g1, g2):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


def test_sites_events_and_scales():
    vae = _tiny(2.0)
    guide_tr = pyro.poutine.trace(vae.guide).get_trace(_x())
    model_tr = pyro.poutine.trace(pyro.poutine.replay(vae.model, trace=guide_tr)).get_trace(_x())
    assert guide_tr.nodes["z"]["fn"].event_shape == (2,) and guide_tr.nodes["z"]["fn"].batch_shape == (3,)
    assert model_tr.nodes["z"]["fn"].event_shape == (2,) and model_tr.nodes["z"]["fn"].batch_shape == (3,)
    assert model_tr.nodes["x"]["fn"].event_shape == (1, 1, 2) and model_tr.nodes["x"]["is_observed"]
    assert model_tr.nodes["z"]["scale"] == guide_tr.nodes["z"]["scale"] == 2.0
    assert model_tr.nodes["x"]["scale"] == 1.0
    assert [f.name for f in model_tr.nodes["x"]["cond_indep_stack"]] == ["data"]
    # parameters registered with Pyro's param store
    assert "vae$$$encoder.A" in pyro.get_param_store()


def test_plain_pyro_svi_lowers_the_loss():
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    patterns = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    x = patterns[torch.arange(32) % 2].view(32, 1, 2, 2)
    enc = MLPEncoder(2, (1, 2, 2), (16,))
    vae = VAE(enc, MLPDecoder(2, (1, 2, 2), (16,)), VampPrior(enc, 4, (1, 2, 2)))
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    before = np.mean([svi.evaluate_loss(x) for _ in range(5)])
    for _ in range(60):
        svi.step(x)
    after = np.mean([svi.evaluate_loss(x) for _ in range(5)])
    assert after < 0.5 * before, (before, after)
    assert "vae$$$prior.pseudo_inputs" in pyro.get_param_store()


def test_param_store_name_clash_is_a_clear_error():
    _tiny().guide(_x())
    with pytest.raises(ValueError, match="clear_param_store"):
        _tiny().guide(_x())
    _tiny(name="second").guide(_x())  # another name is fine


def test_api_shapes_and_ranges():
    torch.manual_seed(0)
    vae = VAE(MLPEncoder(2, (1, 3, 3), (8,)), MLPDecoder(2, (1, 3, 3), (8,)), StandardNormal(2))
    x = torch.rand(4, 1, 3, 3)
    loc, scale = vae.encode(x)
    assert loc.shape == scale.shape == (4, 2)
    assert vae.decode(loc).shape == (4, 1, 3, 3)
    assert vae.decode(torch.zeros(5, 4, 2)).shape == (5, 4, 1, 3, 3)
    r = vae.reconstruct(x)
    assert r.shape == x.shape and float(r.min()) >= 0 and float(r.max()) <= 1 and not r.requires_grad
    torch.testing.assert_close(r, torch.sigmoid(vae.decoder(loc)))
    s = vae.sample(6)
    assert s.shape == (6, 1, 3, 3) and float(s.min()) >= 0 and float(s.max()) <= 1
    t = vae.loss_terms(x)
    assert set(t) == {"loss", "recon", "kl"} and t["loss"].requires_grad and t["loss"].dim() == 0
    assert float(t["kl"]) > 0 and float(t["recon"]) > 0


def test_custom_prior_class_works_end_to_end():
    class Laplace(Prior):
        def __init__(self, latent_dim):
            super().__init__(latent_dim)
            self.register_buffer("loc", torch.zeros(latent_dim))

        def distribution(self):
            return pyro.distributions.Laplace(self.loc, torch.ones_like(self.loc)).to_event(1)

    vae = VAE(MLPEncoder(2, (1, 2, 2), (4,)), MLPDecoder(2, (1, 2, 2), (4,)), Laplace(2))
    x = torch.rand(3, 1, 2, 2).round()
    torch.manual_seed(0)
    t = vae.loss_terms(x)
    torch.manual_seed(0)
    assert float(Trace_ELBO().differentiable_loss(vae.model, vae.guide, x)) == pytest.approx(float(t["loss"]), rel=1e-6)


def test_errors_are_clear():
    enc, dec = MLPEncoder(2, (1, 2, 2), (4,)), MLPDecoder(2, (1, 2, 2), (4,))
    with pytest.raises(ValueError, match=r"unknown likelihood 'poisson'; allowed: \['bernoulli', 'gaussian'\]"):
        VAE(enc, dec, StandardNormal(2), likelihood="poisson")
    with pytest.raises(ValueError, match="beta must be"):
        VAE(enc, dec, StandardNormal(2), beta=0.0)
    with pytest.raises(ValueError, match="latent_dim 2 != prior latent_dim 3"):
        VAE(enc, dec, StandardNormal(3))
    with pytest.raises(ValueError, match="no closed-form KL"):
        VAE(enc, dec, MixtureOfGaussians(2, 2), analytic_kl=True)
    with pytest.raises(ValueError, match="must be a vae.priors.Prior"):
        VAE(enc, dec, pyro.distributions.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match=r"\(B, 1, 2, 2\)"):
        VAE(enc, dec, StandardNormal(2)).loss_terms(torch.rand(3, 4))
    with pytest.raises(ValueError, match="scale must be > 0"):
        GaussianLikelihood(scale=0.0)


def test_follows_input_dtype():
    vae = VAE(MLPEncoder(2, (1, 2, 2), (4,)), MLPDecoder(2, (1, 2, 2), (4,)), MixtureOfGaussians(2, 3)).double()
    t = vae.loss_terms(torch.rand(3, 1, 2, 2, dtype=torch.float64).round())
    assert t["loss"].dtype == torch.float64
    assert vae.sample(2).dtype == torch.float64


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_loss_and_svi():
    from vae.nets import ConvDecoder64, ConvEncoder64

    dev = torch.device("cuda")
    enc = ConvEncoder64(4)
    for prior in (StandardNormal(4), VampPrior(enc, 3, (1, 64, 64))):
        pyro.clear_param_store()
        vae = VAE(enc, ConvDecoder64(4), prior).to(dev)
        x = torch.rand(8, 1, 64, 64, device=dev).round()
        t = vae.loss_terms(x)
        assert t["loss"].device.type == "cuda"
        t["loss"].backward()
        assert all(p.grad is None or p.grad.device.type == "cuda" for p in vae.parameters())
        svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
        assert np.isfinite(svi.step(x))
        assert vae.sample(2).device.type == "cuda" and vae.reconstruct(x).device.type == "cuda"
