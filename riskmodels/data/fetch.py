"""Download spot klines from Binance's public data archive into a Parquet cache.

``riskmodels data fetch`` gives a fresh machine with internet access real price
history in one command, without an API key.

Archive layout
--------------
Binance publishes every spot kline series as ZIP files, each with a SHA-256
``.CHECKSUM`` file beside it (``binance/binance-public-data`` README, sections
"Klines" and "CHECKSUM")::

    {base}/data/spot/monthly/klines/{PAIR}/{interval}/{PAIR}-{interval}-{YYYY}-{MM}.zip
    {base}/data/spot/daily/klines/{PAIR}/{interval}/{PAIR}-{interval}-{YYYY}-{MM}-{DD}.zip
    <zip url>.CHECKSUM        content: "<sha256 hex>  <zip file name>" (``sha256sum`` format)

with ``base = https://data.binance.vision`` and ``PAIR = SYMBOL + QUOTE`` (e.g.
``BTCUSDT``). Each ZIP holds one CSV in the 12-column kline layout of
``/api/v3/klines``: open time, open, high, low, close, volume, close time,
quote volume, trades, taker buy base, taker buy quote, ignore. Open times are
epoch milliseconds, and epoch microseconds for spot data from 2025-01-01 on
(same README); both are accepted, row by row.

Plan
----
Monthly files cover complete past months; daily files cover the current
(incomplete) month up to yesterday (UTC). A monthly file is published some days
after its month ends: if the last complete month's file is not there yet, its
daily files are used instead.

Cache
-----
``<dest>/.cache/<PAIR>/<interval>/`` keeps every verified ZIP (a file there is
always complete and verified: downloads go to a temporary name in the same
folder, are fsynced, checked against the published SHA-256, and only then
renamed) plus ``missing.json``, the monthly files the archive answered 404 for
(months before a listing or after a delisting; delete it to ask again), so a
rerun asks again only for what is not cached yet. The per-symbol Parquet file
``<dest>/<SYMBOL>-USD_<interval>.parquet`` (columns ``datetime`` (naive UTC),
``open``, ``high``, ``low``, ``close``, ``volume``) is rebuilt from the cached
pieces on every run.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from riskmodels.data.fetch_guard import (
    DEFAULT_MAX_BYTES,
    ArchiveUnreachable,
    SizeLimitError,
    is_unreachable,
    offline_message,
    probe,
    read_zip_member,
)
from riskmodels.data.loaders import DEFAULT_UNIVERSE

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_UNIVERSE",
    "ENV_FETCH_URL",
    "INTERVALS",
    "FetchReport",
    "FileFailure",
    "KlineConflictError",
    "Piece",
    "SymbolReport",
    "add_fetch_parser",
    "fetch",
    "merge_klines",
    "parse_checksum",
    "plan_pieces",
    "read_kline_zip",
    "run_fetch",
]

DEFAULT_BASE_URL = "https://data.binance.vision"
ENV_FETCH_URL = "RISKMODELS_FETCH_URL"
INTERVALS: dict[str, timedelta] = {"1d": timedelta(days=1), "1h": timedelta(hours=1)}
FIELDS = ("open", "high", "low", "close", "volume")


_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}$")
_MICROS_THRESHOLD = 10**14  # ms epochs are < 1e14 until year 5138; µs epochs are > 1e14 after 1973
_CHECKSUM_LIMIT = 4096
_MISSING_FILE = "missing.json"

Progress = Callable[[str], None]


class KlineConflictError(ValueError):
    """Two pieces give different bars for the same open time."""


class _NotFound(Exception):
    """HTTP 404: the archive does not have this file."""


class _Transient(Exception):
    """A failure worth retrying (network error, 5xx, truncated body, bad checksum)."""


class _Permanent(Exception):
    """A failure not worth retrying (other 4xx, a malformed CHECKSUM, a refused file)."""


class _Unreachable(Exception):
    """The host cannot be resolved or connected to: stop the whole fetch."""


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class FileFailure:
    """One file that could not be fetched after all retries."""

    url: str
    reason: str


@dataclass
class SymbolReport:
    """What happened to one symbol.

    ``fetched``: ZIPs downloaded and verified in this run; ``skipped``: ZIPs
    already in the cache; ``missing``: URLs the archive answered 404 for
    (including cached 404s); ``failed``: files that failed after all retries
    (never stored); ``first``/``last``: first and last bar in the Parquet file.
    """

    symbol: str
    pair: str
    interval: str
    fetched: int = 0
    skipped: int = 0
    missing: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    rows: int = 0
    path: Path | None = None
    bytes_downloaded: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """True when a Parquet file with at least one bar was written."""
        return self.path is not None and self.rows > 0


@dataclass
class FetchReport:
    """Result of :func:`fetch`: one :class:`SymbolReport` per symbol."""

    dest: Path
    interval: str
    base_url: str
    start: date
    end: date
    symbols: dict[str, SymbolReport] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when at least one symbol has usable data."""
        return any(r.usable for r in self.symbols.values())

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.symbols.values())

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.symbols.values())

    @property
    def failed(self) -> list[FileFailure]:
        return [f for r in self.symbols.values() for f in r.failed]

    @property
    def bytes_downloaded(self) -> int:
        return sum(r.bytes_downloaded for r in self.symbols.values())

    def table(self) -> str:
        """Plain-text summary: one row per symbol, then failures and messages."""
        head = ("symbol", "fetched", "skipped", "missing", "failed", "rows", "first", "last")
        rows = [head]
        for r in self.symbols.values():
            rows.append((
                r.pair, str(r.fetched), str(r.skipped), str(len(r.missing)), str(len(r.failed)),
                str(r.rows), _fmt_ts(r.first), _fmt_ts(r.last),
            ))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in rows]
        usable = sum(r.usable for r in self.symbols.values())
        lines.append(
            f"{usable}/{len(self.symbols)} symbols usable; {self.fetched} files fetched "
            f"({self.bytes_downloaded / 1e6:.2f} MB), {self.skipped} already cached, "
            f"{len(self.failed)} failed, in {self.elapsed:.1f} s -> {self.dest}"
        )
        for r in self.symbols.values():
            for f in r.failed:
                lines.append(f"FAILED {f.url}: {f.reason}")
            for m in r.messages:
                lines.append(f"{r.pair}: {m}")
        return "\n".join(lines)


