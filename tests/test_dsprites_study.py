"""examples/dsprites_study.py (vae.cli.study): options, and the --quick pipeline end to end (subprocess, slow)."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "dsprites_study.py"
FACTORS = ["shape", "scale", "orientation", "posX", "posY"]


def load_script():
    """The module the script wraps (parse_args and the helpers live there)."""
    import vae.cli.study

    return vae.cli.study


def test_defaults_are_the_seed_hyper_parameters_and_quick_overrides():
    mod = load_script()
    a = mod.parse_args([])
    assert (a.betas, a.epochs, a.max_samples, a.batch_size, a.lr, a.val_fraction, a.latent_dim, a.mig_samples) == (
        [1.0, 5.0, 10.0], 50, 200_000, 256, 1e-3, 0.05, 16, 10_000)
    q = mod.parse_args(["--quick"])
    assert q.quick and q.epochs <= 2 and q.max_samples <= 20_000 and len(q.betas) >= 2 and q.arch == "standard"
    assert q.mig_samples >= 5000  # fewer points: MIG is mostly the estimator's bias
    q2 = mod.parse_args(["--quick", "--epochs", "3", "--betas", "2", "4"])
    assert q2.epochs == 3 and q2.betas == [2.0, 4.0]  # explicit options win over --quick
    for bad in (["--betas", "0"], ["--betas", "1", "1"], ["--latent-dim", "1"], ["--dropout", "1.5"], ["--epochs", "0"]):
        with pytest.raises(SystemExit):
            mod.parse_args(bad)


def test_help_mentions_every_option():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    for opt in ("--betas", "--epochs", "--max-samples", "--batch-size", "--lr", "--latent-dim", "--device", "--seed",
                "--out", "--mig-samples", "--dropout", "--no-batchnorm", "--quick", "--resume"):
        assert opt in out


def test_baselines_hand_computation():
    import torch

    mod = load_script()
    x = torch.zeros(4, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0  # 1 of 16 pixels on
    b = mod.baselines(x)
    p = 1 / 16
    assert b["pixel_rate"] == pytest.approx(p)
    assert b["global_rate_nll"] == pytest.approx(-4 * (p * np.log(p) + (1 - p) * np.log(1 - p)))
    # per-pixel: pixel (0,0) is on in 1 of 4 images, the others never (clamped at 1e-6)
    q = 0.25
    expected = -(np.log(q) + 3 * np.log(1 - q)) / 4 - 3 * np.log1p(-1e-6)
    assert b["per_pixel_rate_nll"] == pytest.approx(expected, rel=1e-6)


def test_traversal_label_agrees_with_the_active_threshold():
    mod = load_script()
    assert mod.kl_label(3, 0.0085) == "z3: KL 0.0085 (inactive)"  # was "KL 0.01" although inactive
    assert mod.kl_label(0, 0.0104) == "z0: KL 0.0104 (active)"
    assert mod.kl_label(7, 2.34567) == "z7: KL 2.35 (active)"
    assert mod.kl_label(1, mod.ACTIVE_KL) == "z1: KL 0.01 (inactive)"  # the count uses kl > threshold


def test_null_scores_subsample_to_the_reference_n():
    from vae.metrics import mig_null

    mod = load_script()
    rng = np.random.default_rng(0)
    factors = np.column_stack([rng.integers(0, c, 3000) for c in (3, 6, 40, 32, 32)])
    latents = rng.normal(size=(3000, 4))
    small = mod.null_scores(latents, factors, 20, seed=0, n=1000, repeats=3)
    assert small["n_points"] == 1000 and len(small["scores"]) == 3
    assert small["min"] <= small["max"] < 0.05
    full = mod.null_scores(latents, factors, 20, seed=0, n=10_000, repeats=2)  # fewer rows than n: all of them
    assert full["n_points"] == 3000
    assert full["scores"][0] == mig_null(latents, factors, 20, seed=1).score


@pytest.mark.slow
def test_quick_study_writes_pca_plots_mig_tables_and_report(tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--arch", "report", "--betas", "1", "4", "--max-samples", "96", "--epochs", "1",
           "--mig-samples", "300", "--out", str(out), "--no-progress", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # PCA for the largest β: the combined figure and one scatter per factor
    pcas = sorted(p.name for p in out.glob("pca_beta_4*.png"))
    assert pcas == sorted(["pca_beta_4.png"] + [f"pca_beta_4_{n}.png" for n in FACTORS])
    # MIG table as CSV (per β: means, sampled codes, null) and JSON (one row per β), scores in [0, 1]
    rows = list(csv.DictReader(open(out / "mig.csv")))
    assert [(float(r["beta"]), r["code"]) for r in rows] == [
        (b, c) for b in (1.0, 4.0) for c in ("means", "sampled", "null")]
    assert set(FACTORS) <= set(rows[0]) and {r["n_points"] for r in rows} == {"300"}
    mj = json.loads((out / "mig.json").read_text())
    assert len(mj["rows"]) == 2 and mj["n_points"] == 300 and mj["n_bins"] == 20
    for r in mj["rows"]:
        assert 0.0 <= r["mig"] <= 1.0
        assert r["mig"] == pytest.approx(np.mean([r[n] for n in FACTORS]))
        assert 0.0 <= r["mig_null"] <= 1.0 and 0.0 <= r["mig_sampled"] <= 1.0
        assert r["null_ref"]["n_points"] == 300 and len(r["null_ref"]["scores"]) == 5
    assert len(mj["details"]["4"]["mutual_info"]) == 16
    assert json.loads((out / "final_losses.json").read_text())[0]["beta"] == 1.0
    assert (out / "final_losses.csv").is_file() and (out / "mig_bar.png").is_file()
    for b in ("1", "4"):
        for f in ("loss_curves.png", "reconstructions.png", "traversals.png", "history.csv", "history.json"):
            assert (out / f"beta_{b}" / f).is_file(), f
    # the report embeds every figure, and every link resolves
    report = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    pngs = {str(p.relative_to(out)) for p in out.rglob("*.png")}
    assert set(links) == pngs
    assert "Why the original report's MIG was wrong" in report and "0.0001–0.0003" in report
    assert "null: means, factors shuffled" in report and "sampled z ~ q(z|x)" in report
    assert "| β |" in report and "| 1.0000 |" not in report  # β printed as 1, not 1.0000
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert [r["beta"] for r in summary["mig"]] == [1.0, 4.0]


@pytest.mark.slow
def test_quick_study_beats_a_constant_image(tmp_path):
    """--quick's own settings train long enough that reconstructions carry the shapes: the validation
    reconstruction loss is below that of the best constant image (each pixel's marginal rate)."""
    out = tmp_path / "quick"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--betas", "4", "--mig-samples", "1000", "--out", str(out),
           "--no-progress", "--threads", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    recon = summary["final_losses"][0]["val_recon"]
    assert summary["settings"]["max_samples"] == 20_000
    assert recon < 0.6 * summary["baselines"]["per_pixel_rate_nll"], (recon, summary["baselines"])
