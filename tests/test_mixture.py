"""The two-matrix-product mixture density equals Pyro's MixtureSameFamily (values, gradients,
shapes, inside a plate), and the priors built on it keep their meaning."""
from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from vae.mixture import DiagonalNormalMixture
from vae.priors import MixtureOfGaussians, VampPrior


def _params(k=7, d=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(k, generator=g, dtype=dtype)
    loc = torch.randn(k, d, generator=g, dtype=dtype)
    scale = torch.rand(k, d, generator=g, dtype=dtype) + 0.2
    return logits, loc, scale


def _reference(logits, loc, scale):
    return dist.MixtureSameFamily(dist.Categorical(logits=logits), dist.Normal(loc, scale).to_event(1))


def test_log_prob_equals_mixture_same_family_and_a_hand_sum():
    logits, loc, scale = _params()
    z = torch.randn(4, 5, 3, dtype=torch.float64)
    mine = DiagonalNormalMixture(logits, loc, scale).log_prob(z)
    assert mine.shape == (4, 5)
    assert torch.allclose(mine, _reference(logits, loc, scale).log_prob(z), atol=1e-10, rtol=0)
    # one point by hand: log Σ_k w_k Π_d N(z_d; μ_kd, σ_kd)
    w = torch.softmax(logits, 0)
    dens = sum(float(w[k]) * math.prod(math.exp(-0.5 * ((float(z[0, 0, d]) - float(loc[k, d])) / float(scale[k, d])) ** 2)
                                       / (math.sqrt(2 * math.pi) * float(scale[k, d])) for d in range(3))
               for k in range(7))
    assert float(mine[0, 0]) == pytest.approx(math.log(dens), abs=1e-10)


def test_float32_agrees_on_posterior_sized_values():
    logits, loc, scale = (t.float() for t in _params(k=500, d=40))
    z = _reference(logits, loc, scale).sample((200,))
    diff = (DiagonalNormalMixture(logits, loc, scale).log_prob(z) - _reference(logits, loc, scale).log_prob(z)).abs()
    assert float(diff.max()) < 1e-3


def test_gradients_equal_mixture_same_family():
    grads = []
    z0 = torch.randn(6, 3, dtype=torch.float64)
    for cls in (DiagonalNormalMixture, None):
        logits, loc, scale = (t.clone().requires_grad_() for t in _params())
        z = z0.clone().requires_grad_()
        d = cls(logits, loc, scale) if cls else _reference(logits, loc, scale)
        d.log_prob(z).sum().backward()
        grads.append([t.grad for t in (logits, loc, scale, z)])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-10)


def test_shapes_errors_sampling_and_moments():
    logits, loc, scale = _params()
    m = DiagonalNormalMixture(logits, loc, scale)
    assert m.batch_shape == () and m.event_shape == (3,)
    with pytest.raises(ValueError, match="loc and scale"):
        DiagonalNormalMixture(logits, loc, scale[:, :2])
    torch.manual_seed(0)
    s = m.sample((40_000,))
    ref = _reference(logits, loc, scale)
    assert s.shape == (40_000, 3)
    assert torch.allclose(m.mean, ref.mean) and torch.allclose(m.variance, ref.variance)
    assert torch.allclose(s.mean(0), ref.mean, atol=0.05) and torch.allclose(s.var(0), ref.variance, rtol=0.05)


def test_inside_a_plate_it_is_expanded_and_scored_per_point():
    logits, loc, scale = _params()
    m = DiagonalNormalMixture(logits, loc, scale)
    z = torch.randn(5, 3, dtype=torch.float64)

    def model():
        with pyro.plate("data", 5):
            pyro.sample("z", m, obs=z)

    tr = pyro.poutine.trace(model).get_trace()
    tr.compute_log_prob()
    assert tr.nodes["z"]["fn"].batch_shape == (5,)
    assert torch.allclose(tr.nodes["z"]["log_prob"], _reference(logits, loc, scale).log_prob(z))


def test_priors_use_it_and_vampprior_init_mean():
    from vae.nets import MLPEncoder

    torch.manual_seed(0)
    enc = MLPEncoder(latent_dim=2, input_shape=(1, 4, 4), hidden_sizes=(8,))
    vp = VampPrior(enc, n_components=300, input_shape=(1, 4, 4), init_mean=0.05, init_std=0.01)
    assert isinstance(vp.distribution(), DiagonalNormalMixture)
    assert abs(float(vp.pseudo_inputs.detach().mean()) - 0.05) < 0.002 and abs(float(vp.pseudo_inputs.detach().std()) - 0.01) < 0.002
    assert isinstance(MixtureOfGaussians(2, 3).distribution(), DiagonalNormalMixture)
