"""Eval mode for a block of code, every submodule's own mode restored afterwards.

``module.train(was_training)`` after ``module.eval()`` would reset every submodule to the parent's
mode; :func:`eval_mode` gives each one back the mode it had (a frozen BatchNorm inside a training
model stays frozen), also when the block raises.

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
>>> _ = net[1].eval()
>>> with eval_mode(net):
...     [m.training for m in net.modules()]
[False, False, False]
>>> [m.training for m in net.modules()]
[True, True, False]
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module.eval()`` inside the block (BatchNorm uses running statistics, Dropout is off);
    afterwards each submodule has its own previous mode again. Gradients are not affected."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode
