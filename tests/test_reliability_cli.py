"""Issue 13, items 5 and 8: one error handling for every example (vae.cli.options.run_main).
Every number validated (exit 2, argparse's message); ValueError / OSError (unwritable --out, a
full disk) / out-of-memory / TrainingDiverged: one ``error:`` line and exit 2; Ctrl-C: exit 130
with a note of what was kept. Subprocesses run the real scripts; training is replaced by a stub
that raises, so no test trains."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_reliability_runfolder import TRAINING_EXAMPLES, one_error_line

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ALL_EXAMPLES = {**TRAINING_EXAMPLES, "gamma_vi": ["--x", "1", "--quick"]}

# Runs an example as __main__ with its training step (vae.train.fit, vi.svi.fit) replaced by one
# that raises the exception built by argv[1] (Python source), as if it happened mid-training.
_DRIVER = """
import runpy, sys
sys.path.insert(0, sys.argv[2])
import errno, torch, vae.train, vi.svi
exc = eval(sys.argv[1])
def fit(*args, **kwargs):
    raise exc
vae.train.fit = fit
vi.svi.fit = fit
script = sys.argv[3]
sys.argv = [script] + sys.argv[4:]
runpy.run_path(script, run_name="__main__")
"""


def drive(name: str, exc: str, *args: str) -> subprocess.CompletedProcess:
    argv = [*ALL_EXAMPLES[name], *args]
    if name != "gamma_vi":
        argv += ["--no-progress", "--device", "cpu"]
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", _DRIVER, exc, str(ROOT), str(EXAMPLES / f"{name}.py"), *argv],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def run(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


# ---------------------------------------------------------------------------------- bad numbers
BAD_NUMBERS = [
    ("dsprites_study", ["--lr", "nan"], "--lr: expected a finite number > 0"),
    ("dsprites_study", ["--val-fraction", "2"], "--val-fraction: expected a number in [0, 1)"),
    ("dsprites_study", ["--seed", "-1"], "--seed: expected an integer >= 0"),
    ("dsprites_study", ["--traversal-span", "nan"], "--traversal-span: expected a finite number in (0, 10]"),
    ("dsprites_study", ["--mig-bins", "1"], "--mig-bins: expected an integer >= 2"),
    ("dsprites_study", ["--dropout", "inf"], "--dropout: expected a number in [0, 1)"),
    ("dsprites_study", ["--betas", "1", "nan"], "--betas: expected a finite number > 0"),
    ("gamma_vi", ["--x", "1e200"], "x = 1e+200 is too large"),
    ("gamma_vi", ["--data", "1,1e300"], "sum of --data = 1e+300 is too large"),
    ("gamma_vi", ["--lr", "50"], "--lr must be in (1e-3, 1]"),
    ("gamma_vi", ["--seed", "-1"], "--seed: expected an integer >= 0"),
    ("train_vae", ["--lr", "nan"], "--lr: expected a finite number > 0"),
    ("train_vae", ["--seed", "-1"], "--seed: expected an integer >= 0"),
    ("train_autoencoder", ["--noise-level", "nan"], "--noise-level: expected a finite number >= 0"),
    ("train_scvae", ["--lam", "inf"], "--lam: expected a finite number >= 0"),
    ("train_vqvae", ["--threads", "0"], "--threads: expected an integer in [1, 1024]"),
    ("vae_latent_plane", ["--grid", "100000"], "--grid: expected an integer in [2, 100]"),
]


@pytest.mark.parametrize("name, args, message", BAD_NUMBERS, ids=[f"{n} {' '.join(a)}" for n, a, _ in BAD_NUMBERS])
def test_bad_numbers_are_usage_errors(name, args, message):
    res = run(name, *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr and res.stdout == ""


# ------------------------------------------------------------------------------ runtime errors
@pytest.mark.parametrize("name", list(ALL_EXAMPLES))
def test_ctrl_c_exits_130_with_a_note_and_no_traceback(name, tmp_path):
    out = ["--plot", str(tmp_path / "run")] if name == "gamma_vi" else ["--out", str(tmp_path / "run")]
    res = drive(name, "KeyboardInterrupt()", *out)
    assert res.returncode == 130, res.stderr[-2000:]
    assert "interrupted" in res.stderr and "Traceback" not in res.stderr


# the mapping is run_main's, shared by every example (the Ctrl-C test shows each one uses it): a few suffice
@pytest.mark.parametrize("name", ["train_vae", "dsprites_study", "gamma_vi"])
def test_a_full_disk_is_one_error_line(name, tmp_path):
    out = ["--plot", str(tmp_path / "run")] if name == "gamma_vi" else ["--out", str(tmp_path / "run")]
    res = drive(name, "OSError(errno.ENOSPC, 'No space left on device', 'checkpoint.pt')", *out)
    assert res.returncode == 2, res.stderr[-2000:]
    assert one_error_line(res.stderr) == ("error: no space left on the device (checkpoint.pt): free some space or "
                                          "choose another --out")


@pytest.mark.parametrize("name", ["train_vqvae", "train_scvae", "dsprites_study"])
def test_out_of_memory_is_one_error_line(name, tmp_path):
    res = drive(name, "torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')",
                "--out", str(tmp_path / "run"))
    assert res.returncode == 2, res.stderr[-2000:]
    assert one_error_line(res.stderr).startswith("error: out of GPU memory (CUDA out of memory): try a smaller "
                                                 "--batch-size")
    run_dir = tmp_path / "run"  # a run that wrote nothing leaves no file (no lock, no record)
    assert not run_dir.exists() or [p for p in run_dir.rglob("*") if p.is_file()] == []


def test_divergence_is_one_error_line_with_exit_2(tmp_path):
    exc = ("vae.train.TrainingDiverged('training diverged at epoch 1: training loss is NaN/Inf', epoch=1, "
           "step=None, checkpoint=None, last_good_epoch=None, history=vae.train.History())")
    res = drive("train_autoencoder", exc, "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "training diverged at epoch 1" in one_error_line(res.stderr)


@pytest.mark.parametrize("name", list(TRAINING_EXAMPLES))
def test_an_unwritable_out_fails_before_training(name, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = run(name, *TRAINING_EXAMPLES[name], "--no-progress", "--device", "cpu", "--out", str(blocker / "run"))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "cannot create the output folder" in one_error_line(res.stderr)


def test_gamma_vi_unwritable_plot_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = run("gamma_vi", "--x", "1", "--steps", "20", "--plot", str(blocker / "plots"))
    assert res.returncode == 2 and "Not a directory" in one_error_line(res.stderr)


def test_a_corrupt_checkpoint_on_resume_is_one_error_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"\x00garbage" * 100)
    res = run("train_vae", *TRAINING_EXAMPLES["train_vae"], "--no-progress", "--device", "cpu", "--resume",
              "--out", str(out))
    assert res.returncode == 2
    line = one_error_line(res.stderr)
    assert f"checkpoint {out / 'checkpoint.pt'} is unreadable (truncated or corrupt?)" in line


def test_a_real_ctrl_c_during_training_keeps_the_checkpoint(tmp_path):
    """SIGINT while train_vae trains: exit 130, the note names what was kept and how to continue."""
    out = tmp_path / "run"
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "train_vae.py"), "--dataset", "mnist", "--quick",
                             "--epochs", "1000", "--max-samples", "200", "--batch-size", "50", "--no-progress",
                             "--device", "cpu", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even under nohup
    try:
        assert "images" in proc.stdout.readline()  # the run's first line: training starts now
        deadline = time.time() + 60
        while not (out / "checkpoint.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    assert f"kept in {out}" in err and "checkpoint.pt" in err and "continue with the same command plus --resume" in err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert not (out / ".run.lock").exists()


# ---------------------------------------------------------------------- vae.cli.options itself
def _cli():
    import vae.cli.options

    return vae.cli.options


def test_run_main_maps_exceptions_to_exit_codes(capsys):
    cli = _cli()

    def raising(exc):
        def main(argv):
            raise exc
        return main

    assert cli.run_main(lambda argv: {"a": 1}) == 0
    assert cli.run_main(lambda argv: 3) == 3
    assert cli.run_main(raising(ValueError("bad\n  value"))) == 2
    assert capsys.readouterr().err == "error: bad value\n"
    assert cli.run_main(raising(PermissionError(errno.EACCES, "Permission denied", "/x"))) == 2
    assert capsys.readouterr().err == "error: Permission denied (/x): choose a writable --out\n"
    assert cli.run_main(raising(MemoryError())) == 2
    assert "out of memory" in capsys.readouterr().err
    assert cli.run_main(raising(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.run_main(raising(ZeroDivisionError("bug")))
    with pytest.raises(SystemExit):  # argparse's usage errors pass through
        cli.run_main(raising(SystemExit(2)))


def test_number_types_reject_nan_inf_and_out_of_range():
    import argparse

    cli = _cli()
    check = cli.float_in(0, 1, high_open=True)
    assert check("0") == 0.0 and check("0.5") == 0.5
    for bad in ("1", "-0.1", "nan", "inf", "-inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"a finite number in \[0, 1\)"):
            check(bad)
    assert cli.int_in(2, 5)("5") == 5
    with pytest.raises(argparse.ArgumentTypeError, match=r"an integer in \[2, 5\]"):
        cli.int_in(2, 5)("6")
    with pytest.raises(argparse.ArgumentTypeError, match="an integer >= 2"):
        cli.int_at_least(2)("1.5")
