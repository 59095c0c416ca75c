"""The factor-aware data interface (vae.data.ground_truth): sampled factors map to the right images."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from vae.data import dsprites
from vae.data.ground_truth import ArrayGridData, DSpritesData, GroundTruthData, as_rng, is_ground_truth_data


# --- dSprites ------------------------------------------------------------------------------------------
def test_dsprites_factors_and_index_formula_by_hand():
    data = DSpritesData()
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert data.factor_sizes == (3, 6, 40, 32, 32) and data.num_factors == 5
    f = data.sample_factors(2000, rng=0)
    assert f.dtype == np.int64 and f.shape == (2000, 5)
    assert np.all(f >= 0) and np.all(f < np.array(data.factor_sizes))
    # every class of every factor appears (uniform draws): orientation has 40 classes in 2000 draws
    assert [len(np.unique(f[:, k])) for k in range(5)] == [3, 6, 40, 32, 32]
    # the official index: posY fastest, written out by hand (colour has one value)
    by_hand = f[:, 0] * 245760 + f[:, 1] * 40960 + f[:, 2] * 1024 + f[:, 3] * 32 + f[:, 4]
    np.testing.assert_array_equal(data.index_of(f), by_hand)
    np.testing.assert_array_equal(data.index_of(f), dsprites.classes_to_index(np.column_stack([np.zeros(2000, int), f])))
    np.testing.assert_array_equal(data.factors_of(by_hand), f)
    np.testing.assert_array_equal(data.dsprites_classes(f)[:, 1:], f)
    assert data.index_of([[2, 5, 39, 31, 31]])[0] == dsprites.N_IMAGES - 1
    np.testing.assert_array_equal(data.factor_bases, [245760, 40960, 1024, 32, 1])


def test_dsprites_images_are_the_generators_images_of_those_factors():
    data = DSpritesData()
    f = data.sample_factors(300, rng=1)
    imgs = data.images_from_factors(f)
    assert imgs.shape == (300, 1, 64, 64) and imgs.dtype == np.float32
    ref, _, classes = dsprites.generate_dsprites(by_hand_index(f))
    np.testing.assert_array_equal(classes[:, 1:], f)  # the generator agrees on which factors it drew
    np.testing.assert_array_equal(imgs[:, 0], ref.astype(np.float32))
    assert set(np.unique(imgs)) <= {0.0, 1.0}
    fs, xs = data.sample(50, rng=7)
    np.testing.assert_array_equal(xs, data.images_from_factors(fs))
    np.testing.assert_array_equal(fs, data.sample_factors(50, rng=7))  # same seed, same draws
    assert data.observation_shape == (1, 64, 64)


def by_hand_index(f):
    return f @ np.array([245760, 40960, 1024, 32, 1])


def test_dsprites_position_factors_move_the_sprite_by_one_pixel():
    # Independent of the generator's code: posX + 1 is the same image one column to the right,
    # posY + 1 one row down, and the foreground's centre of mass moves accordingly.
    data = DSpritesData()
    f = data.sample_factors(200, rng=2)
    f[:, 3] = np.minimum(f[:, 3], 30)
    f[:, 4] = np.minimum(f[:, 4], 30)
    base = data.images_from_factors(f)[:, 0]
    right, down = f.copy(), f.copy()
    right[:, 3] += 1
    down[:, 4] += 1
    np.testing.assert_array_equal(data.images_from_factors(right)[:, 0], np.roll(base, 1, axis=2))
    np.testing.assert_array_equal(data.images_from_factors(down)[:, 0], np.roll(base, 1, axis=1))
    # bigger scale class -> more foreground pixels (same shape, orientation, position)
    small, big = f.copy(), f.copy()
    small[:, 1], big[:, 1] = 0, 5
    assert np.all(data.images_from_factors(big).sum((1, 2, 3)) > data.images_from_factors(small).sum((1, 2, 3)))


class _OfficialOrderArray:
    """Stands in for the official npz's 737,280 images: row i is the procedural image of index i."""

    ndim = 3

    def __init__(self):
        self.reads = []

    def __len__(self):
        return dsprites.N_IMAGES

    def __getitem__(self, idx):
        self.reads.append(np.asarray(idx).copy())
        return dsprites.generate_dsprites(idx)[0]


