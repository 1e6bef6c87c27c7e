"""Load OHLCV files (CSV or Parquet, one asset per file) into frames and panels.

File formats
------------
* **Named columns** (any order, any case, extra columns ignored): a time column
  (``datetime``, ``date``, ``day``, ``timestamp``, ``time``, ``open_time``...) and
  ``open``, ``high``, ``low``, ``close``, ``volume``; other names through a column
  map (:mod:`riskmodels.data.columns`). Times are ISO text (``2024-01-02`` or
  ``2024-01-02 13:00:00``, time zones converted to UTC) or epoch numbers.
* **Binance kline CSV** (data.binance.vision, 12 columns: open_time, open,
  high, low, close, volume, close_time, quote_volume, count,
  taker_buy_volume, taker_buy_quote_volume, ignore), with the header row
  (futures files) or without it (spot files). Epoch times are read per value by
  magnitude: < 1e11 seconds, < 1e14 milliseconds, else microseconds (Binance
  spot files use microseconds from 2025-01-01). The bar's timestamp is its
  open time, in UTC.

The asset symbol comes from the file name unless the caller gives a map or a
name pattern (:mod:`riskmodels.data.naming`; two files of one asset are an
error unless they are dated archive pieces):
``BTC-USD_1d.csv`` -> ``BTC``, ``BTCUSDT-1d-2024-01.csv`` -> ``BTC`` (the
quote currency USDT/USDC/BUSD/FDUSD/TUSD/USD/EUR is stripped). Several files
of one symbol (Binance monthly files) are concatenated. The bar interval comes
from the name (``_1d``, ``-1h-``) or, failing that, from the spacing.

Policies (``load_panel(policy=...)``)
-------------------------------------
``"error"`` (default)
    any error-severity defect raises :class:`DataError` listing every one of
    them with asset, dates and remedy.
``"drop_asset"``
    assets with an error defect are left out; a :class:`DataQualityWarning`
    names them.
``"truncate"``
    each asset with error defects keeps only the rows strictly after the last
    date of its last error defect (its clean tail); a
    :class:`DataQualityWarning` names the asset and the new first date. An
    asset with nothing left is dropped (and named).

Gaps: decision
--------------
A calendar gap is an error (a return across it spans several bars). Forward
filling is never the default: ``max_fill=k`` fills gaps of at most ``k``
missing bars with the previous close (open = high = low = close, volume 0);
each fill is listed in the report as ``gap_filled`` and warned about. Longer
gaps stay errors.

The shared README calls AVAX's defect "one missing day"; the file in fact has
one row on 2020-07-13 and then nothing until 2020-09-22 (one gap of 69 days).
Forward-filling 69 days would invent a flat price, so the right remedy is to
start AVAX on 2020-09-22. Likewise AAVE's first row (2020-10-02) has open = low
= 0 and the next day's close is x100 (listing artefact, reported as
``nonpositive_price`` + ``splice``). Both defects lie at the very start of
those series, so the **default universe loads cleanly with**
``policy="truncate"``: AVAX starts 2020-09-22, AAVE 2020-10-04, each named in a
:class:`DataQualityWarning` and in ``panel.quality``; with ``start`` on or
after 2020-10-04 it also loads under ``policy="error"``. The CLI's default
configuration should therefore set ``policy = "truncate"`` (explicit, visible)
rather than fill anything.

Panel calendar: the union of all assets' timestamps. An asset is NaN before
its first and after its last row (ragged); inside its live range it has no NaN
(enforced: a hole raises :class:`DataError`).

Modules: this one holds :func:`load_files`, :func:`load_panel` and
:func:`validate_directory`; one file is read by :mod:`riskmodels.data.ohlcv_file`
(:func:`read_ohlcv`), file names and folders by :mod:`riskmodels.data.sources`.
Their names are importable from here too.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from riskmodels.data.naming import asset_names, group_by_asset
from riskmodels.data.ohlcv_file import BINANCE_KLINE_COLUMNS, MAX_FILE_BYTES, read_ohlcv
from riskmodels.data.ohlcv_file import _parse_times as _parse_times
from riskmodels.data.panel import FIELDS, PricePanel
from riskmodels.data.sources import DATA_HINT as DATA_HINT
from riskmodels.data.sources import INTERVAL_DIRS as INTERVAL_DIRS
from riskmodels.data.sources import QUOTES as QUOTES
from riskmodels.data.sources import SUFFIXES as SUFFIXES
from riskmodels.data.sources import (
    find_files,
    interval_from_filename,
    resolve_source,
    symbol_from_filename,
)
from riskmodels.data.validate import (
    DataError,
    DataQualityWarning,
    Defect,
    QualityReport,
    format_timestamp,
    infer_interval,
    interval_step,
    validate,
)

# Re-exported (`x as x`) from the modules that now hold them: riskmodels.data.directory
# imports INTERVAL_DIRS and SUFFIXES, tests read _parse_times.
__all__ = [
    "BINANCE_KLINE_COLUMNS",
    "DEFAULT_UNIVERSE",
    "find_files",
    "load_files",
    "load_panel",
    "resolve_source",
    "symbol_from_filename",
    "validate_directory",
]

DEFAULT_UNIVERSE: tuple[str, ...] = (
    "BTC", "ETH", "BNB", "XRP", "ADA", "DOGE", "SOL", "LINK", "LTC", "BCH", "ETC", "XLM",
    "XMR", "TRX", "DOT", "AVAX", "NEAR", "AAVE",
)

Policy = Literal["error", "drop_asset", "truncate"]


# --------------------------------------------------------------------------- public API
def load_files(
    paths_or_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    symbols: Sequence[str] | Mapping[str, str] | None = None,
    interval: str | None = None,
    columns: Mapping[str, str] | None = None,
    name_pattern: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> dict[str, pd.DataFrame]:
    """Read OHLCV files into raw frames, one per asset.

    Parameters
    ----------
    paths_or_dir : path or sequence of paths
        A folder (all ``*.csv``/``*.parquet`` in it, or its ``crypto-daily/``
        / ``crypto-hourly/`` subfolder) or a list of files.
    symbols : sequence or mapping, optional
        Asset symbols instead of the file-name rule: a sequence aligned with the
        (sorted) file list, or ``{file name or path: symbol}``.
    columns : mapping, optional
        Column map ``{"time": "day", "close": "Close Price"}``
        (:mod:`riskmodels.data.columns`).
    name_pattern : str, optional
        Regular expression with a group ``asset`` matched against each file name
        (:mod:`riskmodels.data.naming`).
    max_bytes : int
        Larger files are refused with a message.
    interval : str, optional
        ``"1d"``, ``"1h"``...: skip files whose name says another interval, and
        record it in each frame's ``attrs["interval"]``. Default: from the file
        name, else the median spacing.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{asset: frame}`` indexed by naive-UTC ``timestamp`` in file order,
        columns open, high, low, close, volume (float64). ``frame.attrs`` holds
        ``files``, ``sha256`` and ``interval``.

    Raises
    ------
    DataError
        A malformed file (named, with the problem and line), two files claiming
        one asset (named, unless both are dated archive pieces), or archive
        pieces of one asset with different intervals.
    FileNotFoundError
        No such folder / no files.
    """
    if interval is not None:
        interval_step(interval)
    files = resolve_source(paths_or_dir, interval)
    grouped = group_by_asset(files, asset_names(files, symbols, name_pattern))
    out: dict[str, pd.DataFrame] = {}
    for name, group in grouped.items():
        parts, shas = [], []
        ivs = {interval_from_filename(p) for p in group} - {None}
        if len(ivs) > 1:
            raise DataError(
                f"{name}: files with different intervals {sorted(ivs)} ({[p.name for p in group]}); "
                "pass interval='1d' (or '1h') to choose"
            )
        for p in sorted(group):
            df, sha = read_ohlcv(p, columns=columns, max_bytes=max_bytes)
            parts.append(df)
            shas.append(sha)
        offsets = tuple(sorted({o for f in parts for o in f.attrs.get("utc_offsets", ())}))
        df = parts[0] if len(parts) == 1 else pd.concat(parts)
        named = ivs.pop() if ivs else None
        iv = interval or named or infer_interval(df.index)
        df.attrs = {
            "files": [str(p) for p in sorted(group)],
            "sha256": shas[0] if len(shas) == 1 else hashlib.sha256("".join(shas).encode()).hexdigest(),
            "interval": iv,
            "interval_from": "name" if named else "argument" if interval else "spacing",
            "utc_offsets": offsets,
        }
        out[name] = df
    return out


def validate_directory(path: str | os.PathLike[str], *, interval: str | None = None,
                       splice_threshold: float = float(np.log(5)),
                       min_length: int = 250, **options: object) -> QualityReport:
    """Check every file under ``path``, the unreadable ones included, and return a
    :class:`~riskmodels.data.directory.DirectoryReport` (a :class:`QualityReport` with a
    per-file table; for ``riskmodels data validate DIR``). ``options``: ``columns``,
    ``symbols``, ``name_pattern``, ``max_bytes`` as for :func:`load_files`."""
    from riskmodels.data.directory import check_directory

    return check_directory(path, interval=interval, splice_threshold=splice_threshold,
                           min_length=min_length, **options)  # type: ignore[arg-type]


def _fill_gaps(asset: str, df: pd.DataFrame, gaps: list[Defect], step: pd.Timedelta
               ) -> tuple[pd.DataFrame, list[Defect]]:
    """Forward-fill the listed gaps: flat bar at the previous close, volume 0."""
    new_rows = []
    notes = []
    for g in gaps:
        assert g.first is not None and g.last is not None
        stamps = pd.date_range(g.first, g.last, freq=step)
        prev = df.loc[: g.first - step].iloc[-1]
        c = float(prev["close"])
        new_rows.append(pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 0.0},
                                     index=stamps))
        notes.append(Defect(
            asset, "gap_filled", g.first, g.last, g.count, "warning",
            f"{g.count} missing bar(s) filled with the previous close {c:.6g} (volume 0) "
            "because max_fill allows it",
        ))
    filled = pd.concat([df, *new_rows]).sort_index()
    filled.attrs = dict(df.attrs)
    return filled, notes


def load_panel(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    assets: Sequence[str] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    policy: Policy = "error",
    splice_threshold: float = float(np.log(5)),
    interval: str | None = None,
    max_fill: int = 0,
    min_length: int = 250,
    columns: Mapping[str, str] | None = None,
    symbols: Mapping[str, str] | None = None,
    name_pattern: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> PricePanel:
    """Load, validate and assemble a :class:`PricePanel`.

    Parameters
    ----------
    source : path or sequence of paths
        A data root with ``crypto-daily/`` (``crypto-hourly/`` when
        ``interval="1h"``), a folder of files, or a list of files.
    assets : sequence of str, optional
        Symbols to load, in panel order (default: every file). Unknown symbols
        raise :class:`DataError` listing the available ones.
    start, end : date-like, optional
        Keep ``start <= t <= end`` (inclusive) *before* validating, so defects
        outside the window do not matter.
    policy : {"error", "drop_asset", "truncate"}
        What to do with error-severity defects (module docstring).
    splice_threshold : float, default ln 5
        One-bar |log return| above which a move is a bad tick or splice.
    interval : str, optional
        ``"1d"`` (default when the root has ``crypto-daily/``), ``"1h"``...
    max_fill : int, default 0
        Gaps of at most this many missing bars are forward-filled (flagged as
        ``gap_filled`` warnings); 0 fills nothing. Must be >= 0.
    min_length : int, default 250
        Threshold of the ``short_history`` warning.
    columns, symbols, name_pattern, max_bytes
        Column map, asset names and file-size limit, as for :func:`load_files`.

    Returns
    -------
    PricePanel
        With ``quality`` (the report of the selected window, with
        ``gap_filled`` records) and ``sources`` (``asset -> sha256``).
    """
    if policy not in ("error", "drop_asset", "truncate"):
        raise ValueError(f"policy must be 'error', 'drop_asset' or 'truncate', got {policy!r}")
    if int(max_fill) != max_fill or max_fill < 0:
        raise ValueError(f"max_fill must be a whole number of bars >= 0, got {max_fill}")
    files = resolve_source(source, interval)
    names = asset_names(files, symbols, name_pattern)
    name_of = {str(p): n for p, n in zip(files, names, strict=True)}
    if assets is not None:
        assets = [str(a) for a in assets]
        if len(set(assets)) != len(assets):
            raise ValueError(f"assets has duplicates: {assets}")
        by_symbol: dict[str, list[Path]] = {}
        for p, name in zip(files, names, strict=True):
            by_symbol.setdefault(name, []).append(p)
        unknown = [a for a in assets if a not in by_symbol]
        if unknown:
            raise DataError(
                f"no file for asset(s) {unknown} in {source}; available: {sorted(by_symbol)}"
            )
        files = [p for a in assets for p in by_symbol[a]]
    frames = load_files(files, interval=interval, columns=columns, max_bytes=max_bytes,
                        symbols={str(p): name_of[str(p)] for p in files})
    t0 = pd.Timestamp(start) if start is not None else None
    t1 = pd.Timestamp(end) if end is not None else None
    if t0 is not None or t1 is not None:
        for a, df in list(frames.items()):
            keep = np.ones(len(df), dtype=bool)
            if t0 is not None:
                keep &= df.index >= t0
            if t1 is not None:
                keep &= df.index <= t1
            attrs = dict(df.attrs)
            frames[a] = df[keep]
            frames[a].attrs = attrs
        empty = [a for a, df in frames.items() if len(df) == 0]
        if empty and assets is None:
            for a in empty:  # a whole-folder load: assets outside the window are not defects
                del frames[a]
    if not frames:
        raise DataError(f"no data between {start} and {end} in {source}")
    report = validate(frames, splice_threshold=splice_threshold, interval=interval,
                      min_length=min_length)

    defects = list(report.defects)
    if max_fill:
        new: list[Defect] = []
        for a, df in frames.items():
            fillable = [d for d in report.by_asset(a) if d.kind == "gap" and d.count <= max_fill]
            if not fillable:
                continue
            iv = interval or df.attrs.get("interval") or "1d"
            frames[a], notes = _fill_gaps(a, df, fillable, interval_step(iv))
            new.extend(notes)
            for n in notes:
                warnings.warn(f"{a}: {n.dates()}: {n.message}", DataQualityWarning, stacklevel=2)
        filled_ids = {(d.asset, d.first) for d in new}
        defects = [d for d in defects if not (d.kind == "gap" and (d.asset, d.first) in filled_ids)]
        defects.extend(new)
        report = QualityReport(defects, assets=report.assets, interval=report.interval)

    errors = report.errors
    if errors:
        if policy == "error":
            lines = "\n".join(f"  - {d}" for d in errors)
            raise DataError(
                f"{len(errors)} data error(s) in {len(report.error_assets())} asset(s) "
                f"({', '.join(report.error_assets())}):\n{lines}\n"
                "Fix the files, choose other assets/dates, or pass policy='truncate' "
                "(keep each asset's clean tail) or policy='drop_asset'."
            )
        for a in report.error_assets():
            errs = [d for d in errors if d.asset == a]
            kinds = ", ".join(sorted({d.kind for d in errs}))
            if policy == "drop_asset":
                del frames[a]
                warnings.warn(f"{a} dropped from the panel: {len(errs)} error defect(s) ({kinds}); "
                              "see panel.quality", DataQualityWarning, stacklevel=2)
                continue
            lasts = [d.last for d in errs if d.last is not None]
            if not lasts:  # e.g. no row inside [start, end]: there is no clean tail to keep
                frames.pop(a, None)
                warnings.warn(f"{a} dropped from the panel: {kinds} in the requested window",
                              DataQualityWarning, stacklevel=2)
                continue
            cut = max(lasts)
            df = frames[a]
            attrs = dict(df.attrs)
            df = df[~pd.DatetimeIndex(df.index).duplicated(keep="first")].sort_index()
            tail = df[df.index > cut]
            if len(tail) < 2:
                del frames[a]
                warnings.warn(f"{a} dropped from the panel: nothing clean after its last error "
                              f"defect on {format_timestamp(cut)} ({kinds})", DataQualityWarning, stacklevel=2)
                continue
            tail.attrs = attrs
            frames[a] = tail
            warnings.warn(
                f"{a} truncated: starts on {format_timestamp(tail.index[0])} (was "
                f"{format_timestamp(df.index[0])}), after its last error defect ending "
                f"{format_timestamp(cut)} ({kinds}); see panel.quality",
                DataQualityWarning, stacklevel=2,
            )
        if not frames:
            raise DataError(f"every asset had data errors and was dropped:\n{report}")
        check = validate(frames, splice_threshold=splice_threshold, interval=interval,
                         min_length=0)
        if check.errors:  # cannot happen by construction; guard the invariant
            raise DataError(f"internal: errors remain after policy {policy!r}:\n{check}")

    clean: dict[str, pd.DataFrame] = {}
    for a, df in frames.items():
        if not df.index.is_monotonic_increasing:
            df = df.sort_index(kind="stable")
        clean[a] = df
    sources = {a: str(df.attrs.get("sha256", "")) for a, df in clean.items()}
    panel = PricePanel.from_frames(clean, quality=report, sources=sources)
    _check_no_holes(panel)
    return panel


def _check_no_holes(panel: PricePanel) -> None:
    """No NaN inside any asset's live range (first..last live date), in any field."""
    stack = np.stack([getattr(panel, f) for f in FIELDS])  # (5, T, A)
    live_any = np.isfinite(stack).any(axis=0)
    live_all = np.isfinite(stack).all(axis=0)
    T = panel.n_dates
    idx = np.arange(T)[:, None]
    first = np.where(live_any.any(axis=0), np.argmax(live_any, axis=0), T)
    last = np.where(live_any.any(axis=0), T - 1 - np.argmax(live_any[::-1], axis=0), -1)
    inside = (idx >= first) & (idx <= last)
    holes = inside & ~live_all
    if holes.any():
        t, a = np.argwhere(holes)[0]
        raise DataError(
            f"{panel.assets[a]} has a NaN inside its live range on {format_timestamp(panel.dates[t])}; "
            "validate the files (riskmodels data validate DIR)"
        )
