"""Reload a trained model from its run folder: the model's configuration travels with its weights.

A run records how its model was built as a *model spec* in the checkpoint's configuration
(``config={"model_spec": model_spec("vae.protocol:build_study_model", arch="standard", beta=4.0, ...)}``
passed to :func:`vae.training.fit`); :func:`load_run` rebuilds the model from it and loads the
weights, so a user can encode, sample or keep training without knowing the script that made it.
Only builders inside this package (``vae.*``) are called — a checkpoint cannot name arbitrary code.

>>> spec = model_spec("vae.protocol:build_study_model", arch="standard", beta=4.0, latent_dim=None, seed=0)
>>> type(build_from_spec(spec)).__name__
'VAE'
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from vae.training.checkpoints import _load_model_state, load_checkpoint
from vae.training.history import History

__all__ = ["model_spec", "build_from_spec", "load_run", "LoadedRun"]


def model_spec(builder: str, **kwargs: Any) -> dict[str, Any]:
    """``{"builder": "module:function", "kwargs": {...}}`` (JSON-able keyword arguments)."""
    if ":" not in builder:
        raise ValueError(f"builder must look like 'vae.module:function'; got {builder!r}")
    return {"builder": builder, "kwargs": dict(kwargs)}


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Call the spec's builder (a function of this package) with its keyword arguments."""
    try:
        module, name = str(spec["builder"]).split(":", 1)
        kwargs = dict(spec.get("kwargs") or {})
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError(f"not a model spec: {spec!r}") from None
    if module != "vae" and not module.startswith("vae."):
        raise ValueError(f"model spec names {module!r}: only builders of the vae package are called")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"model spec names {spec['builder']!r}, which is not a function")
    return fn(**kwargs)


@dataclass
class LoadedRun:
    """A reloaded run: the ``model`` (eval mode, weights loaded), its ``history``, the checkpoint's
    ``config`` and ``epoch``, and the ``checkpoint`` path."""

    model: nn.Module
    history: History
    config: dict[str, Any]
    epoch: int
    checkpoint: Path


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """Rebuild the trained model of a run folder (or of a checkpoint file) written by ``fit``.

    Raises ``FileNotFoundError`` without a checkpoint and ``ValueError`` when the checkpoint holds
    no model spec (runs made before specs were recorded) or does not fit the rebuilt model.
    """
    path = Path(path)
    ckpt = path / "checkpoint.pt" if path.is_dir() else path
    state = load_checkpoint(ckpt)
    spec = state["config"].get("model_spec")
    if spec is None:
        raise ValueError(f"{ckpt} records no model_spec: rebuild the model by hand and use "
                         "vae.train.restore_model(model, path)")
    model = build_from_spec(spec)
    _load_model_state(model, state["model"], ckpt)
    model.to(device).eval()
    return LoadedRun(model, History(rows=[dict(r) for r in state["history"]], meta=dict(state["config"])),
                     dict(state["config"]), int(state["epoch"]), ckpt)
