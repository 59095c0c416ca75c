"""β-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", eq. 4).

The KL term, averaged over the data, splits into three parts (q(z) = (1/N) Σ_n q(z|x_n) is the
aggregate posterior, p(z) = Π_d p(z_d) a factorised prior)::

    E[log q(z|x) − log p(z)] =  E[log q(z|x) − log q(z)]             index-code MI
                              + E[log q(z) − Σ_d log q(z_d)]          total correlation (TC)
                              + E[Σ_d log q(z_d) − log p(z_d)]        dimension-wise KL

and β-TCVAE minimises ``recon + α·MI + β·TC + γ·dwKL`` (α = γ = 1 in the paper's experiments). Each
expectation is estimated at the batch's own samples z_i ~ q(z|x_i); log q(z_i) and log q(z_id) need
the whole data set and are estimated from the batch (``ctx.dataset_size`` = N):

* ``"mss"``, minibatch stratified sampling (default): two strata — the image z_i came from (weight
  1/N, known exactly) and the other N − 1 images (weight (N − 1)/N, estimated by the mean over the
  batch's other B − 1 images); unbiased for q(z_i), and exact when the batch is the whole data set
  (tested by enumeration). The authors' released code uses a different weight matrix, which is not
  exact in that case. A batch of one image falls back to q(z) ≈ q(z|x).
* ``"mws"``, minibatch weighted sampling: ``q(z_i) ≈ (1/(N·B)) Σ_j q(z_i|x_j)`` as in the paper;
  biased (with the whole data set as the batch it is q(z_i)/N exactly, so TC is over-estimated by
  (D − 1)·log N, MI by log N and the dimension-wise KL under-estimated by D·log N; tested).

Whatever the estimator, MI + TC + dwKL equals the one-sample KL ``Σ log q(z|x) − log p(z)``, so
with α = β = γ = 1 the loss is the ELBO. No Pyro ELBO trains this objective: ``model.model``/
``model.guide`` with ``Trace_ELBO`` train the plain β-ELBO; :meth:`pyro_elbo` raises.

>>> import torch
>>> from vae.model import VAE
>>> from vae.nets import MLPEncoder, MLPDecoder
>>> from vae.priors import StandardNormal
>>> from vae.objectives import Context
>>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2))
>>> t = BetaTCVAE(beta=6.0).loss_terms(vae, torch.rand(8, 1, 2, 2).round(), Context(dataset_size=1000))
>>> sorted(t)
['dwkl', 'kl', 'loss', 'mi', 'recon', 'regularizer', 'tc']
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Independent

from vae.objectives.base import Context, Objective
from vae.objectives.schedules import WeightSpec

__all__ = ["BetaTCVAE", "tc_decomposition", "log_aggregate_posterior", "ESTIMATORS"]

ESTIMATORS = ("mss", "mws")


def _pairwise_log_q(z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """log N(z_id; loc_jd, scale_jd) for every pair (i, j) of the batch: (B, B, D)."""
    return torch.distributions.Normal(loc.unsqueeze(0), scale.unsqueeze(0), validate_args=False).log_prob(z.unsqueeze(1))


def _log_weights(b: int, dataset_size: int, estimator: str, like: Tensor) -> Tensor:
    """log of the (B, B) weights w_ij with which q(z_i) ≈ Σ_j w_ij q(z_i | x_j)."""
    n = float(dataset_size)
    if estimator == "mws":
        return like.new_full((b, b), -math.log(n * b))
    if b == 1:
        return like.new_zeros((1, 1))
    w = like.new_full((b, b), math.log(n - 1) - math.log(n * (b - 1)))
    w.diagonal().fill_(-math.log(n))
    return w


def log_aggregate_posterior(z: Tensor, loc: Tensor, scale: Tensor, dataset_size: int,
                            estimator: str = "mss") -> tuple[Tensor, Tensor]:
    """Estimates of ``log q(z_i)`` (B,) and ``log q(z_id)`` (B, D) at the batch's own samples z_i.

    ``z, loc, scale``: (B, D), z_i ~ N(loc_i, scale_i); ``dataset_size``: N ≥ B.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; allowed: {list(ESTIMATORS)}")
    if dataset_size is None:
        raise ValueError("β-TCVAE needs the data-set size: pass Context(dataset_size=N)")
    b = z.shape[0]
    if int(dataset_size) < b:
        raise ValueError(f"dataset_size ({dataset_size}) must be >= the batch size ({b})")
    log_q = _pairwise_log_q(z, loc, scale)                               # (B, B, D)
    log_w = _log_weights(b, int(dataset_size), estimator, log_q)        # (B, B)
    log_qz = torch.logsumexp(log_w + log_q.sum(-1), dim=1)              # (B,)
    log_qz_d = torch.logsumexp(log_w.unsqueeze(-1) + log_q, dim=1)      # (B, D)
    return log_qz, log_qz_d


