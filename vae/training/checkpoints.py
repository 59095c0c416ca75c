"""Checkpoints: atomic writes, validated loads (no code runs from a file: ``weights_only``), RNG state,
and the resume check that refuses a checkpoint written with other settings."""
from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from vae.atomic import atomic_file

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "restore_model", "check_resume_config"]

CHECKPOINT_FORMAT = 1
# Entries that may change on resume (everything else in the stored configuration must match).
# the weights themselves are checked against the model; Adam's implementation changes rounding only
_RESUME_FREE = ("epochs", "model_spec", "adam_impl")


@contextlib.contextmanager
def deferred_keyboard_interrupt():
    """Hold Ctrl-C (SIGINT) until the block ends, then raise ``KeyboardInterrupt``: a checkpoint being
    written is finished first (an interrupt inside ``torch.save`` would otherwise surface as a zip
    writer's RuntimeError). Outside the main thread the block runs unprotected."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
            signal.SIG_IGN, None):  # not ours to handle (e.g. a background job that ignores Ctrl-C)
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """``torch.save(state)`` atomically: written to a temporary file in the same directory, flushed
    to disk, then ``os.replace``-d over ``path``. A crash mid-write leaves the previous file intact
    and no temporary file behind; Ctrl-C is held until the new file is in place, then raised."""
    path = Path(path)
    with deferred_keyboard_interrupt(), atomic_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(dict(state), f)
        f.flush()
        os.fsync(f.fileno())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``weights_only=True``: tensors and plain Python data
    only). Keys: ``format``, ``epoch``, ``model``, ``optimizer``, ``history``, ``rng``, ``config``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): delete it and start again, or restore a copy")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as err:  # truncated zip, random bytes, a disallowed pickle global, ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"checkpoint {path} is unreadable (truncated or corrupt?): {type(err).__name__}: {first}. "
                         "Delete it and start again, or restore a copy") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a vae.train checkpoint (format {CHECKPOINT_FORMAT})")
    _check_checkpoint(state, path)
    return state


_CHECKPOINT_KEYS = {"epoch": int, "model": Mapping, "optimizer": Mapping, "history": list, "rng": Mapping,
                    "config": Mapping}


def _non_finite(obj: Any, where: str, out: list[str], depth: int = 0) -> None:
    """Append to ``out`` the places in ``obj`` (tensors, floats, nested dicts/lists) holding NaN/Inf."""
    if len(out) >= 6 or depth > 20:
        return
    if torch.is_tensor(obj):
        if (obj.is_floating_point() or obj.is_complex()) and obj.numel() and not bool(torch.isfinite(obj).all()):
            out.append(where)
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            out.append(where)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _non_finite(v, f"{where}.{k}" if where else str(k), out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _non_finite(v, f"{where}[{i}]", out, depth + 1)


def _check_checkpoint(state: Mapping[str, Any], path: Path) -> None:
    """``ValueError`` naming the file and the problem: a missing or mistyped entry, or NaN/Inf in the
    model or optimiser state (``fit`` never saves those: the file was damaged or written elsewhere)."""
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint {path} is incomplete: missing {', '.join(missing)} (a vae.train checkpoint "
                         f"holds {', '.join(['format', *_CHECKPOINT_KEYS])})")
    wrong = [f"{k} is {type(state[k]).__name__}, not {t.__name__}" for k, t in _CHECKPOINT_KEYS.items()
             if not isinstance(state[k], t) or (t is int and isinstance(state[k], bool))]
    wrong += [f"model.{k} is {type(v).__name__}, not a tensor" for k, v in state.get("model", {}).items()
              if not torch.is_tensor(v)][:3] if isinstance(state.get("model"), Mapping) else []
    if not wrong and state["epoch"] < 0:
        wrong.append(f"epoch is {state['epoch']}")
    if not wrong and not all(k in state["optimizer"] for k in ("state", "param_groups")):
        wrong.append("optimizer lacks state/param_groups")
    if wrong:
        raise ValueError(f"checkpoint {path} is malformed: " + "; ".join(wrong))
    bad: list[str] = []
    _non_finite(state["model"], "model", bad)
    _non_finite(state["optimizer"], "optimizer", bad)
    if bad:
        raise ValueError(f"checkpoint {path} holds NaN/Inf values in {', '.join(bad)}: a run cannot continue from "
                         "it (fit never saves non-finite state, so the file was damaged or written elsewhere). "
                         "Delete it and start again, or restore a copy")


def restore_model(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a :func:`fit` checkpoint's parameters into ``model`` (any device); returns the checkpoint.
    A checkpoint of another architecture raises ``ValueError`` naming the mismatching entries."""
    state = load_checkpoint(path)
    _load_model_state(model, state["model"], path)
    return state


def _state_mismatch(model: nn.Module, saved: Mapping[str, Tensor]) -> list[str]:
    """Human-readable differences between ``model.state_dict()`` and ``saved`` (empty: they fit)."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in saved]
    problems += [f"unexpected {k}" for k in saved if k not in own]
    problems += [f"{k}: shape {tuple(saved[k].shape)} in the checkpoint, {tuple(v.shape)} in the model"
                 for k, v in own.items() if k in saved and tuple(saved[k].shape) != tuple(v.shape)]
    return problems


def _load_model_state(model: nn.Module, saved: Mapping[str, Tensor], path) -> None:
    problems = _state_mismatch(model, saved)
    if problems:
        more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
        raise ValueError(f"checkpoint {path} does not fit this {type(model).__name__} (another architecture, "
                         f"latent size, prior or number of components?): " + "; ".join(problems[:6]) + more)
    model.load_state_dict(saved)


def _rng_state(perm_gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
        "permutation": perm_gen.get_state(),
    }


def _set_rng_state(state: Mapping[str, Any], perm_gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state["cuda"]:
        # only the device in use (older checkpoints stored every GPU's state: take the matching one)
        saved = state["cuda"]
        index = device.index if device.index is not None else torch.cuda.current_device()
        own = saved[0] if len(saved) == 1 else saved[min(index, len(saved) - 1)]
        torch.cuda.set_rng_state(own.cpu(), device)
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    perm_gen.set_state(state["permutation"].cpu())


def _callable_name(fn) -> str:
    """A stable name for a transform (no memory addresses): ``__qualname__`` or the type's name."""
    if fn is None:
        return "None"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _check_resume_config(saved: Mapping[str, Any], now: Mapping[str, Any], path, compare_lr: bool) -> None:
    """``ValueError`` listing every setting (other than ``epochs``) that differs from the checkpoint's."""
    skip = set(_RESUME_FREE) | (set() if compare_lr else {"lr"})
    keys = [k for k in now if k not in skip]  # keys only older checkpoints stored are not compared
    diffs = [f"{k}={saved.get(k, '<absent>')!r} in the checkpoint, {now.get(k, '<absent>')!r} now"
             for k in keys if saved.get(k, "<absent>") != now.get(k, "<absent>")]
    if diffs:
        raise ValueError(f"checkpoint {path} was written with other settings: " + "; ".join(diffs)
                         + ". Resume with the checkpoint's settings (only the number of epochs may change), "
                         "or start a new run in another output directory")


check_resume_config = _check_resume_config
