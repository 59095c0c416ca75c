"""dSprites: the procedural generator against the official index formula and grids, geometry of the
sprites, the official-format npz loader (with a Python-2 pickled metadata entry) and load_dsprites."""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
import torch

from vae.data import dsprites as D
from vae.data.dsprites import (
    DSPRITES_FILENAME,
    LATENTS_BASES,
    LATENTS_SIZES,
    generate_dsprites,
    load_dsprites,
    load_dsprites_npz,
)

SIZES = (1, 3, 6, 40, 32, 32)


def _idx(classes):
    """Flat index from classes with the official README formula, written out independently."""
    sizes = np.array(SIZES)
    bases = np.concatenate((sizes[::-1].cumprod()[::-1][1:], np.array([1])))
    return np.asarray(classes) @ bases


def _img(shape, scale, orient, x, y):
    return generate_dsprites([_idx([0, shape, scale, orient, x, y])])[0][0]


# ----------------------------------------------------------------------------- grid and ordering
def test_bases_and_sizes_are_official():
    assert LATENTS_SIZES.tolist() == list(SIZES)
    assert LATENTS_BASES.tolist() == [737280, 245760, 40960, 1024, 32, 1]
    assert D.N_IMAGES == 737280 == 3 * 6 * 40 * 32 * 32


def test_factor_values_are_the_official_grids():
    v = D.LATENTS_POSSIBLE_VALUES
    assert list(v) == list(D.FACTOR_NAMES) == ["color", "shape", "scale", "orientation", "posX", "posY"]
    assert np.array_equal(v["color"], [1.0])
    assert np.array_equal(v["shape"], [1.0, 2.0, 3.0])
    assert np.array_equal(v["scale"], np.linspace(0.5, 1.0, 6))
    assert np.array_equal(v["orientation"], np.linspace(0, 2 * np.pi, 40))
    assert v["orientation"][0] == 0.0 and v["orientation"][-1] == 2 * np.pi
    assert np.array_equal(v["posX"], np.linspace(0, 1, 32)) and np.array_equal(v["posY"], np.linspace(0, 1, 32))


def test_random_indices_decompose_like_the_index_formula():
    rng = np.random.default_rng(1)
    idx = np.concatenate([[0, 1, 31, 32, 1023, 1024, 737279], rng.integers(0, 737280, 500)])
    imgs, values, classes = generate_dsprites(idx)
    assert classes.dtype == np.int64 and values.dtype == np.float64 and imgs.dtype == np.uint8
    assert classes.shape == values.shape == (len(idx), 6) and imgs.shape == (len(idx), 64, 64)
    expected = np.stack(np.unravel_index(idx, SIZES), axis=1)  # C order: last (posY) fastest
    assert np.array_equal(classes, expected)
    assert np.array_equal(_idx(classes), idx)
    grids = [np.array([1.0]), np.array([1.0, 2, 3]), np.linspace(0.5, 1, 6), np.linspace(0, 2 * np.pi, 40),
             np.linspace(0, 1, 32), np.linspace(0, 1, 32)]
    assert np.array_equal(values, np.stack([g[classes[:, j]] for j, g in enumerate(grids)], axis=1))
    # posY fastest: consecutive indices differ by one posY class
    assert classes[1].tolist() == [0, 0, 0, 0, 0, 1] and classes[3].tolist() == [0, 0, 0, 0, 1, 0]
    assert classes[6].tolist() == [0, 2, 5, 39, 31, 31]


def test_generated_subset_matches_its_own_images_in_any_order():
    idx = np.array([5000, 12, 737279, 12, 400000])
    imgs = generate_dsprites(idx)[0]
    for k, i in enumerate(idx):
        assert np.array_equal(imgs[k], generate_dsprites([i])[0][0])
    assert np.array_equal(imgs[1], imgs[3])


def test_bad_indices_raise():
    with pytest.raises(ValueError, match="737280"):
        generate_dsprites([737280])
    with pytest.raises(ValueError):
        generate_dsprites([-1])


# ----------------------------------------------------------------------------- images
def _all_sprites_at(x, y):
    cl = np.array([[0, s, k, o, x, y] for s in range(3) for k in range(6) for o in range(40)])
    return generate_dsprites(_idx(cl))[0].reshape(3, 6, 40, 64, 64)


def test_orientation_zero_and_two_pi_are_identical():
    for x, y in [(0, 0), (13, 27), (31, 31)]:
        imgs = _all_sprites_at(x, y)
        assert np.array_equal(imgs[:, :, 0], imgs[:, :, 39])
        assert not np.array_equal(imgs[1, 5, 0], imgs[1, 5, 10])  # but other angles differ