def _log_prior_per_dim(model: nn.Module, z: Tensor) -> Tensor:
    """log p(z_d) per dimension, (B, D); the prior must factorise over dimensions."""
    p = model.prior.distribution()
    base = p.base_dist if isinstance(p, Independent) and p.reinterpreted_batch_ndims == 1 else None
    if base is None or tuple(base.batch_shape) != (z.shape[-1],):
        raise ValueError(f"β-TCVAE's dimension-wise KL needs a prior that factorises over dimensions "
                         f"(an Independent of D univariate distributions, e.g. StandardNormal); got "
                         f"{type(model.prior).__name__} with {type(p).__name__}")
    return base.log_prob(z)


def tc_decomposition(z: Tensor, loc: Tensor, scale: Tensor, log_pz_d: Tensor, dataset_size: int,
                     estimator: str = "mss") -> dict[str, Tensor]:
    """``{"mi", "tc", "dwkl"}``, each summed over the batch, from z, q's parameters and log p(z_d).

    >>> z = torch.zeros(2, 1); loc = torch.tensor([[0.0], [1.0]]); scale = torch.ones(2, 1)
    >>> t = tc_decomposition(z, loc, scale, torch.distributions.Normal(0., 1.).log_prob(z), dataset_size=2)
    >>> round(float(t["tc"]), 6)   # one dimension: no total correlation
    0.0
    """
    log_qz, log_qz_d = log_aggregate_posterior(z, loc, scale, dataset_size, estimator)
    log_qzx = torch.distributions.Normal(loc, scale, validate_args=False).log_prob(z).sum(-1)
    log_prod = log_qz_d.sum(-1)
    return {"mi": (log_qzx - log_qz).sum(), "tc": (log_qz - log_prod).sum(),
            "dwkl": (log_prod - log_pz_d.sum(-1)).sum()}


class BetaTCVAE(Objective):
    """``recon + α·MI + β·TC + γ·dwKL``; ``estimator`` ``"mss"`` (default) or ``"mws"``.

    Needs ``ctx.dataset_size`` and a factorised prior. Logged: ``mi``, ``tc``, ``dwkl``, ``kl``.
    """

    name = "btcvae"

    def __init__(self, beta: WeightSpec = 6.0, alpha: WeightSpec = 1.0, gamma: WeightSpec = 1.0,
                 estimator: str = "mss") -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; allowed: {list(ESTIMATORS)}")
        self.alpha, self.beta, self.gamma = self.weight(alpha), self.weight(beta), self.weight(gamma)
        self.estimator = estimator

    def regularizer(self, model: nn.Module, x: Tensor, loc: Tensor, scale: Tensor, z: Tensor,
                    ctx: Context) -> dict[str, Tensor]:
        parts = tc_decomposition(z, loc, scale, _log_prior_per_dim(model, z), ctx.dataset_size, self.estimator)
        s = ctx.step
        reg = self.alpha(s) * parts["mi"] + self.beta(s) * parts["tc"] + self.gamma(s) * parts["dwkl"]
        return {"regularizer": reg, **parts}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "beta": self.weight_config(self.beta), "alpha": self.weight_config(self.alpha),
                "gamma": self.weight_config(self.gamma), "estimator": self.estimator}
