"""Issue 13, item 1: no code runs from a dSprites file, and the cache folder's file is used only
when it is the official one (md5)."""
from __future__ import annotations

import hashlib
import io
import pickle
import zipfile

import numpy as np
import pytest

from tests.test_data_dsprites import write_official_npz
from vae.data import dsprites as D
from vae.data.download import ChecksumError
from vae.data.safe_npz import UnsafePickle, read_pickled_data


class _Creates:
    """Unpickling this object creates ``path`` (a stand-in for arbitrary code)."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _npy_object_entry(obj) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    return buf.getvalue() + pickle.dumps(obj, protocol=2)


def crafted_npz(path, marker, entry: str = "metadata"):
    """An official-layout npz whose ``entry`` is a pickle that creates ``marker`` when unpickled."""
    write_official_npz(path, np.arange(0, 737280, 50000))
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members[f"{entry}.npy"] = _npy_object_entry({"title": "dSprites dataset", "x": _Creates(marker)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_the_crafted_file_really_runs_code_when_unpickled(tmp_path):
    """The attack works against ``np.load(allow_pickle=True)`` (what the loader used to do)."""
    marker = tmp_path / "pwned"
    p = crafted_npz(tmp_path / "evil.npz", marker)
    with np.load(p, allow_pickle=True, encoding="latin1") as f:
        f["metadata"]
    assert marker.exists()


def test_crafted_metadata_is_refused_and_leaves_no_marker(tmp_path):
    marker = tmp_path / "pwned"
    p = crafted_npz(tmp_path / "evil.npz", marker)
    with pytest.raises(ValueError, match=r"metadata is not plain data \(refused global io\.open.*nothing in it was run"):
        D.load_dsprites_npz(p)
    with pytest.raises(ValueError, match="not plain data"):
        D.load_dsprites(path=p, cache=False)
    with pytest.raises(ValueError, match="not plain data"):
        D.check_dsprites_npz(p)
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["imgs", "latents_classes"])
def test_object_arrays_in_place_of_data_are_refused(tmp_path, entry):
    marker = tmp_path / "pwned"
    p = crafted_npz(tmp_path / "evil.npz", marker, entry=entry)
    with pytest.raises(ValueError, match=f"{entry} has dtype object; only numeric arrays are read"):
        D.load_dsprites_npz(p)
    assert not marker.exists()


def test_a_raw_pickle_named_npz_is_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / D.DSPRITES_FILENAME
    p.write_bytes(pickle.dumps(_Creates(marker)))
    with pytest.raises(ValueError, match="not an npz"):
        D.load_dsprites_npz(p)
    with pytest.raises(ValueError, match="not an npz"):
        D.load_dsprites(path=p, cache=False)
    assert not marker.exists()


def test_a_file_planted_in_the_cache_folder_is_refused_unread(tmp_path):
    marker = tmp_path / "pwned"
    cache = tmp_path / "cache"
    cache.mkdir()
    crafted_npz(cache / D.DSPRITES_FILENAME, marker)
    with pytest.raises(ChecksumError, match="is not the official dSprites file.*not loaded"):
        D.load_dsprites(max_samples=10, cache_dir=cache, cache=False)
    assert not marker.exists()
    # a well-formed but non-official file is refused there too (it would train quietly otherwise) ...
    other = tmp_path / "other"
    other.mkdir()
    write_official_npz(other / D.DSPRITES_FILENAME, np.arange(0, 737280, 9001))
    with pytest.raises(ChecksumError, match="not the official"):
        D.load_dsprites(cache_dir=other, cache=False)
    # ... while the same file passed explicitly is the user's choice, read without unpickling
    ds = D.load_dsprites(path=other / D.DSPRITES_FILENAME)
    assert ds.name == "dsprites-npz" and len(ds) == len(range(0, 737280, 9001))


def test_official_metadata_is_still_read_as_plain_data(tmp_path):
    p = write_official_npz(tmp_path / "ok.npz", np.arange(16))
    *_, meta = D.load_dsprites_npz(p)
    assert meta["title"] == "dSprites dataset" and meta["latents_names"] == D.FACTOR_NAMES
    assert np.array_equal(meta["latents_sizes"], D.LATENTS_SIZES)


def test_metadata_written_by_numpy_savez_is_read(tmp_path):
    """``np.savez(metadata=dict)`` wraps the dict in a 0-d object array: read back as the dict."""
    from tests.test_data_dsprites import _official_metadata

    g_imgs, values, classes = D.generate_dsprites(np.arange(4))
    p = tmp_path / "py3.npz"
    np.savez(p, imgs=g_imgs, latents_values=values, latents_classes=classes, metadata=_official_metadata())
    *_, meta = D.load_dsprites_npz(p)
    assert meta["title"] == "dSprites dataset"
    assert np.array_equal(meta["latents_possible_values"]["scale"], np.linspace(0.5, 1, 6))


@pytest.mark.parametrize("protocol", range(0, 6))
def test_the_data_reader_agrees_with_pickle_on_plain_data_and_refuses_code(protocol, tmp_path):
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": ("x", b"y", 3, 2.5, None, True),
            "c": [np.int64(7), {1, 2}], "d": np.asfortranarray(np.arange(6).reshape(2, 3))}
    got = read_pickled_data(pickle.dumps(data, protocol=protocol))
    assert got["b"] == data["b"] and got["c"][0] == 7 and got["c"][1] == {1, 2}
    assert got["a"].dtype == np.float32 and np.array_equal(got["a"], data["a"]) and np.array_equal(got["d"], data["d"])
    marker = tmp_path / "pwned"
    with pytest.raises(UnsafePickle, match="refused global"):
        read_pickled_data(pickle.dumps([1, _Creates(marker)], protocol=protocol))
    assert not marker.exists()


def test_the_official_md5_is_what_the_cache_accepts(tmp_path, monkeypatch):
    p = write_official_npz(tmp_path / D.DSPRITES_FILENAME, np.arange(0, 737280, 100000))
    monkeypatch.setattr(D, "DSPRITES_MD5", hashlib.md5(p.read_bytes()).hexdigest())
    assert D.load_dsprites(cache_dir=tmp_path).name == "dsprites-npz"
