"""Checksum-verified, atomic file downloads with nothing but the standard library (and tqdm).

>>> from vae.data.download import file_digest
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "x.bin"); _ = open(p, "wb").write(b"abc")
>>> file_digest(p, "md5")
'900150983cd24fb0d6963f7d28e17f72'
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from vae.atomic import atomic_file

__all__ = ["download", "file_digest", "verify_file", "ChecksumError", "OfflineError", "IncompleteDownload",
           "DownloadTooLarge", "DEFAULT_MAX_BYTES"]

_CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: far above any file this project downloads


class ChecksumError(ValueError):
    """The bytes on disk (or just downloaded) do not match the expected checksum."""


class OfflineError(ConnectionError):
    """The URL could not be reached (no network, DNS failure, refused connection...)."""


class IncompleteDownload(OfflineError):
    """The body ended before its announced length, the connection broke mid-body, or its
    completeness could not be verified at all (no Content-Length, no checksum)."""


class DownloadTooLarge(ValueError):
    """The response is larger than the download's ``max_bytes`` cap."""


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
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    validate: Callable[[Path], object] | None = None,
) -> Path:
    """Download ``url`` to the file ``dest`` and return its path.

    * Streamed in 1 MiB chunks (tqdm progress bar when ``progress``), into a temporary file in
      the destination folder that is renamed over ``dest`` (``os.replace``) only once complete and
      verified, so an interrupted, cut-short, oversized or corrupt download never leaves a file at
      ``dest``.
    * ``max_bytes`` caps the body (``None``: no cap): a larger ``Content-Length`` is refused before
      anything is read, a body without one is cut off after ``max_bytes`` bytes; both raise
      :class:`DownloadTooLarge`.
    * The body must be provably complete: its length must equal ``Content-Length``, or the
      chunked transfer encoding must end properly, or a checksum or ``validate`` must vouch for it;
      otherwise :class:`IncompleteDownload` (an :class:`OfflineError`) is raised.
    * ``sha256`` / ``md5`` (hex) are checked when given; on a mismatch the temporary file is
      deleted and :class:`ChecksumError` (a ``ValueError``) is raised.
    * ``validate(tmp_path)`` (e.g. a structure check) runs on the complete, checksum-verified
      temporary file before the rename; whatever it raises propagates and the file is discarded.
    * If ``dest`` already exists it is not downloaded again: it is verified against the given
      checksums and ``validate`` (a failure raises and leaves the existing file alone, so delete it
      by hand if it is corrupt).
    * Without a network (``URLError``/timeouts) raises :class:`OfflineError` with a message that
      says where to place the file by hand.
    """
    dest = Path(dest).expanduser()
    expected = _expected(sha256, md5)  # validate the checksum strings before any I/O
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"max_bytes must be a positive integer or None; got {max_bytes!r}")
    if dest.exists():
        verify_file(dest, sha256, md5)
        if validate is not None:
            validate(dest)
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
            total = int(total) if total and total.strip().isdigit() else None
            chunked = bool(getattr(response, "chunked", False))
            if max_bytes is not None and total is not None and total > max_bytes:
                raise DownloadTooLarge(f"{url} is {total} bytes (Content-Length), over the limit of {max_bytes} "
                                       "bytes; nothing was written")
            if total is None and not chunked and not expected and validate is None:
                raise IncompleteDownload(
                    f"{url} was sent without a Content-Length and no checksum was given, so a body cut short "
                    f"could not be told from a complete one; nothing was written. Pass sha256= or md5=, or "
                    f"download it by hand to {dest}")
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, leave=False)
            try:
                n = 0
                while True:
                    want = _CHUNK if max_bytes is None else min(_CHUNK, max_bytes - n + 1)
                    try:
                        chunk = response.read(want)
                    except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as err:
                        raise IncompleteDownload(f"connection lost while downloading {url} after {n} bytes "
                                                 f"({type(err).__name__}: {err}); nothing was kept") from err
                    if not chunk:
                        break
                    if max_bytes is not None and n + len(chunk) > max_bytes:
                        raise DownloadTooLarge(f"{url} sent more than the limit of {max_bytes} bytes; the "
                                               "download was discarded")
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
                raise IncompleteDownload(f"incomplete download of {url}: got {n} of {total} bytes "
                                         "(Content-Length); the download was discarded")
            out.flush()
            os.fsync(out.fileno())
        for name, value in expected:
            got = hashers[name].hexdigest()
            if got != value:
                raise ChecksumError(
                    f"{name} mismatch for {url}: expected {value}, got {got}; the download was discarded"
                )
        if validate is not None:
            validate(tmp)
    return dest
