"""Run folders: every training example claims its ``--out`` folder before it loads data or trains.

Claiming a folder (``with RunFolder(out, resume=..., overwrite=...):``)

* checks that it can be created and written (the lock file is the first write), so an unwritable
  ``--out`` fails at once, not after the first epoch;
* takes a lock, the folder ``.run.lock`` (its ``owner.json``: pid, host, start time, command): a
  second run into the same folder is refused while the first one runs; a lock whose process is
  gone (killed) is taken over;
* refuses a folder that holds a previous run — a checkpoint (``*.pt``), ``summary.json`` or the
  folder's record ``run.json`` — unless the run continues it (``resume=True``) or replaces it
  (``overwrite=True``: the previous run's files, as recorded in ``run.json``, and its checkpoints
  and summary are deleted first; files the runs did not write are left alone);
* records the run in ``run.json``: status ``running``, then ``finished``, ``interrupted`` or
  ``failed``, and the files it wrote. A run that fails before writing anything leaves the folder
  as it found it.

Errors are :class:`RunFolderError` (a ``ValueError``) with a message that says what to do.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> with RunFolder(out) as folder:
...     _ = (out / "summary.json").write_text("{}")
>>> try:
...     RunFolder(out).claim()
... except RunFolderError as err:
...     print(str(err)[len(str(out)):])
 holds a finished run (summary.json, run.json): replace it with --overwrite, or choose another --out
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from vae.atomic import atomic_file, pid_alive

__all__ = ["RunFolder", "RunFolderError", "LOCK_NAME", "RECORD_NAME"]

LOCK_NAME = ".run.lock"  # a folder: owner.json inside
RECORD_NAME = "run.json"
_OWNER = "owner.json"
_CHECKPOINT_DEPTH = 2  # checkpoints are looked for in the folder and one level below (per-β runs)


class RunFolderError(ValueError):
    """The output folder cannot be used for this run (busy, holds a previous run, not writable)."""


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


class RunFolder:
    """One run's claim on its output folder (see the module doc). ``can_resume``: the example has a
    ``--resume`` option (the refusal message then offers it)."""

    def __init__(self, path: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                 can_resume: bool = False, command: list[str] | None = None) -> None:
        self.path = Path(path).expanduser()
        self.resume, self.overwrite, self.can_resume = bool(resume), bool(overwrite), bool(can_resume)
        self.command = list(sys.argv if command is None else command)
        self.started: float | None = None
        self._created = False
        self._locked = False
        self._previous_files: list[str] = []

    # ------------------------------------------------------------------------------- inspection
    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_NAME

    @property
    def record_path(self) -> Path:
        return self.path / RECORD_NAME

    def checkpoints(self) -> list[str]:
        """Checkpoint files (``*.pt``) in the folder and its sub-folders, relative paths."""
        found = []
        for depth in range(_CHECKPOINT_DEPTH):
            pattern = "/".join(["*"] * depth + ["*.pt"])
            found += [str(p.relative_to(self.path)) for p in self.path.glob(pattern) if p.is_file()]
        return sorted(found)

    def previous_run(self) -> list[str]:
        """What shows that the folder holds a previous run: checkpoints, ``summary.json``, ``run.json``."""
        if not self.path.is_dir():
            return []
        evidence = self.checkpoints()
        evidence += [name for name in ("summary.json", RECORD_NAME) if (self.path / name).is_file()]
        return evidence

    def kept(self) -> list[str]:
        """The files in the folder now (relative paths; no lock, no temporaries)."""
        if not self.path.is_dir():
            return []
        files = []
        for p in self.path.rglob("*"):
            rel = p.relative_to(self.path)
            if p.is_file() and not rel.parts[0].startswith(LOCK_NAME) and not p.name.endswith(".part"):
                files.append(str(rel))
        return sorted(files)

    # ----------------------------------------------------------------------------------- claim
    def claim(self) -> "RunFolder":
        """Create, check, lock and record the folder; :class:`RunFolderError` when it cannot be used."""
        if self.resume and self.overwrite:
            raise RunFolderError("--resume and --overwrite exclude each other: continue the run in "
                                 f"{self.path} or replace it, not both")
        self._create()
        self._lock()
        try:
            evidence = self.previous_run()
            if evidence and not (self.resume or self.overwrite):
                raise RunFolderError(self._refusal(evidence))
            record = _read_json(self.record_path) or {}
            self._previous_files = [f for f in record.get("files", []) if isinstance(f, str)]
            if self.overwrite and evidence:
                self._remove_previous(evidence)
                self._previous_files = []
            self.started = time.time()
            self._write_record("running")
        except BaseException:
            self._unlock()
            raise
        return self

    def _create(self) -> None:
        try:
            if self.path.exists() and not self.path.is_dir():
                raise RunFolderError(f"--out {self.path} exists and is not a folder")
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
        except RunFolderError:
            raise
        except OSError as err:
            raise RunFolderError(f"cannot create the output folder --out {self.path}: "
                                 f"{err.strerror or err}") from None

    def _lock(self) -> None:
        """Take the lock: a folder ``.run.lock`` holding ``owner.json``, built aside and renamed into
        place in one step, so whoever sees the lock sees its owner."""
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(self.command)}
        tmp = self.path / f"{LOCK_NAME}.{os.getpid()}.{secrets.token_hex(4)}.new"
        try:
            tmp.mkdir()
            (tmp / _OWNER).write_text(json.dumps(info))
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            self._remove_if_created()
            raise RunFolderError(f"the output folder --out {self.path} is not writable: "
                                 f"{err.strerror or err}") from None
        try:
            for _ in range(3):
                try:
                    os.rename(tmp, self.lock_path)  # fails while another run's lock is in place
                    self._locked = True
                    return
                except OSError as err:
                    if not self.lock_path.exists():
                        raise RunFolderError(f"cannot lock {self.path}: {err.strerror or err}") from None
                owner = _read_json(self.lock_path / _OWNER) or {}
                if self._owner_alive(owner):
                    raise RunFolderError(
                        f"another run (pid {owner.get('pid')} on {owner.get('host')}, started {owner.get('started')}"
                        f": {owner.get('command', '?')}) is writing to {self.path}; wait for it to finish or "
                        f"choose another --out (if no such run exists, delete {self.lock_path})")
                self._break_stale(owner)
            raise RunFolderError(f"could not lock {self.path}: other runs keep taking {self.lock_path}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _break_stale(self, owner: dict[str, Any]) -> None:
        """Remove the lock of a run that is gone (killed). Moved aside first, and put back when what
        was moved is not that run's lock (another run took the stale lock over meanwhile)."""
        grave = self.path / f"{LOCK_NAME}.{os.getpid()}.{secrets.token_hex(4)}.stale"
        try:
            os.rename(self.lock_path, grave)
        except OSError:
            return  # already gone (another run broke it): try again
        if (_read_json(grave / _OWNER) or {}) != owner:
            try:
                os.rename(grave, self.lock_path)
            except OSError:
                pass
            else:
                return
        shutil.rmtree(grave, ignore_errors=True)

    @staticmethod
    def _owner_alive(owner: dict[str, Any]) -> bool:
        pid = owner.get("pid")
        if not isinstance(pid, int):
            return False  # unreadable lock: a writer died while creating it
        if owner.get("host") not in (None, socket.gethostname()):
            return True  # cannot tell: assume it runs
        return pid_alive(pid)

    def _refusal(self, evidence: list[str]) -> str:
        resumable = bool(self.checkpoints())
        record = _read_json(self.record_path) or {}
        status = record.get("status")
        kind = ("resumable" if resumable and status != "finished" else
                "finished" if status in (None, "finished") else status)
        shown = ", ".join(evidence[:4]) + (f" and {len(evidence) - 4} more" if len(evidence) > 4 else "")
        how = "continue it with --resume, " if (self.can_resume and resumable) else ""
        return (f"{self.path} holds a {kind} run ({shown}): {how}replace it with --overwrite, "
                "or choose another --out")

    def _remove_previous(self, evidence: list[str]) -> None:
        record = _read_json(self.record_path) or {}
        names = set(evidence) | {f for f in record.get("files", []) if isinstance(f, str)}
        root = self.path.resolve()
        for name in sorted(names):
            target = (self.path / name)
            try:
                resolved = target.resolve()
            except OSError:
                continue
            if root not in resolved.parents or not target.is_file():
                continue  # never outside the folder, never a folder
            try:
                target.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                raise RunFolderError(f"--overwrite: cannot delete {target}: {err.strerror or err}") from None

    # --------------------------------------------------------------------------------- release
    def _written(self) -> list[str]:
        """Files this run wrote (modified since it started), plus a resumed run's earlier files."""
        since = (self.started or time.time()) - 2.0
        now = set()
        for rel in self.kept():
            try:
                if (self.path / rel).stat().st_mtime >= since:
                    now.add(rel)
            except OSError:
                pass
        keep = {f for f in self._previous_files if (self.path / f).is_file()} if self.resume else set()
        return sorted((now | keep) - {RECORD_NAME})

    def _write_record(self, status: str, files: list[str] | None = None) -> None:
        record = {"status": status, "pid": os.getpid(), "command": self.command,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started or time.time())),
                  "resumed": self.resume}
        if status != "running":
            record["ended"] = time.strftime("%Y-%m-%d %H:%M:%S")
        if files is not None:
            record["files"] = files
        with atomic_file(self.record_path) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")

    def release(self, status: str) -> None:
        """Record ``status`` and the files written, and unlock. A failed or interrupted run that
        wrote nothing (and continued nothing) leaves no record, and no folder it created."""
        if not self._locked:
            return
        try:
            files = self._written()
            if status != "finished" and not files and not self.resume and not self._previous_files:
                self.record_path.unlink(missing_ok=True)
            else:
                self._write_record(status, files)
        finally:
            self._unlock()
            self._remove_if_created()

    def _unlock(self) -> None:
        if self._locked:
            shutil.rmtree(self.lock_path, ignore_errors=True)
            self._locked = False

    def _remove_if_created(self) -> None:
        if self._created:
            try:
                self.path.rmdir()  # only when empty
            except OSError:
                pass

    def __enter__(self) -> "RunFolder":
        return self.claim()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.release("finished")
            return
        self.release("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        if getattr(exc, "run_folder", None) is None:
            try:
                exc.run_folder = self  # for the examples' Ctrl-C note of what was kept
            except AttributeError:
                pass
