"""The options and error handling every command line of the package shares (``vae.cli.*`` and
``vi.cli``): argument types (each parses one number, rejects NaN/Inf and out-of-range values, and
names what it expected), the run options (``--device --seed --out --json --threads --no-progress``,
:func:`add_run_options`), the run folder, and one error handling (:func:`run_main`).

This module imports only the standard library (torch is imported when :func:`set_threads` runs),
so ``vi.cli`` uses it without importing any VAE code.

>>> positive_int("3"), fraction("0.05"), int_at_least(2)("20"), float_in(0, 10, low_open=True)("2.5")
(3, 0.05, 20, 2.5)
>>> float_in(0, 10, low_open=True)("nan")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: expected a finite number in (0, 10], got 'nan'
"""
from __future__ import annotations

import argparse
import errno
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["positive_int", "nonneg_int", "positive_float", "nonneg_float", "fraction", "int_at_least", "int_in",
           "float_in", "add_run_options", "add_device_option", "add_seed_option", "add_threads_option",
           "add_overwrite_option", "default_threads", "set_threads", "THREADS_HELP", "MAX_THREADS", "run_folder",
           "run_main", "error_message", "progress_log", "write_summary", "add_training_options", "resolve_quick"]


def _number(kind: type, what: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse ``type=`` that converts with ``kind`` and accepts only values where ``ok``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, "a positive integer", lambda v: v >= 1)
nonneg_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a finite number > 0", lambda v: v > 0)
nonneg_float = _number(float, "a finite number >= 0", lambda v: v >= 0)
fraction = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def int_at_least(low: int) -> Callable[[str], int]:
    """``type=`` for an integer ``>= low``."""
    return _number(int, f"an integer >= {low}", lambda v: v >= low)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """``type=`` for an integer in ``[low, high]``."""
    return _number(int, f"an integer in [{low}, {high}]", lambda v: low <= v <= high)


def float_in(low: float | None = None, high: float | None = None, *, low_open: bool = False,
             high_open: bool = False) -> Callable[[str], float]:
    """``type=`` for a finite number in the interval from ``low`` to ``high`` (``None``: unbounded),
    each end closed unless ``low_open`` / ``high_open``."""
    lo = "(-inf" if low is None else f"{'(' if low_open else '['}{low:g}"
    hi = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"

    def ok(v: float) -> bool:
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    return _number(float, f"a finite number in {lo}, {hi}", ok)


def write_summary(summary: dict, path: str | Path, echo: bool = False) -> Path:
    """Write a command's headline numbers as JSON to ``path`` (and to stdout with ``echo``: ``--json``).

    Numpy scalars and other non-JSON numbers are written as floats.
    """
    text = json.dumps(summary, indent=2, default=float)
    Path(path).write_text(text + "\n")
    if echo:
        print(text)
    return Path(path)


def add_run_options(p, *, out: str | None, quick: str, out_help: str | None = None, seed_help: str | None = None,
                    threads_help: str | None = None) -> None:
    """The options every training command shares: ``--quick`` (described by ``quick``), ``--device``,
    ``--seed`` (``seed_help``: another description), ``--threads`` (``threads_help``: a note on this
    command's own default), ``--out`` (default ``out``; ``out_help`` describes a default computed
    later), ``--overwrite``, ``--json``, ``--no-progress``. ``p``: a parser or an argument group."""
    p.add_argument("--quick", action="store_true", help=quick)
    add_device_option(p)
    add_seed_option(p, seed_help)
    add_threads_option(p, threads_help)
    p.add_argument("--out", default=out, help=f"output directory (default: {out_help or out})")
    add_overwrite_option(p)
    p.add_argument("--json", action="store_true", help="print the headline numbers as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")


