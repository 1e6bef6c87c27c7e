"""Download one archive file into the cache, verified, with retries.

The HTTP side of :mod:`riskmodels.data.fetch`: :func:`_get_piece` reads a piece's
``.CHECKSUM``, streams the ZIP to a temporary name beside its cache path, fsyncs
it, checks the SHA-256 and that its CSV expands within the size limit, and only
then renames it into the cache (:func:`_download_verified`). Failures are sorted
into not found (HTTP 404, not retried), transient (network error, 429/5xx,
truncated body, bad checksum: retried with backoff ``backoff * 2**k`` s, at most
60 s), permanent (other 4xx, a malformed CHECKSUM, a refused file) and
unreachable (the host cannot be resolved or connected to: the whole fetch stops).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from riskmodels.data.fetch_guard import (
    DEFAULT_MAX_BYTES,
    SizeLimitError,
    is_unreachable,
    read_zip_member,
)
from riskmodels.data.kline_archive import Piece, parse_checksum

_CHECKSUM_LIMIT = 4096


Progress = Callable[[str], None]


class _NotFound(Exception):
    """HTTP 404: the archive does not have this file."""


class _Transient(Exception):
    """A failure worth retrying (network error, 5xx, truncated body, bad checksum)."""


class _Permanent(Exception):
    """A failure not worth retrying (other 4xx, a malformed CHECKSUM, a refused file)."""


class _Unreachable(Exception):
    """The host cannot be resolved or connected to: stop the whole fetch."""


# --------------------------------------------------------------------------- HTTP


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    req = urllib.request.Request(url, headers={"User-Agent": "riskmodels-fetch/1"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 404:
            raise _NotFound(url) from None
        if e.code == 429 or e.code >= 500:
            raise _Transient(f"HTTP {e.code} {e.reason}") from None
        raise _Permanent(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        if is_unreachable(e):
            raise _Unreachable(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None
        raise _Transient(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None


_NETWORK_ERRORS = (OSError, http.client.HTTPException)


def _read_small(url: str, timeout: float) -> str:
    try:
        with _open(url, timeout) as resp:
            data = resp.read(_CHECKSUM_LIMIT + 1)
    except _NETWORK_ERRORS as e:
        raise _Transient(f"{type(e).__name__}: {e}") from None
    if len(data) > _CHECKSUM_LIMIT:
        raise _Transient(f"CHECKSUM file larger than {_CHECKSUM_LIMIT} bytes")
    return data.decode("utf-8", errors="replace")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _download_verified(url: str, target: Path, expected: str, timeout: float,
                       max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Stream ``url`` to a temporary file beside ``target``; rename into the cache only if
    it is within ``max_bytes``, its SHA-256 matches and its CSV expands within ``max_bytes``."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        n = 0
        with os.fdopen(fd, "wb") as out:
            try:
                with _open(url, timeout) as resp:
                    length = resp.headers.get("Content-Length")
                    if length is not None and length.isdigit() and int(length) > max_bytes:
                        raise _Permanent(f"refused: {url} is {int(length):,} bytes, over the "
                                         f"limit of {max_bytes:,} (--max-mb)")
                    while chunk := resp.read(1 << 16):
                        digest.update(chunk)
                        out.write(chunk)
                        n += len(chunk)
                        if n > max_bytes:
                            raise _Permanent(f"refused: {url} sent more than {max_bytes:,} "
                                             "bytes, the limit (--max-mb)")
            except _NETWORK_ERRORS as e:
                raise _Transient(f"download interrupted after {n} bytes: {type(e).__name__}") from None
            out.flush()
            os.fsync(out.fileno())
        if length is not None and n != int(length):
            raise _Transient(f"truncated body: {n} of {length} bytes")
        got = digest.hexdigest()
        if got != expected:
            raise _Transient(f"checksum mismatch: sha256 {got} != published {expected}")
        try:  # a file that cannot be read back within the limit never enters the cache
            read_zip_member(tmp, max_bytes, name=url)
        except (SizeLimitError, ValueError, zipfile.BadZipFile) as e:
            raise _Permanent(f"refused, not cached: {e}") from None
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return n
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Opts:
    timeout: float
    max_retries: int
    backoff: float
    say: Progress
    max_bytes: int = DEFAULT_MAX_BYTES
    abort: threading.Event = field(default_factory=threading.Event)
    abort_reason: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Outcome:
    piece: Piece
    status: Literal["fetched", "skipped", "missing", "failed"]
    reason: str = ""
    nbytes: int = 0


def _get_piece(piece: Piece, folder: Path, opts: _Opts) -> _Outcome:
    target = folder / piece.filename
    if target.exists():
        return _Outcome(piece, "skipped")
    reason = ""
    for attempt in range(opts.max_retries + 1):
        if opts.abort.is_set():
            return _Outcome(piece, "failed", "not tried: the archive is unreachable")
        if attempt:
            delay = min(opts.backoff * 2 ** (attempt - 1), 60.0)
            opts.say(f"retry {attempt}/{opts.max_retries} in {delay:.3g} s: {piece.url} ({reason})")
            time.sleep(delay)
        try:
            try:
                expected = parse_checksum(_read_small(piece.url + ".CHECKSUM", opts.timeout),
                                          piece.filename)
            except ValueError as e:
                raise _Permanent(str(e)) from None
            n = _download_verified(piece.url, target, expected, opts.timeout, opts.max_bytes)
            return _Outcome(piece, "fetched", nbytes=n)
        except _NotFound:
            return _Outcome(piece, "missing", "HTTP 404 Not Found")
        except _Unreachable as e:
            opts.abort_reason.append(str(e))
            opts.abort.set()
            return _Outcome(piece, "failed", str(e))
        except _Permanent as e:
            return _Outcome(piece, "failed", str(e))
        except _Transient as e:
            reason = str(e)
    return _Outcome(piece, "failed", f"{reason} (after {opts.max_retries + 1} attempts)")