def test_dsprites_from_an_array_in_the_official_order():
    arr = _OfficialOrderArray()
    data = DSpritesData(images=arr)
    f = DSpritesData().sample_factors(64, rng=3)
    np.testing.assert_array_equal(data.images_from_factors(f), DSpritesData().images_from_factors(f))
    assert np.all(np.diff(arr.reads[-1]) >= 0)  # rows are read in sorted order (fast on a memory map)
    with pytest.raises(ValueError, match="737280"):
        DSpritesData(images=np.zeros((10, 64, 64), np.uint8))


def test_dsprites_rejects_bad_factors():
    data = DSpritesData()
    with pytest.raises(ValueError, match="orientation"):
        data.images_from_factors([[0, 0, 40, 0, 0]])
    with pytest.raises(ValueError, match=r"\(n, 5\)"):
        data.images_from_factors(np.zeros((3, 6), int))
    with pytest.raises(ValueError, match="integer"):
        data.index_of([[0.5, 0, 0, 0, 0]])


# --- a small synthetic data set made here -------------------------------------------------------------
SIZES = (2, 3, 4)


def render(f) -> np.ndarray:
    """A 6 x 8 image of factors (a, b, c): a bar of length b + 1 in row 2a, a dot at column 2c + 1."""
    img = np.zeros((6, 8), np.float32)
    a, b, c = f
    img[2 * a, : b + 1] = 1.0
    img[5, 2 * c + 1] = 0.5
    return img


def synthetic() -> ArrayGridData:
    imgs = np.stack([render(f) for f in itertools.product(*[range(s) for s in SIZES])])  # row-major order
    return ArrayGridData(imgs, SIZES, ("a", "b", "c"))


def test_synthetic_grid_maps_sampled_factors_to_their_images():
    data = synthetic()
    f = data.sample_factors(500, rng=4)
    imgs = data.images_from_factors(f)
    assert imgs.shape == (500, 1, 6, 8)
    for i in range(len(f)):  # a test may loop: the reference is the rendering itself
        np.testing.assert_array_equal(imgs[i, 0], render(f[i]))
    np.testing.assert_array_equal(data.index_of(f), f[:, 0] * 12 + f[:, 1] * 4 + f[:, 2])
    np.testing.assert_array_equal(data.factors_of(np.arange(24)), list(itertools.product(*[range(s) for s in SIZES])))
    assert data.num_images == 24 and data.observation_shape == (1, 6, 8)
    assert is_ground_truth_data(data) and not is_ground_truth_data(np.zeros(3))


def test_synthetic_grid_uint8_and_validation():
    imgs = (np.arange(24, dtype=np.uint8) * 10).reshape(24, 1, 1)
    data = ArrayGridData(imgs, SIZES)
    assert data.factor_names == ("factor_0", "factor_1", "factor_2")
    np.testing.assert_allclose(data.images_from_factors([[1, 2, 3]]).ravel(), [230 / 255], rtol=1e-6)
    # decided once for the whole array: rows that happen to be 0/1 are still k/255
    assert data.images_from_factors([[0, 0, 0]]).ravel().tolist() == [0.0]
    np.testing.assert_allclose(data.images_from_factors([[0, 0, 1]]).ravel(), [10 / 255], rtol=1e-6)
    binary = ArrayGridData((np.arange(24) % 2).astype(np.uint8).reshape(24, 1, 1), SIZES)
    assert binary.images_from_factors([[0, 0, 1]]).ravel().tolist() == [1.0]  # 0/1 uint8 stays 0/1
    with pytest.raises(ValueError, match="full grid"):
        ArrayGridData(imgs[:23], SIZES)
    with pytest.raises(ValueError, match="names"):
        ArrayGridData(imgs, SIZES, ("a",))
    with pytest.raises(ValueError, match="must lie in"):
        data.factors_of([24])
    with pytest.raises(ValueError, match="'factor_1' must lie in 0..2"):
        data.index_of([[0, 3, 0]])


def test_a_non_grid_data_set_needs_only_images_from_factors():
    class Bars(GroundTruthData):
        factor_names = ("length",)
        factor_sizes = (5,)

        def images_from_factors(self, factors):
            f = self.check_factors(factors)
            return (np.arange(5)[None, :] <= f).astype(np.float32)[:, None, None, :]

    data = Bars()
    f, x = data.sample(20, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(x[:, 0, 0].sum(1), f[:, 0] + 1)
    assert data.observation_shape == (1, 1, 5)
    g = as_rng(3)
    assert as_rng(g) is g
