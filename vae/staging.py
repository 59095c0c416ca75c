"""Data staging: a data set's images ready for batching on the training device.

One storage per data set, shared by its training and validation views (``ImageDataset.split``
makes index views, so nothing is copied to split). On a GPU the images are kept *resident* as
uint8 when they fit (exact ``k/255`` float images are converted losslessly; 2.9 GB for the whole
of dSprites) and converted to float32 per batch on the device; otherwise each batch is gathered on
the host into one of two alternating pinned buffers and copied with ``non_blocking=True``, so the
copy overlaps the previous step (an event per buffer guards against overwriting a buffer still in
flight). On the CPU the storage is used in place. No step synchronises the host.

>>> import torch
>>> from vae.data import ImageDataset
>>> data = ImageDataset(torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8))
>>> train, val = stage_views([data.subset(range(8)), data.subset([8, 9])], torch.device("cpu"))
>>> x = train.batch(torch.tensor([0, 3]))
>>> x.dtype, bool(torch.equal(x, data.batch([0, 3])))
(torch.float32, True)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from vae.data.dataset import ImageDataset, to_float_images

__all__ = ["DeviceImages", "stage_views", "available_device_memory", "exact_uint8", "to_uint8"]


def to_uint8(images: Tensor, chunk: int = 4096) -> Tensor:
    """Exact ``k/255`` float images -> uint8 ``k``, in chunks (no full-size float temporary)."""
    out = torch.empty(images.shape, dtype=torch.uint8)
    for i in range(0, len(images), chunk):
        out[i:i + chunk] = (images[i:i + chunk] * 255).round_()
    return out


def exact_uint8(images: Tensor, chunk: int = 4096) -> bool:
    """Whether every value is exactly some ``k/255`` (so uint8 storage is lossless)."""
    for i in range(0, len(images), chunk):
        block = images[i:i + chunk]
        if not torch.equal((block * 255).round().to(torch.uint8).to(block.dtype) / 255, block):
            return False
    return True


def available_device_memory(device: torch.device) -> float:
    """Bytes a new tensor can take on ``device``: the driver's free memory plus what PyTorch's
    caching allocator has reserved but not handed out (``mem_get_info`` alone ignores it). CPU: inf."""
    if device.type != "cuda":
        return math.inf
    free, _total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return float(free + max(cached, 0))


class DeviceImages:
    """Images of one data set (a view into ``store``) ready for batching on ``device``.

    ``batch(positions)`` returns float32 images on ``device``; ``positions`` (a LongTensor on
    :attr:`index_device`) are relative to the data set. Built by :func:`stage_views`.
    """

    def __init__(self, store: Tensor, index: Tensor | None, device: torch.device, resident: bool) -> None:
        self.store, self.device, self.on_device = store, device, resident
        self.n = len(store) if index is None else len(index)
        self._index = None if index is None else index.to(store.device)
        self._pinned: list[Tensor] = []
        self._events: list = []
        self._turn = 0

    @property
    def index_device(self) -> torch.device:
        return self.store.device

    def _rows(self, positions: Tensor) -> Tensor:
        return positions if self._index is None else self._index[positions]

    def batch(self, positions: Tensor) -> Tensor:
        rows = self._rows(positions)
        if self.store.device == self.device:
            return to_float_images(self.store[rows])
        return to_float_images(self._copy_pinned(rows))

    def _copy_pinned(self, rows: Tensor) -> Tensor:
        """Gather on the host into an alternating pinned buffer, copy without blocking the host."""
        n = len(rows)
        shape = (n, *self.store.shape[1:])
        k = self._turn
        self._turn ^= 1
        if len(self._pinned) < 2 or self._pinned[k].shape[0] < n:
            try:
                buf = torch.empty(shape, dtype=self.store.dtype).pin_memory()
            except RuntimeError:  # no pinned memory: a plain (blocking) copy
                return self.store[rows].to(self.device)
            if len(self._pinned) < 2:
                self._pinned.append(buf)
                self._events.append(None)
                k = len(self._pinned) - 1
            else:
                self._pinned[k] = buf
        if self._events[k] is not None:
            self._events[k].synchronize()  # the copy from this buffer two batches ago has finished
        out = self._pinned[k][:n]
        torch.index_select(self.store, 0, rows, out=out)
        x = out.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._events[k] = event
        return x


def stage_views(views: Sequence[ImageDataset], device: torch.device,
                keep_on_device: bool | None = None) -> list[DeviceImages]:
    """Stage several views of data sets (e.g. the training and validation split) for ``device``.

    Views of one storage share one staged copy. On CUDA: uint8 (converted from exact ``k/255``
    floats), resident when ``keep_on_device`` is true or, when ``None``, when the bytes needed take
    under half of :func:`available_device_memory`; else pinned host memory. A view that covers under
    half of its storage is gathered first, so only its own images are staged.
    """
    device = torch.device(device)
    staged: dict[int, tuple[Tensor, bool, dict]] = {}
    out: list[DeviceImages] = []
    groups: dict[int, list[ImageDataset]] = {}
    for v in views:
        groups.setdefault(id(v.storage), []).append(v)
    for v in views:
        key = id(v.storage)
        if key not in staged:
            staged[key] = _stage_storage(groups[key], device, keep_on_device)
        store, resident, remap = staged[key]
        index = v.index if remap is None else remap[id(v)]
        out.append(DeviceImages(store, index, device, resident))
    return out


def _stage_storage(group: list[ImageDataset], device: torch.device, keep_on_device: bool | None):
    storage = group[0].storage
    if device.type == "cpu" or storage.device == device:
        return storage, storage.device == device, None
    used = sum(len(v) for v in group)
    remap = None
    host = storage.cpu()
    if any(v.index is None for v in group) or used >= 0.5 * len(storage):
        pass  # stage the whole storage, index with each view's own index
    else:  # gather only what the views use
        parts, remap, start = [], {}, 0
        for v in group:
            parts.append(v.index)
            remap[id(v)] = torch.arange(start, start + len(v))
            start += len(v)
        host = host[torch.cat(parts)]
    if host.is_floating_point() and exact_uint8(host):
        host = to_uint8(host)
    nbytes = host.numel() * host.element_size()
    resident = bool(keep_on_device) if keep_on_device is not None else nbytes <= 0.5 * available_device_memory(device)
    store = host.to(device) if resident else host
    return store, resident, remap
