"""IWAE log-likelihood against exact log p(x) on tiny models; ELBO bound; image grids."""
import numpy as np
import pytest
import torch
from scipy.special import log_expit
from scipy.stats import multivariate_normal, norm

from helpers.models import LinearDecoder as LinDec, LinearEncoder as LinEnc
from vae.evaluate import elbo_per_image, iwae_log_likelihood, prior_samples_grid, reconstruction_grid
from vae.likelihoods import GaussianLikelihood
from vae.model import VAE
from vae.nets import MLPDecoder, MLPEncoder
from vae.priors import StandardNormal


W = np.array([[1.5], [-0.8]])  # 2 pixels, 1-d latent
B = np.array([0.3, -0.2])


def _linear_gaussian(sigma=0.5):
    """Decoder N(x; W z + B, σ² I), encoder = the exact posterior: every importance weight is p(x)."""
    prec = 1.0 + (W.T @ W).item() / sigma**2
    var = 1.0 / prec
    A = var / sigma**2 * W.T                      # (1, 2)
    a = -(A @ B)
    enc = LinEnc(A, a, np.zeros((1, 2)), [np.log(var)])
    vae = VAE(enc, LinDec(W, B), StandardNormal(1).double(), likelihood=GaussianLikelihood(scale=sigma))
    marginal = multivariate_normal(B, W @ W.T + sigma**2 * np.eye(2))
    return vae, marginal


def test_iwae_is_exact_when_the_encoder_is_the_true_posterior():
    vae, marginal = _linear_gaussian()
    x = np.array([[0.0, 0.0], [1.0, -1.0], [2.5, 0.4]])
    xt = torch.tensor(x).view(3, 1, 1, 2)
    exact = marginal.logpdf(x)
    for n_samples, chunk in ((1, 1000), (10, 3), (50, 1000)):  # one block, several chunks, several images per pass
        ll = iwae_log_likelihood(vae, xt, n_samples=n_samples, chunk_size=chunk, seed=0)
        np.testing.assert_allclose(ll.numpy(), exact, rtol=1e-10)
    np.testing.assert_allclose(elbo_per_image(vae, xt, n_samples=7, seed=1).numpy(), exact, rtol=1e-10)


_Z = np.linspace(-12, 12, 200_001)


def _log_joint(xi: np.ndarray) -> np.ndarray:
    logits = _Z[:, None] * W[:, 0] + B
    return norm.logpdf(_Z) + (xi * log_expit(logits) + (1 - xi) * log_expit(-logits)).sum(1)


def _bernoulli_exact_log_px(x: np.ndarray) -> np.ndarray:
    """log ∫ N(z; 0, 1) Π_i Bern(x_i; σ(W_i z + B_i)) dz on a dense grid (trapezoid)."""
    out = []
    for xi in x:
        log_f = _log_joint(xi)
        m = log_f.max()
        out.append(m + np.log(np.trapezoid(np.exp(log_f - m), _Z)))
    return np.array(out)


def _exact_elbo(x: np.ndarray, A, a, C, c) -> np.ndarray:
    """∫ q(z|x) [log p(x, z) − log q(z|x)] dz on the grid, q = N(A x + a, exp(C x + c))."""
    out = []
    for xi in x:
        loc, sd = (A @ xi + a)[0], np.exp(0.5 * (C @ xi + c))[0]
        log_q = norm.logpdf(_Z, loc, sd)
        out.append(np.trapezoid(np.exp(log_q) * (_log_joint(xi) - log_q), _Z))
    return np.array(out)


