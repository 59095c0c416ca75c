"""examples/train_vae.py: help, clear errors without tracebacks, and a quick run that writes every file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_vae.py"


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_options():
    res = run("--help")
    assert res.returncode == 0
    for opt in ("--dataset", "--prior", "--beta", "--latent-dim", "--epochs", "--batch-size", "--lr", "--max-samples",
                "--device", "--seed", "--out", "--resume", "--quick", "--val-fraction", "--json"):
        assert opt in res.stdout


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "expected a positive integer"),
    (["--batch-size", "-4"], "expected a positive integer"),
    (["--beta", "nan"], "expected a finite number > 0"),
    (["--val-fraction", "1.5"], "expected a number in [0, 1)"),
    (["--prior", "laplace"], "invalid choice"),
    (["--dataset", "cifar"], "invalid choice"),
])
def test_bad_arguments_fail_cleanly(args, message):
    res = run(*args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


def test_runtime_errors_fail_cleanly(tmp_path):
    res = run("--device", "tpu", "--out", str(tmp_path))
    assert res.returncode == 2 and "unknown device" in res.stderr and "Traceback" not in res.stderr
    res = run("--quick", "--resume", "--out", str(tmp_path / "nothing"))
    assert res.returncode == 2 and "no checkpoint" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_quick_mnist_run_writes_the_files_and_resumes(tmp_path):
    out = tmp_path / "run"
    res = run("--dataset", "mnist", "--quick", "--epochs", "2", "--max-samples", "400", "--iwae-samples", "10",
              "--no-progress", "--json", "--out", str(out))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    for name in ("checkpoint.pt", "history.csv", "history.json", "loss_curves.png", "reconstructions.png",
                 "samples.png", "summary.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert summary["epochs_run"] == 2 and summary["n_train"] + summary["n_val"] == 400
    assert summary["final"]["train_loss"] > 0 and summary["test_iwae_nll"] > 0
    # continue the same run to 3 epochs
    res = run("--dataset", "mnist", "--quick", "--epochs", "3", "--max-samples", "400", "--iwae-samples", "0",
              "--no-progress", "--json", "--resume", "--out", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads((out / "history.json").read_text())["rows"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
