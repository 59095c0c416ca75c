"""The Gamma exercise as a Pyro model and guide.

Model: ``z ~ Exponential(1)``; inside ``pyro.plate("data", n)``, ``obs ~ Exponential(rate z)``.
Guide: ``z ~ Gamma(alpha, rate theta)`` with ``theta = pyro.param("theta", ...,
constraint=positive)``; ``alpha`` is a fixed number, or ``pyro.param("alpha", ...)`` (also
positive) when the shape is learned.

Everything is float64 (the data tensor's dtype is used for all constants).

Example:
    >>> import torch, pyro
    >>> from pyro import poutine
    >>> pyro.clear_param_store()
    >>> x = torch.tensor([3.0], dtype=torch.float64)
    >>> guide = GammaGuide(alpha=2.0, theta_init=4.0)
    >>> tr = poutine.trace(guide).get_trace(x)
    >>> tr.nodes["z"]["fn"].concentration.item(), tr.nodes["z"]["fn"].rate.item()
    (2.0, 4.0)
    >>> sorted(n for n in poutine.trace(model).get_trace(x).stochastic_nodes)
    ['obs', 'z']
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch.distributions import constraints

__all__ = ["model", "GammaGuide", "as_tensor"]


def as_tensor(x) -> torch.Tensor:
    """Validated observations (see :func:`vi.analytic.check_data`) as a 1-D float64 tensor.

    Example:
        >>> as_tensor(2.0)
        tensor([2.], dtype=torch.float64)
    """
    from .analytic import check_data

    return torch.as_tensor(check_data(x), dtype=torch.float64)


def model(x: torch.Tensor) -> torch.Tensor:
    """``z ~ Exponential(1)``, ``x_i | z ~ Exponential(z)`` for the 1-D tensor ``x`` (observed).

    Returns the sampled ``z``.  Uses one plate (``max_plate_nesting=1``).
    """
    one = torch.ones((), dtype=x.dtype, device=x.device)
    z = pyro.sample("z", dist.Exponential(one))
    with pyro.plate("data", x.shape[-1]):
        pyro.sample("obs", dist.Exponential(z), obs=x)
    return z


class GammaGuide:
    """Callable guide ``q(z) = Gamma(alpha, rate theta)``; same signature as :func:`model`.

    Args:
        alpha: the shape when it is fixed (2 in the exercise); ignored if ``learn_shape``.
        learn_shape: learn ``alpha`` as ``pyro.param("alpha")`` (positive constraint).
        theta_init: initial rate.
        alpha_init: initial shape when learned (default: ``alpha``).

    Example:
        >>> import torch, pyro
        >>> pyro.clear_param_store()
        >>> g = GammaGuide(learn_shape=True, alpha_init=3.0, theta_init=2.0)
        >>> g(torch.tensor([1.0], dtype=torch.float64)).shape
        torch.Size([])
        >>> g.params()
        (3.0, 2.0)
    """

    def __init__(
        self,
        alpha: float = 2.0,
        learn_shape: bool = False,
        theta_init: float = 1.0,
        alpha_init: float | None = None,
    ) -> None:
        from .analytic import check_positive

        self.alpha = float(check_positive(alpha, "alpha"))
        self.learn_shape = bool(learn_shape)
        self.theta_init = float(check_positive(theta_init, "theta_init"))
        self.alpha_init = float(
            check_positive(self.alpha if alpha_init is None else alpha_init, "alpha_init")
        )

    def _params(self, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        theta = pyro.param(
            "theta", lambda: torch.tensor(self.theta_init, dtype=dtype),
            constraint=constraints.positive,
        )
        if self.learn_shape:
            alpha = pyro.param(
                "alpha", lambda: torch.tensor(self.alpha_init, dtype=dtype),
                constraint=constraints.positive,
            )
        else:
            alpha = torch.tensor(self.alpha, dtype=dtype)
        return alpha, theta

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        alpha, theta = self._params(x.dtype)
        return pyro.sample("z", dist.Gamma(alpha, theta))

    def params(self) -> tuple[float, float]:
        """Current ``(alpha, theta)`` as Python floats (reads the param store)."""
        alpha, theta = self._params()
        return float(alpha.detach()), float(theta.detach())
