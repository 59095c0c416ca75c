"""Priors p(z) for Pyro VAEs, behind one small interface.

A prior is an ``nn.Module`` with ``latent_dim`` and ``distribution()``, which returns a Pyro
distribution with ``batch_shape == ()`` and ``event_shape == (latent_dim,)`` (``VAE(...)`` checks
both when it is built, :meth:`Prior.check_distribution`). Its parameters and
buffers move with ``.to(device)``; nothing here hard-codes a device. A new prior is one short class:

>>> import torch, pyro.distributions as dist
>>> class LaplacePrior(Prior):
...     def __init__(self, latent_dim: int):
...         super().__init__(latent_dim)
...         self.register_buffer("loc", torch.zeros(latent_dim))
...     def distribution(self):
...         return dist.Laplace(self.loc, torch.ones_like(self.loc)).to_event(1)
>>> LaplacePrior(3).log_prob(torch.zeros(2, 3)).shape
torch.Size([2])

``analytic_kl`` says whether ``kl_divergence(Normal guide, prior)`` is available in closed form;
the VAE then uses the analytic KL (``TraceMeanField_ELBO`` semantics) by default.
"""
from __future__ import annotations

from typing import Callable, Sequence

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from vae.mixture import DiagonalNormalMixture
from vae.modes import eval_mode

__all__ = ["Prior", "StandardNormal", "VampPrior", "MixtureOfGaussians", "PRIORS", "make_prior"]


