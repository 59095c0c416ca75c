"""Load a script (an example or a benchmark, not an importable module) as a module, for the tests.

>>> from pathlib import Path
>>> load_script(Path(__file__).resolve().parents[2] / "examples" / "gamma_vi.py", "gamma_vi_doctest").__name__
'gamma_vi_doctest'
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: str | Path, name: str, register: bool = False) -> ModuleType:
    """The script at ``path`` executed as module ``name``; with ``register`` also put in
    ``sys.modules`` (needed when something pickles objects defined in it by reference)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
