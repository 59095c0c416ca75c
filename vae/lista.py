"""Sparse coding: plain ISTA and its learned, unrolled version LISTA (Gregor & LeCun 2010).

The lasso problem  min_z  1/2 ||x - D z||^2 + lam ||z||_1  (D: (input_dim, code_dim)) is solved by
ISTA with step alpha <= 1 / ||D||_2^2:

    z <- soft_{alpha lam}(z + alpha D^T (x - D z)) = soft_{alpha lam}(alpha D^T x + (I - alpha D^T D) z)

LISTA unrolls T such steps, z_{t+1} = soft_theta(W1 h + W2 z_t), z_0 = 0, with learnable W1
(code_dim, input_dim), W2 (code_dim, code_dim) and per-unit thresholds theta >= 0.
``LISTA.from_ista(D, lam, alpha)`` sets W1 = alpha D^T, W2 = I - alpha D^T D, theta = alpha lam,
which reproduces ISTA's iterates exactly.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["soft_threshold", "ista", "lasso_objective", "LISTA", "hoyer_sparsity", "fraction_zeros"]


def soft_threshold(x: torch.Tensor, theta: torch.Tensor | float) -> torch.Tensor:
    """sign(x) * max(|x| - theta, 0), elementwise (theta broadcasts; negative theta acts as 0).

    >>> soft_threshold(torch.tensor([-2.0, -0.5, 0.5, 3.0]), 1.0)
    tensor([-1., -0.,  0.,  2.])
    """
    theta = torch.as_tensor(theta, dtype=x.dtype, device=x.device).clamp_min(0)
    return torch.sign(x) * torch.relu(x.abs() - theta)


def _step_size(D: torch.Tensor) -> torch.Tensor:
    """1 / L, with L = ||D||_2^2 the Lipschitz constant of the gradient of 1/2 ||x - D z||^2."""
    return 1.0 / torch.linalg.matrix_norm(D, ord=2) ** 2


def ista(
    x: torch.Tensor,
    D: torch.Tensor,
    lam: float,
    n_steps: int = 100,
    alpha: float | None = None,
    z0: torch.Tensor | None = None,
    return_iterates: bool = False,
):
    """Plain ISTA for the lasso  1/2 ||x - D z||^2 + lam ||z||_1 (reference implementation).

    ``x``: (B, input_dim) or (input_dim,); ``D``: (input_dim, code_dim). ``alpha`` defaults to
    1 / ||D||_2^2. Starts from ``z0`` (zeros by default). Returns the last iterate z_T, or the list
    [z_1, ..., z_T] with ``return_iterates=True``.
    """
    if D.ndim != 2 or x.shape[-1] != D.shape[0]:
        raise ValueError(f"x (..., {D.shape[0] if D.ndim == 2 else '?'}) and D (input_dim, code_dim) disagree: "
                         f"x {tuple(x.shape)}, D {tuple(D.shape)}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1; got {n_steps}")
    alpha = _step_size(D) if alpha is None else torch.as_tensor(alpha, dtype=D.dtype)
    z = torch.zeros(*x.shape[:-1], D.shape[1], dtype=x.dtype, device=x.device) if z0 is None else z0
    iterates = []
    for _ in range(n_steps):
        residual = x - z @ D.t()  # x - D z
        z = soft_threshold(z + alpha * residual @ D, alpha * lam)  # gradient step, then prox
        iterates.append(z)
    return iterates if return_iterates else z


def lasso_objective(x: torch.Tensor, D: torch.Tensor, z: torch.Tensor, lam: float) -> torch.Tensor:
    """1/2 ||x - D z||^2 + lam ||z||_1, per row."""
    return 0.5 * ((x - z @ D.t()) ** 2).sum(-1) + lam * z.abs().sum(-1)


class LISTA(nn.Module):
    """T unrolled learned-ISTA steps: z_{t+1} = soft_theta(W1 h + W2 z_t), z_0 = 0.

    ``W1`` (code_dim, input_dim), ``W2`` (code_dim, code_dim) and per-unit thresholds ``theta``
    (code_dim,) are learnable and shared across the T steps. By default W1, W2, theta are
    initialised from ISTA on a random unit-norm dictionary with ``lam`` (so an untrained LISTA is
    T ISTA steps); ``from_ista`` sets them from a given dictionary.

    >>> lista = LISTA(8, 4, n_steps=3)
    >>> lista(torch.randn(2, 8)).shape
    torch.Size([2, 4])
    """

    def __init__(self, input_dim: int, code_dim: int, n_steps: int = 5, lam: float = 0.1,
                 dictionary: torch.Tensor | None = None) -> None:
        super().__init__()
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1; got {n_steps}")
        self.input_dim, self.code_dim, self.n_steps = int(input_dim), int(code_dim), int(n_steps)
        if dictionary is None:
            dictionary = torch.randn(input_dim, code_dim)
            dictionary = dictionary / dictionary.norm(dim=0, keepdim=True)
        if tuple(dictionary.shape) != (input_dim, code_dim):
            raise ValueError(f"dictionary must be (input_dim, code_dim) = ({input_dim}, {code_dim}); "
                             f"got {tuple(dictionary.shape)}")
        alpha = _step_size(dictionary)
        self.W1 = nn.Parameter(alpha * dictionary.t().clone())
        self.W2 = nn.Parameter(torch.eye(code_dim, dtype=dictionary.dtype) - alpha * dictionary.t() @ dictionary)
        self.theta = nn.Parameter(torch.full((code_dim,), float(alpha * lam), dtype=dictionary.dtype))

    @classmethod
    def from_ista(cls, D: torch.Tensor, lam: float, alpha: float | None = None, n_steps: int = 5) -> "LISTA":
        """LISTA whose T steps are exactly T ISTA steps on dictionary ``D`` (input_dim, code_dim):
        W1 = alpha D^T, W2 = I - alpha D^T D, theta = alpha lam (alpha defaults to 1 / ||D||_2^2)."""
        D = torch.as_tensor(D)
        module = cls(D.shape[0], D.shape[1], n_steps=n_steps, lam=lam, dictionary=D)
        if alpha is not None:
            with torch.no_grad():
                module.W1.copy_(alpha * D.t())
                module.W2.copy_(torch.eye(D.shape[1], dtype=D.dtype) - alpha * D.t() @ D)
                module.theta.fill_(alpha * lam)
        return module

    def forward(self, h: torch.Tensor, return_iterates: bool = False):
        if h.shape[-1] != self.input_dim:
            raise ValueError(f"LISTA expects (..., {self.input_dim}) input; got {tuple(h.shape)}")
        b = h @ self.W1.t()  # W1 h, computed once
        z = soft_threshold(b, self.theta)  # z_1 (z_0 = 0)
        iterates = [z]
        for _ in range(self.n_steps - 1):
            z = soft_threshold(b + z @ self.W2.t(), self.theta)
            iterates.append(z)
        return iterates if return_iterates else z


# -- sparsity metrics ------------------------------------------------------------------------
def hoyer_sparsity(z: torch.Tensor) -> torch.Tensor:
    """Hoyer sparsity (sqrt(n) - ||z||_1 / ||z||_2) / (sqrt(n) - 1) of each row of ``z`` (..., n).

    1 for a one-hot vector, 0 for a vector with all entries of equal magnitude. An all-zero row
    has no active unit and counts as 1 (maximally sparse).

    >>> hoyer_sparsity(torch.tensor([[0.0, 3.0, 0.0, 0.0], [1.0, -1.0, 1.0, 1.0]]))
    tensor([1., 0.])
    """
    n = z.shape[-1]
    if n < 2:
        raise ValueError(f"Hoyer sparsity needs vectors of length >= 2; got {n}")
    l1 = z.abs().sum(-1)
    l2 = z.norm(dim=-1)
    sqrt_n = n**0.5
    ratio = torch.where(l2 > 0, l1 / l2.clamp_min(torch.finfo(z.dtype).tiny), torch.ones_like(l1))
    return (sqrt_n - ratio) / (sqrt_n - 1)


def fraction_zeros(z: torch.Tensor, atol: float = 0.0) -> float:
    """Fraction of entries with |z| <= atol (exact zeros by default)."""
    return float((z.abs() <= atol).float().mean())
