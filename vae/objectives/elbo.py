"""The (β-)ELBO: ``loss = recon + β·KL(q(z|x) ‖ p(z))`` (Kingma & Welling 2014; Higgins et al. 2017).

With ``beta=None`` (default) β is the model's own ``model.beta``, and the objective is exactly
``VAE.loss_terms`` and Pyro's ELBO on the model/guide pair (the VAE scales its "z" site by β in
both): ``TraceMeanField_ELBO`` when the model uses the closed-form KL, ``Trace_ELBO`` otherwise —
equal values and gradients under the same RNG state (tested). A β different from the model's, or
a schedule (KL warm-up, cyclical annealing), is trained by :meth:`ELBO.loss_terms` only:
``model.model``/``model.guide`` keep the fixed ``model.beta``, and :meth:`ELBO.pyro_elbo` says so.

>>> import torch
>>> from vae.model import VAE
>>> from vae.nets import MLPEncoder, MLPDecoder
>>> from vae.priors import StandardNormal
>>> from vae.objectives import Context, LinearWarmup
>>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2))
>>> obj = ELBO(beta=LinearWarmup(0.0, 1.0, steps=100))
>>> t = obj.loss_terms(vae, torch.ones(4, 1, 2, 2), Context(step=25))
>>> bool(torch.isclose(t["loss"], t["recon"] + 0.25 * t["kl"]))
True
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from vae.objectives.base import Context, NoPyroEquivalent, Objective
from vae.objectives.schedules import Constant, WeightSpec

__all__ = ["ELBO"]


class ELBO(Objective):
    """``recon + β·kl``; ``beta``: a number, a schedule, or ``None`` for ``model.beta``.

    Logged: ``recon``, ``kl``, ``beta`` (×B, so the trainer's per-image mean is β itself).
    """

    name = "elbo"

    def __init__(self, beta: WeightSpec | None = None) -> None:
        super().__init__()
        self.beta = None if beta is None else self.weight(beta)

    def beta_at(self, model: nn.Module, step: int) -> float:
        """β at ``step`` (``model.beta`` when the objective has none of its own)."""
        return float(model.beta) if self.beta is None else self.beta(step)

    def regularizer(self, model: nn.Module, x: Tensor, loc: Tensor, scale: Tensor, z: Tensor,
                    ctx: Context) -> dict[str, Tensor]:
        kl = self.kl(model, loc, scale, z)
        beta = self.beta_at(model, ctx.step)
        return {"regularizer": beta * kl, "kl": kl, "beta": kl.new_tensor(beta * x.shape[0]).detach()}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "beta": None if self.beta is None else self.weight_config(self.beta)}

    def pyro_elbo(self, model: nn.Module, **kwargs):
        """``model.pyro_elbo(**kwargs)`` (TraceMeanField_ELBO or Trace_ELBO) when this objective's β is
        the model's (``beta=None``, or a constant equal to ``model.beta``); else :class:`NoPyroEquivalent`."""
        same = self.beta is None or (isinstance(self.beta, Constant) and self.beta.value == float(model.beta))
        if not same:
            raise NoPyroEquivalent(
                f"ELBO(beta={self.weight_config(self.beta)!r}) differs from model.beta={model.beta}: model.model/"
                "model.guide scale the z site by the fixed model.beta, so Pyro's ELBO trains β = model.beta, not "
                "this objective (set model.beta, or train with objective.loss_terms)")
        return model.pyro_elbo(**kwargs)
