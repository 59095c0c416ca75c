"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising"): ``recon + KL + γ·TC``.

The total correlation TC = KL(q(z) ‖ q̄(z)), q̄(z) = Π_d q(z_d), is estimated with the density-ratio
trick: a discriminator D(z) with two logits (class 0: "z from q(z)", class 1: "z from q̄(z)") is
trained to tell samples of q(z) from samples of q̄(z), which :func:`permute_dims` makes by
shuffling each dimension independently across the batch. At the optimum
``logit_0 − logit_1 = log q(z)/q̄(z)``, so

    TC ≈ Σ_i [logit_0(z_i) − logit_1(z_i)],     z_i ~ q(z|x_i)       (:func:`density_ratio_tc`)

The discriminator (an ``nn.Module`` owned by the objective: default the paper's MLP, 6 × 1000
LeakyReLU(0.2) units) has its own Adam optimiser (lr 1e-4, betas (0.5, 0.9), as in the paper).
:meth:`FactorVAE.loss_terms` steps it once, on the batch's codes (detached) and their permutation,
when ``ctx.training`` is true and gradients are enabled — never during validation — and then
evaluates the TC term with the updated discriminator's weights held fixed, so the VAE's gradient
does not reach the discriminator. It follows the codes' device and dtype (``objective.to(device)``
beside the model is still the clear way). Its parameters and optimiser state are in ``state_dict()``
(the optimiser state as the module's extra state), so a checkpoint resumes it exactly.

No Pyro ELBO trains this objective: ``model.model``/``model.guide`` with ``Trace_ELBO`` train the
plain β-ELBO; :meth:`pyro_elbo` raises.

>>> import torch
>>> from vae.model import VAE
>>> from vae.nets import MLPEncoder, MLPDecoder
>>> from vae.priors import StandardNormal
>>> from vae.objectives import Context
>>> vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2))
>>> obj = FactorVAE(latent_dim=2, gamma=10.0, hidden=(16, 16))
>>> t = obj.loss_terms(vae, torch.rand(8, 1, 2, 2).round(), Context(training=True))
>>> sorted(t)
['d_loss', 'kl', 'loss', 'recon', 'regularizer', 'tc']
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from vae.objectives.base import Context, Objective
from vae.objectives.schedules import WeightSpec

__all__ = ["FactorVAE", "Discriminator", "permute_dims", "density_ratio_tc", "discriminator_loss"]


class Discriminator(nn.Module):
    """MLP ``z (B, D) -> logits (B, 2)``: hidden layers with LeakyReLU(0.2).

    >>> Discriminator(3, (8,))(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, latent_dim: int, hidden: Sequence[int] = (1000,) * 6, negative_slope: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = int(latent_dim)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.LeakyReLU(negative_slope)]
            width = int(h)
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each column of ``z`` (B, D) shuffled independently across the batch: samples of Π_d q(z_d)."""
    b, d = z.shape
    idx = torch.argsort(torch.rand((b, d), generator=generator, device=z.device), dim=0)
    return torch.gather(z, 0, idx)


def density_ratio_tc(logits: Tensor) -> Tensor:
    """``Σ_i logit_0 − logit_1``: the density-ratio estimate of TC (summed over the batch) from the
    discriminator's logits at z_i ~ q(z) — exact when ``logit_0 − logit_1 = log q(z)/q̄(z)``."""
    return (logits[:, 0] - logits[:, 1]).sum()


def discriminator_loss(logits_q: Tensor, logits_perm: Tensor) -> Tensor:
    """Mean cross-entropy of the discriminator: class 0 for codes of q(z), class 1 for permuted codes
    (½ each, as in the paper): ``−½ E_q[log D(z)] − ½ E_q̄[log(1 − D(z))]``."""
    zeros = torch.zeros(len(logits_q), dtype=torch.long, device=logits_q.device)
    ones = torch.ones(len(logits_perm), dtype=torch.long, device=logits_perm.device)
    return 0.5 * (F.cross_entropy(logits_q, zeros) + F.cross_entropy(logits_perm, ones))


def _optimizer_to(opt: torch.optim.Optimizer, like: Tensor) -> None:
    """Move the optimiser's state tensors to the device (and floating dtype) of ``like``."""
    for state in opt.state.values():
        for k, v in state.items():
            if torch.is_tensor(v) and v.dim() > 0 and (v.device != like.device or v.dtype != like.dtype):
                state[k] = v.to(device=like.device, dtype=like.dtype)


