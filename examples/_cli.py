"""Argument types shared by the example scripts: each parses one number and names what it expected.

>>> positive_int("3"), fraction("0.05")
(3, 0.05)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

__all__ = ["positive_int", "nonneg_int", "positive_float", "nonneg_float", "fraction", "add_run_options",
           "progress_log", "write_summary"]


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


def write_summary(summary: dict, path: str | Path, echo: bool = False) -> Path:
    """Write an example's headline numbers as JSON to ``path`` (and to stdout with ``echo``: ``--json``).

    Numpy scalars and other non-JSON numbers are written as floats.
    """
    text = json.dumps(summary, indent=2, default=float)
    Path(path).write_text(text + "\n")
    if echo:
        print(text)
    return Path(path)


def add_run_options(p: argparse.ArgumentParser, *, out: str | None, quick: str, out_help: str | None = None) -> None:
    """The options every training example shares: ``--quick`` (described by ``quick``), ``--device``,
    ``--seed``, ``--out`` (default ``out``; ``out_help`` describes a default computed later), ``--json``,
    ``--no-progress``."""
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=out, help=f"output directory (default: {out_help or out})")
    p.add_argument("--json", action="store_true", help="print the headline numbers as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")


def progress_log(as_json: bool) -> Callable[[str], None]:
    """A ``log(msg)`` for an example's progress lines: stdout, or stderr when stdout carries ``--json``."""

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if as_json else sys.stdout, flush=True)

    return log
