"""Guards for ``riskmodels data fetch``: fail fast without a network, refuse oversized files.

Fail fast
---------
Before planning any file, :func:`probe` resolves the archive's host name and opens one
TCP connection to it (through the HTTP(S) proxy when the environment names one), each
bounded by a few seconds (name resolution runs in a daemon thread, so a resolver that
hangs cannot hold the command). A failure raises :class:`ArchiveUnreachable`, whose
message names what works without a network: the embedded dataset, ``--data DIR`` and
``RISKMODELS_DATA``. During the download, :func:`is_unreachable` tells a connection
failure (name resolution, refused, connect timeout, no route) from a transient answer:
the first stops the whole fetch at once, and only HTTP 429/5xx, a connection reset or
time-out in the middle of a transfer, a truncated body or a checksum mismatch are
retried.

Size limits
-----------
A download larger than ``max_bytes`` (by its ``Content-Length`` or while streaming)
and a ZIP whose CSV expands beyond ``max_bytes`` (by the declared size or while
decompressing: the header is not trusted) are refused with a message naming the file,
the limit and the remedy. Refusal happens before the file is renamed into the cache,
so a refused download never enters it and a rerun does not trip over it.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile

__all__ = [
    "DEFAULT_MAX_BYTES",
    "PROBE_TIMEOUT",
    "ArchiveUnreachable",
    "SizeLimitError",
    "is_unreachable",
    "offline_message",
    "probe",
    "read_zip_member",
]

DEFAULT_MAX_BYTES = 64 * 2**20  # a monthly 1h kline ZIP is ~50 kB, its CSV ~110 kB
PROBE_TIMEOUT = 3.0  # seconds for name resolution, and again for the TCP connect (6 s at worst)

_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH,
                       errno.EADDRNOTAVAIL, errno.ENETDOWN, errno.EHOSTDOWN}


class ArchiveUnreachable(OSError):
    """The archive's host cannot be resolved or connected to: there is no point retrying."""


class SizeLimitError(ValueError):
    """A download or a decompressed member is larger than the stated limit."""


def offline_message(url: str, reason: str) -> str:
    """What failed and what works without a network."""
    host = urllib.parse.urlparse(url).netloc or url
    return (
        f"cannot reach {host} ({reason}): no network, or the archive is blocked; stopped "
        "without retrying. Nothing needs a download: `riskmodels backtest` runs offline on "
        "the embedded dataset (public daily OHLCV, 2014-2025, the default universe), and "
        "your own files are used with --data DIR or RISKMODELS_DATA=DIR."
    )


def is_unreachable(exc: BaseException) -> bool:
    """True for a connection-level failure (DNS, refused, connect time-out, no route).

    ``urllib`` wraps errors raised while connecting and sending the request in
    ``URLError``; errors while reading the answer (reset, read time-out) come
    unwrapped and are transient.
    """
    if isinstance(exc, urllib.error.HTTPError):
        return False
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, (socket.gaierror, socket.herror, ConnectionRefusedError,
                               TimeoutError)):
            return True
        if isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS:
            return True
        return isinstance(reason, str)  # "unknown url type" and the like
    return isinstance(exc, (socket.gaierror, ConnectionRefusedError))


def _proxy_for(url: str) -> str | None:
    parsed = urllib.parse.urlparse(url)
    if urllib.request.proxy_bypass(parsed.hostname or ""):
        return None
    return urllib.request.getproxies().get(parsed.scheme)


def _resolve(host: str, port: int, timeout: float) -> None:
    box: dict[str, BaseException | bool] = {}

    def run() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            box["ok"] = True
        except OSError as e:
            box["err"] = e

    t = threading.Thread(target=run, name="riskmodels-dns-probe", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"name resolution of {host} took more than {timeout:g} s")
    if "err" in box:
        raise box["err"]  # type: ignore[misc]


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Resolve and connect to ``url``'s host (or its proxy) once; raise
    :class:`ArchiveUnreachable` with :func:`offline_message` on failure."""
    target = _proxy_for(url) or url
    parsed = urllib.parse.urlparse(target if "//" in target else f"http://{target}")
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        _resolve(host, port, timeout)
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except (OSError, UnicodeError) as e:
        what = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise ArchiveUnreachable(offline_message(url, what)) from None


def read_zip_member(source: str | os.PathLike[str] | bytes, max_bytes: int = DEFAULT_MAX_BYTES,
                    name: str = "") -> tuple[str, bytes]:
    """The single ``.csv`` member of a ZIP, decompressed under ``max_bytes``.

    Raises
    ------
    SizeLimitError
        The member declares or expands to more than ``max_bytes``.
    ValueError
        Not exactly one CSV member. ``zipfile.BadZipFile`` for a file that is no ZIP.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "the ZIP")
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    with zipfile.ZipFile(handle) as zf:
        members = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
        if len(members) != 1:
            raise ValueError(f"expected one CSV in the ZIP, found "
                             f"{[i.filename for i in members] or zf.namelist()}")
        info = members[0]
        remedy = (f"refused (limit {max_bytes:,} bytes; a kline CSV is far smaller, so the "
                  "file is not what it claims to be; raise --max-mb only if you trust it)")
        if info.file_size > max_bytes:
            raise SizeLimitError(f"{label}: {info.filename} declares {info.file_size:,} bytes "
                                 f"uncompressed: {remedy}")
        with zf.open(info) as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise SizeLimitError(f"{label}: {info.filename} expands beyond {max_bytes:,} bytes: "
                                 f"{remedy}")
    return info.filename, data
