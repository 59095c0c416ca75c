"""The IWAE bound (Burda et al. 2016) for training, and the log-weight function it shares with evaluation.

For k samples z_s ~ q(z|x), with log-weights ``log w_s = log p(x|z_s) + log p(z_s) − log q(z_s|x)``::

    L_k(x) = log (1/k) Σ_s w_s   ≤ log p(x);   L_1 is the one-sample ELBO, E[L_k] grows with k.

:func:`importance_log_weights` computes the (S, B) log-weights for given samples; the training
objective :class:`IWAE` and the evaluation's estimate (:func:`vae.evaluate.iwae_log_likelihood`,
S = 5,000 in chunks) both call it. The bound uses β = 1 whatever ``model.beta`` (a β-scaled
"bound" is no bound).

Pyro equivalent: ``RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True)`` on
``model.model``/``model.guide`` is the same estimator (values and gradients agree under the same RNG
state; tested) when ``model.beta == 1`` — Pyro scales the z site's log-densities by β inside the
weights otherwise, and :meth:`IWAE.pyro_elbo` then raises.

>>> import torch
>>> from vae.model import VAE
>>> from vae.nets import MLPEncoder, MLPDecoder
>>> from vae.priors import StandardNormal
>>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2))
>>> t = IWAE(k=5).loss_terms(vae, torch.ones(3, 1, 2, 2))
>>> sorted(t), t["loss"].shape
(['kl', 'loss', 'recon'], torch.Size([]))
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from vae.objectives.base import Context, NoPyroEquivalent, Objective

__all__ = ["IWAE", "importance_log_weights", "log_weight_parts", "iwae_bound"]


def log_weight_parts(model: nn.Module, x: Tensor, z: Tensor, loc: Tensor, scale: Tensor,
                     prior=None) -> tuple[Tensor, Tensor, Tensor]:
    """``(log p(x|z), log p(z), log q(z|x))``, each (S, B), for samples ``z`` (S, B, D) of
    q(z|x) = N(loc, scale) (each (B, D)) and images ``x`` (B, ...). ``prior``: ``model.prior.distribution()``
    if not given (pass it to build it once for many chunks)."""
    prior = model.prior.distribution() if prior is None else prior
    log_q = torch.distributions.Normal(loc, scale, validate_args=False).log_prob(z).sum(-1)
    log_pz = prior.log_prob(z)
    out = model.decode(z.reshape(-1, z.shape[-1]))
    out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out  # autocast: full-precision terms
    out = out.reshape(*z.shape[:-1], *out.shape[1:])                     # (S, B, *image)
    log_px = model.likelihood.distribution(out, x.dim() - 1).log_prob(x)   # x broadcasts over S
    return log_px, log_pz, log_q


def importance_log_weights(model: nn.Module, x: Tensor, z: Tensor, loc: Tensor, scale: Tensor,
                           prior=None) -> Tensor:
    """``log p(x|z) + log p(z) − log q(z|x)``, (S, B), for samples ``z`` (S, B, D) of N(loc, scale)."""
    log_px, log_pz, log_q = log_weight_parts(model, x, z, loc, scale, prior)
    return log_px + log_pz - log_q


def iwae_bound(log_w: Tensor) -> Tensor:
    """``logsumexp_s log w − log S`` per image, (B,), from log-weights (S, B)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


class IWAE(Objective):
    """``loss = −Σ_i L_k(x_i)`` with k reparameterised samples per image.

    Logged: ``recon`` and ``kl``, the one-sample terms of the first sample (``−log p(x|z_1)`` and
    ``log q(z_1|x) − log p(z_1)``), comparable with the other objectives' curves.
    """

    name = "iwae"

    def __init__(self, k: int = 5) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer (samples per image); got {k!r}")
        self.k = k

    def loss_terms(self, model: nn.Module, x: Tensor, ctx: Context | None = None) -> dict[str, Tensor]:
        loc, scale = self.encoded(model, x)
        z = self.posterior(loc, scale).rsample((self.k,))                  # (k, B, D), as Pyro's particles
        log_px, log_pz, log_q = log_weight_parts(model, x, z, loc, scale)
        bound = iwae_bound(log_px + log_pz - log_q)
        return {"loss": -bound.sum(), "recon": -log_px[0].sum().detach(), "kl": (log_q - log_pz)[0].sum().detach()}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k}

    def pyro_elbo(self, model: nn.Module, **kwargs):
        """``RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True, max_plate_nesting=1)`` when
        ``model.beta == 1``; else :class:`NoPyroEquivalent`."""
        import pyro

        if float(model.beta) != 1.0:
            raise NoPyroEquivalent(
                f"model.beta={model.beta}: Pyro's RenyiELBO would weight the β-scaled z site, which is not the IWAE "
                "bound; set model.beta = 1 or train with objective.loss_terms")
        kwargs.setdefault("max_plate_nesting", 1)
        kwargs.setdefault("vectorize_particles", True)
        return pyro.infer.RenyiELBO(alpha=0, num_particles=self.k, **kwargs)