class Prior(nn.Module):
    """Base class: subclasses implement :meth:`distribution` (batch_shape ``()``, event ``(D,)``)."""

    analytic_kl: bool = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer; got {latent_dim!r}")
        self.latent_dim = int(latent_dim)

    def distribution(self) -> dist.TorchDistribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_distribution(self) -> dist.TorchDistribution:
        """:meth:`distribution`, after checking its shapes: ``batch_shape == ()`` and
        ``event_shape == (latent_dim,)``, else a ``ValueError`` that says what is wrong.
        ``VAE(...)`` calls it when it is built, so a prior whose latent dimension is a batch
        dimension (a missing ``.to_event(1)``) fails there, not deep inside Pyro's ``plate``."""
        d = self.distribution()
        batch, event = tuple(d.batch_shape), tuple(d.event_shape)
        if batch != () or event != (self.latent_dim,):
            hint = (" (the latent dimension is a batch dimension: add .to_event(1) to the distribution)"
                    if batch and batch[-1] == self.latent_dim and event == () else "")
            raise ValueError(
                f"{type(self).__name__}.distribution() has batch_shape {batch} and event_shape {event}; "
                f"a prior must have batch_shape () and event_shape (latent_dim,) = ({self.latent_dim},){hint}")
        return d

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) for z of shape (..., D) -> (...)."""
        return self.distribution().log_prob(z)

    def sample(self, n: int) -> Tensor:
        """``n`` draws, shape (n, D)."""
        return self.distribution().sample((int(n),))

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}"


class StandardNormal(Prior):
    """p(z) = N(0, I). The KL to a diagonal Normal guide is analytic.

    >>> StandardNormal(2).distribution().event_shape
    torch.Size([2])
    """

    analytic_kl = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("loc", torch.zeros(self.latent_dim))
        self.register_buffer("scale", torch.ones(self.latent_dim))

    def distribution(self) -> dist.TorchDistribution:
        return dist.Normal(self.loc, self.scale, validate_args=False).to_event(1)


def _mixture(logits: Tensor, loc: Tensor, scale: Tensor) -> dist.TorchDistribution:
    """Mixture of K diagonal Gaussians: log p(z) = logsumexp_k [log w_k + log N(z; loc_k, scale_k)],
    evaluated as two matrix products (:class:`vae.mixture.DiagonalNormalMixture`), never (N, K, D)."""
    return DiagonalNormalMixture(logits, loc, scale)


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor] | None] = {
    "hardtanh": lambda u: torch.nn.functional.hardtanh(u, 0.0, 1.0),
    "sigmoid": torch.sigmoid,
    "none": None,
}


class VampPrior(Prior):
    """VampPrior (Tomczak & Welling 2018): p(z) = (1/K) Σ_k q(z | u_k), K learned pseudo-inputs.

    The pseudo-inputs ``u`` (K, *input_shape) are pushed through ``encoder`` (the VAE's own encoder,
    shared, so this prior has the encoder's parameters as well) and mixed with equal weights; the
    log density is a logsumexp over the K components, computed as two matrix products
    (:class:`vae.mixture.DiagonalNormalMixture`: no (B, K, D) tensor).

    ``pseudo_activation``: ``"hardtanh"`` (default, as in the paper: clip to [0, 1]), ``"sigmoid"``
    or ``"none"`` — maps the free parameters to the image range before encoding. Initialised as
    ``init_mean + init_std · N(0, 1)`` (default 0.5 + 0.01·noise; the reference implementation,
    jmtomczak/vae_vampprior, uses mean 0.05, std 0.01 for MNIST); :meth:`init_from_data` copies K
    training images instead.

    ``shared_offset=True`` adds one learned image ``b`` to every pseudo-input before the activation,
    u_k ↦ act(b + u_k): the parametrisation of pythae's VAMP (a ``Linear(K, D)`` layer on the identity:
    weight column k plus its bias). The reference implementation has no such offset. Adam then moves
    the part the pseudo-inputs share with every component's gradient, so in a short run they leave
    their near-blank start faster (measured in ``benchmarks/bench_peer.py``); ``b`` starts at 0.

    The pseudo-inputs always go through the encoder in eval mode (each submodule's mode is restored
    afterwards; gradients still flow): with BatchNorm they are normalised with the running
    statistics, which the prior never updates, and Dropout is off, so log p(z) is a deterministic
    function of the parameters. (In train mode the K pseudo-inputs would be normalised with their
    own batch statistics, updating the running statistics a second time per step, and Dropout would
    make the prior random.) MLP encoders without BatchNorm/Dropout, as in the paper, are unaffected.

    >>> from vae.nets import MLPEncoder
    >>> enc = MLPEncoder(latent_dim=2, input_shape=(1, 4, 4), hidden_sizes=(8,))
    >>> VampPrior(enc, n_components=5, input_shape=(1, 4, 4)).log_prob(torch.zeros(3, 2)).shape
    torch.Size([3])
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_components: int = 500,
        input_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int | None = None,
        pseudo_activation: str = "hardtanh",
        init_std: float = 0.01,
        init_mean: float = 0.5,
        shared_offset: bool = False,
    ) -> None:
        if int(n_components) < 1:
            raise ValueError(f"n_components must be a positive integer; got {n_components!r}")
        if pseudo_activation not in _ACTIVATIONS:
            raise ValueError(
                f"unknown pseudo_activation {pseudo_activation!r}; allowed: {sorted(_ACTIVATIONS)}"
            )
        input_shape = tuple(int(s) for s in input_shape)
        if latent_dim is None:
            latent_dim = getattr(encoder, "latent_dim", None)
        if latent_dim is None:
            with torch.no_grad(), eval_mode(encoder):
                probe = next(encoder.parameters(), torch.empty(0))
                loc, _ = encoder(torch.full((1, *input_shape), 0.5, dtype=probe.dtype, device=probe.device))
            latent_dim = loc.shape[-1]
        super().__init__(latent_dim)
        self.encoder = encoder
        self.n_components = int(n_components)
        self.input_shape = input_shape
        self.pseudo_activation = pseudo_activation
        self.pseudo_inputs = nn.Parameter(float(init_mean) + float(init_std) * torch.randn(self.n_components, *input_shape))
        self.register_buffer("mix_logits", torch.zeros(self.n_components))
        self.offset = nn.Parameter(torch.zeros(1, *input_shape)) if shared_offset else None

    def inputs(self) -> Tensor:
        """The K pseudo-inputs in image space (after the activation), shape (K, *input_shape)."""
        act = _ACTIVATIONS[self.pseudo_activation]
        u = self.pseudo_inputs if self.offset is None else self.pseudo_inputs + self.offset
        return u if act is None else act(u)

    @torch.no_grad()
    def init_from_data(self, images: Tensor, seed: int | None = 0, noise_std: float = 0.0) -> "VampPrior":
        """Initialise the pseudo-inputs from K images (drawn without replacement; with replacement if
        fewer than K are given). Returns ``self``."""
        if tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"images must be (N, {self.input_shape}); got {tuple(images.shape)}")
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        n = images.shape[0]
        idx = (torch.randperm(n, generator=g)[: self.n_components] if n >= self.n_components
               else torch.randint(n, (self.n_components,), generator=g))
        u = images[idx.to(images.device)].to(self.pseudo_inputs)
        if noise_std:
            u = u + noise_std * torch.randn(u.shape, generator=g).to(u)
        if self.pseudo_activation == "sigmoid":
            u = torch.logit(u.clamp(1e-3, 1 - 1e-3))
        self.pseudo_inputs.copy_(u)
        if self.offset is not None:
            self.offset.zero_()
        return self

    def distribution(self) -> dist.TorchDistribution:
        with eval_mode(self.encoder):
            loc, scale = self.encoder(self.inputs())
        return _mixture(self.mix_logits, loc, scale)

    def extra_repr(self) -> str:
        return (f"latent_dim={self.latent_dim}, n_components={self.n_components}, input_shape={self.input_shape}"
                + (", shared_offset=True" if self.offset is not None else ""))