def _fmt_ts(ts: pd.Timestamp | None) -> str:
    if ts is None:
        return "-"
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Piece:
    """One archive file: a month or a day of klines for one pair."""

    kind: Literal["monthly", "daily"]
    first_day: date
    last_day: date
    url: str
    filename: str


def _month_end(d: date) -> date:
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def _add_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _monthly_piece(base: str, pair: str, interval: str, month: date) -> Piece:
    name = f"{pair}-{interval}-{month:%Y-%m}.zip"
    url = f"{base}/data/spot/monthly/klines/{pair}/{interval}/{name}"
    return Piece("monthly", month, _month_end(month), url, name)


def _daily_piece(base: str, pair: str, interval: str, day: date) -> Piece:
    name = f"{pair}-{interval}-{day:%Y-%m-%d}.zip"
    url = f"{base}/data/spot/daily/klines/{pair}/{interval}/{name}"
    return Piece("daily", day, day, url, name)


def _daily_pieces(base: str, pair: str, interval: str, lo: date, hi: date) -> list[Piece]:
    return [_daily_piece(base, pair, interval, lo + timedelta(days=k))
            for k in range((hi - lo).days + 1)]


def plan_pieces(pair: str, interval: str, start: date, end: date, today: date,
                base_url: str = DEFAULT_BASE_URL) -> list[Piece]:
    """Archive files covering ``[start, end]`` as seen on ``today`` (UTC).

    Monthly files for every month before ``today``'s month that overlaps the
    range; daily files for the days of ``today``'s month in the range.
    """
    base = base_url.rstrip("/")
    current = today.replace(day=1)
    pieces: list[Piece] = []
    month = start.replace(day=1)
    while month <= end and month < current:
        pieces.append(_monthly_piece(base, pair, interval, month))
        month = _add_month(month)
    if end >= current:
        pieces.extend(_daily_pieces(base, pair, interval, max(start, current), end))
    return pieces


# --------------------------------------------------------------------------- parsing


def parse_checksum(text: str, filename: str) -> str:
    """The SHA-256 hex digest from a ``.CHECKSUM`` file (``sha256sum`` format).

    The file reads ``"<64 hex digits>  <file name>"``; the name must be
    ``filename``. Raises ``ValueError`` otherwise.
    """
    parts = text.strip().split()
    if not parts or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
        raise ValueError(f"malformed CHECKSUM for {filename}: {text[:100]!r}")
    if len(parts) > 1 and parts[-1].lstrip("*") != filename:
        raise ValueError(f"CHECKSUM names {parts[-1]!r}, expected {filename!r}")
    return parts[0].lower()


