"""Autoencoders (seeds 001, 002): corruptions, PSNR, the super-resolution residual, and the trained
denoising and super-resolution models beating their baselines on held-out digits."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vae.autoencoders import (Autoencoder, DenoisingAutoencoder, SuperResolutionAutoencoder, bicubic_upsample,
                              downsample, gaussian_noise, psnr, salt_and_pepper)
from vae.data.mnist import load_mnist
from vae.train import fit


def test_psnr_closed_form():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x + 0.1, x) == pytest.approx(20.0)
    assert psnr(x + 0.5, x) == pytest.approx(-10 * math.log10(0.25))
    assert psnr(x, x) == math.inf


def test_salt_and_pepper_rate_and_values():
    x = torch.full((1, 1, 200, 200), 0.3)
    y = salt_and_pepper(x, 0.2, generator=torch.Generator().manual_seed(0))
    changed = y != 0.3
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(y[changed].unique().tolist()) == {0.0, 1.0}
    assert (y[changed] == 1).float().mean().item() == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="amount"):
        salt_and_pepper(x, 1.5)


def test_gaussian_noise_std_and_clipping():
    x = torch.full((1, 1, 300, 300), 0.5)
    g = torch.Generator().manual_seed(0)
    raw = gaussian_noise(x, 0.1, generator=g, clip=False)
    assert (raw - x).std().item() == pytest.approx(0.1, rel=0.02)
    clipped = gaussian_noise(x, 2.0, generator=g)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_downsample_is_block_mean_and_bicubic_matches_torch():
    x = torch.rand(3, 1, 28, 28)
    low = downsample(x)
    assert low.shape == (3, 1, 14, 14)
    assert torch.allclose(low[0, 0, 2, 5], x[0, 0, 4:6, 10:12].mean())
    ref = F.interpolate(low, size=(28, 28), mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.equal(bicubic_upsample(low), ref)


def test_untrained_super_resolution_is_exactly_the_bicubic_baseline():
    sr = SuperResolutionAutoencoder.mlp(code_dim=16, hidden_sizes=(32,)).eval()
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(sr(sr.corrupt(x)), bicubic_upsample(downsample(x)), atol=1e-6)


def test_plain_autoencoder_is_the_seeds_784_16_784():
    ae = Autoencoder.mlp()
    sizes = [(m.in_features, m.out_features) for m in ae.modules() if isinstance(m, torch.nn.Linear)]
    assert sizes == [(784, 16), (16, 784)]
    t = ae.loss_terms(torch.rand(5, 1, 28, 28))
    assert set(t) == {"loss", "mse"} and torch.equal(t["loss"], t["mse"])


def test_bad_noise_is_refused():
    with pytest.raises(ValueError, match="unknown noise"):
        DenoisingAutoencoder.mlp(noise="speckle")


@pytest.fixture(scope="module")
def digits():
    return load_mnist(split="train", max_samples=1500, seed=0), load_mnist(split="test")


@pytest.mark.parametrize("make", [
    lambda: DenoisingAutoencoder.mlp(code_dim=64, hidden_sizes=(256,), noise="gaussian", noise_level=0.5),
    lambda: DenoisingAutoencoder.mlp(code_dim=64, hidden_sizes=(256,), noise="salt_pepper", noise_level=0.2),
    lambda: SuperResolutionAutoencoder.mlp(code_dim=128, hidden_sizes=(256,)),
], ids=["denoise_gaussian", "denoise_salt_pepper", "superres"])
def test_short_training_beats_the_baseline_on_held_out_digits(make, digits):
    train, test = digits
    torch.manual_seed(0)
    model = make()
    fit(model, train, epochs=2, batch_size=32, lr=3e-3, val_fraction=0.0, device="cpu", seed=0, progress=False)
    res = model.evaluate(test.images, seed=1)
    # the baseline is the noisy input (denoising) or bicubic up-sampling (super-resolution)
    assert res["psnr"] > res["baseline_psnr"] + 0.3, (res["psnr"], res["baseline_psnr"])
