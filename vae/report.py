"""A tiny Markdown report writer: tables (also as CSV/JSON), embedded figures, text sections.

>>> r = Report("Study")
>>> r.table([{"beta": 1, "mig": 0.12345}], floatfmt=".3f")
>>> print(r.markdown().splitlines()[2:5])
['| beta | mig |', '|---|---|', '| 1 | 0.123 |']
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["Report", "markdown_table", "write_csv", "write_json"]


def _fmt(value: Any, floatfmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return format(value, floatfmt)
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".4g",
                   headers: Mapping[str, str] | None = None) -> str:
    """Rows of dicts as a GitHub Markdown table (``None`` -> an em dash, NaN -> ``n/a``)."""
    if not rows:
        return "_(no rows)_"
    columns = list(columns) if columns is not None else list(dict.fromkeys(k for row in rows for k in row))
    headers = dict(headers or {})
    lines = ["| " + " | ".join(headers.get(c, c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c), floatfmt) for c in columns) + " |")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(obj, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (numpy arrays as lists, NaN/Inf as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(_jsonable(obj), f, indent=2)
        f.write("\n")
    return path


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Write rows of dicts as CSV (floats with full precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns) if columns is not None else list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="", extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return path


class Report:
    """Accumulates Markdown; :meth:`save` writes it with figure links relative to the report."""

    def __init__(self, title: str) -> None:
        self.parts: list[str] = [f"# {title}", ""]

    def heading(self, text: str, level: int = 2) -> None:
        self.parts += ["#" * level + " " + text, ""]

    def text(self, text: str) -> None:
        self.parts += [text.strip("\n"), ""]

    def table(self, rows, columns=None, floatfmt: str = ".4g", headers=None, caption: str | None = None) -> None:
        if caption:
            self.parts += [caption, ""]
        self.parts += [markdown_table(rows, columns, floatfmt, headers), ""]

    def figure(self, path: str | Path, caption: str, base: str | Path) -> None:
        rel = os.path.relpath(Path(path), Path(base)).replace(os.sep, "/")
        self.parts += [f"![{caption}]({rel})", "", f"*{caption}*", ""]

    def markdown(self) -> str:
        return "\n".join(self.parts).rstrip() + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.markdown())
        return path
