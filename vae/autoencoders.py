"""Deterministic autoencoders: plain, denoising and super-resolution.

They follow two Persian texts on autoencoders that the project started from: a Keras tutorial
with a plain MNIST autoencoder (784 -> 16 -> 784, squared error), and a translated course lesson
on their uses (denoising, super-resolution); see ``docs/exercises.md``.

All three are plain torch modules with ``loss_terms(x) -> {"loss", "mse"}`` (per-batch sums of
squared errors), so they train with ``vae.train.fit``; the corruption (noise, down-sampling) happens
inside ``loss_terms`` on the device, with a fresh draw per batch, and the target is the clean x.

* :class:`Autoencoder`: x -> encoder -> code -> decoder -> x_hat in [0, 1] (sigmoid), MSE to x.
  ``Autoencoder.mlp()`` is the tutorial's MNIST model, 784 -> 16 -> 784.
* :class:`DenoisingAutoencoder`: input ``corrupt(x)`` (Gaussian or salt-and-pepper noise), target x.
  Baseline: the noisy input itself.
* :class:`SuperResolutionAutoencoder`: input ``downsample(x)`` (``factor``x average pooling,
  28x28 -> 14x14), target x. The decoder predicts the residual over bicubic up-sampling (as in
  VDSR, Kim et al. 2016), so training starts at the baseline, bicubic up-sampling with
  ``torch.nn.functional.interpolate(mode="bicubic")``.

Metric: :func:`psnr` in dB for images in [0, 1] (peak 1).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae.modes import eval_mode
from vae.device import module_device

__all__ = [
    "psnr",
    "gaussian_noise",
    "salt_and_pepper",
    "NOISES",
    "downsample",
    "bicubic_upsample",
    "mlp_codec",
    "Autoencoder",
    "DenoisingAutoencoder",
    "SuperResolutionAutoencoder",
]


def psnr(estimate: Tensor, target: Tensor) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(1 / MSE), over all pixels (images in [0, 1]).

    >>> round(psnr(torch.full((1, 4), 0.1), torch.zeros(1, 4)), 6)
    20.0
    """
    mse = float(((estimate.float() - target.float()) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


# -- corruptions ------------------------------------------------------------------------------
def gaussian_noise(x: Tensor, std: float, generator: torch.Generator | None = None, clip: bool = True) -> Tensor:
    """x + N(0, std^2) per pixel, clipped to [0, 1] by default (a valid image)."""
    noisy = x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return noisy.clamp(0.0, 1.0) if clip else noisy


def salt_and_pepper(x: Tensor, amount: float, generator: torch.Generator | None = None) -> Tensor:
    """Each pixel, with probability ``amount``, becomes 0 or 1 (equally likely); others unchanged."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"salt-and-pepper amount must be in [0, 1]; got {amount}")
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    salt = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < 0.5
    return torch.where(u < amount, salt.to(x.dtype), x)


NOISES = {"gaussian": gaussian_noise, "salt_pepper": salt_and_pepper}


def downsample(x: Tensor, factor: int = 2) -> Tensor:
    """Average pooling by ``factor`` (28x28 -> 14x14 for factor 2): each low-res pixel is the mean
    of a factor x factor block, as a camera sensor would integrate it."""
    return F.avg_pool2d(x, factor)


def bicubic_upsample(low: Tensor, factor: int = 2) -> Tensor:
    """The baseline: bicubic interpolation by ``factor`` (``align_corners=False``), clipped to [0, 1]."""
    return F.interpolate(low, scale_factor=factor, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


# -- networks ---------------------------------------------------------------------------------
def _prod(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def mlp_codec(input_shape: Sequence[int], code_dim: int, hidden_sizes: Sequence[int] = (),
              output_shape: Sequence[int] | None = None) -> tuple[nn.Module, nn.Module]:
    """Fully connected (encoder, decoder): flatten -> hidden (ReLU) -> code (ReLU) and code ->
    reversed hidden (ReLU) -> output logits reshaped to ``output_shape`` (default ``input_shape``).
    ``hidden_sizes=()`` gives the tutorial's single-layer 784 -> 16 -> 784."""
    output_shape = tuple(input_shape if output_shape is None else output_shape)
    enc: list[nn.Module] = [nn.Flatten()]
    sizes = [_prod(input_shape), *map(int, hidden_sizes), int(code_dim)]
    for a, b in zip(sizes[:-1], sizes[1:]):
        enc += [nn.Linear(a, b), nn.ReLU()]
    dec: list[nn.Module] = []
    sizes = [int(code_dim), *reversed([int(h) for h in hidden_sizes])]
    for a, b in zip(sizes[:-1], sizes[1:]):
        dec += [nn.Linear(a, b), nn.ReLU()]
    dec += [nn.Linear(sizes[-1], _prod(output_shape)), nn.Unflatten(1, output_shape)]
    return nn.Sequential(*enc), nn.Sequential(*dec)


class Autoencoder(nn.Module):
    """x -> ``encoder`` -> code -> ``decoder`` -> logits; x_hat = sigmoid(logits) in [0, 1].

    ``loss_terms(x)`` -> ``{"loss", "mse"}``: both the per-batch sum of squared errors between the
    output for ``corrupt(x)`` and the clean x (``corrupt`` is the identity here).

    >>> ae = Autoencoder.mlp(code_dim=16)
    >>> ae.encode(torch.rand(3, 1, 28, 28)).shape, ae(torch.rand(3, 1, 28, 28)).shape
    (torch.Size([3, 16]), torch.Size([3, 1, 28, 28]))
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def mlp(cls, input_shape: Sequence[int] = (1, 28, 28), code_dim: int = 16,
            hidden_sizes: Sequence[int] = (), **kwargs) -> "Autoencoder":
        """An MLP autoencoder (default: the tutorial's 784 -> 16 -> 784); ``kwargs`` go to the class."""
        return cls(*mlp_codec(input_shape, code_dim, hidden_sizes), **kwargs)

    def model_input_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of the network input for clean images of ``image_shape``."""
        return tuple(image_shape)

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """What the network sees for a clean batch x (identity for the plain autoencoder)."""
        return x

    def encode(self, inp: Tensor) -> Tensor:
        return self.encoder(inp)

    def decode(self, code: Tensor, inp: Tensor | None = None) -> Tensor:
        return torch.sigmoid(self.decoder(code))

    def forward(self, inp: Tensor) -> Tensor:
        """Output image in [0, 1] for a network input (already corrupted)."""
        return self.decode(self.encode(inp), inp)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        se = ((self(self.corrupt(x)) - x) ** 2).sum()
        return {"loss": se, "mse": se}

    def baseline(self, inp: Tensor) -> Tensor:
        """The obvious estimate of x from the network input: the input itself."""
        return inp

    @torch.no_grad()
    def evaluate(self, x: Tensor, seed: int = 0, batch_size: int = 1000) -> dict:
        """PSNR (dB) of the model and of the baseline on clean images x, with a corruption drawn
        from a fixed ``seed``; returns also all the inputs, outputs and baselines (on the device)."""
        device = module_device(self)
        g = torch.Generator(device=device).manual_seed(seed)
        outs, bases, inps = [], [], []
        with eval_mode(self):
            for s in range(0, len(x), batch_size):
                xb = x[s : s + batch_size].to(device)
                inp = self.corrupt(xb, generator=g)
                inps.append(inp)
                outs.append(self(inp))
                bases.append(self.baseline(inp))
        out, base, inp = torch.cat(outs), torch.cat(bases), torch.cat(inps)
        x = x.to(device)
        return {"psnr": psnr(out, x), "baseline_psnr": psnr(base, x), "input": inp, "output": out, "baseline": base}


class DenoisingAutoencoder(Autoencoder):
    """Autoencoder trained on ``noise(x)`` with the clean x as target.

    ``noise``: ``"gaussian"`` (std ``noise_level``, clipped to [0, 1]) or ``"salt_pepper"``
    (fraction ``noise_level`` of pixels set to 0 or 1). Baseline: the noisy input.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, noise: str = "gaussian", noise_level: float = 0.5) -> None:
        super().__init__(encoder, decoder)
        if noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}; allowed: {sorted(NOISES)}")
        if not noise_level >= 0:
            raise ValueError(f"noise_level must be >= 0; got {noise_level}")
        self.noise, self.noise_level = noise, float(noise_level)

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return NOISES[self.noise](x, self.noise_level, generator=generator)

    def extra_repr(self) -> str:
        return f"noise={self.noise!r}, noise_level={self.noise_level}"


class SuperResolutionAutoencoder(Autoencoder):
    """Autoencoder from the ``factor``x down-sampled image (average pooling) to the full image.

    The decoder's output is a residual added to the bicubic up-sampling of the input (before the
    output is clipped to [0, 1]); the last layer starts at zero, so an untrained model *is* the
    bicubic baseline and training can only have to improve on it. Baseline: bicubic up-sampling.

    >>> sr = SuperResolutionAutoencoder.mlp(code_dim=32, hidden_sizes=(64,))
    >>> x = torch.rand(2, 1, 28, 28)
    >>> torch.allclose(sr(sr.corrupt(x)), bicubic_upsample(downsample(x)))
    True
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, factor: int = 2, zero_init: bool = True) -> None:
        super().__init__(encoder, decoder)
        if int(factor) < 2:
            raise ValueError(f"factor must be an integer >= 2; got {factor}")
        self.factor = int(factor)
        if zero_init:
            last = [m for m in decoder.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))][-1]
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)

    @classmethod
    def mlp(cls, input_shape: Sequence[int] = (1, 28, 28), code_dim: int = 128,
            hidden_sizes: Sequence[int] = (512,), factor: int = 2, **kwargs) -> "SuperResolutionAutoencoder":
        """MLP from the low-res image (``input_shape`` is the *full-resolution* shape) to the residual."""
        c, h, w = input_shape
        if h % factor or w % factor:
            raise ValueError(f"image size {h}x{w} is not divisible by factor {factor}")
        enc, dec = mlp_codec((c, h // factor, w // factor), code_dim, hidden_sizes, output_shape=input_shape)
        return cls(enc, dec, factor=factor, **kwargs)

    def model_input_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        c, h, w = image_shape
        return (c, h // self.factor, w // self.factor)

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return downsample(x, self.factor)

    def baseline(self, inp: Tensor) -> Tensor:
        return bicubic_upsample(inp, self.factor)

    def decode(self, code: Tensor, inp: Tensor | None = None) -> Tensor:
        if inp is None:
            raise ValueError("SuperResolutionAutoencoder.decode needs the low-resolution input (residual model)")
        up = F.interpolate(inp, scale_factor=self.factor, mode="bicubic", align_corners=False)
        out = up + self.decoder(code)
        # clip for the output image; during training the straight MSE on the unclipped sum keeps gradients
        return out if self.training else out.clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"
