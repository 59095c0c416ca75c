"""SC-VAE: a Pyro VAE whose posterior mean is a sparse code computed by unrolled learned ISTA.

    x -> features h (MLP) -> LISTA (T steps) -> sparse code c = loc of q(z|x);  scale from h
    z ~ N(c, scale)  ->  decoder  ->  p(x | z)

The objective is the ELBO minus an l1 penalty on the sparse code,

    loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)) + lam * ||c(x)||_1,

written the Pyro way: :class:`SCVAE` is a :class:`vae.model.VAE` (same guide, same sites "z" and
"x") whose model adds ``pyro.factor("l1", -lam * sum_batch ||c(x)||_1)``, so
``pyro.infer.SVI(scvae.model, scvae.guide, ...)`` optimises exactly this loss, and
``loss_terms(x)`` (for ``vae.train.fit``) returns it with the extra key ``"l1"`` (the unweighted
per-batch sum of ||c||_1). The guide computes c once and hands it to the model of the same step
(so the encoder runs once per step); a model run on its own recomputes it.
"""
from __future__ import annotations

from typing import Sequence

import pyro
import torch
from torch import Tensor, nn

from vae.lista import LISTA, fraction_zeros, hoyer_sparsity
from vae.model import VAE
from vae.modes import eval_mode
from vae.nets import MLPDecoder
from vae.priors import Prior, StandardNormal
from vae.device import module_device

__all__ = ["SparseCodingEncoder", "SCVAE", "sparsity_metrics"]


