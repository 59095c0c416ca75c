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
