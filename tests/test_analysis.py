"""vae.analysis on tiny models: shapes, eval mode, KL per dimension, PCA against numpy/sklearn, plots."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.models import mlp_vae
from vae.analysis import encode_means, encode_stats, latent_traversals, pca_2d, per_dim_kl, plot_pca_by_factor, plot_per_dim_kl
from vae.data.dataset import ImageDataset
from vae.model import VAE
from vae.nets import ConvDecoder64, ConvEncoder64
from vae.priors import StandardNormal


def tiny_vae(d=3, shape=(1, 4, 4), seed=0):
    return mlp_vae(d, shape, (8,), seed)


def test_encode_means_shapes_batches_and_modes():
    m = tiny_vae()
    x = torch.rand(23, 1, 4, 4)
    m.train()
    mu = encode_means(m, x, batch_size=5)
    assert mu.shape == (23, 3) and mu.dtype == np.float64
    assert m.training  # mode restored
    with torch.no_grad():
        loc, scale = m.encode(x)
    np.testing.assert_allclose(mu, loc.double().numpy(), rtol=1e-6, atol=1e-6)
    ds = ImageDataset(x, np.zeros((23, 1), dtype=int), ("f",))
    np.testing.assert_allclose(encode_means(m, ds, batch_size=1024), mu, atol=1e-6)
    loc2, scale2 = encode_stats(m, x)
    np.testing.assert_allclose(scale2, scale.double().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        encode_means(m, x[:0])


def test_encode_means_uses_eval_mode_for_dropout_and_batchnorm():
    torch.manual_seed(0)
    enc = ConvEncoder64(latent_dim=4, dropout=0.5)
    m = VAE(enc, ConvDecoder64(latent_dim=4), StandardNormal(4))
    x = (torch.rand(6, 1, 64, 64) > 0.7).float()
    m.train()
    a = encode_means(m, x, batch_size=2)
    b = encode_means(m, x, batch_size=6)
    np.testing.assert_allclose(a, b, atol=1e-5)  # no dropout noise, BatchNorm running statistics
    assert m.training


def test_per_dim_kl_matches_torch_kl_and_the_vae_kl_term():
    m = tiny_vae(d=4, seed=1)
    x = torch.rand(50, 1, 4, 4)
    kl = per_dim_kl(m, x, batch_size=7)
    assert kl.shape == (4,) and np.all(kl >= 0)
    m.eval()
    with torch.no_grad():
        loc, scale = m.encode(x)
        ref = torch.distributions.kl_divergence(torch.distributions.Normal(loc, scale), torch.distributions.Normal(0.0, 1.0))
        np.testing.assert_allclose(kl, ref.double().mean(0).numpy(), rtol=1e-5, atol=1e-7)
        assert m.analytic_kl  # standard Normal prior: the per-dim split sums to the model's KL term
        assert float(m.loss_terms(x)["kl"]) / 50 == pytest.approx(kl.sum(), rel=1e-5)


def test_pca_2d_against_numpy_eig_and_sklearn():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 3.0
    proj, ratio = pca_2d(z)
    assert proj.shape == (400, 2) and ratio.shape == (2,)
    evals = np.sort(np.linalg.eigvalsh(np.cov(z.T)))[::-1]
    np.testing.assert_allclose(ratio, evals[:2] / evals.sum(), rtol=1e-10)
    np.testing.assert_allclose(proj.var(0, ddof=1), evals[:2], rtol=1e-10)
    sk = PCA(2).fit(z)
    np.testing.assert_allclose(ratio, sk.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(proj), np.abs(sk.transform(z)), atol=1e-8)
    assert abs(np.corrcoef(proj[:, 0], proj[:, 1])[0, 1]) < 1e-10
    proj2, _ = pca_2d(z[::-1])  # deterministic signs
    np.testing.assert_allclose(proj2[::-1], proj, atol=1e-8)
    with pytest.raises(ValueError):
        pca_2d(z[:1])


def test_plot_pca_by_factor_writes_one_panel_per_factor(tmp_path):
    rng = np.random.default_rng(1)
    f = np.column_stack([rng.integers(0, 3, 300), rng.integers(0, 40, 300)])
    proj, ratio = pca_2d(rng.normal(size=(300, 5)) + f[:, :1])
    paths = plot_pca_by_factor(proj, f, ("shape", "orientation"), tmp_path / "pca.png", explained=ratio, separate=True, max_points=100)
    assert [p.name for p in paths] == ["pca.png", "pca_shape.png", "pca_orientation.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError):
        plot_pca_by_factor(proj, f, ("shape",), tmp_path / "bad.png")


def test_plot_pca_by_factor_colour_bars_use_class_names_and_values(tmp_path, monkeypatch):
    import matplotlib.figure

    saved = []  # capture each figure as it is saved, to read its colour bars
    orig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: (saved.append(self), orig(self, *a, **k))[1])
    rng = np.random.default_rng(2)
    n = 400
    f = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 6, n), rng.integers(0, 40, n), rng.integers(0, 32, n)])
    proj = rng.normal(size=(n, 2))
    orient_deg = np.linspace(0, 360, 40)
    plot_pca_by_factor(proj, f, ("shape", "scale", "orientation", "posX"), tmp_path / "pca.png",
                       class_labels={"shape": ("square", "ellipse", "heart")},
                       factor_values={"scale": np.linspace(0.5, 1, 6), "orientation": orient_deg},
                       factor_units={"orientation": "degrees"})
    fig = saved[0]
    bars = {ax.get_ylabel(): ax for ax in fig.axes if ax.get_label() == "<colorbar>"}
    assert set(bars) == {"shape", "scale", "orientation (degrees)", "posX class"}
    assert [t.get_text() for t in bars["shape"].get_yticklabels()] == ["square", "ellipse", "heart"]
    assert [t.get_text() for t in bars["scale"].get_yticklabels()] == ["0.5", "0.6", "0.7", "0.8", "0.9", "1"]
    lo, hi = bars["orientation (degrees)"].get_ylim()  # coloured by the value in degrees, not the index 0..39
    assert lo == pytest.approx(orient_deg[f[:, 2].min()]) and hi == pytest.approx(orient_deg[f[:, 2].max()])
    lo, hi = bars["posX class"].get_ylim()  # no names given: the class index, as before
    assert (lo, hi) == (f[:, 3].min(), f[:, 3].max())


def test_latent_traversals_decode_the_swept_codes(tmp_path):
    m = tiny_vae(d=3, seed=2)
    x = torch.rand(5, 1, 4, 4)
    grid = latent_traversals(m, x, tmp_path / "trav.png", dims=[2, 0], n_steps=5, span=2.0)
    assert grid.shape == (2, 5, 1, 4, 4)
    assert (tmp_path / "trav.png").stat().st_size > 500
    m.eval()
    with torch.no_grad():
        loc, _ = m.encode(x[:1])
        z = loc.repeat(5, 1)
        z[:, 0] = torch.linspace(-2, 2, 5)
        ref = torch.sigmoid(m.decode(z))
    torch.testing.assert_close(grid[1], ref)
    assert float(grid.min()) >= 0 and float(grid.max()) <= 1
    assert latent_traversals(m, x[0]).shape == (3, 9, 1, 4, 4)  # all dims by default, one image
    with pytest.raises(ValueError, match="dims"):
        latent_traversals(m, x, dims=[3])


def test_plot_per_dim_kl(tmp_path):
    p = plot_per_dim_kl({"beta=1": np.array([0.0, 0.5, 3.0]), "beta=10": np.array([0.001, 0.0, 1.0])}, tmp_path / "kl.png")
    assert p.stat().st_size > 1000


def test_pca_colours_ordered_factors_on_ordered_scales_and_orientation_on_a_cyclic_one(tmp_path, monkeypatch):
    import matplotlib.axes
    from matplotlib import colormaps

    cmaps = []
    orig = matplotlib.axes.Axes.scatter
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", lambda self, *a, **k: (cmaps.append(k.get("cmap")), orig(self, *a, **k))[1])
    rng = np.random.default_rng(3)
    n = 300
    f = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 6, n), rng.integers(0, 40, n), rng.integers(0, 32, n)])
    plot_pca_by_factor(rng.normal(size=(n, 2)), f, ("shape", "scale", "orientation", "posX"), tmp_path / "p.png",
                       class_labels={"shape": ("square", "ellipse", "heart")},
                       factor_values={"scale": np.linspace(0.5, 1, 6), "orientation": np.linspace(0, 360, 40),
                                      "posX": np.linspace(0, 1, 32)}, cyclic=("orientation",))
    shape, scale, orient, posx = cmaps
    tab10 = colormaps["tab10"].colors
    assert [tuple(c[:3]) for c in shape.colors] == [tuple(c) for c in tab10[:3]]           # unordered: distinct hues
    viridis = colormaps["viridis"]
    assert np.allclose(np.asarray(scale.colors), viridis(np.linspace(0, 1, 6)))            # ordered: viridis steps
    assert orient == "twilight" and posx == "viridis"


def test_traversal_figure_shows_the_input_and_each_columns_value(tmp_path, monkeypatch):
    import vae.analysis as analysis

    seen = {}
    monkeypatch.setattr(analysis, "save_image_grid", lambda rows, path, **k: seen.update(rows=rows, **k))
    m = tiny_vae(d=3, seed=2)
    x = torch.rand(2, 1, 4, 4)
    grid = latent_traversals(m, x, tmp_path / "t.png", dims=[1], n_steps=3, span=2.0, row_labels=["z1"])
    assert seen["col_labels"] == ["input", "-2", "+0", "+2"]
    torch.testing.assert_close(seen["rows"][0][0], x[0])                  # the reference image first
    torch.testing.assert_close(seen["rows"][0][1:], grid[0])
    with torch.no_grad():
        code = float(m.encode(x[:1])[0][0, 1])
    assert seen["row_labels"] == [f"z1\n(code {code:+.2f})"]
