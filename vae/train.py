"""``vae.train``: the training API under its historical name (the code lives in :mod:`vae.training`).

>>> from vae.train import fit, History    # the same objects as vae.training.fit, vae.training.History
"""
from __future__ import annotations

from vae.training import (CHECKPOINT_FORMAT, History, TrainingDiverged, TrainingInterrupted, fit, has_batchnorm,
                          is_main_process, load_checkpoint, recalibrate_batchnorm, restore_model, save_checkpoint)
from vae.training.batches import batch_bounds as _batch_bounds, stream_positions as _stream_positions  # noqa: F401

__all__ = ["fit", "History", "TrainingDiverged", "TrainingInterrupted", "save_checkpoint", "load_checkpoint",
           "restore_model", "recalibrate_batchnorm", "has_batchnorm", "is_main_process", "CHECKPOINT_FORMAT"]
