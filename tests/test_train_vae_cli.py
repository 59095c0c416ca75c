"""examples/train_vae.py: help, clear errors without tracebacks, and a quick run that writes every file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_vae.py"


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_options():
    res = run("--help")
    assert res.returncode == 0
    for opt in ("--dataset", "--prior", "--beta", "--latent-dim", "--epochs", "--batch-size", "--lr", "--max-samples",
                "--device", "--seed", "--out", "--resume", "--quick", "--val-fraction", "--json", "--grad-clip"):
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


TINY = ("--dataset", "mnist", "--quick", "--epochs", "1", "--max-samples", "120", "--no-progress", "--json")


def test_resume_with_changed_settings_is_refused_clearly(tmp_path):
    out = str(tmp_path / "run")
    res = run(*TINY, "--binarize", "none", "--iwae-samples", "5", "--out", out)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    # grey levels under a Bernoulli likelihood: no "test IWAE NLL" is reported
    assert summary["test_iwae_nll"] is None and "not a log-likelihood" in summary["test_iwae_note"]
    assert "summary.json" in summary["files"] and "checkpoint.pt" in summary["files"]
    ckpt_mode = (tmp_path / "run" / "checkpoint.pt").stat().st_mode & 0o777
    assert ckpt_mode == (tmp_path / "run" / "summary.json").stat().st_mode & 0o777  # like any file written
    res = run(*TINY, "--binarize", "none", "--beta", "2", "--lr", "0.01", "--epochs", "2", "--resume", "--out", out)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "beta=1.0 in the checkpoint, 2.0 now" in res.stderr and "lr=0.001 in the checkpoint, 0.01 now" in res.stderr
    res = run(*TINY, "--latent-dim", "8", "--binarize", "dynamic", "--epochs", "2", "--resume", "--out", out)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "latent_dim=40 in the checkpoint, 8 now" in res.stderr and "binarize='none'" in res.stderr


def _load_script():
    return load_script(SCRIPT, "train_vae_script")


def test_divergence_keeps_the_completed_epochs_and_suggests_grad_clip(tmp_path, monkeypatch, capsys):
    import vae.train
    from vae.train import History, TrainingDiverged

    done = History(rows=[{"epoch": 1, "train_loss": 500.0, "seconds": 1.0}])

    def diverging_fit(*args, **kwargs):
        assert kwargs["grad_clip"] == 5.0  # --grad-clip reaches fit
        raise TrainingDiverged("training diverged at epoch 2: training loss is NaN/Inf", epoch=2, step=None,
                               checkpoint=None, last_good_epoch=1, history=done)

    monkeypatch.setattr(vae.train, "fit", diverging_fit)
    script = _load_script()
    code = script.main([*TINY, "--grad-clip", "5", "--out", str(tmp_path)])
    assert code == 2  # the examples' one error handling: an `error:` line and exit code 2 (issue 13)
    err = capsys.readouterr().err
    assert "diverged" in err and "--grad-clip" in err
    assert json.loads((tmp_path / "history.json").read_text())["rows"][0]["train_loss"] == 500.0
    assert (tmp_path / "history.csv").read_text().splitlines()[0].startswith("epoch,train_loss")


def test_reconstruction_figure_shows_one_test_digit_per_class():
    from vae.data.mnist import load_mnist

    import vae.cli.train as script  # the module examples/train_vae.py wraps

    test = load_mnist(split="test")
    s = {"val_fraction": 0.05, "seed": 0}
    shown = script.shown_images(s, test, test)
    labels = test.factors[:, 0].tolist()
    expect = [labels.index(d) for d in range(8)]  # first test image of each digit, found independently
    assert torch_equal(shown, test.images[expect])


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool((a == b).all())


@pytest.mark.cuda
def test_quick_run_on_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    out = tmp_path / "run"
    res = run(*TINY, "--epochs", "2", "--iwae-samples", "10", "--device", "cuda", "--out", str(out))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["device"].startswith("cuda") and summary["test_iwae_nll"] > 0
    res = run(*TINY, "--epochs", "3", "--iwae-samples", "0", "--device", "cuda", "--resume", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert [r["epoch"] for r in json.loads((out / "history.json").read_text())["rows"]] == [1, 2, 3]