def test_images_binary_nonempty_and_inside_the_frame():
    corners = [_all_sprites_at(x, y) for x, y in [(0, 0), (31, 0), (0, 31), (31, 31), (16, 16)]]
    for imgs in corners:
        assert set(np.unique(imgs).tolist()) == {0, 1}
        counts = imgs.sum(axis=(-1, -2))
        assert counts.min() >= 20
        # nothing on the outermost two rows/columns: the sprite is never clipped
        assert imgs[..., :2, :].sum() == 0 and imgs[..., -2:, :].sum() == 0
        assert imgs[..., :, :2].sum() == 0 and imgs[..., :, -2:].sum() == 0
    # same pixel count at every position: translation never clips
    for imgs in corners[1:]:
        assert np.array_equal(imgs.sum(axis=(-1, -2)), corners[0].sum(axis=(-1, -2)))
    # sprite centres span pixels 16..47 (the central half); centroids of asymmetric shapes a little more
    rows = np.arange(64)
    for imgs in corners:
        cy = (imgs.sum(-1) * rows).sum(-1) / imgs.sum((-1, -2))
        cx = (imgs.sum(-2) * rows).sum(-1) / imgs.sum((-1, -2))
        assert cy.min() > 13 and cy.max() < 51 and cx.min() > 13 and cx.max() < 51


def test_shapes_differ_and_have_their_analytic_areas():
    imgs = _all_sprites_at(16, 16)
    for k in range(6):
        for o in range(40):
            a, b, c = imgs[0, k, o], imgs[1, k, o], imgs[2, k, o]
            assert not np.array_equal(a, b) and not np.array_equal(b, c) and not np.array_equal(a, c)
    scales = np.linspace(0.5, 1, 6)
    area = imgs.sum(axis=(-1, -2)).mean(axis=-1)  # mean over orientations, (3, 6)
    expected = np.stack([(2 * D._SQUARE_HALF * scales) ** 2,
                         np.pi * D._ELLIPSE_AXES[0] * D._ELLIPSE_AXES[1] * scales ** 2,
                         3.6595 * (D._HEART_UNIT * scales) ** 2])  # heart area: integral of the implicit curve
    np.testing.assert_allclose(area, expected, rtol=0.08)
    # area grows with scale for every shape
    assert np.all(np.diff(area, axis=1) > 0)


def test_orientation_zero_geometry_and_rotation_direction():
    sq = _img(0, 5, 0, 16, 16)
    r, c = np.nonzero(sq)
    assert sq[r.min():r.max() + 1, c.min():c.max() + 1].all()  # axis-aligned square fills its box
    assert r.max() - r.min() == c.max() - c.min() == 17
    el = _img(1, 5, 0, 16, 16)
    r, c = np.nonzero(el)
    assert (c.max() - c.min()) > 1.8 * (r.max() - r.min())  # long axis horizontal
    # orientation class 5 (~46 degrees), counter-clockwise on screen: long axis from lower-left to upper-right
    el = _img(1, 5, 5, 16, 16)
    r, c = np.nonzero(el)
    assert np.cov(c, -r)[0, 1] > 0
    heart = _img(2, 5, 0, 16, 16)
    r, c = np.nonzero(heart)
    assert np.array_equal(heart, heart[:, ::-1])  # mirror-symmetric about its vertical axis (x = 32)
    # the point is at the bottom: the lowest row is much narrower than the widest row ...
    widths = heart.sum(axis=1)
    assert widths[r.max()] <= 4 and widths.max() >= 18
    # ... and the notch between the two lobes is at the top: the top rows hold two separate runs
    runs = [np.count_nonzero(np.diff(np.r_[0, heart[i], 0].astype(int)) == 1) for i in range(r.min(), r.min() + 3)]
    assert max(runs) == 2
    assert r.mean() < (r.min() + r.max()) / 2  # mass above the bounding-box centre (lobes on top)


def test_translation_is_a_pure_shift_posx_columns_posy_rows():
    rng = np.random.default_rng(0)
    for _ in range(20):
        s, k, o = rng.integers(3), rng.integers(6), rng.integers(40)
        x, y = rng.integers(32, size=2)
        base = _img(s, k, o, 0, 0)
        moved = _img(s, k, o, x, y)
        assert np.array_equal(moved, np.roll(base, (y, x), axis=(0, 1)))
    r0 = np.nonzero(_img(0, 5, 0, 0, 0))[0].min()
    assert np.nonzero(_img(0, 5, 0, 0, 7))[0].min() == r0 + 7  # posY moves rows (down)
    assert np.nonzero(_img(0, 5, 0, 7, 0))[1].min() == np.nonzero(_img(0, 5, 0, 0, 0))[1].min() + 7


