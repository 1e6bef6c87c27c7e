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
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from riskmodels.data.columns import (
    TIME_ALIASES,
    apply_column_map,
    check_column_map,
    pick_alias,
    utc_offsets,
)
from riskmodels.data.naming import asset_names, group_by_asset
from riskmodels.data.panel import FIELDS, PricePanel
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

BINANCE_KLINE_COLUMNS: tuple[str, ...] = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)

MAX_FILE_BYTES = 512 * 2**20  # the largest shared file is ~1 MB; [data] max_file_mb
SUFFIXES = (".csv", ".parquet", ".pq")
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR")
INTERVAL_DIRS = {"1d": "crypto-daily", "1h": "crypto-hourly"}
DATA_HINT = ("point riskmodels at the data with --data DIR or the RISKMODELS_DATA environment "
             "variable (a folder holding crypto-daily/, or a folder of OHLCV files)")

Policy = Literal["error", "drop_asset", "truncate"]

_BINANCE_RE = re.compile(r"^([A-Z0-9]+)-(\d+[smhdwM])-\d{4}-\d{2}(?:-\d{2})?$")
_INTERVAL_IN_NAME = re.compile(r"(?:^|[_\-.])(\d+[smhdw])(?=$|[_\-.])")


# --------------------------------------------------------------------------- names
def symbol_from_filename(path: str | os.PathLike[str]) -> str:
    """Asset symbol from a file name.

    ``BTC-USD_1d.csv`` -> ``BTC``; ``BTCUSDT-1d-2024-01.csv`` -> ``BTC``;
    ``eth.parquet`` -> ``ETH``.
    """
    stem = Path(path).name
    for suf in SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    m = _BINANCE_RE.match(stem)
    if m:
        pair = m.group(1)
        for q in QUOTES:
            if pair.endswith(q) and len(pair) > len(q):
                return pair[: -len(q)]
        return pair
    base = stem.split("_")[0]
    base = re.split(r"[-.]", base)[0] or stem
    return base.upper()


def interval_from_filename(path: str | os.PathLike[str]) -> str | None:
    """``BTC-USD_1d.csv`` -> ``"1d"``, ``BTCUSDT-1h-2024-01.csv`` -> ``"1h"``, else None."""
    stem = Path(path).name
    for suf in SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
    m = _INTERVAL_IN_NAME.search(stem)
    return m.group(1).lower() if m else None


# --------------------------------------------------------------------------- parsing
def _line_of(i: int, has_header: bool) -> int:
    """1-based line number in the file of data row ``i``."""
    return i + (2 if has_header else 1)


def _looks_numeric(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


def _read_csv(path: Path, raw: bytes) -> tuple[pd.DataFrame, bool]:
    text_head = raw[:4096].decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text_head.splitlines()[0] if text_head.strip() else ""
    if not first.strip():
        raise DataError(f"{path}: the file is empty (no header and no rows)")
    fields = first.split(",")
    has_header = not _looks_numeric(fields[0])
    if has_header:
        df = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
    else:
        if len(fields) != len(BINANCE_KLINE_COLUMNS):
            raise DataError(
                f"{path}: no header row and {len(fields)} columns; a file without a header must "
                f"be a Binance kline file with the 12 columns {', '.join(BINANCE_KLINE_COLUMNS)}"
            )
        df = pd.read_csv(io.BytesIO(raw), header=None, names=list(BINANCE_KLINE_COLUMNS))
    return df, has_header


def _pick_columns(path: Path, df: pd.DataFrame) -> dict[str, str | None]:
    by_lower: dict[str, list[str]] = {}
    for col in df.columns:
        by_lower.setdefault(str(col).strip().lower(), []).append(col)
    found: dict[str, str | None] = {}
    time_col = None
    for alias in TIME_ALIASES:
        if alias in by_lower:
            time_col = by_lower[alias][0]
            break
    found["time"] = time_col
    missing = []
    for name in FIELDS:
        cols = pick_alias(by_lower, name)
        if len(cols) > 1:
            raise DataError(f"{path}: column {name!r} appears {len(cols)} times ({cols}); keep one")
        if not cols:
            missing.append(name)
        else:
            found[name] = cols[0]
    if time_col is None and not isinstance(df.index, pd.DatetimeIndex):
        missing.insert(0, "datetime (or date/timestamp/time/open_time)")
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; the file has columns {list(map(str, df.columns))} "
            "(names are matched case-insensitively)"
        )
    return found


