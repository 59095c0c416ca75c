"""The VAE as a Pyro model/guide pair with a swappable prior and likelihood.

Generative model (``model``)::

    z ~ p(z)                  (site "z", event dim 1, log-density scaled by β)
    x ~ p(x | decoder(z))     (site "x", observed, the image dims are event dims)

Guide: z ~ N(loc(x), scale(x)) from the encoder (site "z", scaled by the same β). Scaling the z
site by β in *both* model and guide (``poutine.scale``) makes Pyro's ELBO exactly
``E_q[log p(x|z)] − β·KL(q‖p)``, for the Monte Carlo ``Trace_ELBO`` and the analytic
``TraceMeanField_ELBO`` alike.

Plain Pyro works::

    >>> import pyro, torch
    >>> from vae.nets import MLPEncoder, MLPDecoder
    >>> from vae.priors import StandardNormal
    >>> pyro.clear_param_store()
    >>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2))
    >>> svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}), pyro.infer.Trace_ELBO())
    >>> loss = svi.step(torch.ones(4, 1, 2, 2))

and the shared trainer (``vae.train.fit``) optimises ``loss_terms(x)["loss"]`` with torch's Adam.
"""
from __future__ import annotations

import math
from typing import Iterator
from contextlib import contextmanager

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from torch import Tensor, nn
from torch.distributions import kl_divergence

from vae.likelihoods import Likelihood, make_likelihood
from vae.priors import Prior

__all__ = ["VAE"]