def add_training_options(p, defaults: Mapping[str, Any], quick: Mapping[str, Any], *, lr: float = 1e-3) -> None:
    """``--epochs --batch-size --lr --val-fraction --max-samples --iwae-samples`` with a normal and a
    ``--quick`` default each (``defaults``/``quick``: keys ``epochs``, ``batch_size``, ``max_samples``
    (``None``: all), ``iwae_samples``); :func:`resolve_quick` fills in the ones a user left out.

    >>> p = argparse.ArgumentParser(); _ = p.add_argument("--quick", action="store_true")
    >>> add_training_options(p, {"epochs": 50, "batch_size": 100}, {"epochs": 5, "batch_size": 32})
    >>> a = resolve_quick(p.parse_args(["--quick", "--epochs", "7"]), {"epochs": 50, "batch_size": 100},
    ...                   {"epochs": 5, "batch_size": 32})
    >>> a.epochs, a.batch_size, a.max_samples
    (7, 32, None)
    """
    def both(key: str, show=lambda v: f"{v:,}") -> str:
        normal, fast = defaults.get(key), quick.get(key, defaults.get(key))
        text = "all" if normal is None else show(normal)
        return text if fast == normal else f"{text}; --quick: {'all' if fast is None else show(fast)}"

    p.add_argument("--epochs", type=positive_int, default=None, help=f"epochs (default: {both('epochs')})")
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"batch size (default: {both('batch_size')})")
    p.add_argument("--lr", type=positive_float, default=lr, help=f"Adam learning rate (default: {lr:g})")
    p.add_argument("--val-fraction", type=fraction, default=0.05, help="validation share (default: 0.05)")
    p.add_argument("--max-samples", type=positive_int, default=None, help=f"training digits (default: {both('max_samples')})")
    if "iwae_samples" in defaults:
        p.add_argument("--iwae-samples", type=nonneg_int, default=None,
                       help=f"importance samples per held-out digit for the NLL (default: {both('iwae_samples')}; "
                            "0 skips)")


def resolve_quick(args: argparse.Namespace, defaults: Mapping[str, Any], quick: Mapping[str, Any]) -> argparse.Namespace:
    """Every option of :func:`add_training_options` left at ``None`` gets its ``--quick`` or normal default."""
    for key, normal in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, quick.get(key, normal) if args.quick else normal)
    return args


def add_device_option(p, help: str | None = None) -> None:
    """``--device``: auto (CUDA when available), cpu, cuda, cuda:N."""
    p.add_argument("--device", default="auto",
                   help=help or "auto (cuda when available), cpu, cuda, cuda:N (default: auto)")


def add_seed_option(p, help: str | None = None) -> None:
    """``--seed``: an integer >= 0, default 0."""
    p.add_argument("--seed", type=nonneg_int, default=0, help=help or "random seed (default: 0)")


# ------------------------------------------------------------------------------------- threads
MAX_THREADS = 1024


def default_threads() -> int:
    """The default of ``--threads``: ``$OMP_NUM_THREADS`` when it is set to a positive integer, else
    ``min(4, usable CPU cores)``.

    torch's own default is one thread per core; on a shared machine (a 2-core one running another
    job) those threads compete with each other and with the other job, and small models run 4-20x
    slower than with few threads; beyond about 4 threads the models here gain little.
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return min(int(env), MAX_THREADS)
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (taskset, cgroups)
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


THREADS_HELP = ("torch CPU threads, 1 to {max} (default: $OMP_NUM_THREADS when set, else min(4, usable CPU cores), "
                "{n} here; torch's own default of one thread per core oversubscribes a shared machine and can make "
                "a run several times slower)")


def add_threads_option(p, note: str | None = None) -> None:
    """``--threads N`` (``None`` when not given: :func:`set_threads` then uses :func:`default_threads`);
    ``note`` adds a sentence on the command's own default."""
    text = THREADS_HELP.format(max=MAX_THREADS, n=default_threads())
    if note:
        text = text[:-1] + f"; {note})"
    p.add_argument("--threads", type=int_in(1, MAX_THREADS), default=None, metavar="N", help=text)


def set_threads(n: int | None) -> int:
    """``torch.set_num_threads`` with ``n``, or with :func:`default_threads` when ``n`` is ``None``;
    returns the number set."""
    import torch

    n = default_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"--threads must be >= 1; got {n}")
    torch.set_num_threads(n)
    return n


def add_overwrite_option(p) -> None:
    """``--overwrite``: the explicit permission to replace a previous run in ``--out``."""
    p.add_argument("--overwrite", action="store_true",
                   help="replace the finished or resumable run in --out (its recorded files and checkpoints are "
                        "deleted first); without it such a folder is refused")


