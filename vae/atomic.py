"""Atomic file writes: write beside the target, then ``os.replace`` it in one step.

A crash, Ctrl-C or error mid-write leaves the previous file (if any) intact and no temporary file
behind; the finished file gets ordinary permissions (0666 minus the umask, as ``open`` gives).

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "data.txt"
>>> with atomic_file(target) as tmp:
...     _ = tmp.write_text("hello")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('hello', ['data.txt'])
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_file", "file_mode"]


def file_mode() -> int:
    """0666 minus the process umask (what ``open(path, "w")`` would give), e.g. 0644."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory; on normal exit it replaces ``path``.

    The caller writes the whole file to the yielded path (and may ``fsync`` it); on any exception,
    ``KeyboardInterrupt`` included, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, file_mode())  # mkstemp creates 0600; the result is an ordinary file
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
