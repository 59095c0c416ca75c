"""Choosing the torch device: ``cuda`` when available, or exactly what the user asked for."""
from __future__ import annotations

import torch


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """Return the device to run on.

    ``None`` or ``"auto"`` picks ``cuda`` when available, else ``cpu``. An explicit ``"cuda"``
    without a GPU raises a clear error instead of failing later inside torch.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name is None or str(name) == "auto":
        return normalize_device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but torch sees no CUDA GPU; use --device cpu")
    return normalize_device(device)


def normalize_device(device: str | torch.device) -> torch.device:
    """``cuda`` -> ``cuda:<current>`` (so that ``cuda`` and ``cuda:0`` compare equal); others unchanged."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def module_device(module: torch.nn.Module, default: torch.device | None = None) -> torch.device:
    """The device of a module: that of its first parameter or buffer; ``default`` (CPU when ``None``)
    for a module without any. The one helper the package uses for "where does this model live".

    >>> module_device(torch.nn.Linear(2, 2))
    device(type='cpu')
    """
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu") if default is None else torch.device(default)
