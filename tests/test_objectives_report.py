"""The objectives table gathers the study's β-VAE records and each objective protocol's record."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vae.objectives_report import gather, main, table

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "benchmarks" / "results" / "dsprites_study_cpu.json"


def _fake_runs(tmp_path: Path, names) -> Path:
    study = json.loads(STUDY.read_text())
    for i, name in enumerate(names):
        rec = dict(study["records"][i], mig=0.1 * (i + 1), seed=0)
        means = tmp_path / f"m{i}.npz"
        np.savez(means, means=np.zeros((3, 2), np.float32), indices=np.arange(3))
        rec["means_file"] = str(means)
        d = tmp_path / "runs" / name / "beta_1_seed_0"
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps(rec))
    return tmp_path / "runs"


def test_gather_puts_each_objective_beside_the_beta_vae_rows(tmp_path):
    runs = _fake_runs(tmp_path, ["btcvae", "iwae"])
    rows, study, found = gather(runs, STUDY)
    assert len(rows) == len(study["records"]) + 2
    text = table(rows)
    beta1 = [r["mig"] for r in study["records"] if r["beta"] == 1.0]
    line = next(ln for ln in text.splitlines() if ln.startswith("β-VAE β=1 "))
    assert f"{np.mean(beta1):.3f}" in line and line.split()[2] == "3"
    assert next(ln for ln in text.splitlines() if ln.startswith("btcvae")).split()[2] == "0.100"
    assert '{"k": 5}' in next(ln for ln in text.splitlines() if ln.startswith("iwae"))


def test_main_writes_the_result_files_and_the_figure(tmp_path):
    runs = _fake_runs(tmp_path, ["factorvae"])
    res = tmp_path / "res"
    assert main(["--runs", str(runs), "--results", str(res), "--figure", str(tmp_path / "f.png")]) == 0
    out = json.loads((res / "objectives_cpu.json").read_text())
    assert {"command", "device", "date", "rows"} <= set(out) and out["rows"][-1]["objective"] == "factorvae"
    assert (res / "objectives_cpu" / "means_factorvae.npz").is_file() and (tmp_path / "f.png").stat().st_size > 10_000
    with pytest.raises(SystemExit) as err:
        main(["--runs", str(tmp_path / "none"), "--results", str(res), "--figure", str(tmp_path / "g.png")])
    assert err.value.code == 2
