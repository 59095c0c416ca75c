"""Per-epoch training record (per-image means), with CSV/JSON round trips."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["History", "jsonable"]


@dataclass
class History:
    """Per-epoch training record. ``rows``: ``{"epoch", "train_<k>", "val_<k>", "seconds"}`` with
    per-image means; ``meta``: device, sizes and settings of the run."""

    rows: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def keys(self) -> list[str]:
        """Loss-term names (``loss``, ``recon``, ``kl``, ...) in logging order."""
        seen: list[str] = []
        for row in self.rows:
            for col in row:
                if col.startswith("train_") and col[6:] not in seen:
                    seen.append(col[6:])
        return seen

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols += [c for c in row if c not in cols]
        return cols

    def column(self, name: str) -> list[float]:
        """One column over the epochs (``NaN`` where a row lacks it), e.g. ``column("val_loss")``."""
        if not any(name in row for row in self.rows):
            raise KeyError(f"no column {name!r}; columns: {self.columns}")
        return [row.get(name, math.nan) for row in self.rows]

    def final(self) -> dict[str, float]:
        """The last epoch's row (a copy); ``{}`` before any epoch completed."""
        return dict(self.rows[-1]) if self.rows else {}

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = self.columns
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=cols, restval="")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        return path

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            json.dump({"meta": _jsonable(self.meta), "rows": _jsonable(self.rows)}, f, indent=2)
            f.write("\n")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> "History":
        with open(path) as f:
            obj = json.load(f)
        return cls(rows=list(obj["rows"]), meta=dict(obj.get("meta", {})))


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


jsonable = _jsonable
