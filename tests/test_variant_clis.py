"""examples/train_vqvae.py and examples/train_autoencoder.py (vae.cli.vqvae, vae.cli.autoencoder): tiny runs,
their files, numbers and errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vae.cli import autoencoder, vqvae
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    return load_script(ROOT / "examples" / f"{name}.py", f"{name}_cli")


def test_vqvae_reseeding_uses_more_codes_and_every_variant_beats_the_mean_image(tmp_path, capsys):
    summary = vqvae.run_cli(
        ["--quick", "--variants", "plain", "plain+reseed", "--max-samples", "1000", "--epochs", "3",
         "--out", str(tmp_path), "--no-progress", "--json", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out) == json.loads((tmp_path / "summary.json").read_text())
    plain, reseed = summary["variants"]["plain"], summary["variants"]["plain+reseed"]
    assert reseed["codes_used"] > plain["codes_used"]
    assert reseed["reseeded_codes"] > 0 == plain["reseeded_codes"]
    for v in (plain, reseed):
        assert v["psnr"] > summary["mean_image_psnr"] + 1.0
        assert 1.0 <= v["perplexity"] <= summary["n_codes"]
    for name in ("reconstructions.png", "code_usage.png", "usage_table.md", "usage_table.csv", "plain_loss.png"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_autoencoder_superres_beats_bicubic_and_plain_has_only_a_reference(tmp_path, capsys):
    summary = autoencoder.run_cli(
        ["--task", "plain", "superres", "--epochs", "1", "--max-samples", "600", "--out", str(tmp_path),
         "--no-progress", "--json", "--device", "cpu"])
    tasks = json.loads(capsys.readouterr().out)["tasks"]
    assert tasks == json.loads(json.dumps(summary["tasks"]))
    assert summary["tasks"]["superres"]["beats_baseline"] is True
    assert summary["tasks"]["superres"]["psnr"] > summary["tasks"]["superres"]["baseline_psnr"]
    assert summary["tasks"]["plain"]["beats_baseline"] is None  # PCA is a reference, not a baseline
    for name in ("plain_grid.png", "superres_grid.png", "superres_loss.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.parametrize("name, args", [
    ("train_vqvae", ["--decay", "1.5"]), ("train_vqvae", ["--n-codes", "0"]),
    ("train_autoencoder", ["--sp-amount", "2"]), ("train_autoencoder", ["--epochs", "-1"])])
def test_bad_arguments_exit_with_a_usage_error(name, args, capsys):
    with pytest.raises(SystemExit) as e:
        _load(name).main(args)
    assert e.value.code == 2 and "expected" in capsys.readouterr().err
