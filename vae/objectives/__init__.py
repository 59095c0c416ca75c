"""Training objectives for Pyro VAEs, separate from the models, behind one small interface.

``objective.loss_terms(model, x, ctx) -> dict`` of per-batch sums in nats (key ``"loss"`` minimised,
the others logged), with ``ctx`` a :class:`Context` (data-set size, step, epoch, training flag).

==============  =====================================================  ==========================
name            objective                                              Pyro equivalent
==============  =====================================================  ==========================
``elbo``        recon + β·KL (β a number, a schedule, or model.beta)   Trace_ELBO / TraceMeanField_ELBO (β = model.beta)
``annealed``    recon + γ·B·|KL/B − C(step)| (Burgess et al. 2018)     none
``btcvae``      recon + α·MI + β·TC + γ·dwKL (Chen et al. 2018)        none
``factorvae``   recon + KL + γ·TC, discriminator (Kim & Mnih 2018)     none
``dipvae1``     recon + KL + penalty(Cov μ) (Kumar et al. 2018)        none
``dipvae2``     recon + KL + penalty(Cov z) (Kumar et al. 2018)        none
``iwae``        −log (1/k) Σ_s w_s (Burda et al. 2016)                 RenyiELBO(alpha=0) (β = 1)
==============  =====================================================  ==========================

Where there is none, ``model.model``/``model.guide`` train the plain β-ELBO and
``objective.pyro_elbo(model)`` raises :class:`NoPyroEquivalent`.

>>> obj = make_objective("btcvae", beta=4.0, estimator="mws")
>>> obj.config()
{'name': 'btcvae', 'beta': 4.0, 'alpha': 1.0, 'gamma': 1.0, 'estimator': 'mws'}
>>> objective_from_config(obj.config()).config() == obj.config()
True
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from vae.objectives.annealed import AnnealedCapacity
from vae.objectives.base import Context, NoPyroEquivalent, Objective
from vae.objectives.btcvae import BetaTCVAE
from vae.objectives.dipvae import DIPVAE, DIPVAE1, DIPVAE2
from vae.objectives.elbo import ELBO
from vae.objectives.factorvae import FactorVAE
from vae.objectives.iwae import IWAE, importance_log_weights, iwae_bound
from vae.objectives.schedules import SCHEDULES, Constant, Cyclical, LinearWarmup, Schedule, make_schedule

__all__ = ["Objective", "Context", "NoPyroEquivalent", "ELBO", "AnnealedCapacity", "BetaTCVAE", "FactorVAE",
           "DIPVAE", "DIPVAE1", "DIPVAE2", "IWAE", "OBJECTIVES", "make_objective", "objective_from_config",
           "importance_log_weights", "iwae_bound", "Schedule", "Constant", "LinearWarmup", "Cyclical",
           "SCHEDULES", "make_schedule"]

OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (ELBO, AnnealedCapacity, BetaTCVAE, FactorVAE, DIPVAE1, DIPVAE2, IWAE)
}


def make_objective(name: str, *, model_latent_dim: int | None = None, **kwargs: Any) -> Objective:
    """Build an objective by registry name (``OBJECTIVES``) with its keyword options.
    ``model_latent_dim`` (the model's) becomes ``latent_dim`` for the objectives that take one
    (FactorVAE's discriminator) unless the options give it; the others ignore it.

    >>> make_objective("annealed", c_max=5.0).capacity(10**6)
    5.0
    >>> make_objective("factorvae", model_latent_dim=3).config()["latent_dim"], make_objective("elbo", model_latent_dim=3).config()
    (3, {'name': 'elbo', 'beta': None})
    """
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; allowed: {list(OBJECTIVES)}")
    cls = OBJECTIVES[name]
    if model_latent_dim is not None and "latent_dim" in inspect.signature(cls).parameters:
        kwargs.setdefault("latent_dim", model_latent_dim)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"objective {name!r}: {err}") from None


def objective_from_config(config: Mapping[str, Any], model_latent_dim: int | None = None) -> Objective:
    """Rebuild an objective from ``objective.config()`` (``{"name": ..., **options}``);
    ``model_latent_dim`` as in :func:`make_objective`."""
    options = dict(config)
    name = options.pop("name", None)
    return make_objective(name, model_latent_dim=model_latent_dim, **options)