def read_kline_zip(source: str | os.PathLike[str] | bytes,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> pd.DataFrame:
    """Read the kline CSV inside an archive ZIP.

    Returns columns ``datetime`` (naive UTC, the bar's open time), ``open``,
    ``high``, ``low``, ``close``, ``volume`` (float64). The CSV may or may not
    have a header row; open times may be epoch milliseconds or microseconds
    (values >= 1e14 are microseconds), row by row. A CSV declaring or expanding to
    more than ``max_bytes`` raises :class:`~riskmodels.data.fetch_guard.SizeLimitError`.
    """
    _, raw = read_zip_member(source, max_bytes)
    text = raw.decode("utf-8-sig")
    first = text.lstrip()[:1]
    header = None if (first.isdigit() or first == "") else 0
    if first == "":
        return pd.DataFrame({"datetime": pd.DatetimeIndex([], dtype="datetime64[ns]"),
                             **{f: np.empty(0) for f in FIELDS}})
    df = pd.read_csv(io.StringIO(text), header=header, usecols=range(6))
    df.columns = ["open_time", *FIELDS]
    ot = pd.to_numeric(df["open_time"], errors="raise").to_numpy(dtype=np.int64)
    ms = np.where(ot >= _MICROS_THRESHOLD, ot // 1000, ot)
    out = pd.DataFrame({"datetime": pd.to_datetime(ms, unit="ms").astype("datetime64[ns]")})
    for f in FIELDS:
        out[f] = pd.to_numeric(df[f], errors="raise").astype(np.float64).to_numpy()
    return out


def merge_klines(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate, sort by time and drop rows repeated exactly.

    Two different bars with the same open time raise
    :class:`KlineConflictError` naming the time(s).
    """
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({"datetime": pd.DatetimeIndex([], dtype="datetime64[ns]"),
                             **{f: np.empty(0) for f in FIELDS}})
    df = pd.concat(frames, ignore_index=True).drop_duplicates()
    df = df.sort_values("datetime", kind="stable").reset_index(drop=True)
    dup = df["datetime"].duplicated(keep=False)
    if dup.any():
        times = sorted({_fmt_ts(t) for t in df.loc[dup, "datetime"]})
        shown = ", ".join(times[:5]) + (" ..." if len(times) > 5 else "")
        raise KlineConflictError(
            f"conflicting bars for the same open time on {shown}: two archive files "
            "disagree; delete the cached files for those dates and fetch again"
        )
    return df


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


# --------------------------------------------------------------------------- fetch


def _as_date(value: str | date | datetime | None, name: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


def _clean_symbols(symbols: str | Sequence[str]) -> list[str]:
    if isinstance(symbols, str):
        symbols = [symbols]
    out: list[str] = []
    for s in symbols:
        for part in str(s).replace(",", " ").split():
            sym = part.strip().upper()
            if not _SYMBOL_RE.match(sym):
                raise ValueError(f"symbols: {part!r} is not a ticker (letters and digits, e.g. BTC)")
            if sym not in out:
                out.append(sym)
    if not out:
        raise ValueError("symbols must name at least one ticker, e.g. BTC")
    return out


def resolve_base_url(base_url: str | None = None) -> str:
    """``base_url`` if given, else ``$RISKMODELS_FETCH_URL``, else :data:`DEFAULT_BASE_URL`."""
    url = base_url or os.environ.get(ENV_FETCH_URL) or DEFAULT_BASE_URL
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {url!r}")
    return url.rstrip("/")


def _load_missing(folder: Path) -> set[str]:
    try:
        return set(json.loads((folder / _MISSING_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return set()


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False, engine="pyarrow")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fetch_symbol(sym: str, *, quote: str, interval: str, start: date, end: date, today: date,
                  base: str, dest: Path, pool: ThreadPoolExecutor, opts: _Opts) -> SymbolReport:
    pair = f"{sym}{quote}"
    rep = SymbolReport(sym, pair, interval)
    folder = dest / ".cache" / pair / interval
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.part"):  # left by a killed process
        stale.unlink(missing_ok=True)
    known_missing = _load_missing(folder)
    last_complete = (today.replace(day=1) - timedelta(days=1)).replace(day=1)

    pieces = plan_pieces(pair, interval, start, end, today, base)
    todo = [p for p in pieces if p.filename not in known_missing]
    missing = [p for p in pieces if p.filename in known_missing]
    outcomes = list(pool.map(lambda p: _get_piece(p, folder, opts), todo))
    # the last complete month's file may not be published yet: use its daily files
    late = [o.piece for o in outcomes if o.status == "missing" and o.piece.kind == "monthly"
            and o.piece.first_day == last_complete]
    if late:
        lp = late[0]
        opts.say(f"{pair}: no monthly file for {lp.first_day:%Y-%m} yet, trying its daily files")
        days = _daily_pieces(base, pair, interval, max(start, lp.first_day), min(end, lp.last_day))
        # probe the month's last day first: an unknown or delisted pair costs one request
        probe = _get_piece(days[-1], folder, opts)
        outcomes.append(probe)
        if probe.status != "missing":
            outcomes = [o for o in outcomes if o.piece is not lp]
            outcomes += list(pool.map(lambda q: _get_piece(q, folder, opts), days[:-1]))

    new_missing = set()
    for o in outcomes:
        if o.status == "fetched":
            rep.fetched += 1
            rep.bytes_downloaded += o.nbytes
        elif o.status == "skipped":
            rep.skipped += 1
        elif o.status == "missing":
            missing.append(o.piece)
            if o.piece.kind == "monthly" and o.piece.first_day < last_complete:
                new_missing.add(o.piece.filename)
        else:
            rep.failed.append(FileFailure(o.piece.url, o.reason))
    missing.sort(key=lambda p: (p.first_day, p.kind))
    rep.missing = [p.url for p in missing]
    if new_missing:
        _atomic_write_text(folder / _MISSING_FILE,
                           json.dumps(sorted(known_missing | new_missing), indent=0))

    # Build the Parquet file from the verified pieces (a monthly file beats daily ones).
    have_months = {p.first_day for p in pieces
                   if p.kind == "monthly" and (folder / p.filename).exists()}
    for month in have_months:  # prune daily files superseded by a monthly file
        for old in folder.glob(f"{pair}-{interval}-{month:%Y-%m}-??.zip"):
            old.unlink(missing_ok=True)
    frames = []
    for f in sorted(folder.glob(f"{pair}-{interval}-*.zip")):
        try:
            frames.append(read_kline_zip(f, opts.max_bytes))
        except (ValueError, zipfile.BadZipFile) as e:
            rep.messages.append(f"unreadable cached file {f} ({e}); delete it and fetch again")
    lo = pd.Timestamp(start)
    hi = pd.Timestamp(end) + pd.Timedelta(days=1)
    try:
        df = merge_klines(frames)
    except KlineConflictError as e:
        rep.messages.append(f"{e}; Parquet not written")
        return rep
    df = df[(df["datetime"] >= lo) & (df["datetime"] < hi)].reset_index(drop=True)

    if df.empty:
        if rep.failed:
            rep.messages.append(f"no usable data: {len(rep.failed)} file(s) failed")
        elif rep.fetched + rep.skipped == 0:
            rep.messages.append(
                f"not in the archive: no {pair} {interval} file between {start} and {end} "
                f"(all {len(missing)} returned 404, e.g. {rep.missing[0] if missing else '-'}); "
                f"{sym} may not trade against {quote} on Binance spot, or was not listed then"
            )
        else:
            rep.messages.append(f"no {pair} {interval} bars between {start} and {end}")
        return rep

    out = dest / f"{sym}-USD_{interval}.parquet"
    _write_parquet(df, out)
    rep.path = out
    rep.rows = len(df)
    rep.first = df["datetime"].iloc[0]
    rep.last = df["datetime"].iloc[-1]
    step = pd.Timedelta(INTERVALS[interval])
    gaps = int((rep.last - rep.first) / step) + 1 - rep.rows
    if gaps > 0:
        rep.messages.append(f"{gaps} missing {interval} bar(s) between {_fmt_ts(rep.first)} "
                            f"and {_fmt_ts(rep.last)}")
    later = [p for p in missing if pd.Timestamp(p.first_day) > rep.last]
    if later:
        rep.messages.append(f"data ends {_fmt_ts(rep.last)}: {len(later)} later file(s) not in "
                            f"the archive (not published yet, or delisted), e.g. {later[0].url}")
    earlier = [p for p in missing if pd.Timestamp(p.last_day) < rep.first]
    if earlier:
        rep.messages.append(f"data starts {_fmt_ts(rep.first)}: {len(earlier)} earlier file(s) "
                            "not in the archive (listed later)")
    inside = [p for p in missing if p not in later and p not in earlier]
    if inside:
        rep.messages.append(f"{len(inside)} file(s) inside the data range not in the archive: "
                            + ", ".join(p.url for p in inside[:3]))
    return rep


def default_fetch_dest() -> Path:
    """Where :func:`fetch` writes when ``dest`` is None (see ``resolve.default_cache_dir``)."""
    from riskmodels.data.resolve import default_cache_dir

    return default_cache_dir()


def fetch(
    symbols: str | Sequence[str] = DEFAULT_UNIVERSE,
    start: str | date = "2018-01-01",
    end: str | date | None = None,
    interval: str = "1d",
    dest: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    quote: str = "USDT",
    progress: Progress | None = None,
    max_retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 30.0,
    *,
    workers: int = 4,
    today: date | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    check_network: bool = True,
) -> FetchReport:
    """Download spot klines from the Binance public data archive into Parquet files.

    Parameters
    ----------
    symbols : str or sequence of str
        Base-asset tickers (``"BTC"``); the pair is ``symbol + quote``.
    start, end : str or date
        Inclusive UTC date range; ``end=None`` (or a later date) means
        yesterday, the last day the archive can have.
    interval : {"1d", "1h"}
        Bar length.
    dest : path, optional
        Output folder (``<dest>/<SYMBOL>-USD_<interval>.parquet`` and the
        ``.cache/`` of verified ZIPs). Default: ``resolve.default_cache_dir()``.
    base_url : str, optional
        Archive root; default ``$RISKMODELS_FETCH_URL`` or
        ``https://data.binance.vision``. A mirror or a local server can stand in.
    quote : str
        Quote asset, ``"USDT"``.
    progress : callable, optional
        Called with one-line status messages.
    max_retries : int
        Retries after the first attempt for HTTP 429/5xx, a connection reset or
        time-out mid-transfer, a truncated body or a checksum mismatch (404 is
        not retried: the file does not exist; nor is a malformed CHECKSUM or a
        refused file). Waits ``backoff * 2**k`` seconds before retry ``k+1``
        (no jitter, at most 60 s). A name-resolution or connection failure is
        never retried: it stops the fetch (:class:`ArchiveUnreachable`).
    backoff, timeout : float
        Seconds.
    workers : int
        Parallel downloads.
    today : date, optional
        The UTC date deciding which months are complete (for tests).
    max_bytes : int
        Largest download, and largest decompressed CSV, accepted (default 64 MiB);
        a larger file is refused and never cached.
    check_network : bool
        Probe the archive's host once before planning (:func:`fetch_guard.probe`).

    Raises
    ------
    ArchiveUnreachable
        The host cannot be resolved or connected to (by the probe, or by any
        download); raised within seconds, naming the embedded dataset,
        ``--data`` and ``RISKMODELS_DATA``.

    Returns
    -------
    FetchReport
        Per symbol: files fetched, skipped, missing (404) and failed (URL and
        reason), first/last bar; ``ok`` when at least one symbol is usable.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {sorted(INTERVALS)}, got {interval!r}")
    if not (isinstance(max_retries, int) and 0 <= max_retries <= 20):
        raise ValueError(f"max_retries must be an integer in [0, 20], got {max_retries!r}")
    if not (0 <= backoff <= 600):
        raise ValueError(f"backoff must be in [0, 600] seconds, got {backoff!r}")
    if not (0 < timeout <= 3600):
        raise ValueError(f"timeout must be in (0, 3600] seconds, got {timeout!r}")
    if not (isinstance(workers, int) and 1 <= workers <= 32):
        raise ValueError(f"workers must be an integer in [1, 32], got {workers!r}")
    if not (isinstance(max_bytes, int) and max_bytes > 0):
        raise ValueError(f"max_bytes must be a positive whole number of bytes, got {max_bytes!r}")
    quote = str(quote).strip().upper()
    if not _SYMBOL_RE.match(quote):
        raise ValueError(f"quote must be a ticker such as USDT, got {quote!r}")
    syms = _clean_symbols(symbols)
    base = resolve_base_url(base_url)
    today = today or datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    start_d = _as_date(start, "start")
    end_d = _as_date(end, "end") or yesterday
    assert start_d is not None
    end_d = min(end_d, yesterday)
    if start_d > end_d:
        raise ValueError(f"start ({start_d}) must be on or before end ({end_d}; "
                         f"the archive ends yesterday, {yesterday})")
    if check_network:
        probe(base)
    out_dir = Path(dest).expanduser() if dest is not None else default_fetch_dest()
    out_dir.mkdir(parents=True, exist_ok=True)

    lock = threading.Lock()

    def say(msg: str) -> None:
        if progress is not None:
            with lock:
                progress(msg)

    opts = _Opts(float(timeout), max_retries, float(backoff), say, max_bytes)
    report = FetchReport(out_dir, interval, base, start_d, end_d)
    t0 = time.perf_counter()
    say(f"fetching {len(syms)} symbol(s) {interval} {start_d}..{end_d} from {base} into {out_dir}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, sym in enumerate(syms, 1):
            if opts.abort.is_set():
                break
            rep = _fetch_symbol(sym, quote=quote, interval=interval, start=start_d, end=end_d,
                                today=today, base=base, dest=out_dir, pool=pool, opts=opts)
            report.symbols[sym] = rep
            span = f"{_fmt_ts(rep.first)}..{_fmt_ts(rep.last)}" if rep.usable else "no data"
            say(f"[{i}/{len(syms)}] {rep.pair}: {rep.fetched} fetched, {rep.skipped} cached, "
                f"{len(rep.missing)} not in archive, {len(rep.failed)} failed; {span}")
            for m in rep.messages:
                say(f"  {rep.pair}: {m}")
    report.elapsed = time.perf_counter() - t0
    if opts.abort.is_set():
        raise ArchiveUnreachable(offline_message(base, opts.abort_reason[0]))
    return report


# --------------------------------------------------------------------------- CLI


def add_fetch_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``fetch`` to the ``riskmodels data`` sub-parsers; sets ``func=run_fetch``."""
    p = subparsers.add_parser(
        "fetch",
        help="download spot klines from Binance's public data archive (no API key)",
        description="Download spot klines (quoted in USDT by default) from the Binance public "
                    "data archive, verify every file's SHA-256 CHECKSUM, and store one Parquet "
                    "file per symbol. Reruns download only missing months/days.",
    )
    p.add_argument("--symbols", nargs="+", default=list(DEFAULT_UNIVERSE), metavar="SYM",
                   help="base tickers, space- or comma-separated (default: the 18-asset universe)")
    p.add_argument("--start", default="2018-01-01", help="first UTC date (default 2018-01-01)")
    p.add_argument("--end", default=None, help="last UTC date (default: yesterday)")
    p.add_argument("--interval", choices=sorted(INTERVALS), default="1d", help="bar length")
    p.add_argument("--dest", default=None,
                   help="output folder (default: the user cache, read with --data binance)")
    p.add_argument("--base-url", default=None,
                   help=f"archive root (default ${ENV_FETCH_URL} or {DEFAULT_BASE_URL})")
    p.add_argument("--quote", default="USDT", help="quote asset (default USDT)")
    p.add_argument("--retries", type=int, default=4, help="retries per file (default 4)")
    p.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    p.add_argument("--max-mb", type=float, default=DEFAULT_MAX_BYTES / 2**20,
                   help="refuse a download or a decompressed CSV larger than this (MiB, default 64)")
    p.set_defaults(func=run_fetch)
    return p


def run_fetch(args: argparse.Namespace) -> int:
    """Run ``riskmodels data fetch``: progress on stderr, summary on stdout.

    Returns 0 when at least one symbol has usable data, 1 when nothing usable
    was fetched, 2 on bad arguments.
    """
    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        report = fetch(
            symbols=args.symbols, start=args.start, end=args.end, interval=args.interval,
            dest=args.dest, base_url=args.base_url, quote=args.quote, progress=progress,
            max_retries=getattr(args, "retries", 4), workers=getattr(args, "workers", 4),
            max_bytes=int(getattr(args, "max_mb", DEFAULT_MAX_BYTES / 2**20) * 2**20),
        )
    except ArchiveUnreachable as e:
        print(f"riskmodels data fetch: error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"riskmodels data fetch: error: {e}", file=sys.stderr)
        return 2
    print(report.table())
    if not report.ok:
        print("riskmodels data fetch: nothing usable was fetched", file=sys.stderr)
        return 1
    return 0