class MixtureOfGaussians(Prior):
    """Learnable mixture of K diagonal Gaussians: weights (softmax of logits), means, log-scales.

    Means start as N(0, I) draws, scales at 1, weights uniform.

    >>> MixtureOfGaussians(2, 4).sample(5).shape
    torch.Size([5, 2])
    """

    def __init__(self, latent_dim: int, n_components: int = 10, init_scale: float = 1.0) -> None:
        super().__init__(latent_dim)
        if int(n_components) < 1:
            raise ValueError(f"n_components must be a positive integer; got {n_components!r}")
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0; got {init_scale!r}")
        self.n_components = int(n_components)
        self.logits = nn.Parameter(torch.zeros(self.n_components))
        self.locs = nn.Parameter(torch.randn(self.n_components, self.latent_dim))
        self.log_scales = nn.Parameter(
            torch.full((self.n_components, self.latent_dim), float(torch.log(torch.tensor(init_scale))))
        )

    def distribution(self) -> dist.TorchDistribution:
        return _mixture(self.logits, self.locs, self.log_scales.exp())

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, n_components={self.n_components}"


PRIORS = ("normal", "vamp", "mog")


def make_prior(
    name: str,
    latent_dim: int,
    *,
    encoder: nn.Module | None = None,
    input_shape: Sequence[int] | None = None,
    n_components: int | None = None,
) -> Prior:
    """Build a prior by name: ``"normal"``, ``"vamp"`` (needs ``encoder`` and ``input_shape``;
    K defaults to 500) or ``"mog"`` (K defaults to 10).

    >>> make_prior("mog", 4, n_components=3).n_components
    3
    """
    if name == "normal":
        return StandardNormal(latent_dim)
    if name == "mog":
        return MixtureOfGaussians(latent_dim, n_components or 10)
    if name == "vamp":
        if encoder is None or input_shape is None:
            raise ValueError("the 'vamp' prior needs encoder=... and input_shape=...")
        return VampPrior(encoder, n_components or 500, input_shape, latent_dim=latent_dim)
    raise ValueError(f"unknown prior {name!r}; allowed: {list(PRIORS)}")