def _parse_times(path: Path, values: pd.Series | pd.Index, has_header: bool) -> pd.DatetimeIndex:
    if (not isinstance(values, pd.DatetimeIndex)
            and not pd.api.types.is_numeric_dtype(values.dtype)
            and not pd.api.types.is_datetime64_any_dtype(values.dtype)):
        head = pd.Series(values).dropna()
        if len(head) and _looks_numeric(str(head.iloc[0])):  # quoted epoch numbers
            as_num = pd.to_numeric(pd.Series(values).astype(str).str.strip(), errors="coerce")
            if as_num.notna().all():
                values = as_num
    if isinstance(values, pd.DatetimeIndex):
        idx = values
    elif pd.api.types.is_datetime64_any_dtype(values.dtype):
        idx = pd.DatetimeIndex(values)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        v = np.asarray(values, dtype=np.float64)
        if np.isnan(v).any():
            i = int(np.flatnonzero(np.isnan(v))[0])
            raise DataError(f"{path}: empty timestamp at line {_line_of(i, has_header)}")
        v = v.astype(np.int64)
        # per value by magnitude: s < 1e11 <= ms < 1e14 <= us
        ns = np.where(v >= 10**14, v * 1_000, np.where(v >= 10**11, v * 1_000_000, v * 1_000_000_000))
        idx = pd.DatetimeIndex(ns.astype("datetime64[ns]"))
    else:
        s = pd.Series(values).astype(str).str.strip()
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(s, format="ISO8601", utc=True))
        except (ValueError, TypeError):
            parsed = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
            bad = np.flatnonzero(pd.isna(parsed).to_numpy())
            i = int(bad[0]) if len(bad) else 0
            raise DataError(
                f"{path}: cannot read the timestamp {s.iloc[i]!r} at line {_line_of(i, has_header)} "
                "(expected ISO dates like 2024-01-31 or 2024-01-31 13:00:00, or epoch numbers)"
            ) from None
    if idx.isna().any():  # an empty date cell, or a row of empty cells (",,,,,")
        i = int(np.flatnonzero(idx.isna())[0])
        raise DataError(f"{path}: empty timestamp at line {_line_of(i, has_header)}; give every row its date "
                        "or delete the row")
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return pd.DatetimeIndex(idx.astype("datetime64[ns]"), name="timestamp")


def _numeric(path: Path, df: pd.DataFrame, col: str, name: str, has_header: bool) -> np.ndarray:
    s = df[col]
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64)
    num = pd.to_numeric(s, errors="coerce")
    bad = np.flatnonzero(num.isna().to_numpy() & s.notna().to_numpy()
                         & (s.astype(str).str.strip() != "").to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{path}: text {str(s.iloc[i])!r} in price/volume column {name!r} at line "
            f"{_line_of(i, has_header)} ({len(bad)} non-numeric value(s) in that column); "
            "fix the file"
        )
    return num.to_numpy(dtype=np.float64)


