"""vae.atomic.atomic_file: all or nothing, ordinary permissions."""
from __future__ import annotations

import os
import stat

import pytest

from vae.atomic import atomic_file, file_mode


def test_success_replaces_the_file_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == file_mode()
    assert sorted(os.listdir(target.parent)) == ["f.bin"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, error):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(error):
        with atomic_file(target) as tmp:
            tmp.write_bytes(b"half")
            raise error("stop")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_file_mode_is_0666_minus_the_umask():
    old = os.umask(0o027)
    try:
        assert file_mode() == 0o640
    finally:
        os.umask(old)


# ------------------------------------------------------------------ issue 13, item 7: stale temporaries
_WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from vae.atomic import atomic_file
with atomic_file(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"half a checkpoint" * 1000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


def _sigkilled_writer(target) -> None:
    """A real process that dies by SIGKILL in the middle of an atomic write of ``target``."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), root], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_sigkilled_writer_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"epoch 3")
    _sigkilled_writer(target)
    left = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.pt"]
    assert len(left) == 1 and left[0].startswith(".checkpoint.pt.") and left[0].endswith(".part")
    assert target.read_bytes() == b"epoch 3"  # the kill left the previous file intact
    with atomic_file(target) as tmp:
        tmp.write_bytes(b"epoch 4")
    assert os.listdir(tmp_path) == ["checkpoint.pt"] and target.read_bytes() == b"epoch 4"


def test_the_first_write_after_a_killed_first_write_cleans_up_too(tmp_path):
    target = tmp_path / "cache.npy"  # no previous file: e.g. a killed dSprites cache build
    _sigkilled_writer(target)
    assert len(os.listdir(tmp_path)) == 1 and not target.exists()
    with atomic_file(target) as tmp:
        tmp.write_bytes(b"done")
    assert os.listdir(tmp_path) == ["cache.npy"]


def test_save_checkpoint_removes_stale_temporaries_and_keeps_live_ones(tmp_path):
    import subprocess
    import sys

    from vae.train import save_checkpoint

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "c.pt"
    stale = tmp_path / f".c.pt.{dead.pid}.abcd1234.part"
    live = tmp_path / f".c.pt.{os.getpid()}.live5678.part"  # a writer that still runs: this process
    other = tmp_path / f".c.pt.other.{dead.pid}.abcd1234.part"  # the temporary of another target
    for p in (stale, live, other):
        p.write_bytes(b"x" * 100)
    save_checkpoint({"format": 1}, target)
    assert sorted(os.listdir(tmp_path)) == sorted(["c.pt", live.name, other.name])


def test_temporaries_without_an_owner_pid_go_when_the_target_is_newer(tmp_path):
    """Names written before pids were recorded: stale once the target was written after them."""
    import time

    from vae.atomic import remove_stale_temporaries

    target = tmp_path / "f.bin"
    old = tmp_path / ".f.bin.q1w2e3r4.part"
    old.write_bytes(b"old")
    past = time.time() - 100
    os.utime(old, (past, past))
    target.write_bytes(b"now")
    fresh = tmp_path / ".f.bin.z9x8c7v6.part"
    fresh.write_bytes(b"newer than the target")
    future = time.time() + 100
    os.utime(fresh, (future, future))
    assert remove_stale_temporaries(target) == [old]
    assert sorted(os.listdir(tmp_path)) == sorted(["f.bin", fresh.name])