def test_deterministic_across_rebuilds():
    idx = np.random.default_rng(3).integers(0, 737280, 300)
    a = generate_dsprites(idx)
    D.sprite_bank.cache_clear()
    D._canvases.cache_clear()
    b = generate_dsprites(idx)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)


# ----------------------------------------------------------------------------- official npz format
def _py2_pickle(obj) -> bytes:
    """A protocol-2 pickle as Python 2 + numpy wrote it: str as byte strings (SHORT_BINSTRING /
    BINSTRING), ndarray data as a byte string, numpy.core.multiarray._reconstruct."""
    out = io.BytesIO()

    def s(b: bytes):
        if len(b) < 256:
            out.write(b"U" + bytes([len(b)]) + b)
        else:
            out.write(b"T" + struct.pack("<i", len(b)) + b)

    def w(o):
        if o is None:
            out.write(b"N")
        elif isinstance(o, bool):
            out.write(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            out.write(b"J" + struct.pack("<i", o))
        elif isinstance(o, float):
            out.write(b"G" + struct.pack(">d", o))
        elif isinstance(o, (str, bytes)):
            s(o.encode("latin1") if isinstance(o, str) else o)
        elif isinstance(o, tuple):
            out.write(b"(")
            for x in o:
                w(x)
            out.write(b"t")
        elif isinstance(o, dict):
            out.write(b"}(")
            for k, v in o.items():
                w(k)
                w(v)
            out.write(b"u")
        elif isinstance(o, np.ndarray):
            out.write(b"cnumpy.core.multiarray\n_reconstruct\n")
            out.write(b"(cnumpy\nndarray\n(J\x00\x00\x00\x00tU\x01btR")
            out.write(b"(J\x01\x00\x00\x00")
            w(tuple(int(n) for n in o.shape))
            out.write(b"cnumpy\ndtype\n(")
            w(o.dtype.str[1:])
            out.write(b"J\x00\x00\x00\x00J\x01\x00\x00\x00tR")
            w((3, o.dtype.str[0], None, None, None, -1, -1, 0))
            out.write(b"b\x89")
            s(o.tobytes())
            out.write(b"tb")
        else:
            raise TypeError(type(o))

    out.write(b"\x80\x02")
    w(obj)
    out.write(b".")
    return out.getvalue()


def _official_metadata():
    return {
        "date": "April 2017",
        "description": "Disentanglement test Sprites dataset. Caf\xe9 \xb5 (non-ASCII on purpose)",
        "version": 1,
        "latents_names": ("color", "shape", "scale", "orientation", "posX", "posY"),
        "latents_possible_values": {k: np.asarray(v, dtype=np.float64) for k, v in D.LATENTS_POSSIBLE_VALUES.items()},
        "latents_sizes": np.array(SIZES, dtype=np.int64),
        "author": "lmatthey@google.com",
        "title": "dSprites dataset",
    }


def write_official_npz(path, idx, imgs=None, drop=None, **override):
    """An npz in the official layout: imgs uint8, latents_values f8, latents_classes i8 (via np.savez),
    plus a metadata.npy whose pickle is Python-2 style (needs encoding='latin1')."""
    g_imgs, values, classes = generate_dsprites(idx)
    arrays = {"imgs": g_imgs if imgs is None else imgs, "latents_values": values, "latents_classes": classes}
    arrays.update(override)
    if drop:
        arrays.pop(drop, None)
    np.savez_compressed(path, **arrays)
    if drop != "metadata":
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
        header = buf.getvalue()  # magic string + header dict, as np.save writes it
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata.npy", header + _py2_pickle(_official_metadata()))
    return path


def test_official_format_npz_loads_with_latin1_metadata(tmp_path):
    idx = np.sort(np.random.default_rng(5).choice(737280, 64, replace=False))
    p = write_official_npz(tmp_path / DSPRITES_FILENAME, idx)
    # the metadata really is a Python-2 pickle: the default (ASCII) decoding fails on it
    with np.load(p, allow_pickle=True) as f, pytest.raises(UnicodeError):
        f["metadata"]
    imgs, values, classes, meta = load_dsprites_npz(p)
    ref = generate_dsprites(idx)
    assert np.array_equal(imgs, ref[0]) and np.array_equal(values, ref[1]) and np.array_equal(classes, ref[2])
    assert meta["title"] == "dSprites dataset" and meta["description"].startswith("Disentanglement")
    assert "Caf\xe9" in meta["description"]
    assert meta["latents_names"] == D.FACTOR_NAMES
    assert np.array_equal(meta["latents_sizes"], SIZES)
    assert np.array_equal(meta["latents_possible_values"]["orientation"], np.linspace(0, 2 * np.pi, 40))
    # index formula from the file's own metadata, as in the official README
    sizes = meta["latents_sizes"]
    bases = np.concatenate((sizes[::-1].cumprod()[::-1][1:], np.array([1])))
    assert np.array_equal(classes @ bases, idx)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"drop": "latents_classes"}, "missing key"),
        ({"drop": "metadata"}, "missing key"),
        ({"imgs": np.zeros((8, 32, 32), np.uint8)}, r"imgs must be \(M, 64, 64\)"),
        ({"latents_values": np.zeros((8, 5))}, r"latents_values must be \(8, 6\)"),
        ({"latents_classes": np.zeros((7, 6), np.int64)}, r"latents_classes must be \(8, 6\)"),
        ({"latents_classes": np.full((8, 6), 50, np.int64)}, "out of range"),
    ],
)
def test_npz_validation_errors(tmp_path, kwargs, match):
    p = write_official_npz(tmp_path / "bad.npz", np.arange(8), **kwargs)
    with pytest.raises(ValueError, match=match):
        load_dsprites_npz(p)