def read_ohlcv(path: str | os.PathLike[str], *, columns: Mapping[str, str] | None = None,
               max_bytes: int = MAX_FILE_BYTES) -> tuple[pd.DataFrame, str]:
    """Read one file into a raw OHLCV frame and the sha256 of its bytes.

    The frame is indexed by naive-UTC ``timestamp`` in file order (not sorted,
    duplicates kept: :func:`~riskmodels.data.validate.validate` reports them).
    ``columns`` maps canonical names to the file's (:mod:`riskmodels.data.columns`);
    ``frame.attrs["utc_offsets"]`` lists non-zero UTC offsets seen in ISO timestamps.

    Raises
    ------
    DataError
        Empty file, a file over ``max_bytes``, a binary or gzip file, missing
        column, text in a price column, repeated header row, unreadable
        timestamp; the message names the file and the line.
    """
    p = Path(path)
    cmap = check_column_map(columns)
    size = p.stat().st_size
    if size > max_bytes:
        raise DataError(f"{p}: the file is {size:,} bytes, over the limit of {max_bytes:,} "
                        "bytes ([data] max_file_mb); an OHLCV file is far smaller: check it is the "
                        "file you mean, or raise the limit")
    raw = p.read_bytes()
    if p.suffix.lower() not in (".parquet", ".pq"):
        head = raw[:4096]
        if head[:2] == b"\x1f\x8b":
            raise DataError(f"{p}: the file is gzip-compressed, not CSV text; decompress it "
                            "(gunzip) and point riskmodels at the .csv")
        if b"\x00" in head or head[:4] in (b"PK\x03\x04", b"PAR1"):
            raise DataError(f"{p}: the file is binary (not CSV text); a CSV must be UTF-8 text "
                            "(a Parquet file must end in .parquet)")
    sha = hashlib.sha256(raw).hexdigest()
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises several types
            raise DataError(f"{p}: not a readable Parquet file ({exc})") from exc
        has_header = True
    else:
        if not raw.strip():
            raise DataError(f"{p}: the file is empty (no header and no rows)")
        df, has_header = _read_csv(p, raw)
    if len(df) == 0:
        raise DataError(f"{p}: the file has a header but no data rows")
    df = apply_column_map(p, df, cmap)
    cols = _pick_columns(p, df)
    tcol = cols["time"]
    if (has_header and tcol is not None and not pd.api.types.is_numeric_dtype(df[tcol].dtype)
            and not pd.api.types.is_datetime64_any_dtype(df[tcol].dtype)):
        rep = np.flatnonzero(df[tcol].astype(str).str.strip().str.lower().to_numpy()
                             == str(tcol).strip().lower())
        if len(rep):
            raise DataError(
                f"{p}: repeated header row at line {_line_of(int(rep[0]), has_header)} "
                f"({len(rep)} time(s)); files were probably concatenated with their headers: "
                "delete the extra header lines"
            )
    times = _parse_times(p, df[tcol] if tcol is not None else df.index, has_header)
    data = {name: _numeric(p, df, cols[name], name, has_header) for name in FIELDS}  # type: ignore[arg-type]
    out = pd.DataFrame(data, index=times)
    if tcol is not None:
        out.attrs["utc_offsets"] = utc_offsets(df[tcol])
    return out, sha


# --------------------------------------------------------------------------- discovery
def find_files(directory: str | os.PathLike[str], interval: str | None = None) -> list[Path]:
    """OHLCV files (``*.csv``, ``*.parquet``, ``*.pq``) in ``directory``, sorted by name.

    With ``interval``, files whose name carries another interval are skipped;
    without it, a folder mixing intervals gives its daily (``_1d``) files.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"data directory {d} does not exist; {DATA_HINT}")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if interval is None:
        named = {interval_from_filename(p) for p in files} - {None}
        if len(named) > 1:  # a cache folder with daily and hourly files: daily by default
            interval = "1d" if "1d" in named else None
            if interval is None:
                raise DataError(
                    f"{d} holds files of several intervals {sorted(named)}; pass interval=..."
                )
    if interval is not None:
        skipped = [p.name for p in files if interval_from_filename(p) not in (None, interval)]
        files = [p for p in files if interval_from_filename(p) in (None, interval)]
        if skipped and files:
            shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            warnings.warn(f"{d}: skipped {len(skipped)} file(s) whose name says another interval "
                          f"than {interval} ({shown}); rename a file whose name is wrong",
                          DataQualityWarning, stacklevel=3)
    if not files:
        what = f" for interval {interval}" if interval else ""
        raise FileNotFoundError(f"no OHLCV files (*.csv, *.parquet){what} in {d}; {DATA_HINT}")
    return files


def resolve_source(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                   interval: str | None = None) -> list[Path]:
    """Files for ``source``: a root with ``crypto-daily/`` (or ``crypto-hourly/``)
    inside (chosen by ``interval``, default daily), a folder of files, or a list."""
    if isinstance(source, (str, os.PathLike)):
        d = Path(source)
        if not d.exists():
            raise FileNotFoundError(f"data path {d} does not exist; {DATA_HINT}")
        if d.is_file():
            return [d]
        sub = d / INTERVAL_DIRS.get(interval or "1d", f"crypto-{interval}")
        if sub.is_dir():
            return find_files(sub, interval)
        return find_files(d, interval)
    files = [Path(p) for p in source]
    if not files:
        raise FileNotFoundError(f"an empty list of files was given; {DATA_HINT}")
    for p in files:
        if not p.is_file():
            raise FileNotFoundError(f"data file {p} does not exist; {DATA_HINT}")
    return files


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
