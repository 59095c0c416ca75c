"""The objective interface: what a VAE is trained to minimise, separate from the model.

An objective gets the model, the batch and a :class:`Context` (data-set size, step, epoch, training
flag) and returns per-batch SUMS in nats, key ``"loss"`` required (the trainer minimises
``loss / batch_size``), every other key logged::

    terms = objective.loss_terms(model, x, Context(dataset_size=N, step=step, training=True))

The model is a :class:`vae.model.VAE` (or anything with the same parts): ``model.encode(x) ->
(loc, scale)``, ``model.decode(z)``, ``model.likelihood.distribution(out, event_dim)``,
``model.prior.distribution()`` (batch shape ``()``, event shape ``(D,)``), ``model.analytic_kl``.

Most objectives are "reconstruction + regulariser" (as in disentanglement_lib): the base class
draws one reparameterised ``z ~ q(z|x)``, computes ``recon = −Σ log p(x|z)``, and a subclass
overrides one hook, :meth:`Objective.regularizer`, returning ``{"regularizer": ..., **logged}``;
``loss = recon + regularizer``. Objectives that are not of that form (IWAE) override
:meth:`Objective.loss_terms` itself.

An objective is an ``nn.Module``: move it with ``.to(device)`` beside the model, checkpoint it with
``state_dict()`` / ``load_state_dict()`` (FactorVAE keeps its discriminator and the discriminator's
optimiser state there), rebuild it from ``config()`` with :func:`vae.objectives.make_objective`.

Pyro: :meth:`Objective.pyro_elbo` returns the Pyro ELBO that trains ``model.model``/``model.guide``
to the same objective when one exists, and raises otherwise — the model/guide pair then trains the
plain (β-)ELBO, never the objective.

>>> import torch
>>> from vae.model import VAE
>>> from vae.nets import MLPEncoder, MLPDecoder
>>> from vae.priors import StandardNormal
>>> class L1Codes(Objective):          # a new objective is one hook
...     name = "l1"
...     def regularizer(self, model, x, loc, scale, z, ctx):
...         kl = self.kl(model, loc, scale, z)
...         return {"regularizer": kl + z.abs().sum(), "kl": kl}
>>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2))
>>> sorted(L1Codes().loss_terms(vae, torch.ones(3, 1, 2, 2), Context(dataset_size=3)))
['kl', 'loss', 'recon', 'regularizer']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyro.distributions as dist
import torch
from torch import Tensor, nn
from torch.distributions import kl_divergence

from vae.objectives.schedules import Schedule, WeightSpec, make_schedule, schedule_config

__all__ = ["Context", "Objective", "NoPyroEquivalent"]


@dataclass
class Context:
    """What an objective may know about the run besides the batch.

    Attributes:
        dataset_size: N, the number of training images (β-TCVAE's estimators need it).
        step: the global optimisation step, from 0 (updates made before this batch); schedules
            are evaluated at it.
        epoch: the current epoch (1-based in ``fit``; informational).
        training: ``True`` only for a training step; objectives with their own state update it then
            (FactorVAE steps its discriminator) and never during validation or probing.
    """

    dataset_size: int | None = None
    step: int = 0
    epoch: int = 0
    training: bool = False

    def __post_init__(self) -> None:
        if self.dataset_size is not None and (isinstance(self.dataset_size, bool) or int(self.dataset_size) < 1):
            raise ValueError(f"dataset_size must be a positive integer or None; got {self.dataset_size!r}")
        if self.dataset_size is not None:
            self.dataset_size = int(self.dataset_size)
        if isinstance(self.step, bool) or int(self.step) < 0:
            raise ValueError(f"step must be an integer >= 0; got {self.step!r}")
        self.step = int(self.step)


def _full(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class NoPyroEquivalent(NotImplementedError):
    """Raised by :meth:`Objective.pyro_elbo` when no Pyro ELBO trains the objective."""


class Objective(nn.Module):
    """Base class. Subclasses set ``name`` and override :meth:`regularizer` (or :meth:`loss_terms`).

    ``loss_terms(model, x, ctx)`` returns ``{"loss", "recon", "regularizer", "kl", ...}``, per-batch
    sums in nats, with ``loss = recon + regularizer``; ``kl`` is KL(q(z|x) ‖ p(z)) (closed form when
    ``model.analytic_kl``, else the one-sample estimate), logged by every objective.
    """

    name: ClassVar[str] = ""

    # ------------------------------------------------------------------ the interface
    def loss_terms(self, model: nn.Module, x: Tensor, ctx: Context | None = None) -> dict[str, Tensor]:
        """Per-batch sums (nats): ``loss`` (minimised), ``recon``, ``regularizer`` and logged terms."""
        ctx = Context() if ctx is None else ctx
        loc, scale = self.encoded(model, x)
        z = self.posterior(loc, scale).rsample()
        recon = self.reconstruction(model, x, z)
        terms = dict(self.regularizer(model, x, loc, scale, z, ctx))
        if "regularizer" not in terms:
            raise ValueError(f"{type(self).__name__}.regularizer must return a dict with key 'regularizer'; "
                             f"got keys {sorted(terms)}")
        if "kl" not in terms:
            with torch.no_grad():
                terms["kl"] = self.kl(model, loc, scale, z)
        return {"loss": recon + terms["regularizer"], "recon": recon, **terms}

    def forward(self, model: nn.Module, x: Tensor, ctx: Context | None = None) -> dict[str, Tensor]:
        return self.loss_terms(model, x, ctx)

    def regularizer(self, model: nn.Module, x: Tensor, loc: Tensor, scale: Tensor, z: Tensor,
                    ctx: Context) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """``{"regularizer": per-batch sum, **logged terms}`` for one reparameterised z ~ q(z|x), (B, D)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-able hyper-parameters, ``{"name": ..., **options}``; ``make_objective(**config())`` rebuilds."""
        return {"name": self.name}

    def pyro_elbo(self, model: nn.Module):
        """The Pyro ELBO that trains ``model.model``/``model.guide`` to this objective, if one exists."""
        raise NoPyroEquivalent(
            f"{type(self).__name__} has no Pyro ELBO equivalent: model.model/model.guide with Trace_ELBO train "
            "the plain ELBO with the model's beta, not this objective; train with objective.loss_terms instead")

    # ------------------------------------------------------------------ shared pieces
    @staticmethod
    def encoded(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        """``model.encode(x)``, half-precision outputs (bf16/fp16 autocast) raised to float32 so that
        every log-density is computed in full precision; float32/float64 stay as they are."""
        loc, scale = model.encode(x)
        return _full(loc), _full(scale)

    @staticmethod
    def decoded(model: nn.Module, z: Tensor) -> Tensor:
        """``model.decode(z)``, half precision raised to float32 (see :meth:`encoded`)."""
        return _full(model.decode(z))

    @staticmethod
    def posterior(loc: Tensor, scale: Tensor) -> dist.TorchDistribution:
        """q(z|x) = N(loc, scale) with event dim 1, as the VAE's guide draws it."""
        return dist.Normal(loc, scale, validate_args=False).to_event(1)

    @staticmethod
    def reconstruction(model: nn.Module, x: Tensor, z: Tensor) -> Tensor:
        """``−Σ log p(x|z)`` over the batch (nats)."""
        return -model.likelihood.distribution(Objective.decoded(model, z), x.dim() - 1).log_prob(x).sum()

    @classmethod
    def kl(cls, model: nn.Module, loc: Tensor, scale: Tensor, z: Tensor) -> Tensor:
        """KL(q(z|x) ‖ p(z)) summed over the batch: closed form when ``model.analytic_kl``, else
        ``Σ log q(z|x) − log p(z)`` at ``z`` (the VAE's own choice, so ``ELBO()`` equals its loss)."""
        q, p = cls.posterior(loc, scale), model.prior.distribution()
        if getattr(model, "analytic_kl", False):
            return kl_divergence(q, p).sum()
        return (q.log_prob(z) - p.log_prob(z)).sum()

    @staticmethod
    def weight(spec: WeightSpec) -> Schedule:
        """A weight given as a number, a :class:`Schedule` or a schedule config dict, as a schedule."""
        return make_schedule(spec)

    @staticmethod
    def weight_config(schedule: Schedule) -> float | dict[str, Any]:
        return schedule_config(schedule)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
