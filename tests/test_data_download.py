"""Downloads against a loopback HTTP server (127.0.0.1, ephemeral port): checksums, atomicity,
skip-if-present, offline errors; and the dSprites / MNIST download functions on small files."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading

import numpy as np
import pytest

from vae.data import dsprites as D
from vae.data import mnist as M
from vae.data.download import ChecksumError, OfflineError, download


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/"www" on 127.0.0.1:<ephemeral>; yields (base_url, www_dir)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    finally:
        httpd.shutdown()
        httpd.server_close()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_good_checksums_give_the_file(server, tmp_path):
    base, www = server
    payload = np.random.default_rng(0).bytes(3 * 2**20 + 17)  # several chunks
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    got = download(base + "blob.bin", dest, sha256=hashlib.sha256(payload).hexdigest(),
                   md5=hashlib.md5(payload).hexdigest(), progress=False)
    assert got == dest and dest.read_bytes() == payload
    assert _leftovers(dest.parent) == ["blob.bin"]  # no temporary file left


@pytest.mark.parametrize("kind", ["sha256", "md5"])
def test_bad_checksum_raises_and_leaves_no_file(server, tmp_path, kind):
    base, www = server
    (www / "blob.bin").write_bytes(b"hello world")
    dest = tmp_path / "out" / "blob.bin"
    wrong = {"sha256": "0" * 64, "md5": "0" * 32}[kind]
    with pytest.raises(ChecksumError, match=f"{kind} mismatch"):
        download(base + "blob.bin", dest, progress=False, **{kind: wrong})
    assert not dest.exists() and _leftovers(dest.parent) == []
    assert issubclass(ChecksumError, ValueError)


def test_existing_file_is_verified_not_downloaded(server, tmp_path):
    base, www = server
    dest = tmp_path / "have.bin"
    dest.write_bytes(b"local copy")
    md5 = hashlib.md5(b"local copy").hexdigest()
    # not on the server at all: returning it proves no request was needed
    assert download(base + "absent.bin", dest, md5=md5, progress=False) == dest
    with pytest.raises(ChecksumError):
        download(base + "absent.bin", dest, md5="f" * 32, progress=False)
    assert dest.read_bytes() == b"local copy"  # a mismatching existing file is left for the user


def test_http_404_and_offline_errors(server, tmp_path):
    base, _ = server
    with pytest.raises(OfflineError, match="404"):
        download(base + "missing.bin", tmp_path / "m.bin", progress=False)
    # a closed port on loopback: the same path as having no network
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OfflineError, match="no network.*place it by hand"):
        download(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", progress=False, timeout=5)
    assert _leftovers(tmp_path) == ["www"]


def test_malformed_checksum_string_rejected(tmp_path):
    with pytest.raises(ValueError, match="md5 must be 32 hex digits"):
        download("http://127.0.0.1:9/x", tmp_path / "x", md5="abc")


def test_download_dsprites_official_format_from_loopback(server, tmp_path, monkeypatch):
    from tests.test_data_dsprites import write_official_npz

    base, www = server
    idx = np.arange(0, 737280, 4096)
    src = write_official_npz(www / D.DSPRITES_FILENAME, idx)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    dest_dir = tmp_path / "cache"
    path = D.download_dsprites(dest_dir, url=base + D.DSPRITES_FILENAME, md5=md5, progress=False)
    assert path == dest_dir / D.DSPRITES_FILENAME and path.read_bytes() == src.read_bytes()
    # in the cache folder only a file with the official md5 is used: ours is refused ...
    with pytest.raises(ChecksumError, match="not the official dSprites file"):
        D.load_dsprites(cache_dir=dest_dir)
    monkeypatch.setattr(D, "DSPRITES_MD5", md5)  # ... unless it is the official one
    ds = D.load_dsprites(cache_dir=dest_dir)  # picked up from the cache folder
    assert ds.name == "dsprites-npz" and len(ds) == len(idx)
    monkeypatch.undo()
    # the default checksum is the official file's: our small file must be rejected, and not kept
    with pytest.raises(ChecksumError):
        D.download_dsprites(tmp_path / "other", url=base + D.DSPRITES_FILENAME, progress=False)
    assert not (tmp_path / "other" / D.DSPRITES_FILENAME).exists()


def test_download_dsprites_rejects_wrong_structure(server, tmp_path):
    base, www = server
    np.savez(www / D.DSPRITES_FILENAME, imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="missing key"):
        D.download_dsprites(tmp_path / "c", url=base + D.DSPRITES_FILENAME, md5=None, progress=False)
    # checked before the rename: nothing is left where load_dsprites looks
    assert not (tmp_path / "c" / D.DSPRITES_FILENAME).exists() and _leftovers(tmp_path / "c") == []


def test_constants_are_the_official_ones():
    assert D.DSPRITES_URL == ("https://github.com/deepmind/dsprites-dataset/raw/master/"
                              "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    assert set(M.MNIST_FILES.values()) == set(M.MNIST_MD5) == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}


def _write_small_mnist(folder, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        img_name, lab_name = M.MNIST_FILES[f"{split}_images"], M.MNIST_FILES[f"{split}_labels"]
        (folder / img_name).write_bytes(gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes()))
        (folder / lab_name).write_bytes(gzip.compress(struct.pack(">II", 2049, n) + y.tobytes()))
        out[split] = (x, y)
    return out


def test_download_mnist_from_loopback(server, tmp_path, monkeypatch):
    base, www = server
    truth = _write_small_mnist(www)
    dest = tmp_path / "mnist"
    # with the published md5s our small files must be rejected (and nothing kept)
    with pytest.raises(ChecksumError):
        M.download_mnist(dest, base_url=base, progress=False)
    assert not dest.exists() or _leftovers(dest) == []
    fake = {name: hashlib.md5((www / name).read_bytes()).hexdigest() for name in M.MNIST_MD5}
    monkeypatch.setattr(M, "MNIST_MD5", fake)
    paths = M.download_mnist(dest, base_url=base, progress=False)
    assert set(paths) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert all(p.parent == dest and p.exists() for p in paths.values())
    ds = M.load_mnist("idx", path=dest, split="test")
    x, y = truth["test"]
    assert np.array_equal(ds.factors[:, 0], y) and np.allclose(ds.images[:, 0].numpy() * 255, x)


def test_download_mnist_tries_mirrors_in_order(server, tmp_path, monkeypatch):
    base, www = server
    _write_small_mnist(www)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    monkeypatch.setattr(M, "MNIST_MIRRORS", (dead, base))
    monkeypatch.setattr(M, "MNIST_MD5", {n: hashlib.md5((www / n).read_bytes()).hexdigest() for n in M.MNIST_MD5})
    paths = M.download_mnist(tmp_path / "m", progress=False)
    assert len(paths) == 4
    monkeypatch.setattr(M, "MNIST_MIRRORS", (dead,))
    with pytest.raises(OfflineError, match="any of"):
        M.download_mnist(tmp_path / "n", progress=False)