def _full(t: Tensor) -> Tensor:
    """Half-precision outputs (bf16/fp16 under autocast) -> float32; float32/float64 unchanged."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


class VAE(nn.Module):
    """A Pyro VAE: ``VAE(encoder, decoder, prior, likelihood="bernoulli", beta=1.0)``.

    Args:
        encoder: ``encoder(x) -> (loc, scale)``, each (B, D).
        decoder: ``decoder(z) -> out`` shaped like x (logits for Bernoulli, mean for Gaussian).
        prior: a :class:`vae.priors.Prior` with ``latent_dim == D`` whose ``distribution()`` has
            batch_shape ``()`` and event_shape ``(D,)`` (checked here: ``ValueError`` otherwise).
        likelihood: ``"bernoulli"`` (logits), ``"gaussian"`` (learned global σ) or a
            :class:`vae.likelihoods.Likelihood` (e.g. ``GaussianLikelihood(scale=0.1)``, fixed σ).
        beta: weight of the KL term, > 0 (β-VAE).
        analytic_kl: use the closed-form KL in :meth:`loss_terms` and :meth:`pyro_elbo`
            (``None``: when the prior allows it, i.e. ``prior.analytic_kl``).
        name: the name under which :meth:`model`/:meth:`guide` register the parameters in Pyro's
            param store (``pyro.module``).

    :meth:`loss_terms` returns per-batch sums in nats: ``loss = recon + beta * kl``, with
    ``recon = −log p(x|z)`` at one z ~ q(z|x) and ``kl`` the analytic KL or its one-sample estimate
    ``log q(z|x) − log p(z)``. It equals ``pyro_elbo().differentiable_loss(model, guide, x)`` (same
    RNG state) and is differentiable.

    >>> from vae.nets import MLPEncoder, MLPDecoder
    >>> from vae.priors import StandardNormal
    >>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2), beta=4.0)
    >>> terms = vae.loss_terms(torch.ones(5, 1, 2, 2))
    >>> sorted(terms), bool(torch.isclose(terms["loss"], terms["recon"] + 4.0 * terms["kl"]))
    (['kl', 'loss', 'recon'], True)
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: Prior,
        likelihood: str | Likelihood = "bernoulli",
        beta: float = 1.0,
        analytic_kl: bool | None = None,
        name: str = "vae",
    ) -> None:
        super().__init__()
        if not isinstance(prior, Prior):
            raise ValueError(f"prior must be a vae.priors.Prior (StandardNormal, VampPrior, ...); got {type(prior).__name__}")
        enc_dim = getattr(encoder, "latent_dim", None)
        if enc_dim is not None and int(enc_dim) != prior.latent_dim:
            raise ValueError(f"encoder latent_dim {enc_dim} != prior latent_dim {prior.latent_dim}")
        dec_dim = getattr(decoder, "latent_dim", None)
        if dec_dim is not None and int(dec_dim) != prior.latent_dim:
            raise ValueError(f"decoder latent_dim {dec_dim} != prior latent_dim {prior.latent_dim}")
        with torch.no_grad():
            prior.check_distribution()  # batch_shape (), event_shape (D,): a clear error now, not in Pyro's plate
        if analytic_kl and not prior.analytic_kl:
            raise ValueError(f"analytic_kl=True, but {type(prior).__name__} has no closed-form KL to a Normal guide")
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.likelihood = make_likelihood(likelihood)
        self.beta = beta
        self.analytic_kl = bool(prior.analytic_kl if analytic_kl is None else analytic_kl)
        if "$$$" in name:
            raise ValueError(f"name must not contain '$$$'; got {name!r}")
        self.name = name
        self._register = True

    # ------------------------------------------------------------------ properties
    @property
    def beta(self) -> float:
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        value = float(value)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"beta must be a finite number > 0 (poutine.scale needs a positive scale); got {value!r}")
        self._beta = value

    @property
    def latent_dim(self) -> int:
        return self.prior.latent_dim

    # ------------------------------------------------------------------ Pyro model / guide
    def _register_params(self) -> None:
        if not self._register:
            return
        pyro.module(self.name, self)
        first = next(((n, p) for n, p in self.named_parameters() if p.requires_grad), None)
        if first is not None and pyro.param(f"{self.name}$$${first[0]}") is not first[1]:
            raise ValueError(
                f"Pyro's param store already holds different parameters under the name {self.name!r} "
                "(another VAE?): call pyro.clear_param_store() or give this VAE another name=..."
            )

    @staticmethod
    def _check_x(x: Tensor) -> None:
        if not torch.is_tensor(x) or x.dim() < 2:
            raise ValueError(f"x must be a tensor of images (B, C, H, W) or (B, ...); got {getattr(x, 'shape', type(x))}")

    def model(self, x: Tensor) -> Tensor:
        """p(z) p(x|z): site "z" (scaled by β) and observed site "x" inside plate "data"."""
        self._check_x(x)
        self._register_params()
        prior = self.prior.distribution()
        with pyro.plate("data", x.shape[0], device=x.device):
            with poutine.scale(scale=self._beta):
                z = pyro.sample("z", prior)
            out = self.decode(z)
            pyro.sample("x", self.likelihood.distribution(out, x.dim() - 1), obs=x)
        return out

    def guide(self, x: Tensor) -> Tensor:
        """q(z|x) = N(loc(x), scale(x)): site "z" (scaled by β) inside plate "data"."""
        self._check_x(x)
        self._register_params()
        with pyro.plate("data", x.shape[0], device=x.device):
            loc, scale = self.encoder(x)
            with poutine.scale(scale=self._beta):
                z = pyro.sample("z", dist.Normal(loc, scale, validate_args=False).to_event(1))
        return z

    def pyro_elbo(self, **kwargs) -> pyro.infer.ELBO:
        """The Pyro ELBO that :meth:`loss_terms` computes: ``TraceMeanField_ELBO`` with analytic KL,
        else ``Trace_ELBO`` (``max_plate_nesting=1`` unless given)."""
        kwargs.setdefault("max_plate_nesting", 1)
        return (pyro.infer.TraceMeanField_ELBO if self.analytic_kl else pyro.infer.Trace_ELBO)(**kwargs)

    # ------------------------------------------------------------------ training loss
    @contextmanager
    def _no_param_store(self) -> Iterator[None]:
        old, self._register = self._register, False
        try:
            yield
        finally:
            self._register = old

    def traces(self, x: Tensor) -> tuple[poutine.Trace, poutine.Trace]:
        """One guide trace and the model replayed against it (what Pyro's ELBOs evaluate)."""
        with self._no_param_store():
            guide_tr = poutine.trace(self.guide).get_trace(x)
            model_tr = poutine.trace(poutine.replay(self.model, trace=guide_tr)).get_trace(x)
        return model_tr, guide_tr

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """``{"loss", "recon", "kl"}``: per-batch sums in nats, ``loss = recon + beta * kl``.

        Computed without Pyro's tracing (one encoder pass, one reparameterised sample, one decoder
        pass, no host synchronisation), so it costs what a hand-written loop costs and compiles as
        one graph; it draws z exactly as the guide does (``rsample`` of the same Normal, same RNG),
        so it equals ``self.pyro_elbo().differentiable_loss(self.model, self.guide, x)`` under the
        same RNG state (tested), and :meth:`traced_loss_terms` reads the same terms from Pyro traces.
        """
        self._check_x(x)
        loc, scale = self.encoder(x)
        loc, scale = _full(loc), _full(scale)  # under bf16 autocast: the loss terms stay float32
        q = dist.Normal(loc, scale, validate_args=False).to_event(1)
        z = q.rsample()
        out = _full(self.decode(z))
        recon = -self.likelihood.distribution(out, x.dim() - 1).log_prob(x).sum()
        p = self.prior.distribution()
        if self.analytic_kl:
            kl = kl_divergence(q, p).sum()
        else:
            kl = (q.log_prob(z) - p.log_prob(z)).sum()
        return {"loss": recon + self._beta * kl, "recon": recon, "kl": kl}

    def traced_loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """The terms of :meth:`loss_terms` read from one guide trace and the model replayed on it, as
        Pyro's ELBOs evaluate them (slower: Pyro's tracing costs ~0.7 ms per call on a CPU)."""
        model_tr, guide_tr = self.traces(x)
        x_site, z_model, z_guide = model_tr.nodes["x"], model_tr.nodes["z"], guide_tr.nodes["z"]
        recon = -x_site["fn"].log_prob(x_site["value"]).sum()
        q, p = z_guide["fn"], z_model["fn"]
        if self.analytic_kl:
            kl = kl_divergence(q, p).sum()
        else:
            z = z_guide["value"]
            kl = (q.log_prob(z) - p.log_prob(z)).sum()
        return {"loss": recon + self._beta * kl, "recon": recon, "kl": kl}

    # ------------------------------------------------------------------ convenience
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(loc, scale) of q(z|x), each (B, D)."""
        self._check_x(x)
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder output (logits for Bernoulli, mean for Gaussian); z may have extra leading dims
        (..., D), which are flattened for the decoder and restored."""
        if z.dim() == 2:
            return self.decoder(z)
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        return out.reshape(*z.shape[:-1], *out.shape[1:])

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean image of p(x | z = posterior mean), in [0, 1], shaped like x (no gradient)."""
        loc, _ = self.encode(x)
        return self.likelihood.mean(self.decode(loc))

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """``n`` images: the mean of p(x|z) at z ~ p(z), in [0, 1] (no gradient)."""
        if int(n) < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        z = self.prior.distribution().sample((int(n),))
        return self.likelihood.mean(self.decode(z))
