"""Timestamp checks against the bar interval: the right spacing, on the UTC grid.

Three defects, all error-severity (a return computed across them is not a one-bar return):

``interval_mismatch``
    The typical (lower-quartile) spacing of the bars is another interval than the one declared by the
    file name (``_1d``, ``-1h-``) or the caller (``interval=``, ``[data] interval``):
    e.g. an hourly file named ``_1d``, or a daily file named ``_1h``. Reported once per
    asset; the gap and spacing checks are skipped for that asset (every row would be
    a "gap" or a "short spacing").
``short_spacing``
    Two consecutive bars closer than one interval (and not equal: equal stamps are
    ``duplicate_dates``), e.g. bars 86 s apart in a daily file.
``misaligned``
    Bars off the interval's UTC grid, for intervals that divide a day (``1d`` bars at
    00:00 UTC, ``1h`` bars on the hour, ...). The usual cause is a time-zone offset:
    ``2024-01-02T00:00:00+05:00`` is 2024-01-01 19:00 UTC, so a daily bar stamped in
    local time belongs to no UTC day. The loader records the offsets it saw in the file
    (``frame.attrs["utc_offsets"]``) and the message names them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskmodels.data.validate import Defect, _list_dates, format_timestamp, infer_interval

__all__ = ["GRID_KINDS", "grid_defects"]

GRID_KINDS = frozenset({"interval_mismatch", "short_spacing", "misaligned"})
_DAY_NS = 86_400 * 10**9


def _fmt_step(ns: int) -> str:
    td = pd.Timedelta(int(ns), unit="ns")
    if td >= pd.Timedelta(days=1) and td % pd.Timedelta(days=1) == pd.Timedelta(0):
        return f"{td.days} day(s)"
    secs = td.total_seconds()
    if secs >= 3600 and secs % 3600 == 0:
        return f"{int(secs // 3600)} h"
    if secs >= 60 and secs % 60 == 0:
        return f"{int(secs // 60)} min"
    return f"{secs:g} s"


def grid_defects(asset: str, idx: pd.DatetimeIndex, step: pd.Timedelta, interval: str,
                 declared_by: str, offsets: Sequence[str] = ()) -> tuple[list[Defect], bool]:
    """Grid defects of one asset's sorted, duplicate-free timestamps.

    Parameters
    ----------
    idx : DatetimeIndex
        Sorted, unique, naive UTC (ns).
    step, interval : the interval the bars should have (``interval`` is its text).
    declared_by : str
        Who declared it, for the message (``"the file name"``, ``"interval="``).
    offsets : sequence of str
        Non-zero UTC offsets seen in the file's timestamps (``"+05:00"``).

    Returns
    -------
    (defects, mismatch) : list of Defect, bool
        ``mismatch`` is True when the interval itself is contradicted (the caller
        then skips its gap check).
    """
    out: list[Defect] = []
    if len(idx) < 2:
        return out, False
    ns = idx.asi8
    s = int(step.value)
    seen = infer_interval(idx)
    # the lower quartile of the spacings: missing bars (up to ~30% of them) lengthen some spacings
    # but leave at least a quarter at the true interval, so gaps never read as another interval
    median = int(np.percentile(np.diff(ns), 25, method="lower"))
    if median != s:
        got = seen or _fmt_step(median)
        out.append(Defect(
            asset, "interval_mismatch", idx[0], idx[-1], len(idx), "error",
            f"{declared_by} says {interval} bars but the bars are {got} apart (typical spacing "
            f"{_fmt_step(median)}); rename the file or set the interval it really has "
            f"(interval='{seen or '?'}' / [data] interval)",
        ))
        return out, True
    d = np.diff(ns)
    short = np.flatnonzero((d > 0) & (d < s))
    if len(short):
        pairs = ", ".join(f"{format_timestamp(idx[p])} -> {format_timestamp(idx[p + 1])} "
                          f"({_fmt_step(int(d[p]))})" for p in short[:3])
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        out.append(Defect(
            asset, "short_spacing", idx[short[0] + 1], idx[short[-1] + 1], len(short), "error",
            f"{len(short)} bar(s) closer than one {interval} interval: {pairs}{more}; a bar "
            "stamped inside another bar's interval is an intraday quote or a bad stamp: "
            "remove it from the source (or policy='truncate'/'drop_asset')",
        ))
    if s <= _DAY_NS and _DAY_NS % s == 0:
        off = (ns % s) != 0
        if off.any():
            bad = idx[off]
            tod = pd.Series(bad.strftime("%H:%M")).mode().iloc[0]
            cause = (f"the file's timestamps carry UTC offset(s) {', '.join(offsets)}, which "
                     "shift the bars off the UTC grid; stamp each bar with its UTC open time"
                     if offsets else
                     "stamp each bar with its UTC open time (daily bars at 00:00 UTC)")
            out.append(Defect(
                asset, "misaligned", bad[0], bad[-1], int(off.sum()), "error",
                f"{int(off.sum())} bar(s) off the {interval} UTC grid (mostly at {tod} UTC: "
                f"{_list_dates(bad)}); {cause}",
            ))
    return out, False
