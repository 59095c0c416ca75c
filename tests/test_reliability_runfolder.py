"""Issue 13, item 6: run folders (vae.runfolder.RunFolder, claimed by every training example).
A lock while a run writes, no silent replacement of a finished or resumable run, --out checked
for writability before anything is trained."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vae.runfolder import LOCK_NAME, RECORD_NAME, RunFolder, RunFolderError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# every training example, with arguments that would make it a tiny run
TRAINING_EXAMPLES = {
    "train_vae": ["--dataset", "mnist", "--quick", "--epochs", "1", "--max-samples", "120"],
    "dsprites_study": ["--quick", "--betas", "1", "--max-samples", "64", "--mig-samples", "100", "--epochs", "1"],
    "train_autoencoder": ["--task", "plain", "--epochs", "1", "--max-samples", "200"],
    "train_scvae": ["--models", "vae", "--epochs", "1", "--max-samples", "200", "--iwae-samples", "0"],
    "train_vqvae": ["--quick", "--variants", "plain", "--max-samples", "200", "--epochs", "1"],
    "vae_latent_plane": ["--epochs", "1", "--max-samples", "200", "--iwae-samples", "0"],
}


def run_example(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args, "--no-progress", "--device", "cpu"],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ------------------------------------------------------------------------------------- the module
def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out):
        assert json.loads((out / LOCK_NAME / "owner.json").read_text())["pid"] == os.getpid()
        with pytest.raises(RunFolderError, match=rf"another run \(pid {os.getpid()} .*is writing to {out}"):
            RunFolder(out).claim()
        with pytest.raises(RunFolderError, match="another run"):
            RunFolder(out, overwrite=True).claim()  # not even with --overwrite
    assert not (out / LOCK_NAME).exists()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    (out / LOCK_NAME).mkdir(parents=True)
    (out / LOCK_NAME / "owner.json").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                                            "command": "x"}))
    with RunFolder(out):
        assert json.loads((out / LOCK_NAME / "owner.json").read_text())["pid"] == os.getpid()
    assert os.listdir(out) == [RECORD_NAME]  # no lock, no leftovers of the takeover


def test_a_finished_run_is_not_replaced_without_overwrite(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out):
        (out / "summary.json").write_text("{}")
        (out / "plain_grid.png").write_bytes(b"png")
    (out / "notes.txt").write_text("mine")  # not written by the run
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["status"] == "finished" and record["files"] == ["plain_grid.png", "summary.json"]
    with pytest.raises(RunFolderError, match=r"holds a finished run \(summary.json, run.json\): replace it with "
                                             r"--overwrite, or choose another --out"):
        RunFolder(out).claim()
    assert (out / "summary.json").is_file() and not (out / LOCK_NAME).exists()
    with RunFolder(out, overwrite=True):  # the previous run's files go, the user's stay: no mixed folder
        assert sorted(os.listdir(out)) == sorted(["notes.txt", RECORD_NAME, LOCK_NAME])


def test_a_resumable_run_is_refused_and_resume_is_offered(tmp_path):
    out = tmp_path / "run"
    (out / "beta_1").mkdir(parents=True)
    (out / "beta_1" / "checkpoint.pt").write_bytes(b"20 epochs")
    with pytest.raises(RunFolderError, match=r"holds a resumable run \(beta_1/checkpoint.pt\): continue it with "
                                             r"--resume, replace it with --overwrite"):
        RunFolder(out, can_resume=True).claim()
    assert (out / "beta_1" / "checkpoint.pt").read_bytes() == b"20 epochs"
    with RunFolder(out, resume=True):
        pass
    assert (out / "beta_1" / "checkpoint.pt").read_bytes() == b"20 epochs"
    with pytest.raises(RunFolderError, match="exclude each other"):
        RunFolder(out, resume=True, overwrite=True).claim()
    with RunFolder(out, overwrite=True):
        assert not (out / "beta_1" / "checkpoint.pt").exists()


def test_an_unwritable_out_fails_before_anything_runs(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunFolderError, match="cannot create the output folder"):
        RunFolder(blocker / "run").claim()
    with pytest.raises(RunFolderError, match="exists and is not a folder"):
        RunFolder(blocker).claim()
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(RunFolderError, match="not writable"):
                RunFolder(ro).claim()
        finally:
            ro.chmod(0o700)


def test_a_run_that_fails_before_writing_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(ValueError, match="bad setting"):
        with RunFolder(out):
            raise ValueError("bad setting")
    assert not out.exists()  # created by the run, removed again
    with RunFolder(out):  # so the corrected command needs no --overwrite
        (out / "summary.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt) as info:
        with RunFolder(out, resume=True):
            raise KeyboardInterrupt
    assert info.value.run_folder.path == out  # what the examples' Ctrl-C note reads
    assert json.loads((out / RECORD_NAME).read_text())["status"] == "interrupted"


# ----------------------------------------------------------------------------------- the examples
def test_train_vae_does_not_replace_a_checkpoint_without_resume(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"a 20-epoch checkpoint")
    res = run_example("train_vae", *TRAINING_EXAMPLES["train_vae"], "--out", str(out))
    assert res.returncode == 2
    line = one_error_line(res.stderr)
    assert "holds a resumable run (checkpoint.pt): continue it with --resume" in line
    assert (out / "checkpoint.pt").read_bytes() == b"a 20-epoch checkpoint"


@pytest.mark.parametrize("name", list(TRAINING_EXAMPLES))
def test_every_training_example_refuses_a_busy_or_finished_folder(name, tmp_path):
    out = tmp_path / "run"
    with RunFolder(out):  # this process holds the lock: a concurrent run
        res = run_example(name, *TRAINING_EXAMPLES[name], "--out", str(out))
        assert res.returncode == 2 and f"pid {os.getpid()}" in one_error_line(res.stderr)
        (out / "summary.json").write_text("{}")
    res = run_example(name, *TRAINING_EXAMPLES[name], "--out", str(out))
    assert res.returncode == 2 and "holds a finished run" in one_error_line(res.stderr)
    assert "--overwrite" in run_example(name, "--help").stdout
