"""The Binance public data archive's kline files: where they are and how to read them.

What :mod:`riskmodels.data.fetch` downloads, planned and parsed here without any
network access: :func:`plan_pieces` (which monthly and daily files cover a date
range), :func:`parse_checksum` (the published SHA-256), :func:`read_kline_zip`
(one ZIP to a frame) and :func:`merge_klines` (pieces to one series).

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
(incomplete) month up to yesterday (UTC).
"""

from __future__ import annotations

import calendar
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from riskmodels.data.fetch_guard import DEFAULT_MAX_BYTES, read_zip_member

DEFAULT_BASE_URL = "https://data.binance.vision"
INTERVALS: dict[str, timedelta] = {"1d": timedelta(days=1), "1h": timedelta(hours=1)}
FIELDS = ("open", "high", "low", "close", "volume")


_MICROS_THRESHOLD = 10**14  # ms epochs are < 1e14 until year 5138; µs epochs are > 1e14 after 1973


class KlineConflictError(ValueError):
    """Two pieces give different bars for the same open time."""


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
