"""Atomic file writes: write beside the target, then ``os.replace`` it in one step.

A crash, Ctrl-C or error mid-write leaves the previous file (if any) intact and no temporary file
behind; the finished file gets ordinary permissions (0666 minus the umask, as ``open`` gives).
A process killed outright (SIGKILL, power loss) cannot clean up after itself: its temporary
``.<name>.<pid>.<random>.part`` stays, and the next write of the same target removes it (see
:func:`remove_stale_temporaries`).

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "data.txt"
>>> with atomic_file(target) as tmp:
...     _ = tmp.write_text("hello")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('hello', ['data.txt'])
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_file", "file_mode", "remove_stale_temporaries", "pid_alive", "LEGACY_MAX_AGE_S"]

# A temporary without an owner pid in its name (written before pids were recorded) whose target
# does not exist is removed once it is this old.
LEGACY_MAX_AGE_S = 24 * 3600.0
_RANDOM = r"[A-Za-z0-9_]{8}"  # what tempfile.mkstemp puts between prefix and suffix


def file_mode() -> int:
    """0666 minus the process umask (what ``open(path, "w")`` would give), e.g. 0644."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine and is not a zombie (killed, not yet reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    try:  # Linux: a zombie still answers kill(0) but will never write again
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:][:1] != "Z"
    except (OSError, ValueError):
        return True


def _temporaries(path: Path) -> Iterator[tuple[Path, int | None]]:
    """The temporaries of target ``path`` in its folder, with the owner pid (``None``: an older name)."""
    pattern = re.compile(r"\.(?:(\d+)\.)?" + _RANDOM + r"\.part")
    prefix = f".{path.name}"
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix):
            continue
        m = pattern.fullmatch(name[len(prefix):])
        if m is not None:
            yield Path(entry.path), (int(m.group(1)) if m.group(1) else None)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries left beside ``path`` by writers that died mid-write; return them.

    A temporary is stale when its owner pid (in its name) no longer runs, or, for a name without a
    pid, when the target was written after it or it is older than :data:`LEGACY_MAX_AGE_S`. The
    temporaries of live writers (this process's included) are never touched.
    """
    path = Path(path)
    try:
        target_mtime = path.stat().st_mtime
    except OSError:
        target_mtime = None
    removed = []
    for tmp, pid in _temporaries(path):
        if pid is not None:
            stale = not pid_alive(pid)
        else:
            try:
                mtime = tmp.stat().st_mtime
            except OSError:
                continue
            stale = (target_mtime is not None and mtime < target_mtime) or time.time() - mtime > LEGACY_MAX_AGE_S
        if stale:
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
            except OSError:
                continue
    return removed


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory; on normal exit it replaces ``path``.

    The caller writes the whole file to the yielded path (and may ``fsync`` it); on any exception,
    ``KeyboardInterrupt`` included, the temporary file is removed and ``path`` is untouched.
    Temporaries of the same target left by killed writers are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, file_mode())  # mkstemp creates 0600; the result is an ordinary file
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
