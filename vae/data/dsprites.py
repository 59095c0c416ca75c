"""dSprites: a fast procedural generator with the official factor grid and ordering, and the official npz.

The official data set (Matthey et al. 2017, https://github.com/deepmind/dsprites-dataset) has
737,280 binary 64x64 images, every combination of six factors once:

=============  =====  =========================================  ==========================
factor         size   values (``latents_values``)                here
=============  =====  =========================================  ==========================
color          1      1.0 (white)
shape          3      1, 2, 3 (square, ellipse, heart)           implicit functions
scale          6      linspace(0.5, 1, 6)                        multiplies the sprite size
orientation    40     linspace(0, 2*pi, 40) (0 and 2*pi both in)  rotation, counter-clockwise
posX           32     linspace(0, 1, 32)                         column shift, 1 px per class
posY           32     linspace(0, 1, 32)                         row shift (down), 1 px/class
=============  =====  =========================================  ==========================

``index = latents_classes @ LATENTS_BASES`` with ``LATENTS_BASES = (737280, 245760, 40960, 1024,
32, 1)``, computed as in the official README: ``concatenate((sizes[::-1].cumprod()[::-1][1:], [1]))``,
so posY varies fastest.

The official sprites were drawn by an unpublished script, so the images here are a documented
re-implementation, not a copy: each (shape, scale, orientation) sprite is rasterised once from its
implicit function (tested at pixel centres) on a 32x32 patch centred on the patch's middle, and the
32x32 positions are exact one-pixel translations of that patch inside the 64x64 frame (sprite centre
at pixel coordinate 16 + class, so centres span the central half [16, 47] and every shape stays in
the frame). Sprite sizes at scale 1: square side 18 px, ellipse axes 24 x 12 px, heart about 21 px
wide; they were chosen so the mean foreground fraction is close to the official file's (~0.042,
a statistic quoted by third-party loaders). Orientation class 39 (2*pi) is drawn with exactly the
same angle as class 0, so the two images are identical, as in the official file.

>>> imgs, values, classes = generate_dsprites([0, 1, 737279])
>>> imgs.shape, imgs.dtype, classes[2].tolist()
((3, 64, 64), dtype('uint8'), [0, 2, 5, 39, 31, 31])
>>> int(classes[1] @ LATENTS_BASES)
1
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from vae.atomic import atomic_file
from vae.data.dataset import ImageDataset
from vae.data.download import ChecksumError, download, file_digest, verify_file  # noqa: F401

__all__ = [
    "FACTOR_NAMES",
    "LATENTS_SIZES",
    "LATENTS_BASES",
    "LATENTS_POSSIBLE_VALUES",
    "SHAPE_NAMES",
    "N_IMAGES",
    "DSPRITES_URL",
    "DSPRITES_FILENAME",
    "DSPRITES_MD5",
    "index_to_classes",
    "classes_to_index",
    "classes_to_values",
    "sprite_bank",
    "generate_dsprites",
    "build_dsprites_cache",
    "load_dsprites_npz",
    "check_dsprites_npz",
    "verify_official_dsprites",
    "download_dsprites",
    "load_dsprites",
    "default_cache_dir",
]

FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
VARYING_FACTOR_NAMES = FACTOR_NAMES[1:]
SHAPE_NAMES = ("square", "ellipse", "heart")
LATENTS_SIZES = np.array([1, 3, 6, 40, 32, 32], dtype=np.int64)
LATENTS_BASES = np.concatenate((LATENTS_SIZES[::-1].cumprod()[::-1][1:], np.array([1], dtype=np.int64)))
N_IMAGES = int(LATENTS_SIZES.prod())  # 737,280
LATENTS_POSSIBLE_VALUES = {
    "color": np.array([1.0]),
    "shape": np.array([1.0, 2.0, 3.0]),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2.0 * np.pi, 40),
    "posX": np.linspace(0.0, 1.0, 32),
    "posY": np.linspace(0.0, 1.0, 32),
}

DSPRITES_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset/raw/master/" + DSPRITES_FILENAME
# MD5 of the official npz. DeepMind's repository publishes no checksum; this value is the one used,
# independently, by several public loaders of the same file (e.g. pythae/avalanche-style
# ``Resource(..., md5=...)`` definitions and torchvision-style dSprites classes found via code
# search), so a mismatch most likely means a corrupt or changed file.
DSPRITES_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
# Size of the official file in bytes is not published either; ~26 MB compressed (npz, deflated).

IMAGE_SIZE = 64
PATCH = 32  # sprite patch side; sprite centre at patch coordinate (16, 16)
_CACHE_VERSION = "v1"
_N_SPRITES = 3 * 6 * 40  # 720 (shape, scale, orientation) combinations

# Sprite geometry at scale 1, in pixels.
_SQUARE_HALF = 9.0
_ELLIPSE_AXES = (12.0, 6.0)  # semi-axes (horizontal, vertical) at orientation 0
_HEART_UNIT = 9.0  # pixels per unit of the implicit heart (x^2+y^2-1)^3 - x^2 y^3 <= 0
_HEART_Y_CENTRE = (1.236 - 1.0) / 2.0  # centre of the heart's bounding box (units, y up)


def default_cache_dir() -> Path:
    """``$PGM_VI_VAE_CACHE/dsprites`` or ``~/.cache/pgm-vi-vae/dsprites``."""
    root = os.environ.get("PGM_VI_VAE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pgm-vi-vae") / "dsprites"


# ----------------------------------------------------------------------------- index arithmetic
def index_to_classes(indices) -> np.ndarray:
    """(M,) flat indices -> (M, 6) int64 latent classes (color, shape, scale, orientation, posX, posY)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= N_IMAGES):
        raise ValueError(f"dSprites indices must be in [0, {N_IMAGES}); got min {idx.min()}, max {idx.max()}")
    return (idx[:, None] // LATENTS_BASES[None, :]) % LATENTS_SIZES[None, :]


def classes_to_index(classes) -> np.ndarray:
    """(M, 6) latent classes -> (M,) flat indices (``classes @ LATENTS_BASES``)."""
    classes = np.asarray(classes, dtype=np.int64)
    if classes.shape[-1] != 6:
        raise ValueError(f"latent classes must have 6 columns {FACTOR_NAMES}; got shape {classes.shape}")
    if np.any(classes < 0) or np.any(classes >= LATENTS_SIZES):
        raise ValueError(f"latent classes out of range; sizes are {LATENTS_SIZES.tolist()}")
    return classes @ LATENTS_BASES


def classes_to_values(classes) -> np.ndarray:
    """(M, 6) latent classes -> (M, 6) float64 latent values (``grid[name][class]`` per column)."""
    classes = np.asarray(classes, dtype=np.int64)
    return np.stack([LATENTS_POSSIBLE_VALUES[n][classes[:, j]] for j, n in enumerate(FACTOR_NAMES)], axis=1)


# ----------------------------------------------------------------------------- rasterisation
def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Implicit inside-test in sprite coordinates (pixels at scale 1, y up, sprite centre at 0)."""
    if shape == 0:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF
    if shape == 1:  # ellipse, long axis horizontal at orientation 0
        a, b = _ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if shape == 2:  # heart, point down at orientation 0; centred on its bounding box
        x = u / _HEART_UNIT
        y = v / _HEART_UNIT + _HEART_Y_CENTRE
        return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0
    raise ValueError(f"shape class must be 0, 1 or 2 ({SHAPE_NAMES}); got {shape}")


@lru_cache(maxsize=1)
def sprite_bank() -> np.ndarray:
    """The 720 centred sprites, (3, 6, 40, 32, 32) bool, indexed by (shape, scale, orientation) class.

    Pixel (i, j) of the patch has its centre at (j + 0.5 - 16, 16 - i - 0.5) in y-up coordinates
    relative to the sprite centre; a pixel is on when its centre, rotated back by the orientation
    and divided by the scale, lies inside the shape.
    """
    c = np.arange(PATCH) + 0.5 - PATCH / 2
    dx = c[None, :]  # columns: x to the right
    dy = -c[:, None]  # rows go down, y goes up
    scales = LATENTS_POSSIBLE_VALUES["scale"]
    # Orientation class 39 is 2*pi: use the angle of class 0 so the two images are bit-identical.
    n_or = int(LATENTS_SIZES[3])
    angles = (np.arange(n_or) % (n_or - 1)) * (2.0 * np.pi / (n_or - 1))
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    u0 = cos * dx + sin * dy  # rotate the pixel grid by -theta == rotate the shape by +theta
    v0 = -sin * dx + cos * dy
    bank = np.zeros((3, len(scales), n_or, PATCH, PATCH), dtype=bool)
    for shape in range(3):
        for k, s in enumerate(scales):
            bank[shape, k] = _inside(shape, u0 / s, v0 / s)
    bank.setflags(write=False)
    return bank


@lru_cache(maxsize=1)
def _canvases() -> np.ndarray:
    """(720, 95, 95) uint8: each sprite at rows/cols 31..62 of a zero canvas, so that the 64x64
    window at (31 - posY, 31 - posX) is the image with the sprite shifted by (posY, posX)."""
    side = IMAGE_SIZE + PATCH - 1
    canv = np.zeros((_N_SPRITES, side, side), dtype=np.uint8)
    canv[:, PATCH - 1 : 2 * PATCH - 1, PATCH - 1 : 2 * PATCH - 1] = sprite_bank().reshape(_N_SPRITES, PATCH, PATCH)
    canv.setflags(write=False)
    return canv


def _render(classes: np.ndarray) -> np.ndarray:
    """(M, 6) classes -> (M, 64, 64) uint8 in {0, 1} (vectorised gather from sliding windows)."""
    windows = np.lib.stride_tricks.sliding_window_view(_canvases(), (IMAGE_SIZE, IMAGE_SIZE), axis=(1, 2))
    sprite = (classes[:, 1] * 6 + classes[:, 2]) * 40 + classes[:, 3]
    return windows[sprite, PATCH - 1 - classes[:, 5], PATCH - 1 - classes[:, 4]]


def generate_dsprites(indices=None, chunk_size: int = 65536):
    """Procedural dSprites images for ``indices`` (all 737,280 in the official order when ``None``).

    Returns ``(imgs, latents_values, latents_classes)``: (M, 64, 64) uint8 in {0, 1}, (M, 6) float64
    and (M, 6) int64, in the layout of the official npz. Only the requested images are built
    (the full set is 3 GB of uint8: pass indices, or use :func:`load_dsprites` which caches a
    bit-packed copy). Deterministic: no randomness is involved.
    """
    idx = np.arange(N_IMAGES, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    classes = index_to_classes(idx)
    imgs = np.empty((len(idx), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for a in range(0, len(idx), chunk_size):
        imgs[a : a + chunk_size] = _render(classes[a : a + chunk_size])
    return imgs, classes_to_values(classes), classes


def _metadata() -> dict:
    """Metadata dict in the layout of the official file's ``metadata`` entry."""
    return {
        "date": "procedural re-implementation (pgm-vi-vae)",
        "description": "Procedurally generated 2D shapes dataset (re-implementation of dSprites).",
        "version": 1,
        "latents_names": FACTOR_NAMES,
        "latents_possible_values": {k: v.copy() for k, v in LATENTS_POSSIBLE_VALUES.items()},
        "latents_sizes": LATENTS_SIZES.copy(),
        "author": "re-implementation of Matthey, Higgins, Hassabis, Lerchner (2017)",
        "title": "dSprites dataset (procedural)",
    }


# ----------------------------------------------------------------------------- disk cache
def _packed_cache_path(cache_dir: Path) -> Path:
    return cache_dir / f"dsprites_procedural_{_CACHE_VERSION}_packed.npy"


def build_dsprites_cache(cache_dir=None, chunk_size: int = 46080, progress: bool = False) -> Path:
    """Write all 737,280 procedural images, bit-packed along the width ((N, 64, 8) uint8, 377 MB),
    to ``cache_dir`` as an ``.npy`` (atomic: temporary file + ``os.replace``); returns its path.
    Skips the work when the file already exists. Never holds more than one chunk unpacked."""
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = _packed_cache_path(cache_dir)
    if path.exists():
        return path
    with atomic_file(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(N_IMAGES, IMAGE_SIZE, IMAGE_SIZE // 8))
        starts = range(0, N_IMAGES, chunk_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="dSprites cache", unit="chunk")
        for a in starts:
            b = min(a + chunk_size, N_IMAGES)
            out[a:b] = np.packbits(_render(index_to_classes(np.arange(a, b))), axis=-1)
        out.flush()
        del out
    return path


def _to_uint8_tensor(n: int, get_chunk, chunk: int = 16384) -> torch.Tensor:
    """An (n, 1, 64, 64) uint8 tensor (0 or 255, i.e. ``k/255`` images in {0, 1}) filled chunk by chunk
    from ``get_chunk(a, b)`` ((b - a, 64, 64) uint8 in {0, 1}): 2.9 GB for the whole set, no float copy."""
    out = torch.empty((n, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        out[a:b, 0] = torch.from_numpy(np.ascontiguousarray(get_chunk(a, b))).mul_(255)
    return out


# ----------------------------------------------------------------------------- official file
_NPZ_KEYS = ("imgs", "latents_values", "latents_classes", "metadata")
DSPRITES_MAX_BYTES = 64 << 20  # download cap; the official npz is about 26 MB


def _fail(path, what: str):
    raise ValueError(f"{path} is not a valid dSprites npz: {what}")


def _inspect_npz(path: Path):
    """Structure of an official-format npz from its zip directory and ``.npy`` headers only (no
    array data read, nothing unpickled): ``({key: (shape, dtype)}, metadata)``. ``ValueError``
    naming the problem otherwise."""
    import zipfile
    import zlib

    from vae.data.safe_npz import UnsafePickle, npz_header, npz_members, read_npz_object

    if not zipfile.is_zipfile(path):
        _fail(path, "not an npz (zip) archive; pickles and .npy files are never loaded")
    try:
        with zipfile.ZipFile(path) as zf:
            members = npz_members(zf)
            missing = [k for k in _NPZ_KEYS if k not in members]
            if missing:
                _fail(path, f"missing key(s) {missing}; found {sorted(members)}, need {list(_NPZ_KEYS)}")
            headers = {}
            for key in _NPZ_KEYS[:3]:
                try:
                    shape, dtype = npz_header(zf, members[key])
                except ValueError as err:
                    _fail(path, f"{key} has a malformed .npy header ({err})")
                if dtype.hasobject or dtype.kind not in "biuf":
                    _fail(path, f"{key} has dtype {dtype}; only numeric arrays are read")
                if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > members[key].file_size:
                    _fail(path, f"{key} declares shape {shape} but its entry holds only {members[key].file_size} bytes")
                headers[key] = (shape, dtype)
            try:
                meta = read_npz_object(zf, members["metadata"])
            except UnsafePickle as err:
                _fail(path, f"its metadata is not plain data ({err}); nothing in it was run")
            except ValueError as err:
                _fail(path, f"its metadata is unreadable ({err})")
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        _fail(path, f"unreadable archive ({type(err).__name__}: {err})")
    shape = headers["imgs"][0]
    if len(shape) != 3 or tuple(shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        _fail(path, f"imgs must be (M, 64, 64); got {tuple(shape)}")
    m = shape[0]
    for name in ("latents_values", "latents_classes"):
        if tuple(headers[name][0]) != (m, 6):
            _fail(path, f"{name} must be ({m}, 6) to match imgs; got {tuple(headers[name][0])}")
    if headers["latents_classes"][1].kind not in "iu":
        _fail(path, f"latents_classes must hold integers; got {headers['latents_classes'][1]}")
    return headers, meta


def check_dsprites_npz(path) -> Path:
    """Check an official-format npz's keys, shapes, dtypes and metadata without reading the images
    (cheap; what :func:`download_dsprites` runs on a download before moving it into place)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"dSprites npz not found: {path}")
    _inspect_npz(path)
    return path


def load_dsprites_npz(path):
    """Load the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (or any file in its format).

    Returns ``(imgs, latents_values, latents_classes, metadata)``: imgs (M, 64, 64) uint8,
    latents_values (M, 6) float64, latents_classes (M, 6) int64, metadata a dict. Nothing is ever
    unpickled: the arrays are read with ``allow_pickle=False`` and the metadata (a Python-2
    pickle in the official file) by :func:`vae.data.safe_npz.read_pickled_data`, which builds
    plain data only and refuses any callable. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` naming the problem for anything else (not an npz, missing keys, wrong shapes or
    dtypes, metadata that is not plain data, out-of-range classes).
    """
    import zipfile
    import zlib

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"dSprites npz not found: {path}")
    _, meta = _inspect_npz(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            imgs = f["imgs"]
            values = np.asarray(f["latents_values"], dtype=np.float64)
            classes = np.asarray(f["latents_classes"]).astype(np.int64, copy=False)
    except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        _fail(path, f"unreadable arrays ({type(err).__name__}: {err})")
    if imgs.ndim != 3 or imgs.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        _fail(path, f"imgs must be (M, 64, 64); got {imgs.shape}")
    m = imgs.shape[0]
    for name, arr in (("latents_values", values), ("latents_classes", classes)):
        if arr.shape != (m, 6):
            _fail(path, f"{name} must be ({m}, 6) to match imgs; got {arr.shape}")
    if m and (classes.min() < 0 or np.any(classes.max(axis=0) >= LATENTS_SIZES)):
        _fail(path, f"latents_classes out of range for sizes {LATENTS_SIZES.tolist()}")
    if imgs.dtype != np.uint8:
        imgs = imgs.astype(np.uint8)
    return imgs, values, classes, meta


def verify_official_dsprites(path) -> Path:
    """Raise :class:`vae.data.download.ChecksumError` (a ``ValueError``) unless ``path`` is the
    official npz (md5 :data:`DSPRITES_MD5`); the message says what to do instead."""
    path = Path(path)
    got = file_digest(path, "md5")
    if got != DSPRITES_MD5:
        raise ChecksumError(
            f"{path} is not the official dSprites file (md5 {got}, expected {DSPRITES_MD5}), so it was not "
            f"loaded. Delete it (without it the procedural generator is used), fetch the official file with "
            f"vae.data.dsprites.download_dsprites(), or pass a file you trust explicitly (path=..., --data-path)")
    return path


def download_dsprites(dest_dir=None, url: str = DSPRITES_URL, md5: str | None = DSPRITES_MD5, progress: bool = True) -> Path:
    """Download the official npz into ``dest_dir`` (default: the cache dir), size-capped, md5-verified
    and structure-checked (keys, shapes, dtypes, metadata) *before* it is moved into place, so a bad
    download never lands where :func:`load_dsprites` looks. Returns the file's path. Offline:
    :class:`vae.data.download.OfflineError` telling where to place the file by hand."""
    dest_dir = Path(dest_dir).expanduser() if dest_dir is not None else default_cache_dir()
    return download(url, dest_dir / DSPRITES_FILENAME, md5=md5, progress=progress,
                    max_bytes=DSPRITES_MAX_BYTES, validate=check_dsprites_npz)


# ----------------------------------------------------------------------------- data set
def _select(n_total: int, max_samples, seed: int) -> np.ndarray:
    if max_samples is None or max_samples >= n_total:
        return np.arange(n_total, dtype=np.int64)
    if max_samples <= 0:
        raise ValueError(f"max_samples must be positive or None; got {max_samples}")
    return np.sort(np.random.default_rng(seed).choice(n_total, int(max_samples), replace=False))


def load_dsprites(max_samples=None, seed: int = 0, path=None, cache_dir=None, *, cache: bool = True, progress: bool = False) -> ImageDataset:
    """dSprites as an :class:`ImageDataset`: (N, 1, 64, 64) images in {0, 1}, stored as uint8 (0/255;
    ``data.batch(i)`` gives float32, 2.9 GB for all 737,280 images).

    ``factors`` are the classes of the 5 varying factors (shape, scale, orientation, posX, posY),
    ``factor_values`` their value grids. ``max_samples`` draws a random subset with
    ``numpy.random.default_rng(seed)`` (sorted by index; the original report's β-VAE study uses
    200,000).

    Source: ``path`` (an official-format npz, read without unpickling) when given; else the official
    npz if it is in ``cache_dir`` (default ``~/.cache/pgm-vi-vae/dsprites``) and its md5 is the
    official one (any other file there is refused with a ``ValueError``: it is never used
    unverified); else the procedural generator. With
    ``cache=True`` the generator writes the whole set once, bit-packed (377 MB), into ``cache_dir``
    and later calls read only the requested rows from it (memory-mapped); with ``cache=False``
    only the requested images are rendered. No float copy of the set is ever made.
    """
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if path is None and (cache_dir / DSPRITES_FILENAME).exists():
        path = verify_official_dsprites(cache_dir / DSPRITES_FILENAME)
    if path is not None:
        imgs_u8, _, classes, _ = load_dsprites_npz(path)
        idx = _select(len(imgs_u8), max_samples, seed)
        images = _to_uint8_tensor(len(idx), lambda a, b: imgs_u8[idx[a:b]])
        classes = classes[idx]
        name = "dsprites-npz"
    else:
        idx = _select(N_IMAGES, max_samples, seed)
        classes = index_to_classes(idx)
        if cache:
            packed = np.load(build_dsprites_cache(cache_dir, progress=progress), mmap_mode="r")
            images = _to_uint8_tensor(len(idx), lambda a, b: np.unpackbits(packed[idx[a:b]], axis=-1))
        else:
            images = _to_uint8_tensor(len(idx), lambda a, b: _render(classes[a:b]))
        name = "dsprites"
    return ImageDataset(
        images,
        classes[:, 1:].astype(np.int64),
        VARYING_FACTOR_NAMES,
        name,
        {k: LATENTS_POSSIBLE_VALUES[k].copy() for k in VARYING_FACTOR_NAMES},
    )
