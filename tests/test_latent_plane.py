"""The 2-d latent VAE (seed 002): the decoded latent plane, and the example that draws it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import norm

from helpers.models import mlp_vae
from vae.analysis import latent_plane_grid
from vae.cli import latent_plane
from vae.model import VAE


def _vae(latent_dim: int = 2) -> VAE:
    return mlp_vae(latent_dim, (1, 6, 6), (10,))


def test_grid_values_are_normal_quantiles_and_images_are_the_decoded_means(tmp_path):
    m = _vae()
    images, values = latent_plane_grid(m, tmp_path / "plane.png", n=7, quantile=0.1)
    np.testing.assert_allclose(values, norm.ppf(np.linspace(0.1, 0.9, 7)), atol=1e-6)
    assert images.shape == (7, 7, 1, 6, 6)
    # row i holds z2 = values[n-1-i] (up is positive), column j holds z1 = values[j]
    for i, j in [(0, 0), (0, 6), (3, 2), (6, 5)]:
        z = torch.tensor([[values[j], values[6 - i]]], dtype=torch.float32)
        expected = torch.sigmoid(m.decode(z))[0]
        torch.testing.assert_close(images[i, j], expected.detach(), atol=1e-6, rtol=0)
    assert (tmp_path / "plane.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=1), "n must be"), (dict(quantile=0.5), "quantile"), (dict(quantile=0.0), "quantile")])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        latent_plane_grid(_vae(), **kwargs)


def test_a_latent_that_is_not_2d_is_refused():
    with pytest.raises(ValueError, match="2-d latent.*3 latent dimensions"):
        latent_plane_grid(_vae(latent_dim=3))


def test_example_writes_the_plane_scatter_and_summary(tmp_path, capsys):
    summary = latent_plane.run_cli(["--epochs", "3", "--batch-size", "16", "--max-samples", "600", "--iwae-samples", "5", "--grid", "6",
                        "--out", str(tmp_path), "--no-progress", "--json", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(summary, default=float))
    for name in ("latent_plane.png", "latent_scatter.png", "reconstructions.png", "loss_curves.png",
                 "history.csv", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    # ten digit classes in the plane: a 5-NN classifier does far better than chance (10%) even so early
    assert 0.2 < summary["knn5_accuracy_2d"] <= 1.0
    assert 50 < summary["test_iwae_nll"] < 544  # below the 784 * log 2 nats of a coin-flip model
    assert summary["final"]["val_loss"] < summary["final"]["train_loss"] * 1.5


def test_knn_accuracy_separates_clusters_from_noise():
    cli = latent_plane
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    clusters = np.c_[labels * 10.0, np.zeros(200)] + rng.normal(size=(200, 2))
    assert cli.knn_accuracy(clusters, labels) > 0.95
    assert cli.knn_accuracy(rng.normal(size=(200, 2)), labels) < 0.5
