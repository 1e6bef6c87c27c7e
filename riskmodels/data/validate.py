"""Data-quality checks on raw OHLCV frames: every defect named with asset and dates.

:func:`validate` takes the ``{asset: DataFrame}`` returned by
:func:`riskmodels.data.loaders.load_files` (raw: possibly unsorted, possibly
with duplicated timestamps) and returns a :class:`QualityReport` of
:class:`Defect` records. Nothing is changed: the report only describes. What to
do about the defects is decided by the loader's ``policy``
(:func:`riskmodels.data.loaders.load_panel`).

Checks and severities
---------------------
``severity="error"`` means the defect would corrupt results (a return computed
across it is meaningless); ``"warning"`` means the data are usable but the user
should know.

========================  ========  ===============================================
kind                      severity  rule
========================  ========  ===============================================
``empty``                 error     the frame has no rows
``unsorted``              warning   timestamps decrease somewhere (the loader sorts)
``duplicate_dates``       error     a timestamp appears more than once
``nan_price``             error     open/high/low/close is NaN
``infinite_price``        error     open/high/low/close is +-inf
``infinite_volume``       error     volume is +-inf
``nonpositive_price``     error     open/high/low/close <= 0
``nan_volume``            error     volume is NaN
``negative_volume``       error     volume < 0
``ohlc_inconsistent``     error     high < max(open, close), low > min(open, close)
                                    or high < low (relative tolerance 1e-9)
``gap``                   error     missing bars between two rows (missing calendar
                                    days in a daily series, hours in an hourly one);
                                    one record per gap
``interval_mismatch``     error     the median spacing is another interval than the
                                    declared one (file name or ``interval=``)
``short_spacing``         error     two bars closer than one interval (86 s apart
                                    in a daily file)
``misaligned``            error     bars off the interval's UTC grid (a daily bar not
                                    at 00:00 UTC, e.g. stamped with ``+05:00``);
                                    see :mod:`riskmodels.data.timegrid`
``bad_tick``              error     ``|ln(C_t / C_{t-1})| > splice_threshold`` and the
                                    next return undoes at least half of it (opposite
                                    sign, ``|r_t + r_{t+1}| <= |r_t| / 2``)
``splice``                error     ``|ln(C_t / C_{t-1})| > splice_threshold`` and not
                                    undone the next bar: a ticker splice or
                                    redenomination (the series before ``t`` is another
                                    instrument)
``zero_volume``           warning   volume == 0
``short_history``         warning   fewer than ``min_length`` rows
``stale``                 warning   the asset ends before the last timestamp of the
                                    other assets (more than one bar earlier)
========================  ========  ===============================================

Row-level kinds (prices, volume, OHLC, duplicates) are one record per asset and
kind with the first and last offending timestamp and the number of rows; gaps
and jumps are one record per event. Returns for the jump check are taken
between consecutive rows with a positive, finite close, so a jump across a gap
or across a stretch of bad prices is also reported.

The default splice threshold ``ln 5`` (a x5 or /5 move in one day) is far
beyond any one-day move of a liquid crypto asset in 2014-2025 (the largest BTC
daily log return is about -0.46, on 12 Mar 2020) and below every same-ticker
splice in the shared data.

Modules: this one holds the checks (:func:`validate`) and the interval helpers;
the report types (:class:`Defect`, :class:`QualityReport`, :class:`DataError`,
:class:`DataQualityWarning`) are in :mod:`riskmodels.data.quality_report` and
importable from here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskmodels.data.quality_report import (
    ERROR_KINDS,
    DataError,
    DataQualityWarning,
    Defect,
    QualityReport,
    Severity,
    format_timestamp,
)
from riskmodels.data.quality_report import WARNING_KINDS as WARNING_KINDS

# Re-exported (`x as x`) from riskmodels.data.quality_report, so every name defined
# here before the split is still importable from riskmodels.data.validate.
__all__ = [
    "ERROR_KINDS",
    "DataError",
    "DataQualityWarning",
    "Defect",
    "QualityReport",
    "format_timestamp",
    "infer_interval",
    "interval_step",
    "validate",
]

PRICE_COLS = ("open", "high", "low", "close")
_OHLC_RTOL = 1e-9
_MAX_LISTED = 5


# --------------------------------------------------------------------------- intervals
_INTERVAL_RE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}


def interval_step(interval: str) -> pd.Timedelta:
    """``"1d"`` -> 1 day, ``"1h"`` -> 1 hour, ``"15m"`` -> 15 minutes, ``"1w"`` -> 7 days."""
    m = _INTERVAL_RE.match(str(interval).strip().lower())
    if not m:
        raise ValueError(
            f"interval must look like '1d', '1h', '15m', '30s' or '1w', got {interval!r}"
        )
    n, unit = int(m.group(1)), m.group(2)
    if n <= 0:
        raise ValueError(f"interval must be a positive length, got {interval!r}")
    if unit == "w":
        return pd.Timedelta(days=7 * n)
    return pd.Timedelta(n, unit=_UNITS[unit])


def infer_interval(index: pd.Index) -> str | None:
    """Median spacing of sorted unique timestamps as ``"1d"``/``"1h"``/``"15m"``...; None if < 2 rows."""
    idx = pd.DatetimeIndex(index).as_unit("ns").unique().sort_values()
    if len(idx) < 2:
        return None
    step = pd.Timedelta(np.median(np.diff(idx.asi8)), unit="ns")
    for unit, td in (("w", pd.Timedelta(days=7)), ("d", pd.Timedelta(days=1)),
                     ("h", pd.Timedelta(hours=1)), ("m", pd.Timedelta(minutes=1)),
                     ("s", pd.Timedelta(seconds=1))):
        if step >= td and step % td == pd.Timedelta(0):
            return f"{step // td}{unit}"
    return None


# --------------------------------------------------------------------------- checks
def _list_dates(idx: pd.DatetimeIndex) -> str:
    shown = ", ".join(format_timestamp(t) for t in idx[:_MAX_LISTED])
    more = len(idx) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _row_defect(asset: str, kind: str, dates: pd.DatetimeIndex, what: str, remedy: str) -> Defect:
    sev: Severity = "error" if kind in ERROR_KINDS else "warning"
    return Defect(
        asset=asset,
        kind=kind,
        first=dates[0],
        last=dates[-1],
        count=len(dates),
        severity=sev,
        message=f"{what} on {len(dates)} rows ({_list_dates(dates)}); {remedy}",
    )


def _check_asset(asset: str, df: pd.DataFrame, step: pd.Timedelta | None, threshold: float,
                 min_length: int, interval: str | None = None,
                 declared_by: str = "the interval") -> list[Defect]:
    out: list[Defect] = []
    if len(df) == 0:
        return [Defect(asset, "empty", None, None, 0, "error",
                       "the series has no rows; remove the file or fix the source")]
    idx = pd.DatetimeIndex(df.index).as_unit("ns")  # asi8 below is in ns
    if not idx.is_monotonic_increasing:
        i = idx.asi8
        pos = np.flatnonzero(i[1:] < i[:-1]) + 1
        out.append(Defect(
            asset, "unsorted", idx[pos[0]], idx[pos[-1]], len(pos), "warning",
            f"timestamps go backwards at {len(pos)} rows (first at {format_timestamp(idx[pos[0]])}); "
            "the loader sorts them",
        ))
        order = np.argsort(i, kind="stable")
        df = df.iloc[order]
        idx = idx[order]
    dup = idx.duplicated(keep="first")
    if dup.any():
        dd = idx[dup].unique()
        out.append(Defect(
            asset, "duplicate_dates", dd[0], dd[-1], int(dup.sum()), "error",
            f"{int(dup.sum())} duplicated rows at {_list_dates(dd)}; keep one row per timestamp "
            "in the source file (or policy='truncate'/'drop_asset')",
        ))
        df = df[~dup]
        idx = idx[~dup]

    px = df.loc[:, list(PRICE_COLS)].to_numpy(dtype=np.float64)
    vol = df["volume"].to_numpy(dtype=np.float64)
    inf_px = np.isinf(px).any(axis=1)
    nan_px = np.isnan(px).any(axis=1) | inf_px  # inf is as unusable as NaN downstream
    with np.errstate(invalid="ignore"):
        nonpos = (px <= 0).any(axis=1)
    if inf_px.any():
        cols = [c for j, c in enumerate(PRICE_COLS) if np.isinf(px[:, j]).any()]
        out.append(_row_defect(asset, "infinite_price", idx[inf_px], f"inf {'/'.join(cols)}",
                               "an overflow or a division by zero in the source: fix the rows, "
                               "or policy='truncate'/'drop_asset'"))
    if (nan_px & ~inf_px).any():
        cols = [c for j, c in enumerate(PRICE_COLS) if np.isnan(px[:, j]).any()]
        out.append(_row_defect(asset, "nan_price", idx[nan_px & ~inf_px], f"NaN {'/'.join(cols)}",
                               "fix the source or start the asset after the last bad row "
                               "(policy='truncate') or drop it (policy='drop_asset')"))
    if nonpos.any():
        cols = [c for j, c in enumerate(PRICE_COLS) if (px[:, j] <= 0).any()]
        out.append(_row_defect(asset, "nonpositive_price", idx[nonpos],
                               f"{'/'.join(cols)} <= 0",
                               "fix the source or start the asset after the last bad row "
                               "(policy='truncate') or drop it (policy='drop_asset')"))
    if np.isinf(vol).any():
        out.append(_row_defect(asset, "infinite_volume", idx[np.isinf(vol)], "inf volume",
                               "fix the source or policy='truncate'/'drop_asset'"))
    if np.isnan(vol).any():
        out.append(_row_defect(asset, "nan_volume", idx[np.isnan(vol)], "NaN volume",
                               "fill the volume in the source or policy='truncate'/'drop_asset'"))
    with np.errstate(invalid="ignore"):
        neg_vol = vol < 0
        zero_vol = vol == 0
    if neg_vol.any():
        out.append(_row_defect(asset, "negative_volume", idx[neg_vol], "negative volume",
                               "fix the source or policy='truncate'/'drop_asset'"))

    o, h, lo, c = px.T
    finite = ~(nan_px | nonpos)
    with np.errstate(invalid="ignore"):
        tol = _OHLC_RTOL * np.abs(np.maximum(o, c))
        bad_h = finite & (h < np.maximum(o, c) - tol)
        bad_l = finite & (lo > np.minimum(o, c) + tol)
        bad_r = finite & (h < lo - tol)
    bad_ohlc = bad_h | bad_l | bad_r
    if bad_ohlc.any():
        parts = [f"{name} on {int(m.sum())} rows" for name, m in (
            ("high < max(open, close)", bad_h), ("low > min(open, close)", bad_l),
            ("high < low", bad_r)) if m.any()]
        out.append(_row_defect(asset, "ohlc_inconsistent", idx[bad_ohlc], "; ".join(parts),
                               "fix the source rows or policy='truncate'/'drop_asset'"))

    if step is not None and interval is not None:
        from riskmodels.data.timegrid import grid_defects

        grid, mismatch = grid_defects(asset, idx, step, interval, declared_by,
                                      tuple(df.attrs.get("utc_offsets", ())))
        out.extend(grid)
        if mismatch:
            step = None  # every row would be a gap or a short spacing
    if step is not None and len(idx) > 1:
        d = np.diff(idx.asi8)
        s = step.value
        gap_pos = np.flatnonzero(d > s)
        for p in gap_pos:
            n_missing = int(-(-d[p] // s)) - 1
            first = idx[p] + step
            last = idx[p + 1] - step
            out.append(Defect(
                asset, "gap", first, last, n_missing, "error",
                f"{n_missing} missing bar(s) between {format_timestamp(idx[p])} and {format_timestamp(idx[p + 1])}; "
                "returns across the gap span several bars. Start the asset after the gap "
                f"(policy='truncate' starts it on {format_timestamp(idx[p + 1])}) or allow a flagged "
                "forward fill of short gaps (max_fill)",
            ))

    # jumps: log returns between consecutive rows with a usable close
    with np.errstate(invalid="ignore"):
        good = np.isfinite(c) & (c > 0)
    gi = np.flatnonzero(good)
    if len(gi) > 1:
        lc = np.log(c[gi])
        r = np.diff(lc)
        big = np.flatnonzero(np.abs(r) > threshold)
        consumed: set[int] = set()
        for k in big:
            if k in consumed:
                continue
            t_prev, t_now = idx[gi[k]], idx[gi[k + 1]]
            c_prev, c_now = c[gi[k]], c[gi[k + 1]]
            move = (f"close {c_prev:.6g} ({format_timestamp(t_prev)}) -> {c_now:.6g} "
                    f"(log return {r[k]:+.2f})")
            if k + 1 < len(r) and np.sign(r[k + 1]) == -np.sign(r[k]) and \
                    abs(r[k] + r[k + 1]) <= 0.5 * abs(r[k]):
                consumed.add(k + 1)
                t_back = idx[gi[k + 2]]
                out.append(Defect(
                    asset, "bad_tick", t_now, t_back, 2, "error",
                    f"bad tick on {format_timestamp(t_now)}: {move}, undone on {format_timestamp(t_back)} "
                    f"(log return {r[k + 1]:+.2f}); fix the row in the source, or "
                    "policy='truncate'/'drop_asset'",
                ))
            else:
                out.append(Defect(
                    asset, "splice", t_now, t_now, 1, "error",
                    f"splice on {format_timestamp(t_now)}: {move}, not undone; the series before "
                    f"{format_timestamp(t_now)} is probably another instrument with the same ticker or a "
                    "redenomination. Use only the part after it (policy='truncate') or drop "
                    "the asset",
                ))

    if zero_vol.any():
        out.append(_row_defect(asset, "zero_volume", idx[zero_vol], "volume = 0",
                               "prices on those bars may be stale quotes; the prices are kept "
                               "(volume-based liquidity models should not trust those bars)"))
    if len(idx) < min_length:
        out.append(Defect(
            asset, "short_history", idx[0], idx[-1], len(idx), "warning",
            f"only {len(idx)} rows ({format_timestamp(idx[0])}..{format_timestamp(idx[-1])}), fewer than "
            f"{min_length}; models needing a long look-back will never make it eligible; "
            "check it is the instrument you mean",
        ))
    return out


def validate(
    frames: Mapping[str, pd.DataFrame],
    *,
    splice_threshold: float = float(np.log(5)),
    interval: str | None = None,
    min_length: int = 250,
) -> QualityReport:
    """Check raw OHLCV frames and list every defect.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        ``{asset: frame}`` with a DatetimeIndex and columns open, high, low,
        close, volume (as returned by :func:`~riskmodels.data.loaders.load_files`).
    splice_threshold : float, default ln 5
        A one-bar ``|ln(C_t / C_{t-1})|`` above this is a bad tick or a splice.
        Must be > 0.
    interval : str, optional
        Bar interval for the gap check (``"1d"``, ``"1h"``...). Default: the
        frame's ``attrs["interval"]`` (set by the loader from the file name),
        else the median spacing of its timestamps.
    min_length : int, default 250
        Fewer rows than this is reported as ``short_history``. Must be >= 0.

    Returns
    -------
    QualityReport
    """
    if not np.isfinite(splice_threshold) or splice_threshold <= 0:
        raise ValueError(f"splice_threshold must be a finite number > 0, got {splice_threshold}")
    if int(min_length) != min_length or min_length < 0:
        raise ValueError(f"min_length must be a whole number >= 0, got {min_length}")
    if interval is not None:
        interval_step(interval)  # validates the text
    defects: list[Defect] = []
    last_dates: dict[str, pd.Timestamp] = {}
    used_interval: set[str] = set()
    for asset, df in frames.items():
        missing = [c for c in (*PRICE_COLS, "volume") if c not in df.columns]
        if missing:
            raise DataError(f"{asset}: frame has no column(s) {missing}; columns are {list(df.columns)}")
        iv = interval or df.attrs.get("interval") or infer_interval(df.index)
        by = ("the file name" if df.attrs.get("interval_from") == "name" else "interval=" if interval
              else "the interval" if df.attrs.get("interval") else "the median spacing")
        if iv:
            used_interval.add(iv)
        step = interval_step(iv) if iv else None
        defects.extend(_check_asset(str(asset), df, step, float(splice_threshold), int(min_length),
                                    iv, by))
        if len(df):
            last_dates[str(asset)] = pd.DatetimeIndex(df.index).max()
    if last_dates:
        end = max(last_dates.values())
        for asset, last in last_dates.items():
            df = frames[asset]
            iv = interval or df.attrs.get("interval") or infer_interval(df.index) or "1d"
            step = interval_step(iv)
            if end - last > step:
                n = int((end - last) // step)
                defects.append(Defect(
                    asset, "stale", last, end, n, "warning",
                    f"ends on {format_timestamp(last)}, {n} bars before the other assets' last date "
                    f"{format_timestamp(end)}; it is NaN after {format_timestamp(last)} in a panel (delisted, or a "
                    "stale file: check the source)",
                ))
    order = {a: i for i, a in enumerate(frames)}
    defects.sort(key=lambda d: (order.get(d.asset, 0), d.severity != "error",
                                d.first if d.first is not None else pd.Timestamp.min))
    iv_text = interval or (next(iter(used_interval)) if len(used_interval) == 1 else None)
    return QualityReport(defects, assets=[str(a) for a in frames], interval=iv_text)
