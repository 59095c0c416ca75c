"""The annealed-capacity objective of Burgess et al. 2018 ("Understanding disentangling in β-VAE", eq. 8).

    loss / B = recon / B + γ · | KL / B − C(step) |,     C(step) linear from c_min to c_max over n_steps

The KL is the batch mean per image (as disentanglement_lib computes it), so the per-batch sum this
module returns is ``recon + γ·B·|KL/B − C|``. The paper's dSprites setting: γ = 1000, C from 0 to
25 nats over 100,000 steps (the defaults). ``capacity`` may also be any schedule
(:mod:`vae.objectives.schedules`), e.g. a stepwise or cyclical one.

No Pyro ELBO trains this objective (the absolute value is not an expectation of log-densities):
``model.model``/``model.guide`` with ``Trace_ELBO`` train the plain β-ELBO; :meth:`pyro_elbo` raises.

>>> obj = AnnealedCapacity(gamma=100.0, c_min=0.0, c_max=10.0, n_steps=1000)
>>> [obj.capacity(s) for s in (0, 500, 1000, 5000)]
[0.0, 5.0, 10.0, 10.0]
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from vae.objectives.base import Context, Objective
from vae.objectives.schedules import LinearWarmup, Schedule, WeightSpec

__all__ = ["AnnealedCapacity"]


class AnnealedCapacity(Objective):
    """``recon + γ·B·|KL/B − C(step)|``; ``capacity`` (a schedule or config) overrides c_min/c_max/n_steps.

    Logged: ``kl``, ``capacity`` (×B: the per-image mean is C), ``gamma`` is in :meth:`config`.
    """

    name = "annealed"

    def __init__(self, gamma: WeightSpec = 1000.0, c_min: float = 0.0, c_max: float = 25.0,
                 n_steps: int = 100_000, capacity: Schedule | dict | None = None) -> None:
        super().__init__()
        self.gamma = self.weight(gamma)
        if capacity is None:
            capacity = LinearWarmup(start=c_min, end=c_max, steps=n_steps)
        self.capacity = self.weight(capacity)

    def regularizer(self, model: nn.Module, x: Tensor, loc: Tensor, scale: Tensor, z: Tensor,
                    ctx: Context) -> dict[str, Tensor]:
        b = x.shape[0]
        kl = self.kl(model, loc, scale, z)
        c = self.capacity(ctx.step)
        reg = self.gamma(ctx.step) * b * (kl / b - c).abs()
        return {"regularizer": reg, "kl": kl, "capacity": kl.new_tensor(c * b).detach()}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.weight_config(self.gamma),
                "capacity": self.weight_config(self.capacity)}