def test_npz_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_dsprites_npz(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- load_dsprites
def test_load_dsprites_subset_procedural(tmp_path):
    ds = load_dsprites(max_samples=500, seed=7, cache_dir=tmp_path, cache=False)
    assert len(ds) == 500 and ds.images.dtype == torch.float32 and ds.image_shape == (1, 64, 64)
    assert set(torch.unique(ds.images).tolist()) == {0.0, 1.0}
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factors.dtype == np.int64 and ds.factors.shape == (500, 5)
    assert np.array_equal(ds.factor_values["scale"], np.linspace(0.5, 1, 6))
    idx = np.sort(np.random.default_rng(7).choice(737280, 500, replace=False))
    imgs, _, classes = generate_dsprites(idx)
    assert np.array_equal(ds.factors, classes[:, 1:])
    assert torch.equal(ds.images[:, 0], torch.from_numpy(imgs).float())
    again = load_dsprites(max_samples=500, seed=7, cache_dir=tmp_path, cache=False)
    assert torch.equal(again.images, ds.images)
    other = load_dsprites(max_samples=500, seed=8, cache_dir=tmp_path, cache=False)
    assert not np.array_equal(other.factors, ds.factors)
    assert list(tmp_path.iterdir()) == []  # cache=False writes nothing


def test_load_dsprites_prefers_official_npz(tmp_path, monkeypatch):
    import hashlib

    idx = np.arange(0, 737280, 9001)
    write_official_npz(tmp_path / DSPRITES_FILENAME, idx)
    # the cache folder's file is used only with the official md5 (tests/test_reliability_npz.py)
    monkeypatch.setattr(D, "DSPRITES_MD5", hashlib.md5((tmp_path / DSPRITES_FILENAME).read_bytes()).hexdigest())
    ds = load_dsprites(cache_dir=tmp_path)
    assert ds.name == "dsprites-npz" and len(ds) == len(idx)
    assert np.array_equal(ds.factors, generate_dsprites(idx)[2][:, 1:])
    sub = load_dsprites(max_samples=10, seed=0, path=tmp_path / DSPRITES_FILENAME)
    assert len(sub) == 10 and set(map(tuple, sub.factors)) <= set(map(tuple, ds.factors))


@pytest.mark.slow
def test_full_generation_and_disk_cache(tmp_path):
    import time

    t = time.perf_counter()
    imgs, values, classes = generate_dsprites()
    print(f"\nall 737,280 images in {time.perf_counter() - t:.1f} s")
    assert imgs.shape == (737280, 64, 64) and values.shape == classes.shape == (737280, 6)
    assert np.array_equal(classes @ LATENTS_BASES, np.arange(737280))
    rng = np.random.default_rng(0)
    probe = rng.integers(0, 737280, 2000)
    assert np.array_equal(imgs[probe], generate_dsprites(probe)[0])
    counts = imgs.reshape(3, 6, 40, 32, 32, -1).sum(-1)  # pixel count invariant under translation
    assert (counts == counts[..., :1, :1]).all()
    del imgs
    t = time.perf_counter()
    path = D.build_dsprites_cache(tmp_path)
    print(f"packed cache in {time.perf_counter() - t:.1f} s, {path.stat().st_size / 1e6:.0f} MB")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left over
    a = load_dsprites(max_samples=3000, seed=2, cache_dir=tmp_path)
    b = load_dsprites(max_samples=3000, seed=2, cache_dir=tmp_path, cache=False)
    assert torch.equal(a.images, b.images) and np.array_equal(a.factors, b.factors)
