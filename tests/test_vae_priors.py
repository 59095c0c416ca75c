"""Priors: densities against brute-force computations done independently with numpy/scipy."""
import numpy as np
import pyro
import pytest
import torch
from scipy.special import logsumexp, log_softmax
from scipy.stats import norm

from vae.nets import MLPEncoder
from vae.priors import MixtureOfGaussians, Prior, StandardNormal, VampPrior, make_prior


def _brute_mixture_logpdf(z: np.ndarray, log_w: np.ndarray, locs: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """log Σ_k w_k Π_d N(z_d; loc_kd, scale_kd), with an explicit loop over components."""
    out = np.empty(len(z))
    for n in range(len(z)):
        terms = []
        for k in range(len(locs)):
            terms.append(log_w[k] + sum(norm.logpdf(z[n, d], locs[k, d], scales[k, d]) for d in range(z.shape[1])))
        out[n] = logsumexp(terms)
    return out


def test_standard_normal_density_and_shapes():
    p = StandardNormal(3)
    d = p.distribution()
    assert d.batch_shape == () and d.event_shape == (3,)
    z = torch.randn(4, 3, dtype=torch.float64)
    expected = norm.logpdf(z.numpy()).sum(1)
    np.testing.assert_allclose(p.double().log_prob(z).numpy(), expected, rtol=1e-12)
    assert p.sample(7).shape == (7, 3)
    assert {n for n, _ in p.named_buffers()} == {"loc", "scale"} and not list(p.parameters())


def test_vamp_prior_log_density_matches_brute_force_mixture():
    torch.manual_seed(0)
    enc = MLPEncoder(latent_dim=2, input_shape=(1, 3, 3), hidden_sizes=(6,)).double()
    prior = VampPrior(enc, n_components=5, input_shape=(1, 3, 3)).double()
    with torch.no_grad():
        prior.pseudo_inputs.copy_(torch.rand(5, 1, 3, 3, dtype=torch.float64) * 1.4 - 0.2)  # some outside [0,1]
    d = prior.distribution()
    assert d.batch_shape == () and d.event_shape == (2,)
    # independent: push the (clipped) pseudo-inputs through the encoder by hand
    u = np.clip(prior.pseudo_inputs.detach().numpy(), 0.0, 1.0)
    with torch.no_grad():
        loc, scale = enc(torch.from_numpy(u))
    z = np.random.default_rng(1).normal(size=(6, 2)) * 1.5
    expected = _brute_mixture_logpdf(z, np.full(5, -np.log(5)), loc.numpy(), scale.numpy())
    got = prior.log_prob(torch.from_numpy(z)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # inside a plate (batch broadcast) the density is the same
    with pyro.plate("data", 6):
        tr = pyro.poutine.trace(lambda: pyro.sample("z", prior.distribution(), obs=torch.from_numpy(z))).get_trace()
    np.testing.assert_allclose(tr.nodes["z"]["fn"].log_prob(torch.from_numpy(z)).detach().numpy(), expected, rtol=1e-10)


def test_vamp_prior_gradients_reach_pseudo_inputs_and_encoder():
    enc = MLPEncoder(latent_dim=2, input_shape=(1, 2, 2), hidden_sizes=(4,))
    prior = VampPrior(enc, n_components=3, input_shape=(1, 2, 2))
    prior.log_prob(torch.randn(5, 2)).sum().backward()
    assert prior.pseudo_inputs.grad is not None and prior.pseudo_inputs.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())
    # init: noise around 0.5, in [0, 1] after the activation
    assert abs(float(prior.pseudo_inputs.detach().mean()) - 0.5) < 0.05
    u = prior.inputs().detach()
    assert float(u.min()) >= 0.0 and float(u.max()) <= 1.0


def test_vamp_prior_shared_offset_is_a_linear_layer_on_the_identity():
    """shared_offset: pseudo-input k = hardtanh(b + u_k), i.e. hardtanh(Linear(K, D)(e_k)) with weight
    column k = u_k and bias b (pythae's parametrisation); b gets the sum of every component's gradient."""
    torch.manual_seed(0)
    enc = MLPEncoder(latent_dim=2, input_shape=(1, 2, 2), hidden_sizes=(4,)).double()
    prior = VampPrior(enc, n_components=3, input_shape=(1, 2, 2), shared_offset=True).double()
    assert torch.equal(prior.offset, torch.zeros(1, 1, 2, 2, dtype=torch.float64))  # starts as the plain prior
    lin = torch.nn.Linear(3, 4).double()
    with torch.no_grad():
        prior.pseudo_inputs.copy_(lin.weight.T.reshape(3, 1, 2, 2))
        prior.offset.copy_(lin.bias.reshape(1, 1, 2, 2))
    by_layer = torch.nn.functional.hardtanh(lin(torch.eye(3, dtype=torch.float64)), 0.0, 1.0)
    assert torch.allclose(prior.inputs().reshape(3, 4), by_layer, atol=1e-15)
    prior.log_prob(torch.randn(5, 2, dtype=torch.float64)).sum().backward()
    assert prior.pseudo_inputs.grad.abs().sum() > 0  # d(b + u_k)/db = I: the offset's gradient is the sum
    assert torch.allclose(prior.offset.grad[0], prior.pseudo_inputs.grad.sum(0), atol=1e-12)
    assert "offset" in dict(prior.named_parameters()) and "offset" not in dict(
        VampPrior(enc, n_components=3, input_shape=(1, 2, 2)).named_parameters())  # old checkpoints still load
    prior.init_from_data(torch.rand(6, 1, 2, 2, dtype=torch.float64))
    assert float(prior.offset.abs().sum()) == 0.0


def test_vamp_prior_init_from_data_and_sigmoid():
    data = torch.rand(10, 1, 2, 2)
    enc = MLPEncoder(latent_dim=2, input_shape=(1, 2, 2), hidden_sizes=(4,))
    prior = VampPrior(enc, n_components=4, input_shape=(1, 2, 2)).init_from_data(data, seed=0)
    rows = {tuple(r.flatten().tolist()) for r in data}
    assert all(tuple(u.flatten().tolist()) in rows for u in prior.inputs())
    sig = VampPrior(enc, n_components=4, input_shape=(1, 2, 2), pseudo_activation="sigmoid")
    sig.init_from_data(data.clamp(0.01, 0.99), seed=0)
    assert all(tuple(round(v, 4) for v in u.flatten().tolist()) in
               {tuple(round(v, 4) for v in r.flatten().tolist()) for r in data.clamp(0.01, 0.99)} for u in sig.inputs())
    with pytest.raises(ValueError, match="images must be"):
        prior.init_from_data(torch.rand(3, 1, 5, 5))
    with pytest.raises(ValueError, match=r"pseudo_activation 'relu'.*allowed"):
        VampPrior(enc, 3, (1, 2, 2), pseudo_activation="relu")
    assert VampPrior(enc, 3, (1, 2, 2)).latent_dim == 2


def test_mixture_of_gaussians_density_matches_brute_force():
    torch.manual_seed(3)
    p = MixtureOfGaussians(latent_dim=3, n_components=4).double()
    with torch.no_grad():
        p.logits.copy_(torch.tensor([0.3, -1.0, 2.0, 0.0]))
        p.log_scales.copy_(torch.randn(4, 3) * 0.3)
    z = np.random.default_rng(0).normal(size=(5, 3))
    expected = _brute_mixture_logpdf(z, log_softmax(p.logits.detach().numpy()), p.locs.detach().numpy(),
                                     np.exp(p.log_scales.detach().numpy()))
    np.testing.assert_allclose(p.log_prob(torch.from_numpy(z)).detach().numpy(), expected, rtol=1e-10)
    assert {n for n, _ in p.named_parameters()} == {"logits", "locs", "log_scales"}
    d = p.distribution()
    assert d.batch_shape == () and d.event_shape == (3,)


def test_new_prior_is_one_short_class():
    class Laplace(Prior):
        def __init__(self, latent_dim):
            super().__init__(latent_dim)
            self.register_buffer("loc", torch.zeros(latent_dim))

        def distribution(self):
            return pyro.distributions.Laplace(self.loc, torch.ones_like(self.loc)).to_event(1)

    z = torch.tensor([[1.0, -2.0]])
    np.testing.assert_allclose(Laplace(2).log_prob(z).numpy(), [-3.0 - 2 * np.log(2)], rtol=1e-6)


def test_make_prior_and_errors():
    enc = MLPEncoder(latent_dim=2, input_shape=(1, 2, 2), hidden_sizes=(4,))
    assert isinstance(make_prior("normal", 2), StandardNormal)
    assert make_prior("mog", 2, n_components=None).n_components == 10
    assert make_prior("vamp", 2, encoder=enc, input_shape=(1, 2, 2), n_components=7).n_components == 7
    with pytest.raises(ValueError, match=r"unknown prior 'flow'; allowed: \['normal', 'vamp', 'mog'\]"):
        make_prior("flow", 2)
    with pytest.raises(ValueError, match="needs encoder"):
        make_prior("vamp", 2)
    with pytest.raises(ValueError, match="latent_dim"):
        StandardNormal(0)
    with pytest.raises(ValueError, match="n_components"):
        MixtureOfGaussians(2, 0)


def test_vampprior_with_batchnorm_dropout_encoder_is_deterministic_and_leaves_bn_alone():
    from vae.nets import ConvEncoder64

    torch.manual_seed(0)
    enc = ConvEncoder64(latent_dim=4, dropout=0.5)
    prior = VampPrior(enc, n_components=3, input_shape=(1, 64, 64))
    enc.train()
    enc.convs[0][2].eval()  # a submodule in its own mode: must be restored as it was
    buffers = {k: v.clone() for k, v in enc.state_dict().items() if "running" in k or "num_batches" in k}
    z = torch.randn(5, 4)
    a, b = prior.log_prob(z), prior.log_prob(z)
    assert torch.equal(a, b)  # no Dropout randomness in the prior
    assert all(torch.equal(buffers[k], enc.state_dict()[k]) for k in buffers)  # BN statistics untouched
    assert enc.training and not enc.convs[0][2].training and enc.convs[1][3].training
    # the prior is the eval-mode encoder's mixture, computed independently
    enc.eval()
    loc, scale = enc(prior.inputs())
    enc.train()
    comp = torch.distributions.Normal(loc, scale).log_prob(z[:, None, :]).sum(-1)  # (5, K)
    assert torch.allclose(a, torch.logsumexp(comp, 1) - np.log(3), atol=1e-5)
    a.sum().backward()  # gradients still reach the pseudo-inputs and the encoder
    assert prior.pseudo_inputs.grad is not None and prior.pseudo_inputs.grad.abs().sum() > 0


def test_vae_refuses_a_prior_with_the_wrong_shapes_at_construction():
    from vae.model import VAE
    from vae.nets import MLPDecoder

    class Batched(Prior):  # the latent dimension as a batch dimension: .to_event(1) forgotten
        def __init__(self, latent_dim, event=False, size=None):
            super().__init__(latent_dim)
            self.register_buffer("loc", torch.zeros(size or latent_dim))
            self.event = event

        def distribution(self):
            d = pyro.distributions.Laplace(self.loc, torch.ones_like(self.loc))
            return d.to_event(1) if self.event else d

    enc, dec = MLPEncoder(3, (1, 2, 2), (8,)), MLPDecoder(3, (1, 2, 2), (8,))
    with pytest.raises(ValueError, match=r"Batched\.distribution\(\) has batch_shape \(3,\) and event_shape \(\); "
                                         r"a prior must have batch_shape \(\) and event_shape \(latent_dim,\) = \(3,\)"
                                         r".*add \.to_event\(1\)"):
        VAE(enc, dec, Batched(3))
    with pytest.raises(ValueError, match=r"event_shape \(4,\); a prior must have .* = \(3,\)$"):
        VAE(enc, dec, Batched(3, event=True, size=4))  # the wrong latent size
    with pytest.raises(ValueError, match=r"batch_shape \(2,\) and event_shape \(3,\)"):
        bad = Batched(3, event=True)
        bad.loc = torch.zeros(2, 3)
        VAE(enc, dec, bad)
    ok = Batched(3, event=True)
    assert ok.check_distribution().event_shape == (3,)
    vae = VAE(enc, dec, ok)  # the right shapes build and train
    assert set(vae.loss_terms(torch.ones(4, 1, 2, 2))) == {"loss", "recon", "kl"}
    for prior in (StandardNormal(3), MixtureOfGaussians(3, 2), VampPrior(enc, 4, (1, 2, 2))):
        assert VAE(enc, dec, prior).latent_dim == 3