class SparseCodingEncoder(nn.Module):
    """Encoder contract ``x -> (loc, scale)`` with a sparse ``loc``: loc = LISTA(features(x)).

    ``features``: any module mapping x to (B, feature_dim). The LISTA block has ``n_steps``
    unrolled steps from ``feature_dim`` to ``latent_dim``, initialised as ISTA with threshold
    parameter ``lista_lam`` on a random dictionary; the scale is exp(0.5 * log_var(h)).

    >>> enc = SparseCodingEncoder.mlp(latent_dim=8, input_shape=(1, 4, 4), hidden_sizes=(16,))
    >>> loc, scale = enc(torch.rand(3, 1, 4, 4))
    >>> loc.shape, bool((scale > 0).all())
    (torch.Size([3, 8]), True)
    """

    def __init__(self, features: nn.Module, feature_dim: int, latent_dim: int, n_steps: int = 5,
                 lista_lam: float = 0.1) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.features = features
        self.lista = LISTA(feature_dim, latent_dim, n_steps=n_steps, lam=lista_lam)
        self.log_var = nn.Linear(feature_dim, latent_dim)

    @classmethod
    def mlp(cls, latent_dim: int = 32, input_shape: Sequence[int] = (1, 28, 28),
            hidden_sizes: Sequence[int] = (512, 256), n_steps: int = 5, lista_lam: float = 0.1) -> "SparseCodingEncoder":
        """Flatten -> [Linear -> ReLU] * len(hidden_sizes) features, then LISTA."""
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one layer")
        n_in = 1
        for s in input_shape:
            n_in *= int(s)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip([n_in, *hidden_sizes[:-1]], hidden_sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return cls(nn.Sequential(*layers), int(hidden_sizes[-1]), latent_dim, n_steps, lista_lam)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.lista(h), torch.exp(0.5 * self.log_var(h))


class SCVAE(VAE):
    """Sparse-coding VAE: ``SCVAE(encoder, decoder, prior, likelihood="bernoulli", beta=1.0, lam=0.1)``.

    ``encoder`` must return a sparse ``loc`` (a :class:`SparseCodingEncoder`); ``lam`` >= 0 weights
    the l1 penalty. ``loss_terms(x)`` -> ``{"loss", "recon", "kl", "l1"}`` (per-batch sums, nats),
    ``loss = recon + beta * kl + lam * l1``; it equals ``pyro_elbo().differentiable_loss(model,
    guide, x)`` under the same RNG state.

    >>> m = SCVAE.mlp(latent_dim=4, input_shape=(1, 4, 4), hidden_sizes=(8,), lam=0.5)
    >>> t = m.loss_terms(torch.rand(2, 1, 4, 4).round())
    >>> sorted(t), bool(torch.isclose(t["loss"], t["recon"] + t["kl"] + 0.5 * t["l1"]))
    (['kl', 'l1', 'loss', 'recon'], True)
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: Prior, likelihood="bernoulli",
                 beta: float = 1.0, lam: float = 0.1, analytic_kl: bool | None = None, name: str = "scvae") -> None:
        super().__init__(encoder, decoder, prior, likelihood=likelihood, beta=beta, analytic_kl=analytic_kl, name=name)
        if not lam >= 0:
            raise ValueError(f"lam (l1 weight) must be >= 0; got {lam!r}")
        self.lam = float(lam)
        self._code_cache: tuple[Tensor, Tensor] | None = None
        self._last_model_trace = None

    @classmethod
    def mlp(cls, latent_dim: int = 32, input_shape: Sequence[int] = (1, 28, 28), hidden_sizes=(512, 256),
            n_steps: int = 5, lam: float = 0.1, beta: float = 1.0, likelihood="bernoulli",
            lista_lam: float = 0.1) -> "SCVAE":
        """MLP features -> LISTA encoder, MLP decoder (reversed hidden sizes), N(0, I) prior."""
        enc = SparseCodingEncoder.mlp(latent_dim, input_shape, hidden_sizes, n_steps, lista_lam)
        dec = MLPDecoder(latent_dim, input_shape, tuple(reversed(tuple(hidden_sizes))))
        return cls(enc, dec, StandardNormal(latent_dim), likelihood=likelihood, beta=beta, lam=lam)

    # -- Pyro model / guide ---------------------------------------------------------------
    def guide(self, x: Tensor) -> Tensor:
        """Same guide as :class:`VAE`; the sparse code (its loc) is kept for the model's l1 factor."""
        self._check_x(x)
        self._register_params()
        loc, scale = self.encoder(x)
        self._code_cache = (x, loc)
        with pyro.plate("data", x.shape[0]):
            with pyro.poutine.scale(scale=self.beta):
                z = pyro.sample("z", pyro.distributions.Normal(loc, scale, validate_args=False).to_event(1))
        return z

    def sparse_code(self, x: Tensor) -> Tensor:
        """The sparse code c(x) = loc of q(z|x), (B, D)."""
        return self.encoder(x)[0]

    def model(self, x: Tensor) -> Tensor:
        """:meth:`VAE.model` plus ``pyro.factor("l1", -lam * sum_batch ||c(x)||_1)``."""
        out = super().model(x)
        if self.lam > 0:
            cache, self._code_cache = self._code_cache, None
            code = cache[1] if cache is not None and cache[0] is x else self.sparse_code(x)
            # one scalar factor for the batch (the data plate is closed by VAE.model; the sum over
            # the batch is what the plate would give, the VAE does not subsample)
            pyro.factor("l1", -self.lam * code.abs().sum())
        return out

    def traces(self, x: Tensor):
        model_tr, guide_tr = super().traces(x)
        self._last_model_trace = model_tr
        return model_tr, guide_tr

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """``{"loss", "recon", "kl", "l1"}``, per-batch sums; loss = recon + beta * kl + lam * l1."""
        terms = self.traced_loss_terms(x)  # read from Pyro's traces: the model's l1 factor is a site there
        model_tr, self._last_model_trace = self._last_model_trace, None
        if self.lam > 0:
            penalty = -model_tr.nodes["l1"]["fn"].log_factor.sum()  # lam * sum ||c||_1
            terms["loss"] = terms["loss"] + penalty
            terms["l1"] = penalty / self.lam
        else:
            terms["l1"] = self.sparse_code(x).abs().sum().detach()
        return terms


@torch.no_grad()
def sparsity_metrics(model: VAE, images: Tensor, batch_size: int = 1024, atol: float = 0.0) -> dict:
    """Sparsity of the posterior means (``model.encode(x)[0]``) over ``images``.

    Returns ``fraction_zeros`` (entries with |c| <= atol), ``hoyer`` (mean Hoyer sparsity over
    the images whose code is not all zero; NaN if none is), ``active_per_image`` (mean number of
    non-zero units), ``empty_codes`` (share of images whose whole code is zero: a collapsed code
    is sparse but says nothing) and ``dead_units`` (units that are zero for every image), plus the
    codes themselves as ``codes`` (numpy, N x D).
    """
    device = module_device(model)
    with eval_mode(model):
        codes = torch.cat([model.encode(images[i : i + batch_size].to(device))[0]
                           for i in range(0, len(images), batch_size)])
    nonzero = codes.abs() > atol
    informative = nonzero.any(1)
    return {
        "fraction_zeros": fraction_zeros(codes, atol),
        "hoyer": float(hoyer_sparsity(codes[informative]).mean()) if informative.any() else float("nan"),
        "active_per_image": float(nonzero.float().sum(1).mean()),
        "empty_codes": float((~informative).float().mean()),
        "dead_units": int((~nonzero.any(0)).sum()),
        "codes": codes.cpu().numpy(),
    }
