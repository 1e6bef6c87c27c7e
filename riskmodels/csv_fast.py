"""Large tables to CSV, byte for byte what ``DataFrame.to_csv(path, index=False, float_format=...)`` writes.

pandas formats every float of a CSV through a Python-level formatter with
per-value NA checks: the default backtest's ``liquidations.csv`` (~120,000
events x 12 columns) took ~2.5 CPU-seconds (issue 23). :func:`write_csv`
formats each column at once (``str.__mod__`` mapped over the column, NaN as
the empty string, as pandas' default ``na_rep``), then lets :mod:`csv` quote
and join the rows with pandas' dialect (``QUOTE_MINIMAL``, ``"\\n"`` line
ends). Column kinds it formats itself: float, integer, bool, strings
(object / string dtype without missing values) and dates at midnight
(written ``YYYY-MM-DD``, as pandas writes a date-only column); any other
column (timestamps with a time, categoricals, mixed objects) makes it hand the
whole table to pandas, so the bytes never differ. ``tests/test_csv_fast.py``
compares the two on random tables.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _column(s: pd.Series, float_format: str) -> list[str] | None:
    """The column's cells as pandas writes them, or None when pandas must format it."""
    v = s.to_numpy()
    kind = v.dtype.kind
    if kind == "f":
        fmt = float_format.__mod__

        def cells(a: np.ndarray) -> list[str]:
            return ["" if math.isnan(x) else fmt(x) for x in a.tolist()]

        # +0.0 cells (most of an events table's impact and bad-debt columns) share one formatted string
        zero = (v == 0) & ~np.signbit(v)
        if zero.sum() * 8 < v.size:
            return cells(v)
        out = np.full(v.size, fmt(0.0), dtype=object)
        out[~zero] = cells(v[~zero])
        return out.tolist()
    if kind in "iu":
        return [str(x) for x in v.tolist()]
    if kind == "b":
        return ["True" if x else "False" for x in v.tolist()]
    if kind == "M":
        if getattr(s.dtype, "tz", None) is not None:
            return None
        day = v.astype("datetime64[D]")
        if np.isnat(v).any() or (day != v).any():
            return None
        return np.datetime_as_string(day, unit="D").tolist()
    if kind in "OU" or isinstance(s.dtype, pd.StringDtype):
        vals = v.tolist()
        if all(type(x) is str for x in vals):
            return vals
    return None


def csv_header(columns: Any) -> str:
    """The header line of :func:`csv_text` (the column names as :mod:`csv` quotes them)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerow([str(c) for c in columns])
    return buf.getvalue()


def csv_body(df: pd.DataFrame, float_format: str = "%.10g") -> str | None:
    """The data lines of :func:`csv_text` (each ending ``"\n"``), or None when pandas must format a column.

    Every cell is formatted on its own and a line holds one row, so the body
    of a table is the bodies of its row blocks joined (for blocks with the
    table's columns and dtypes).
    """
    cols = []
    for name in df.columns:
        c = _column(df[name], float_format)
        if c is None:
            return None
        cols.append(c)
    if not len(df):
        return ""
    if len(cols) < 2 or any(_needs_quotes(c) for c in cols):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(zip(*cols, strict=True))
        return buf.getvalue()
    # no cell needs quoting: rows joined with "," (what csv writes for them, ~6x faster than its writer)
    return "\n".join(map(",".join, zip(*cols, strict=True))) + "\n"


def csv_text(df: pd.DataFrame, float_format: str = "%.10g") -> str:
    """The text ``df.to_csv(index=False, float_format=float_format)`` returns."""
    body = csv_body(df, float_format)
    if body is None:
        return df.to_csv(index=False, float_format=float_format)
    return csv_header(df.columns) + body


#: characters that make :mod:`csv` (``QUOTE_MINIMAL``, ``","``, ``'"'``, ``"\n"``) quote a cell
_QUOTE_CHARS = (",", '"', "\r", "\n")


def _needs_quotes(cells: list[str]) -> bool:
    """Whether any cell holds a character :mod:`csv` quotes (one scan of the joined column).

    A single empty cell is quoted too, but only as a row's only field:
    :func:`csv_text` takes the joining shortcut with two or more columns only.
    """
    text = "\x00".join(cells)
    return any(ch in text for ch in _QUOTE_CHARS)


def write_csv(df: pd.DataFrame, path: str | Path, float_format: str = "%.10g") -> None:
    """Write ``df`` as ``df.to_csv(path, index=False, float_format=float_format)`` would (UTF-8)."""
    Path(path).write_text(csv_text(df, float_format), encoding="utf-8", newline="")


__all__ = ["csv_body", "csv_header", "csv_text", "write_csv"]
