"""Vector quantisation (VQ-VAE, van den Oord et al. 2017) as plain torch modules.

``VectorQuantizer`` maps every encoder output vector z_e to its nearest codebook vector e_k and
passes gradients straight through (z_q = z_e + sg[e_k - z_e]). Its losses, as per-batch sums:

    codebook   = ||sg[z_e] - e||^2      (replaced by EMA updates when ``ema=True``; then 0)
    commitment = ||z_e - sg[e]||^2      (weighted by ``beta``, 0.25 by default, in ``VQVAE``)

Codebook collapse (few codes used) is countered by EMA updates with Laplace smoothing, by
initialising the codebook from encoder outputs (``init="data"`` or ``"kmeans"``: on the first
training batch) and by re-seeding dead codes (codes whose running usage share fell below a
threshold) at encoder outputs of the current batch, *before* that batch is assigned to codes. Perplexity exp(H(p)) of the code-usage distribution p and the fraction of
codes used are reported with every forward pass.

``VQVAE`` is a small convolutional VQ-VAE for 28x28 (MNIST, latent grid 7x7) and 64x64
(dSprites, latent grid 8x8) images; ``loss_terms(x)`` makes it trainable with ``vae.train.fit``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vae.modes import eval_mode
from vae.device import module_device

__all__ = ["VQOutput", "VectorQuantizer", "VQVAE", "codebook_usage", "perplexity"]


@dataclass
class VQOutput:
    """What one quantisation pass returns.

    ``quantized``: straight-through output, shaped like the input. ``indices``: code index per
    vector (input shape without the channel dimension). ``codebook_loss`` / ``commitment_loss``:
    sums over the batch (``commitment_loss`` is *not* multiplied by beta; ``loss`` is
    codebook + beta * commitment). ``perplexity`` and ``usage`` (fraction of codes used) describe
    this batch; ``n_reseeded`` counts dead codes re-seeded during this pass.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor
    n_reseeded: "int | torch.Tensor" = 0  # a 0-d tensor when re-seeding ran (no host sync)


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp of the entropy (nats) of the distribution ``counts / counts.sum()``; 0 * log 0 = 0.

    Ranges from 1 (one code used) to ``len(counts)`` (all codes used equally).

    >>> float(perplexity(torch.tensor([5.0, 5.0, 0.0, 0.0])))
    2.0
    """
    counts = counts.float()
    p = counts / counts.sum().clamp_min(1e-12)
    entropy = -(torch.special.xlogy(p, p)).sum()
    return entropy.exp()


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantiser with straight-through gradients.

    Parameters
    ----------
    n_codes, code_dim: codebook size K and vector length D.
    beta: commitment weight used in ``VQOutput.loss`` (0.25, as in the paper).
    ema: update the codebook by exponential moving averages of assigned encoder outputs
        (cluster sizes and sums, Laplace-smoothed) instead of by the codebook loss.
    decay: EMA decay for the codebook statistics.
    eps: Laplace-smoothing constant for the EMA cluster sizes.
    reseed: re-seed dead codes at random encoder outputs of the current batch (training mode
        only), before that batch is assigned, so the fresh codes take part in the same pass.
        Works with and without ``ema``.
    dead_code_threshold: a code is dead when its running share of assignments falls below
        ``dead_code_threshold / n_codes`` (i.e. below that fraction of a uniform share).
    usage_decay: decay of the running usage shares used to find dead codes.
    init: ``"uniform"`` (U(-1/K, 1/K), the reference implementation's init; far smaller than
        typical encoder outputs, which is what lets an unmaintained codebook collapse),
        ``"data"`` (K random encoder outputs of the first training batch) or ``"kmeans"``
        (``kmeans_iters`` Lloyd iterations on the first training batch, started from ``"data"``).

    Input: (B, D) vectors, or (B, D, *spatial) feature maps (channel = code dimension).

    >>> vq = VectorQuantizer(8, 2)
    >>> out = vq(torch.randn(4, 2, 3, 3))
    >>> out.quantized.shape, out.indices.shape
    (torch.Size([4, 2, 3, 3]), torch.Size([4, 3, 3]))
    """

    def __init__(
        self,
        n_codes: int,
        code_dim: int,
        beta: float = 0.25,
        ema: bool = False,
        decay: float = 0.99,
        eps: float = 1e-5,
        reseed: bool = False,
        dead_code_threshold: float = 0.03,
        usage_decay: float = 0.9,
        init: str = "uniform",
        kmeans_iters: int = 10,
    ) -> None:
        super().__init__()
        if init not in ("uniform", "data", "kmeans"):
            raise ValueError(f"init must be 'uniform', 'data' or 'kmeans'; got {init!r}")
        if n_codes < 1 or code_dim < 1:
            raise ValueError(f"n_codes and code_dim must be >= 1; got {n_codes}, {code_dim}")
        if not 0.0 <= decay < 1.0 or not 0.0 <= usage_decay < 1.0:
            raise ValueError(f"decay and usage_decay must be in [0, 1); got {decay}, {usage_decay}")
        self.n_codes, self.code_dim = int(n_codes), int(code_dim)
        self.beta, self.ema, self.decay, self.eps = float(beta), bool(ema), float(decay), float(eps)
        self.reseed, self.dead_code_threshold = bool(reseed), float(dead_code_threshold)
        self.usage_decay = float(usage_decay)
        self.init, self.kmeans_iters = init, int(kmeans_iters)
        init = torch.empty(n_codes, code_dim).uniform_(-1.0 / n_codes, 1.0 / n_codes)
        if self.ema:
            # The codebook is a buffer (no gradient): e_k = embed_sum_k / smoothed cluster_size_k.
            self.register_buffer("embedding", init)
            self.register_buffer("cluster_size", torch.ones(n_codes))
            self.register_buffer("embed_sum", init.clone())
        else:
            self.embedding = nn.Parameter(init)
        # Running share of assignments per code (starts uniform), for dead-code detection.
        self.register_buffer("usage_share", torch.full((n_codes,), 1.0 / n_codes))
        self.register_buffer("total_reseeded", torch.zeros((), dtype=torch.long))
        # False until the data-dependent init ran (always True for init="uniform").
        self.register_buffer("initialized", torch.tensor(self.init == "uniform"))
        self._init_checked = False

    # -- core -----------------------------------------------------------------------------
    def _flatten(self, z_e: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...] | None]:
        if z_e.ndim < 2 or z_e.shape[1] != self.code_dim:
            raise ValueError(f"expected (B, {self.code_dim}, ...) input; got shape {tuple(z_e.shape)}")
        if z_e.ndim == 2:
            return z_e, None
        moved = z_e.movedim(1, -1)  # (B, *spatial, D)
        return moved.reshape(-1, self.code_dim), tuple(moved.shape[:-1])

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row of ``flat`` (N, D)."""
        e = self.embedding
        # ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is constant per row and does not change the argmin.
        dist = (e * e).sum(1)[None, :] - 2.0 * flat @ e.t()
        return dist.argmin(dim=1)

    def forward(self, z_e: torch.Tensor) -> VQOutput:
        flat, spatial = self._flatten(z_e)
        n_reseeded = 0
        if self.training:
            with torch.no_grad():
                if self.init != "uniform" and not self._init_checked:
                    # one host read of the flag per module (after construction or loading), not per step
                    if not bool(self.initialized):
                        self.init_from(flat.detach(), kmeans_iters=self.kmeans_iters if self.init == "kmeans" else 0)
                    self._init_checked = True
                if self.reseed:
                    # Before the assignment, so this batch's vectors already see the fresh codes.
                    n_reseeded = self._reseed_dead(flat.detach())
        with torch.no_grad():
            indices = self.nearest(flat.detach())
            counts = torch.bincount(indices, minlength=self.n_codes).to(flat.dtype)
        if self.training:
            with torch.no_grad():
                if self.ema:
                    self._ema_update(flat.detach(), indices, counts)
                self.usage_share.mul_(self.usage_decay).add_(counts / counts.sum(), alpha=1 - self.usage_decay)
        e = self.embedding[indices]  # (N, D), carries gradient to the codebook when not EMA
        codebook_loss = ((flat.detach() - e) ** 2).sum() if not self.ema else flat.new_zeros(())
        commitment_loss = ((flat - e.detach()) ** 2).sum()
        quantized = flat + (e - flat).detach()  # straight-through estimator
        if spatial is not None:
            quantized = quantized.reshape(*spatial, self.code_dim).movedim(-1, 1)
            indices = indices.reshape(spatial)
        return VQOutput(
            quantized=quantized,
            indices=indices,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            loss=codebook_loss + self.beta * commitment_loss,
            perplexity=perplexity(counts),
            usage=(counts > 0).float().mean(),
            n_reseeded=n_reseeded,
        )

    # -- codebook maintenance -------------------------------------------------------------
    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        """N_k <- d N_k + (1-d) n_k;  m_k <- d m_k + (1-d) sum_{i: k(i)=k} z_i;
        e_k = m_k / N~_k with Laplace smoothing N~_k = (N_k + eps) / (N + K eps) * N."""
        sums = torch.zeros_like(self.embed_sum).index_add_(0, indices, flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.n_codes * self.eps) * n
        self.embedding.copy_(self.embed_sum / smoothed[:, None])

    def dead_codes(self) -> torch.Tensor:
        """Indices of codes whose running usage share is below ``dead_code_threshold / n_codes``."""
        return torch.nonzero(self.usage_share < self.dead_code_threshold / self.n_codes).flatten()

    @torch.no_grad()
    def _reseed_dead(self, flat: torch.Tensor) -> torch.Tensor:
        """Replace every dead code by a random vector of this batch; returns the number replaced as a
        0-d tensor. Written with masks (no ``nonzero``, no ``int()``), so it never synchronises the
        host with a GPU: a candidate row is drawn for every code and kept where the code is dead."""
        dead = self.usage_share < self.dead_code_threshold / self.n_codes  # (K,) bool
        pick = torch.randint(0, flat.shape[0], (self.n_codes,), device=flat.device)
        new = flat[pick].to(self.embedding.dtype)
        mask = dead[:, None]
        self.embedding.copy_(torch.where(mask, new, self.embedding))
        if self.ema:
            self.cluster_size.copy_(torch.where(dead, torch.ones_like(self.cluster_size), self.cluster_size))
            self.embed_sum.copy_(torch.where(mask, new.to(self.embed_sum.dtype), self.embed_sum))
        # A fresh code gets a uniform share again, so it has time to attract vectors.
        self.usage_share.copy_(torch.where(dead, torch.full_like(self.usage_share, 1.0 / self.n_codes), self.usage_share))
        n_dead = dead.sum()
        self.total_reseeded += n_dead
        return n_dead

    @torch.no_grad()
    def init_from(self, z: torch.Tensor, kmeans_iters: int = 0) -> None:
        """Set the codebook from encoder outputs ``z`` ((N, D) or (B, D, ...)): K randomly chosen
        vectors, then ``kmeans_iters`` Lloyd (k-means) iterations; a cluster that empties keeps its
        centre. With EMA the running statistics restart at these codes (cluster size 1 each)."""
        flat, _ = self._flatten(z)
        flat = flat.detach().to(self.embedding.dtype)
        pick = torch.randperm(flat.shape[0], device=flat.device)[: self.n_codes]
        if len(pick) < self.n_codes:
            pick = torch.randint(flat.shape[0], (self.n_codes,), device=flat.device)
        centres = flat[pick].clone()
        for _ in range(int(kmeans_iters)):
            idx = torch.cdist(flat, centres).argmin(1)
            counts = torch.bincount(idx, minlength=self.n_codes).to(flat.dtype)
            sums = torch.zeros_like(centres).index_add_(0, idx, flat)
            used = counts > 0
            centres[used] = sums[used] / counts[used, None]
        self.embedding.copy_(centres)
        if self.ema:
            self.cluster_size.fill_(1.0)
            self.embed_sum.copy_(centres)
        self.usage_share.fill_(1.0 / self.n_codes)
        self.initialized.fill_(True)


# -- the conv VQ-VAE -------------------------------------------------------------------------
class _ResBlock(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _n_down(image_size: int) -> int:
    if image_size == 28:
        return 2  # 28 -> 14 -> 7
    if image_size == 64:
        return 3  # 64 -> 32 -> 16 -> 8
    raise ValueError(f"VQVAE supports 28x28 (MNIST) and 64x64 (dSprites) images; got {image_size}")


class VQVAE(nn.Module):
    """Convolutional VQ-VAE: conv encoder -> ``VectorQuantizer`` -> transposed-conv decoder.

    ``input_shape`` (C, H, W) with H = W = 28 (latent grid 7x7) or 64 (latent grid 8x8).
    The decoder's last layer is linear (no sigmoid, no clamp), so its gradient never saturates.
    ``recon="mse"`` (default, the paper's loss): reconstruction term ||x - decoder(z_q)||^2; the
    mean image is decoder(z_q) clamped to [0, 1]. ``recon="bce"``: the decoder outputs Bernoulli
    logits, the term is the binary cross-entropy (nats), the mean image is sigmoid(logits).
    ``init``/``kmeans_iters``/``usage_decay``/``eps``: see :class:`VectorQuantizer`. ``loss_terms(x)`` returns
    per-batch sums: loss = recon + codebook + beta * commitment, plus ``perplexity`` and ``usage``
    of the batch (multiplied by the batch size, so that per-image means equal the batch values).

    >>> m = VQVAE((1, 28, 28), n_codes=16, code_dim=4, hidden=8)
    >>> sorted(m.loss_terms(torch.rand(2, 1, 28, 28)))
    ['codebook', 'commitment', 'loss', 'perplexity', 'recon', 'usage']
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        n_codes: int = 128,
        code_dim: int = 16,
        hidden: int = 64,
        beta: float = 0.25,
        ema: bool = False,
        decay: float = 0.99,
        reseed: bool = False,
        dead_code_threshold: float = 0.03,
        recon: str = "mse",
        init: str = "uniform",
        kmeans_iters: int = 10,
        usage_decay: float = 0.9,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if recon not in ("mse", "bce"):
            raise ValueError(f"recon must be 'mse' or 'bce'; got {recon!r}")
        self.recon = recon
        c, h, w = input_shape
        if h != w:
            raise ValueError(f"VQVAE needs square images; got {input_shape}")
        n_down = _n_down(h)
        self.input_shape = tuple(input_shape)
        widths = [hidden // 2 ** (n_down - 1 - i) for i in range(n_down)]  # e.g. 32, 64 or 16, 32, 64
        enc: list[nn.Module] = []
        prev = c
        for i, wd in enumerate(widths):
            enc += [nn.Conv2d(prev, wd, 4, stride=2, padding=1)] + ([nn.ReLU()] if i < n_down - 1 else [])
            prev = wd
        enc += [nn.Conv2d(prev, hidden, 3, padding=1), _ResBlock(hidden, hidden // 2), nn.ReLU()]
        enc += [nn.Conv2d(hidden, code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantizer(
            n_codes, code_dim, beta=beta, ema=ema, decay=decay, eps=eps, reseed=reseed,
            dead_code_threshold=dead_code_threshold, usage_decay=usage_decay, init=init, kmeans_iters=kmeans_iters,
        )
        dec: list[nn.Module] = [nn.Conv2d(code_dim, hidden, 3, padding=1), _ResBlock(hidden, hidden // 2), nn.ReLU()]
        prev = hidden
        for wd in reversed(widths[:-1]):
            dec += [nn.ConvTranspose2d(prev, wd, 4, stride=2, padding=1), nn.ReLU()]
            prev = wd
        dec += [nn.ConvTranspose2d(prev, c, 4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*dec)

    @property
    def beta(self) -> float:
        return self.quantizer.beta

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous encoder output z_e, (B, code_dim, h, w)."""
        return self.encoder(x)

    def decode_raw(self, z_q: torch.Tensor) -> torch.Tensor:
        """Unbounded decoder output: the image (``recon="mse"``) or Bernoulli logits (``"bce"``)."""
        return self.decoder(z_q)

    def _mean(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw) if self.recon == "bce" else raw.clamp(0.0, 1.0)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Mean image in [0, 1] from quantised latents (B, code_dim, h, w)."""
        return self._mean(self.decode_raw(z_q))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Mean image from a grid of code indices (B, h, w)."""
        z_q = self.quantizer.embedding[indices].movedim(-1, 1)
        return self.decode(z_q)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, VQOutput]:
        """(mean image in [0, 1], quantiser output)."""
        out = self.quantizer(self.encode(x))
        return self.decode(out.quantized), out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[0]

    def recon_loss(self, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction term (sum over the batch) from the unbounded decoder output ``raw``."""
        if self.recon == "bce":
            return F.binary_cross_entropy_with_logits(raw, x, reduction="sum")
        return ((raw - x) ** 2).sum()

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.quantizer(self.encode(x))
        recon = self.recon_loss(self.decode_raw(out.quantized), x)
        b = x.shape[0]
        return {
            "loss": recon + out.loss,
            "recon": recon,
            "codebook": out.codebook_loss,
            "commitment": out.commitment_loss,
            "perplexity": out.perplexity.detach() * b,
            "usage": out.usage.detach() * b,
        }


@torch.no_grad()
def codebook_usage(model: VQVAE, images: torch.Tensor, batch_size: int = 512) -> dict:
    """Code-usage statistics of ``model`` on ``images`` (eval mode, no codebook updates).

    Returns ``counts`` (numpy, K), ``perplexity``, ``usage`` (fraction of codes used at least once)
    and ``mse`` (per-pixel mean squared reconstruction error).
    """
    device = module_device(model)
    counts = torch.zeros(model.quantizer.n_codes, device=device)
    sq, n_pix = 0.0, 0
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device)
            x_hat, out = model(x)
            counts += torch.bincount(out.indices.flatten(), minlength=model.quantizer.n_codes).float()
            sq += float(((x_hat - x) ** 2).sum())
            n_pix += x.numel()
    return {
        "counts": counts.cpu().numpy(),
        "perplexity": float(perplexity(counts)),
        "usage": float((counts > 0).float().mean()),
        "mse": sq / max(n_pix, 1),
        "psnr": float(10 * math.log10(1.0 / max(sq / max(n_pix, 1), 1e-12))),
    }
