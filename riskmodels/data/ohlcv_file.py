"""Read one OHLCV file (CSV or Parquet) into a frame: :func:`read_ohlcv`.

The formats (named columns in any order and case, or the 12-column Binance
kline CSV with or without its header) and the time rules (ISO text converted to
UTC, or epoch numbers read per value by magnitude: < 1e11 seconds, < 1e14
milliseconds, else microseconds) are described in :mod:`riskmodels.data.loaders`.
Errors name the file and the line.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodels.data.columns import (
    TIME_ALIASES,
    apply_column_map,
    check_column_map,
    pick_alias,
    utc_offsets,
)
from riskmodels.data.panel import FIELDS
from riskmodels.data.validate import DataError

BINANCE_KLINE_COLUMNS: tuple[str, ...] = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)


MAX_FILE_BYTES = 512 * 2**20  # the largest shared file is ~1 MB; [data] max_file_mb


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
