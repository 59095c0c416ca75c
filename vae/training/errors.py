"""The two ways a training run ends early: divergence and Ctrl-C."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vae.training.history import History

__all__ = ["TrainingDiverged", "TrainingInterrupted"]


class TrainingDiverged(RuntimeError):
    """A loss term or a parameter became NaN/Inf. ``epoch``/``step`` locate it; ``checkpoint`` is the
    file that still holds ``last_good_epoch`` (``None`` when no checkpoint was written); ``history``
    holds the completed epochs."""

    def __init__(self, message: str, *, epoch: int, step: int | None, checkpoint: Path | None,
                 last_good_epoch: int | None, history: "History") -> None:
        super().__init__(message)
        self.epoch, self.step = epoch, step
        self.checkpoint, self.last_good_epoch = checkpoint, last_good_epoch
        self.history = history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`; ``checkpoint`` holds epoch ``last_epoch`` (resume with
    ``resume=True``), ``history`` the completed epochs."""

    def __init__(self, message: str, *, last_epoch: int, checkpoint: Path | None, history: "History") -> None:
        super().__init__(message)
        self.last_epoch, self.checkpoint, self.history = last_epoch, checkpoint, history
