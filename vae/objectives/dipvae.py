"""DIP-VAE-I and -II (Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations", eqs. 6 and 7): ``recon + KL + penalty(Cov)``, where

    penalty(Σ) = λ_od · Σ_{i≠j} Σ_ij²  +  λ_d · Σ_i (Σ_ii − 1)²

pushes a covariance towards the identity:

* DIP-VAE-I:  Σ = Cov_batch[μ(x)], the covariance of the encoder means;
* DIP-VAE-II: Σ = Cov_q(z)[z] = E_batch[diag σ²(x)] + Cov_batch[μ(x)], the covariance of the
  aggregate posterior (the mean of the encoder variances added to the covariance of the means).

The covariance is over the batch with divisor B (``E[μμᵀ] − E[μ]E[μ]ᵀ``, as disentanglement_lib
computes it). The penalty is a per-batch quantity; this module returns it multiplied by B, so that
``loss / B`` is the paper's per-image objective. Defaults: λ_od = 10 (within disentanglement_lib's
sweep, 1 … 50) and λ_d = 10·λ_od for DIP-I, λ_d = λ_od for DIP-II (the paper's ratios).

No Pyro ELBO trains these objectives: ``model.model``/``model.guide`` with ``Trace_ELBO`` train the
plain β-ELBO; :meth:`pyro_elbo` raises.

>>> import torch
>>> mu = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])          # Cov = [[1, 0], [0, 0]]
>>> dip_penalty(covariance_of_means(mu), lambda_od=1.0, lambda_d=1.0).item()
1.0
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vae.objectives.base import Context, Objective
from vae.objectives.schedules import WeightSpec

__all__ = ["DIPVAE", "DIPVAE1", "DIPVAE2", "covariance_of_means", "aggregate_covariance", "dip_penalty"]


def covariance_of_means(loc: Tensor) -> Tensor:
    """Cov_batch[μ] with divisor B: (D, D)."""
    centred = loc - loc.mean(0, keepdim=True)
    return centred.T @ centred / loc.shape[0]


def aggregate_covariance(loc: Tensor, scale: Tensor) -> Tensor:
    """Cov_q(z)[z] = E_batch[diag σ²] + Cov_batch[μ]: (D, D)."""
    return covariance_of_means(loc) + torch.diag((scale**2).mean(0))


def dip_penalty(cov: Tensor, lambda_od: float, lambda_d: float) -> Tensor:
    """``λ_od Σ_{i≠j} cov_ij² + λ_d Σ_i (cov_ii − 1)²``."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * (off**2).sum() + lambda_d * ((diag - 1.0) ** 2).sum()


class DIPVAE(Objective):
    """``recon + KL + B·penalty(Σ)``, ``kind`` ``"i"`` (Σ of the means) or ``"ii"`` (aggregate posterior).

    ``lambda_d=None``: 10·λ_od for DIP-I, λ_od for DIP-II. Logged: ``kl``, ``penalty`` (×B).
    """

    name = "dipvae"

    def __init__(self, kind: str = "i", lambda_od: WeightSpec = 10.0, lambda_d: WeightSpec | None = None) -> None:
        super().__init__()
        if kind not in ("i", "ii"):
            raise ValueError(f"kind must be 'i' or 'ii' (DIP-VAE-I or -II); got {kind!r}")
        self.kind = kind
        self.lambda_od = self.weight(lambda_od)
        if lambda_d is None:
            if not isinstance(lambda_od, (int, float)):
                raise ValueError("with a scheduled lambda_od, give lambda_d explicitly")
            lambda_d = (10.0 if kind == "i" else 1.0) * float(lambda_od)
        self.lambda_d = self.weight(lambda_d)

    def covariance(self, loc: Tensor, scale: Tensor) -> Tensor:
        return covariance_of_means(loc) if self.kind == "i" else aggregate_covariance(loc, scale)

    def regularizer(self, model: nn.Module, x: Tensor, loc: Tensor, scale: Tensor, z: Tensor,
                    ctx: Context) -> dict[str, Tensor]:
        kl = self.kl(model, loc, scale, z)
        penalty = x.shape[0] * dip_penalty(self.covariance(loc, scale), self.lambda_od(ctx.step), self.lambda_d(ctx.step))
        return {"regularizer": kl + penalty, "kl": kl, "penalty": penalty}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "lambda_od": self.weight_config(self.lambda_od),
                "lambda_d": self.weight_config(self.lambda_d)}


class DIPVAE1(DIPVAE):
    """DIP-VAE-I: the covariance of the encoder means (λ_d defaults to 10·λ_od)."""

    name = "dipvae1"

    def __init__(self, lambda_od: WeightSpec = 10.0, lambda_d: WeightSpec | None = None) -> None:
        super().__init__("i", lambda_od, lambda_d)

    def config(self) -> dict[str, Any]:
        return {k: v for k, v in super().config().items() if k != "kind"}


class DIPVAE2(DIPVAE):
    """DIP-VAE-II: the covariance of the aggregate posterior (λ_d defaults to λ_od)."""

    name = "dipvae2"

    def __init__(self, lambda_od: WeightSpec = 10.0, lambda_d: WeightSpec | None = None) -> None:
        super().__init__("ii", lambda_od, lambda_d)

    def config(self) -> dict[str, Any]:
        return {k: v for k, v in super().config().items() if k != "kind"}
