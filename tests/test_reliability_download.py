"""Issue 13, item 9: downloads are size-capped, a body cut short is never accepted, and
``download_dsprites(md5=None)`` never leaves a bad file where the loader reads it. Against a
server on 127.0.0.1 whose handler misbehaves on purpose."""
from __future__ import annotations

import hashlib
import http.server
import threading

import numpy as np
import pytest

from vae.data import dsprites as D
from vae.data.download import DownloadTooLarge, IncompleteDownload, OfflineError, download

BODY = bytes(range(256)) * 40  # 10,240 bytes
FILES: dict[str, bytes] = {}


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/<mode>/<name>``: modes ``length`` (honest Content-Length), ``nolength`` (close-delimited),
    ``cut`` (Content-Length, half the body), ``cutnolength`` (half, close-delimited), ``chunked``,
    ``cutchunked`` (chunked, ends without the final chunk)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        _, mode, name = self.path.split("/", 2)
        body = FILES.get(name, BODY)
        half = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "length":
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "cut":
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(half)
            self.close_connection = True
        elif mode in ("nolength", "cutnolength"):
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body if mode == "nolength" else half)
            self.close_connection = True
        elif mode in ("chunked", "cutchunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = body if mode == "chunked" else half
            for i in range(0, len(data), 1000):
                part = data[i:i + 1000]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            if mode == "chunked":
                self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        FILES.clear()


def _nothing_left(folder) -> bool:
    return not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize("mode", ["length", "chunked"])
def test_complete_bodies_are_accepted_without_a_checksum(server, tmp_path, mode):
    dest = tmp_path / "d" / "f.bin"
    assert download(f"{server}/{mode}/f.bin", dest, progress=False).read_bytes() == BODY
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]


@pytest.mark.parametrize("mode, match", [
    ("cut", "got 5120 of 10240 bytes"),
    ("cutchunked", "connection lost"),
    ("nolength", "without a Content-Length and no checksum"),
    ("cutnolength", "without a Content-Length and no checksum"),
])
def test_a_body_cut_short_is_rejected_and_nothing_is_kept(server, tmp_path, mode, match):
    dest = tmp_path / "d" / "f.bin"
    with pytest.raises(IncompleteDownload, match=match):
        download(f"{server}/{mode}/f.bin", dest, progress=False)
    assert issubclass(IncompleteDownload, OfflineError)
    assert _nothing_left(dest.parent)


def test_without_a_content_length_the_checksum_decides(server, tmp_path):
    md5 = hashlib.md5(BODY).hexdigest()
    dest = tmp_path / "f.bin"
    assert download(f"{server}/nolength/f.bin", dest, md5=md5, progress=False).read_bytes() == BODY
    with pytest.raises(ValueError, match="md5 mismatch"):
        download(f"{server}/cutnolength/f.bin", tmp_path / "g" / "f.bin", md5=md5, progress=False)
    assert _nothing_left(tmp_path / "g")


@pytest.mark.parametrize("mode", ["length", "chunked", "nolength"])
def test_the_size_cap_stops_large_bodies(server, tmp_path, mode):
    dest = tmp_path / "d" / "f.bin"
    with pytest.raises(DownloadTooLarge, match="limit of 1000 bytes"):
        download(f"{server}/{mode}/f.bin", dest, md5="0" * 32, progress=False, max_bytes=1000)
    assert _nothing_left(dest.parent)
    # at the exact size it passes
    got = download(f"{server}/{mode}/f.bin", dest, md5=hashlib.md5(BODY).hexdigest(), progress=False,
                   max_bytes=len(BODY))
    assert got.read_bytes() == BODY


def test_a_declared_oversize_is_refused_before_reading(server, tmp_path):
    with pytest.raises(DownloadTooLarge, match=r"10240 bytes \(Content-Length\).*nothing was written"):
        download(f"{server}/length/f.bin", tmp_path / "f.bin", progress=False, max_bytes=10)
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        download(f"{server}/length/f.bin", tmp_path / "f.bin", progress=False, max_bytes=0)


def test_validate_runs_before_the_rename(server, tmp_path):
    seen = []

    def refuse(path):
        seen.append((path.name, path.exists(), (tmp_path / "f.bin").exists()))
        raise ValueError("not what we wanted")

    with pytest.raises(ValueError, match="not what we wanted"):
        download(f"{server}/length/f.bin", tmp_path / "f.bin", progress=False, validate=refuse)
    (name, existed, dest_existed), = seen
    assert name != "f.bin" and existed and not dest_existed  # ran on the temporary file
    assert list(tmp_path.iterdir()) == []


def _npz_bytes(tmp_path) -> bytes:
    from tests.test_data_dsprites import write_official_npz

    return write_official_npz(tmp_path / "src.npz", np.arange(0, 737280, 4096)).read_bytes()


@pytest.mark.parametrize("mode", ["cutnolength", "cut"])
def test_download_dsprites_without_md5_never_leaves_a_bad_file(server, tmp_path, mode):
    FILES[D.DSPRITES_FILENAME] = _npz_bytes(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError if mode == "cutnolength" else OfflineError):
        D.download_dsprites(cache, url=f"{server}/{mode}/{D.DSPRITES_FILENAME}", md5=None, progress=False)
    assert _nothing_left(cache)


def test_download_dsprites_without_md5_accepts_a_well_formed_file(server, tmp_path):
    data = _npz_bytes(tmp_path)
    FILES[D.DSPRITES_FILENAME] = data
    path = D.download_dsprites(tmp_path / "cache", url=f"{server}/nolength/{D.DSPRITES_FILENAME}", md5=None,
                               progress=False)
    assert path.read_bytes() == data


def test_download_dsprites_is_capped(server, tmp_path, monkeypatch):
    FILES[D.DSPRITES_FILENAME] = _npz_bytes(tmp_path)
    monkeypatch.setattr(D, "DSPRITES_MAX_BYTES", 1000)
    with pytest.raises(DownloadTooLarge):
        D.download_dsprites(tmp_path / "cache", url=f"{server}/length/{D.DSPRITES_FILENAME}", md5=None,
                            progress=False)
    assert _nothing_left(tmp_path / "cache")