def run_folder(out: str | Path, args: argparse.Namespace, *, can_resume: bool = False):
    """The commands' one run-folder claim (:class:`vae.runfolder.RunFolder`) for ``--out``: a lock
    while the run writes, no silent overwrite of a previous run, writability checked up front."""
    from vae.runfolder import RunFolder

    return RunFolder(out, resume=bool(getattr(args, "resume", False)), overwrite=bool(getattr(args, "overwrite", False)),
                     can_resume=can_resume)


# ------------------------------------------------------------------------------------- errors
def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _is(err: BaseException, module: str, name: str) -> bool:
    """``isinstance(err, module.name)`` without importing ``module`` (torch, vae.train) for it."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return isinstance(cls, type) and isinstance(err, cls)


def error_message(err: BaseException, hints: Mapping[type, str] | None = None) -> str | None:
    """The one-line message a command prints for ``err`` after ``error:``; ``None`` for an
    exception that is a bug (it keeps its traceback)."""
    extra = next((h for t, h in (hints or {}).items() if isinstance(err, t)), "")
    extra = f" {extra}" if extra else ""
    if _is(err, "torch.cuda", "OutOfMemoryError") or _is(err, "torch", "OutOfMemoryError"):
        first = _one_line(str(err).split(". ")[0])
        return (f"out of GPU memory ({first}): try a smaller --batch-size or --max-samples, or --device cpu"
                + extra)
    if isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and any(
            s in str(err).lower() for s in ("out of memory", "can't allocate memory", "cannot allocate memory"))):
        return f"out of memory ({_one_line(err) or type(err).__name__}): try a smaller --batch-size or --max-samples" + extra
    if _is(err, "vae.train", "TrainingDiverged"):
        return _one_line(err) + extra
    if isinstance(err, OSError) and not isinstance(err, ConnectionError):
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        if err.errno == errno.ENOSPC:
            return f"no space left on the device{where}: free some space or choose another --out" + extra
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"{err.strerror}{where}: choose a writable --out" + extra
        if err.strerror:
            return f"{err.strerror}{where}" + extra
        return _one_line(err) + extra
    if isinstance(err, (ValueError, ConnectionError)):
        return _one_line(err) + extra
    return None


def _interrupted_note(err: KeyboardInterrupt) -> str:
    """What an interrupted command says: where it stopped, what it kept, how to continue."""
    parts = ["interrupted"]
    if str(err):
        parts[0] += f": {_one_line(err)}"
    folder = getattr(err, "run_folder", None)
    if folder is not None:
        kept = folder.kept()
        if kept:
            shown = ", ".join(kept[:6]) + (f" and {len(kept) - 6} more" if len(kept) > 6 else "")
            parts.append(f"kept in {folder.path}: {shown}")
            if folder.can_resume and folder.checkpoints():
                parts.append("continue with the same command plus --resume")
        else:
            parts.append(f"nothing was saved in {folder.path}")
    return "; ".join(parts)


def run_main(main: Callable[[list[str] | None], Any], argv: list[str] | None = None, *,
             hints: Mapping[type, str] | None = None) -> int:
    """Run a command's ``main(argv)`` with the commands' one error handling; return the exit code.

    * ``ValueError`` (bad input, a corrupt file, a refused run folder), ``OSError`` (unwritable
      ``--out``, a full disk, no network), out-of-memory errors (torch's included) and
      ``TrainingDiverged``: one line ``error: ...`` on stderr, exit code 2 (``hints``: extra text
      per exception type);
    * Ctrl-C (``KeyboardInterrupt``, ``TrainingInterrupted`` included): a note of what was kept and
      how to continue, exit code 130;
    * ``main``'s own int is the exit code; anything else it returns means 0. Other exceptions are
      bugs and keep their traceback.
    """
    try:
        result = main(argv)
    except KeyboardInterrupt as err:
        print(f"\n{_interrupted_note(err)}", file=sys.stderr, flush=True)
        return 130
    except Exception as err:  # noqa: BLE001 - sorted by error_message; bugs are re-raised
        message = error_message(err, hints)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 2
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def progress_log(as_json: bool) -> Callable[[str], None]:
    """A ``log(msg)`` for a command's progress lines: stdout, or stderr when stdout carries ``--json``."""

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if as_json else sys.stdout, flush=True)

    return log
