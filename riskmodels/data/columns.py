"""Column names of OHLCV files: recognised aliases, a user column map, UTC offsets seen.

Recognised without a map (case-insensitive, surrounding spaces ignored):

* time: ``datetime``, ``date``, ``day``, ``timestamp``, ``time``, ``open_time``,
  ``open time``, ``unix``, ``ts`` (the first present, in this order). Values are ISO
  text (time zones converted to UTC) or epoch numbers, seconds, milliseconds or
  microseconds, read per value by magnitude (< 1e11 s, < 1e14 ms, else us), also when
  the numbers are quoted text;
* ``open``, ``high``, ``low``, ``close``, ``volume`` (``vol`` for volume).

A column map names the file's columns for the canonical ones, e.g. the config's
``[data] columns = { date = "day", close = "Close Price" }`` or
``load_panel(..., columns={"time": "Date(UTC)"})``. Keys are ``time`` (or its synonyms
``date``, ``datetime``, ``timestamp``), ``open``, ``high``, ``low``, ``close``,
``volume``; a mapped column must exist in every file the map is applied to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "COLUMN_KEYS",
    "TIME_ALIASES",
    "apply_column_map",
    "check_column_map",
    "utc_offsets",
]

TIME_ALIASES: tuple[str, ...] = ("datetime", "date", "day", "timestamp", "time", "open_time",
                                 "open time", "unix", "ts")
FIELD_ALIASES: dict[str, tuple[str, ...]] = {"volume": ("vol",)}
TIME_KEYS = ("time", "date", "datetime", "timestamp")
COLUMN_KEYS = (*TIME_KEYS, "open", "high", "low", "close", "volume")
_OFFSET_RE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$")


def check_column_map(columns: Mapping[str, str] | None, where: str = "columns") -> dict[str, str]:
    """The map with canonical keys (``time`` for the time synonyms), checked.

    Raises ``ValueError`` naming ``where``, the bad key or value and the valid keys.
    """
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise ValueError(f"{where} must be a table like {{ date = \"day\", close = \"Close\" }}, "
                         f"got {columns!r}")
    out: dict[str, str] = {}
    for k, v in columns.items():
        key = str(k).strip().lower()
        if key not in COLUMN_KEYS:
            raise ValueError(f"{where}: unknown key {k!r}; valid keys: time (or date, datetime, "
                             "timestamp), open, high, low, close, volume")
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{where}.{k} must name a column of the file (text), got {v!r}")
        canon = "time" if key in TIME_KEYS else key
        if canon in out:
            raise ValueError(f"{where}: the time column is mapped twice ({k!r} and another "
                             "synonym); keep one")
        out[canon] = v.strip()
    return out


def apply_column_map(path: Path, df: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """Rename the mapped columns of ``df`` to their canonical names (``time`` -> ``datetime``).

    Raises ``DataError`` naming the file when a mapped column is absent.
    """
    from riskmodels.data.validate import DataError

    if not columns:
        return df
    by_lower = {str(c).strip().lower(): c for c in df.columns}
    rename: dict[object, str] = {}
    for canon, src in columns.items():
        col = by_lower.get(src.lower())
        if col is None:
            raise DataError(
                f"{path}: the column map says {canon} = {src!r} but the file has columns "
                f"{[str(c) for c in df.columns]}; fix [data] columns (or the columns= argument)"
            )
        rename[col] = "datetime" if canon == "time" else canon
    targets = set(rename.values())
    clash = [c for c in df.columns if str(c).strip().lower() in targets and c not in rename]
    out = df.drop(columns=clash).rename(columns=rename)
    return out


def pick_alias(by_lower: Mapping[str, list], name: str) -> list:
    """Columns for canonical ``name``: its own name first, then its aliases."""
    for alias in (name, *FIELD_ALIASES.get(name, ())):
        if alias in by_lower:
            return by_lower[alias]
    return []


def utc_offsets(values: pd.Series) -> tuple[str, ...]:
    """Non-zero UTC offsets (``+05:00``) written in ISO timestamp text, sorted (from 256
    evenly spaced rows of a longer file)."""
    if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
        return ()
    if len(values) > 256:  # the offsets only name the cause of a misaligned defect: a sample
        values = values.iloc[np.linspace(0, len(values) - 1, 256).astype(np.int64)]
    found = values.astype(str).str.strip().str.extract(_OFFSET_RE, expand=False).dropna().unique()
    zero = {"Z", "+00:00", "-00:00", "+0000", "-0000"}
    return tuple(sorted(str(o) for o in found if o not in zero))
