"""Fetch one symbol: plan its archive files, download what is not cached, write its Parquet file.

:func:`_fetch_symbol` is the per-symbol step of :func:`riskmodels.data.fetch.fetch`.

Cache
-----
``<dest>/.cache/<PAIR>/<interval>/`` keeps every verified ZIP (a file there is
always complete and verified, see :mod:`riskmodels.data.fetch_download`) plus
``missing.json``, the monthly files the archive answered 404 for (months before a
listing or after a delisting; delete it to ask again), so a rerun asks again only
for what is not cached yet. A monthly file is published some days after its month
ends: if the last complete month's file is not there yet, its daily files are used
instead. The per-symbol Parquet file ``<dest>/<SYMBOL>-USD_<interval>.parquet``
(columns ``datetime`` (naive UTC), ``open``, ``high``, ``low``, ``close``,
``volume``) is rebuilt from the cached pieces on every run, written to a
temporary name, fsynced and renamed.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from riskmodels.data.fetch_download import _get_piece, _Opts
from riskmodels.data.fetch_report import FileFailure, SymbolReport
from riskmodels.data.kline_archive import (
    INTERVALS,
    KlineConflictError,
    _daily_pieces,
    _fmt_ts,
    merge_klines,
    plan_pieces,
    read_kline_zip,
)

_MISSING_FILE = "missing.json"


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
