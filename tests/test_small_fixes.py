"""Small defects a new user hit in the commands' help, printed output, figures and file names;
each test asserts the fixed behaviour (tiny runs: a few dozen images, one epoch, one thread)."""
from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
import torch

torch.set_num_threads(1)


def _options_of(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def _recording(monkeypatch, module, name: str) -> list[dict]:
    """Wrap ``module.name`` so that each call's arguments are recorded (and the real function runs)."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


# ------------------------------------------------------------------ 1-3: the autoencoder command
def test_autoencoder_help_documents_only_real_options():
    from vae.cli import autoencoder

    parser = autoencoder.build_parser()
    text = parser.format_help()
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert mentioned <= _options_of(parser), mentioned - _options_of(parser)
    assert "--noise gaussian" not in text and "original texts" not in text
    denoise = text[text.index("  denoise "):text.index("  denoise_sp")]
    assert "Gaussian noise of std --noise-level" in denoise


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """One tiny run of the plain autoencoder: (summary, stdout, the image-grid calls)."""
    import vae.plots
    from vae.cli import autoencoder

    out = tmp_path_factory.mktemp("plain")
    with pytest.MonkeyPatch.context() as mp:
        grids = _recording(mp, vae.plots, "save_image_grid")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            summary = autoencoder.run_cli(["--task", "plain", "--epochs", "1", "--max-samples", "60", "--out",
                                           str(out), "--no-progress", "--device", "cpu", "--threads", "1"])
    return summary, buf.getvalue(), grids, out


def test_autoencoder_prints_the_plain_reference_once(plain_run):
    summary, stdout, _, _ = plain_run
    line, = [ln for ln in stdout.splitlines() if ln.strip().startswith("plain:")]
    assert line.count("reference") == 1 and "PCA-16" in line
    assert f"{summary['tasks']['plain']['baseline_psnr']:.2f} dB" in line
    assert "beat" not in line  # a reference, not a baseline to beat
    assert summary["tasks"]["plain"]["beats_baseline"] is None


def test_autoencoder_plain_grid_shows_the_pca_reference_row(plain_run):
    from vae.cli import autoencoder
    from vae.data.mnist import load_mnist

    summary, _, grids, out = plain_run
    call, = [c for c in grids if str(c["args"][1]).endswith("plain_grid.png")]
    rows, labels = call["args"][0], call["row_labels"]
    assert len(rows) == len(labels) == 3
    assert labels[0] == "clean" and labels[1].startswith("PCA-16") and labels[2].startswith("autoencoder")
    assert f"{summary['tasks']['plain']['baseline_psnr']:.1f} dB" in labels[1]
    train, test = load_mnist(split="train", max_samples=60, seed=0), load_mnist(split="test")
    shown = [int((test.factors[:, 0] == d).nonzero()[0][0]) for d in range(10)]
    pca = autoencoder.pca_reconstruction(train.images, test.images, 16)
    torch.testing.assert_close(rows[1], pca[shown])
    assert (out / "plain_grid.png").stat().st_size > 0