class FactorVAE(Objective):
    """``recon + KL + γ·TC`` with a discriminator for TC; ``latent_dim`` D sizes the discriminator.

    Args:
        latent_dim: D, the model's latent dimension.
        gamma: the TC weight γ (a number or a schedule; disentanglement_lib sweeps 10 … 100).
        hidden: the discriminator's hidden widths (the paper: six layers of 1000).
        lr, betas: the discriminator's Adam.
        discriminator: an ``nn.Module`` ``z -> (B, 2) logits`` to use instead of the MLP.

    Logged: ``kl``, ``tc`` (the density-ratio estimate), ``d_loss`` (the discriminator's mean
    cross-entropy before its step, ×B). The same keys in training and validation.
    """

    name = "factorvae"

    def __init__(self, latent_dim: int, gamma: WeightSpec = 10.0, hidden: Sequence[int] = (1000,) * 6,
                 lr: float = 1e-4, betas: tuple[float, float] = (0.5, 0.9),
                 discriminator: nn.Module | None = None) -> None:
        super().__init__()
        if isinstance(discriminator, str):
            raise ValueError(f"this FactorVAE was saved with a custom discriminator ({discriminator}), which its config "
                             "cannot rebuild: construct it in code with discriminator=... and load its state_dict")
        if isinstance(latent_dim, bool) or int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer; got {latent_dim!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0; got {lr!r}")
        self.latent_dim, self.hidden = int(latent_dim), tuple(int(h) for h in hidden)
        self.lr, self.betas = float(lr), (float(betas[0]), float(betas[1]))
        self.gamma = self.weight(gamma)
        self.custom = discriminator is not None
        self.discriminator = discriminator if discriminator is not None else Discriminator(self.latent_dim, self.hidden)
        params = list(self.discriminator.parameters())  # none: a fixed discriminator, never stepped
        self.optimizer = torch.optim.Adam(params, lr=self.lr, betas=self.betas) if params else None

    # ------------------------------------------------------------------ the discriminator's state
    def get_extra_state(self) -> dict[str, Any]:
        return {"optimizer": None if self.optimizer is None else self.optimizer.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if (state.get("optimizer") is None) != (self.optimizer is None):
            raise ValueError("FactorVAE state: the saved discriminator optimiser does not match this one")
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])

    def discriminator_step(self, z: Tensor) -> Tensor:
        """One Adam step of the discriminator on codes ``z`` (detached) and their permutation;
        returns its loss before the step (detached)."""
        z = z.detach()
        if self.optimizer is None:
            with torch.no_grad():
                return discriminator_loss(self.discriminator(z), self.discriminator(permute_dims(z)))
        _optimizer_to(self.optimizer, next(self.discriminator.parameters()))
        loss = discriminator_loss(self.discriminator(z), self.discriminator(permute_dims(z)))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    # ------------------------------------------------------------------ the objective
    def regularizer(self, model: nn.Module, x: Tensor, loc: Tensor, scale: Tensor, z: Tensor,
                    ctx: Context) -> dict[str, Tensor]:
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"FactorVAE was built for latent_dim={self.latent_dim}; the model's codes have "
                             f"{z.shape[-1]} dimensions")
        p = next(self.discriminator.parameters(), None)
        if p is not None and (p.device != z.device or p.dtype != z.dtype):
            self.to(device=z.device, dtype=z.dtype)  # same Parameter objects: the optimiser keeps them
        if ctx.training and torch.is_grad_enabled():
            d_loss = self.discriminator_step(z)
        else:
            with torch.no_grad():
                zd = z.detach()
                d_loss = discriminator_loss(self.discriminator(zd), self.discriminator(permute_dims(zd)))
        fixed = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        tc = density_ratio_tc(functional_call(self.discriminator, fixed, (z,)))
        kl = self.kl(model, loc, scale, z)
        return {"regularizer": kl + self.gamma(ctx.step) * tc, "kl": kl, "tc": tc, "d_loss": d_loss * x.shape[0]}

    def config(self) -> dict[str, Any]:
        """The options; with a custom discriminator, ``"discriminator"`` names its class (the config then
        documents the run but cannot rebuild it: :func:`vae.objectives.make_objective` says so)."""
        cfg = {"name": self.name, "latent_dim": self.latent_dim, "gamma": self.weight_config(self.gamma),
               "hidden": list(self.hidden), "lr": self.lr, "betas": list(self.betas)}
        if self.custom:
            cfg["discriminator"] = type(self.discriminator).__name__
        return cfg
