"""Stress windows and input checks shared by the procyclicality measures and the netting tables.

:data:`STRESS_WINDOWS` are the named stress periods both
:func:`~riskmodels.backtest.procyclicality.procyclicality` and
:func:`~riskmodels.backtest.procyclicality_netting.netting_summary` report
on by default; the checks turn dates, windows, horizons and margin panels
into the arrays the measures read (errors name the argument).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Named stress windows (inclusive calendar dates). Bounds chosen to contain the
#: crash and the following re-margining, and to be longer than 30 days so the
#: 30-day increase is defined inside each window (CRASH_DAYS.md for the days):
#: * covid_mar2020: 1 Mar - 15 Apr 2020, the 12-13 Mar crash (BTC 7.9k -> 3.9k) and April rebound;
#: * may2021: 1 May - 30 Jun 2021, the 19 May crash (BTC ~43k -> ~30k) and the June retest;
#: * luna_may2022: 1 May - 30 Jun 2022, Terra/LUNA (7-12 May) and the June Celsius/3AC sell-off;
#: * ftx_nov2022: 1 Nov - 15 Dec 2022, FTX collapse (6-11 Nov, BTC -> 15.8k) and aftermath.
STRESS_WINDOWS: dict[str, tuple[str, str]] = {
    "covid_mar2020": ("2020-03-01", "2020-04-15"),
    "may2021": ("2021-05-01", "2021-06-30"),
    "luna_may2022": ("2022-05-01", "2022-06-30"),
    "ftx_nov2022": ("2022-11-01", "2022-12-15"),
}

ArrayLike = Any


def _as_dates(dates: ArrayLike, T: int) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    if len(idx) != T:
        raise ValueError(f"dates has {len(idx)} entries but the margin path has {T} rows")
    if T > 1 and not idx.is_monotonic_increasing:
        raise ValueError("dates must be increasing")
    return idx


def _check_windows(windows: Mapping[str, tuple[str, str]] | None) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    out: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    for name, bounds in (windows or {}).items():
        try:
            a, b = (pd.Timestamp(x) for x in bounds)
        except (TypeError, ValueError) as err:
            raise ValueError(f"windows[{name!r}]={bounds!r}: expected (start, end) dates") from err
        if b < a:
            raise ValueError(f"windows[{name!r}]={bounds!r}: end is before start")
        out[str(name)] = (a, b)
    return out


def _check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    hs = tuple(int(h) for h in horizons)
    if not hs or any(h < 1 or h != h0 for h, h0 in zip(hs, horizons, strict=True)):
        raise ValueError(f"horizons={tuple(horizons)!r}: expected positive integers")
    return hs


def _panel(a: ArrayLike, name: str) -> np.ndarray:
    """Float array, 2-D; float32 panels are kept as they are (blocks are widened when summed)."""
    if hasattr(a, "to_numpy"):
        arr = a.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(a)
        if arr.dtype != np.float32:
            arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (T,) or (T, P), got shape {arr.shape}")
    return arr