def test_iwae_converges_to_exact_log_likelihood_and_bounds_the_elbo():
    # an encoder that is *not* the posterior
    A, a, C, c = np.array([[0.9, -0.6]]), np.array([0.1]), np.array([[0.3, 0.2]]), np.array([-0.7])
    enc = LinEnc(A, a, C, c)
    vae = VAE(enc, LinDec(W, B), StandardNormal(1).double())
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    xt = torch.tensor(x).view(4, 1, 1, 2)
    exact = _bernoulli_exact_log_px(x)
    # the images are all Bernoulli probabilities of 4 outcomes: they sum to one
    assert np.exp(exact).sum() == pytest.approx(1.0, abs=1e-9)
    # S = 5,000 as in the VampPrior paper; averaged over 8 seeds (one estimate has sd ≈ 0.01 here)
    runs = np.array([iwae_log_likelihood(vae, xt, n_samples=5000, chunk_size=2000, seed=s).numpy() for s in range(8)])
    iwae = runs.mean(0)
    np.testing.assert_allclose(iwae, exact, atol=0.015)
    elbo = elbo_per_image(vae, xt, n_samples=5000, seed=1).numpy()
    exact_elbo = _exact_elbo(x, A, a, C, c)
    assert np.all(exact - exact_elbo > 0.05)  # a real gap: KL(q(z|x) || p(z|x))
    np.testing.assert_allclose(elbo, exact_elbo, atol=0.01)
    assert np.all(runs > elbo + 0.03)
    few = np.mean([iwae_log_likelihood(vae, xt, n_samples=2, seed=s).numpy() for s in range(200)], axis=0)
    assert np.all(few < iwae) and np.all(few > elbo)  # E[IWAE_2] lies between the ELBO and log p(x)


def test_iwae_keeps_mode_and_device_and_checks_input():
    torch.manual_seed(0)
    enc = MLPEncoder(2, (1, 3, 3), (8,))
    vae = VAE(enc, MLPDecoder(2, (1, 3, 3), (8,)), StandardNormal(2)).train()
    x = torch.rand(5, 1, 3, 3).round()
    a = iwae_log_likelihood(vae, x, n_samples=20, seed=3)
    b = iwae_log_likelihood(vae, x, n_samples=20, seed=3)
    assert a.shape == (5,) and torch.equal(a, b) and not a.requires_grad and bool((a < 0).all())
    assert vae.training
    with pytest.raises(ValueError, match="positive"):
        iwae_log_likelihood(vae, x, n_samples=0)
    with pytest.raises(ValueError, match="tensor of images"):
        iwae_log_likelihood(vae, x.numpy())


def test_grids_are_written(tmp_path):
    torch.manual_seed(0)
    vae = VAE(MLPEncoder(2, (1, 6, 6), (8,)), MLPDecoder(2, (1, 6, 6), (8,)), StandardNormal(2))
    p = reconstruction_grid(vae, torch.rand(10, 1, 6, 6), tmp_path / "recon.png", n=4)
    q = prior_samples_grid(vae, 10, tmp_path / "samples.png", n_cols=4, seed=0)
    for f in (p, q):
        assert f.is_file() and f.stat().st_size > 500 and f.read_bytes()[:4] == b"\x89PNG"
    # the seeded sample grid does not disturb the global RNG stream
    torch.manual_seed(1)
    r1 = torch.rand(1)
    torch.manual_seed(1)
    prior_samples_grid(vae, 2, tmp_path / "s2.png", seed=5)
    assert torch.equal(torch.rand(1), r1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_iwae_on_cuda_matches_cpu():
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import VampPrior

    torch.manual_seed(0)
    enc = MLPEncoder(2, (1, 4, 4), (8,))
    vae = VAE(enc, MLPDecoder(2, (1, 4, 4), (8,)), VampPrior(enc, 3, (1, 4, 4)))
    x = (torch.rand(6, 1, 4, 4) > 0.5).float()
    cpu = iwae_log_likelihood(vae, x, n_samples=20000, chunk_size=5000, seed=0)
    vae.cuda()
    gpu = iwae_log_likelihood(vae, x.cuda(), n_samples=20000, chunk_size=5000, seed=0)
    assert gpu.device.type == "cuda" and torch.isfinite(gpu).all()
    # different random streams on the two devices: equal up to Monte Carlo error
    assert torch.allclose(gpu.cpu(), cpu, atol=0.05)
