"""Checksum-verified, atomic file downloads with nothing but the standard library (and tqdm).

>>> from vae.data.download import file_digest
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "x.bin"); _ = open(p, "wb").write(b"abc")
>>> file_digest(p, "md5")
'900150983cd24fb0d6963f7d28e17f72'
"""
from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from vae.atomic import atomic_file

__all__ = ["download", "file_digest", "verify_file", "ChecksumError", "OfflineError"]

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """The bytes on disk (or just downloaded) do not match the expected checksum."""


class OfflineError(ConnectionError):
    """The URL could not be reached (no network, DNS failure, refused connection...)."""


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (``algorithm``: any :mod:`hashlib` name)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected(sha256: str | None, md5: str | None) -> list[tuple[str, str]]:
    out = []
    for name, value in (("sha256", sha256), ("md5", md5)):
        if value is not None:
            value = value.strip().lower()
            n_hex = {"sha256": 64, "md5": 32}[name]
            if len(value) != n_hex or any(c not in "0123456789abcdef" for c in value):
                raise ValueError(f"{name} must be {n_hex} hex digits; got {value!r}")
            out.append((name, value))
    return out


def verify_file(path: str | os.PathLike, sha256: str | None = None, md5: str | None = None) -> None:
    """Raise :class:`ChecksumError` if ``path`` does not match every given checksum."""
    for name, value in _expected(sha256, md5):
        got = file_digest(path, name)
        if got != value:
            raise ChecksumError(f"{name} mismatch for {path}: expected {value}, got {got}")


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to the file ``dest`` and return its path.

    * Streamed in 1 MiB chunks (tqdm progress bar when ``progress``), into a temporary file in
      the destination folder that is renamed over ``dest`` (``os.replace``) only once complete and
      verified, so an interrupted or corrupt download never leaves a partial ``dest``.
    * ``sha256`` / ``md5`` (hex) are checked when given; on a mismatch the temporary file is
      deleted and :class:`ChecksumError` (a ``ValueError``) is raised.
    * If ``dest`` already exists it is not downloaded again: it is verified against the given
      checksums (a mismatch raises :class:`ChecksumError` and leaves the existing file alone,
      so delete it by hand if it is corrupt).
    * Without a network (``URLError``/timeouts) raises :class:`OfflineError` with a message that
      says where to place the file by hand.
    """
    dest = Path(dest).expanduser()
    expected = _expected(sha256, md5)  # validate the checksum strings before any I/O
    if dest.exists():
        verify_file(dest, sha256, md5)
        return dest
    with atomic_file(dest) as tmp:
        hashers = {name: hashlib.new(name) for name, _ in expected}
        try:
            response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http/https by design)
        except urllib.error.HTTPError as err:
            raise OfflineError(
                f"HTTP error {err.code} ({err.reason}) fetching {url}. If you have the file, place it "
                f"by hand at {dest}."
            ) from err
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise OfflineError(
                f"cannot reach {url} ({reason}): there seems to be no network. Download the file on a "
                f"machine with internet access and place it by hand at {dest} (the checksum is verified "
                "when it is used)."
            ) from err
        with response, open(tmp, "wb") as out:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, leave=False)
            try:
                n = 0
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (socket.timeout, TimeoutError, ConnectionError) as err:
                        raise OfflineError(f"connection lost while downloading {url}: {err}") from err
                    if not chunk:
                        break
                    out.write(chunk)
                    n += len(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            if total is not None and n != total:
                raise OfflineError(f"incomplete download of {url}: got {n} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        for name, value in expected:
            got = hashers[name].hexdigest()
            if got != value:
                raise ChecksumError(
                    f"{name} mismatch for {url}: expected {value}, got {got}; the download was discarded"
                )
    return dest
