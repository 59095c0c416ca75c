"""Tiny models the tests share: a linear-Gaussian encoder and a linear decoder whose every quantity
has a closed form (float64), and a small MLP VAE for tests that only need something trainable.

>>> import numpy as np, torch
>>> enc = LinearEncoder(np.eye(2), [0.0, 0.0], np.zeros((2, 2)), [0.0, 0.0])
>>> [t.tolist() for t in enc(torch.tensor([[[[1.0, 2.0]]]], dtype=torch.float64))]
[[[1.0, 2.0]], [[1.0, 1.0]]]
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _parameter(values) -> nn.Parameter:
    return nn.Parameter(torch.tensor(np.asarray(values, dtype=np.float64)))


class LinearEncoder(nn.Module):
    """q(z | x) = N(A f + a, exp(C f + c)) for the flattened image f."""

    def __init__(self, A, a, C, c) -> None:
        super().__init__()
        self.A, self.a, self.C, self.c = (_parameter(v) for v in (A, a, C, c))

    def forward(self, x):
        f = x.flatten(1)
        return f @ self.A.T + self.a, torch.exp(0.5 * (f @ self.C.T + self.c))


class LinearDecoder(nn.Module):
    """The decoder's output W z + b as (N, 1, 1, pixels) images (logits or means)."""

    def __init__(self, W, b) -> None:
        super().__init__()
        self.W, self.b = _parameter(W), _parameter(b)

    def forward(self, z):
        return (z @ self.W.T + self.b).view(-1, 1, 1, self.W.shape[0])


def mlp_vae(latent_dim: int = 3, shape: tuple[int, ...] = (1, 4, 4), hidden: tuple[int, ...] = (8,), seed: int = 0):
    """A small MLP VAE with the standard Normal prior, initialised from ``seed``."""
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import StandardNormal

    torch.manual_seed(seed)
    return VAE(MLPEncoder(latent_dim, shape, hidden), MLPDecoder(latent_dim, shape, hidden), StandardNormal(latent_dim))
