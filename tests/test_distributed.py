"""fit under torch.distributed: 2 processes launched by torchrun on 127.0.0.1 (gloo) take the same
steps as one process with the doubled batch; rank 0 alone writes; resume; the NaN guard stops both."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(ROOT / "tests" / "helpers" / "ddp_worker.py"), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, [json.loads((out / f"rank_{r}.json").read_text()) for r in range(2)]


def _single(epochs: int):
    import ddp_worker
    from vae.train import fit

    torch.set_num_threads(1)
    m = ddp_worker.Regression()
    hist = fit(m, ddp_worker.data(), epochs=epochs, batch_size=16, lr=0.05, val_fraction=0.25, progress=False, seed=3)
    return m, hist


def test_two_ranks_equal_one_process_with_the_global_batch(ddp_run):
    out, ranks = ddp_run
    single, hist = _single(2)
    for r in range(2):
        params = torch.load(out / f"params_{r}.pt", weights_only=True)
        diff = max(float((params[k] - v).abs().max()) for k, v in single.state_dict().items())
        assert diff < 1e-6, f"rank {r}: max |Δparameter| = {diff:.3g}"
    strip = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert ranks[0]["world"] == 2 and strip(ranks[0]["rows"]) == strip(ranks[1]["rows"])  # reduced, the same on both
    for mine, ref in zip(ranks[0]["rows"], hist.rows):
        assert mine["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-5)
        assert mine["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-5)


def test_rank_zero_alone_writes_checkpoints(ddp_run):
    _, ranks = ddp_run
    assert ranks[0]["saves"] == [1, 2, 3] and ranks[1]["saves"] == []


def test_resume_under_ddp_continues_the_run(ddp_run):
    out, ranks = ddp_run
    single, _ = _single(3)
    resumed = torch.load(out / "resumed_0.pt", weights_only=True)
    assert max(float((resumed[k] - v).abs().max()) for k, v in single.state_dict().items()) < 1e-6
    assert [row["epoch"] for row in ranks[1]["resumed_rows"]] == [1, 2, 3]


def test_nan_guard_stops_both_ranks(ddp_run):
    _, ranks = ddp_run
    for r in ranks:
        assert r["diverged"] is not None and "NaN/Inf" in r["diverged"]


@pytest.mark.slow
def test_train_vae_example_under_torchrun_writes_once(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(ROOT / "examples" / "train_vae.py"), "--dataset", "mnist", "--quick",
           "--epochs", "1", "--max-samples", "200", "--iwae-samples", "0", "--out", str(out), "--no-progress", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 1 and proc.stdout.count('"epochs_run"') == 1  # rank 0 alone reports
    hist = json.loads((out / "history.json").read_text())
    assert hist["meta"]["world_size"] == 2
