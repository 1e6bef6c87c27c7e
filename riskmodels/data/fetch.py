"""Download spot klines from Binance's public data archive into a Parquet cache.

``riskmodels data fetch`` gives a fresh machine with internet access real price
history in one command, without an API key.

This module holds the entry points: :func:`fetch` (check the arguments, probe the
host, fetch each symbol on a pool of download threads) and the ``data fetch``
command line (:func:`add_fetch_parser`, :func:`run_fetch`). The work is done by

- :mod:`riskmodels.data.kline_archive`: the archive layout (which monthly and
  daily files cover a date range), the CHECKSUM format, reading a kline ZIP and
  merging pieces;
- :mod:`riskmodels.data.fetch_download`: downloading one file, verified against
  its published SHA-256, with retries;
- :mod:`riskmodels.data.fetch_symbol`: one symbol's plan, downloads, 404 record
  and Parquet file (the cache layout is described there);
- :mod:`riskmodels.data.fetch_report`: what a run did (:class:`FetchReport`).

Their public names are importable from here too.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from riskmodels.data.fetch_download import Progress, _Opts
from riskmodels.data.fetch_guard import (
    DEFAULT_MAX_BYTES,
    ArchiveUnreachable,
    offline_message,
    probe,
)
from riskmodels.data.fetch_report import FetchReport, FileFailure, SymbolReport
from riskmodels.data.fetch_symbol import _atomic_write_text as _atomic_write_text
from riskmodels.data.fetch_symbol import _fetch_symbol
from riskmodels.data.kline_archive import (
    DEFAULT_BASE_URL,
    INTERVALS,
    KlineConflictError,
    Piece,
    _fmt_ts,
    merge_klines,
    parse_checksum,
    plan_pieces,
    read_kline_zip,
)
from riskmodels.data.kline_archive import FIELDS as FIELDS
from riskmodels.data.loaders import DEFAULT_UNIVERSE

# FIELDS and _atomic_write_text are re-exported (tests read fetch.FIELDS; riskmodels.cascade.cli
# imports fetch._atomic_write_text).

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
ENV_FETCH_URL = "RISKMODELS_FETCH_URL"


_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}$")


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
