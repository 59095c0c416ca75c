"""examples/train_scvae.py (vae.cli.scvae): a tiny run writes its files and reports the SC-VAE sparser than the VAE."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vae.cli import scvae
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load():
    return load_script(ROOT / "examples" / "train_scvae.py", "train_scvae_cli")


def test_tiny_run_files_and_sparsity(tmp_path, capsys):
    summary = scvae.run_cli(["--epochs", "2", "--max-samples", "600", "--iwae-samples", "5", "--batch-size", "32",
                        "--out", str(tmp_path), "--no-progress", "--json", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out)["models"].keys() == {"vae", "scvae"}
    for name in ("reconstructions.png", "codes.png", "sparsity_table.md", "sparsity_table.csv", "summary.json",
                 "vae_loss.png", "scvae_loss.png", "vae_history.csv", "scvae_history.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    vae, sc = summary["models"]["vae"], summary["models"]["scvae"]
    assert vae["fraction_zeros"] == 0.0  # a Gaussian encoder's mean is never exactly zero
    assert sc["fraction_zeros"] > 0.2    # the soft threshold makes exact zeros
    assert sc["active_per_image"] < vae["active_per_image"]
    assert 0.0 <= sc["hoyer"] <= 1.0 and sc["dead_units"] <= summary["latent_dim"]


@pytest.mark.parametrize("args", [["--lam", "-1"], ["--lista-steps", "0"], ["--models", "ae"]])
def test_bad_arguments_exit_with_usage(args, capsys):
    with pytest.raises(SystemExit) as e:
        _load().main(args)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err
