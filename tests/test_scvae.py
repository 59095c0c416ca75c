"""SC-VAE: the l1 penalty is a Pyro factor, the loss is ELBO + λ‖c‖₁, the sparsity metrics are right."""
from __future__ import annotations

import math

import numpy as np
import pyro
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae.lista import LISTA
from vae.scvae import SCVAE, SparseCodingEncoder, sparsity_metrics


@pytest.fixture(autouse=True)
def _fresh_param_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def _tiny(lam: float = 0.5, beta: float = 1.0, seed: int = 0) -> SCVAE:
    torch.manual_seed(seed)
    return SCVAE.mlp(latent_dim=6, input_shape=(1, 4, 4), hidden_sizes=(12,), n_steps=3, lam=lam, beta=beta,
                     lista_lam=0.05)


def _binary_batch(n: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, 1, 4, 4), 0.4), generator=torch.Generator().manual_seed(seed))


def test_loss_terms_equal_a_hand_computation():
    """loss = -log p(x|z) + beta * KL(q || N(0, I)) + lam * ||loc||_1 with z = loc + scale * eps."""
    m, x = _tiny(lam=0.7, beta=2.0), _binary_batch()
    torch.manual_seed(3)
    terms = m.loss_terms(x)
    # the same draw by hand: the guide samples eps ~ N(0, 1) once, z = loc + scale * eps
    torch.manual_seed(3)
    loc, scale = m.encoder(x)
    z = Normal(loc, scale).rsample()
    recon = -Bernoulli(logits=m.decoder(z)).log_prob(x).sum()
    kl = kl_divergence(Normal(loc, scale), Normal(0.0, 1.0)).sum()
    l1 = loc.abs().sum()
    assert torch.isclose(terms["recon"], recon, rtol=1e-5)
    assert torch.isclose(terms["kl"], kl, rtol=1e-5)
    assert torch.isclose(terms["l1"], l1, rtol=1e-6)
    assert torch.isclose(terms["loss"], recon + 2.0 * kl + 0.7 * l1, rtol=1e-5)


def test_loss_terms_equal_pyros_own_elbo_under_the_same_rng():
    m, x = _tiny(lam=0.3), _binary_batch()
    torch.manual_seed(11)
    ours = m.loss_terms(x)["loss"]
    torch.manual_seed(11)
    pyros = m.pyro_elbo().differentiable_loss(m.model, m.guide, x)
    assert torch.isclose(ours, pyros, rtol=1e-5)


def test_l1_is_a_pyro_factor_in_the_model_trace():
    m, x = _tiny(lam=0.25), _binary_batch()
    guide_tr = pyro.poutine.trace(m.guide).get_trace(x)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(m.model, trace=guide_tr)).get_trace(x)
    site = model_tr.nodes["l1"]
    code = m.sparse_code(x)
    assert torch.isclose(site["fn"].log_prob(site["value"]).sum(), -0.25 * code.abs().sum(), rtol=1e-6)


def test_lam_zero_is_the_plain_elbo_and_negative_lam_is_refused():
    m, x = _tiny(lam=0.0), _binary_batch()
    torch.manual_seed(5)
    t = m.loss_terms(x)
    assert torch.isclose(t["loss"], t["recon"] + t["kl"])
    assert t["l1"] > 0  # still reported, not weighted
    with pytest.raises(ValueError, match="lam"):
        _tiny(lam=-1.0)


def test_plain_pyro_svi_lowers_the_penalised_loss():
    m, x = _tiny(lam=0.5), _binary_batch(n=32)
    svi = pyro.infer.SVI(m.model, m.guide, pyro.optim.Adam({"lr": 1e-2}), m.pyro_elbo(num_particles=8))
    torch.manual_seed(0)
    first = np.mean([svi.evaluate_loss(x) for _ in range(20)])
    for _ in range(150):
        svi.step(x)
    last = np.mean([svi.evaluate_loss(x) for _ in range(20)])
    assert last < first - 5.0, (first, last)


def test_encoder_mean_is_lista_of_the_features():
    enc = SparseCodingEncoder.mlp(latent_dim=5, input_shape=(1, 4, 4), hidden_sizes=(7,), n_steps=4)
    x = torch.rand(3, 1, 4, 4)
    loc, scale = enc(x)
    h = enc.features(x)
    assert torch.equal(loc, enc.lista(h))
    assert isinstance(enc.lista, LISTA) and enc.lista.n_steps == 4
    assert torch.allclose(scale, torch.exp(0.5 * enc.log_var(h)))


class _FixedCode(torch.nn.Module):
    """A stand-in model whose encoder mean is a fixed table of codes (one row per image index)."""

    def __init__(self, codes: torch.Tensor) -> None:
        super().__init__()
        self.codes = torch.nn.Parameter(codes, requires_grad=False)

    def encode(self, x: torch.Tensor):
        idx = x.view(len(x), -1)[:, 0].long()
        return self.codes[idx], torch.ones_like(self.codes[idx])


def test_sparsity_metrics_on_a_hand_made_code():
    codes = torch.tensor([[0.0, 3.0, 0.0, 0.0],     # one-hot: Hoyer 1
                          [1.0, -1.0, 1.0, 1.0],    # flat: Hoyer 0
                          [0.0, 0.0, 0.0, 0.0],     # empty code: excluded from Hoyer
                          [0.0, 2.0, -2.0, 0.0]])   # two equal units
    model = _FixedCode(codes)
    images = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1)
    s = sparsity_metrics(model, images)
    n = 4
    two = (math.sqrt(n) - 4 / math.sqrt(8)) / (math.sqrt(n) - 1)  # ||.||_1 / ||.||_2 = 4 / sqrt(8)
    assert s["fraction_zeros"] == pytest.approx(9 / 16)
    assert s["hoyer"] == pytest.approx((1.0 + 0.0 + two) / 3)
    assert s["active_per_image"] == pytest.approx((1 + 4 + 0 + 2) / 4)
    assert s["empty_codes"] == pytest.approx(1 / 4)
    assert s["dead_units"] == 0
    np.testing.assert_array_equal(s["codes"], codes.numpy())


def test_sparsity_metrics_of_a_collapsed_code():
    model = _FixedCode(torch.zeros(3, 5))
    s = sparsity_metrics(model, torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1))
    assert s["fraction_zeros"] == 1.0 and s["empty_codes"] == 1.0 and s["dead_units"] == 5
    assert math.isnan(s["hoyer"])  # no informative code: no sparsity to speak of
