"""The netting (cross-margining) benefit of accounts and its distribution by period.

Netting benefit: ``1 - cross / isolated`` per account and date, where
``cross`` is the cross-margined requirement and ``isolated`` the sum of the same
account's isolated per-position requirements; NaN where isolated is 0.

:func:`netting_summary` reports, for the full sample and each stress window
(:data:`~riskmodels.backtest.procyclicality_inputs.STRESS_WINDOWS` by
default), the distribution across accounts of each account's mean benefit
and the worst cross-sectional day.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numba
import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.procyclicality_inputs import (
    STRESS_WINDOWS,
    ArrayLike,
    _as_dates,
    _check_windows,
    _panel,
)


def netting_benefit(cross: ArrayLike, isolated_sum: ArrayLike) -> np.ndarray:
    """Cross-margining benefit ``1 - cross / isolated_sum`` per date and account.

    Parameters
    ----------
    cross : array_like (T, P)
        Cross-margined requirement of each account.
    isolated_sum : array_like (T, P)
        Sum of the same account's isolated per-position requirements.

    Returns
    -------
    ndarray (T, P)
        0 = no netting, 1 = everything netted away; NaN where ``isolated_sum``
        is 0 or either input is NaN.

    Notes
    -----
    Computed in float64 in blocks of ``NETTING_CHUNK`` rows written into the
    result (the float32 margins are widened one block at a time): the
    temporaries stay small and in cache, the values are those of the
    whole-array expression (``tests/test_procyclicality.py``).
    """
    c_in, s_in = np.asarray(cross), np.asarray(isolated_sum)
    if c_in.shape != s_in.shape:
        raise ValueError(f"cross and isolated_sum must have the same shape, got {c_in.shape} and {s_in.shape}")
    if c_in.ndim == 0:
        c_in, s_in = c_in.reshape(1), s_in.reshape(1)
    out = np.empty(c_in.shape, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(0, c_in.shape[0], NETTING_CHUNK):
            c = c_in[i : i + NETTING_CHUNK].astype(np.float64)
            s = s_in[i : i + NETTING_CHUNK].astype(np.float64)
            ok = (s != 0) & ~np.isnan(s) & ~np.isnan(c)
            np.divide(c, s, out=c)
            np.subtract(1.0, c, out=c)
            out[i : i + NETTING_CHUNK] = np.where(ok, c, np.nan)
    return out.reshape(np.shape(cross))


#: rows of :func:`netting_benefit` computed at once (64 rows x 1,000 accounts: 0.5 MB per temporary)
NETTING_CHUNK = 64


@numba.njit(cache=True, fastmath=False)
def _period_sums(B: np.ndarray, sels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per period ``j`` and account: the sum of the non-NaN benefits on the dates ``sels[j]`` and their count.

    ``sums[j] = where(valid, B, 0)[sels[j]].sum(axis=0)`` as numpy computes it
    (from 0, adding the dates in order: a reduction over the outer axis is
    sequential), ``counts[j] = valid[sels[j]].sum(axis=0)``; also the count of
    non-NaN accounts per date.
    """
    T, P = B.shape
    J = sels.shape[0]
    sums = np.zeros((J, P))
    cnts = np.zeros((J, P), dtype=np.int64)
    cnt_day = np.zeros(T, dtype=np.int64)
    for t in range(T):
        n = 0
        for p in range(P):
            n += np.int64(B[t, p] == B[t, p])
        cnt_day[t] = n
    for j in range(J):
        s = sums[j]
        c = cnts[j]
        for t in range(T):
            if not sels[j, t]:
                continue
            for p in range(P):
                v = B[t, p]
                ok = v == v
                s[p] += v if ok else 0.0
                c[p] += np.int64(ok)
    return sums, cnts, cnt_day


class NettingSummary(Table):
    """Distribution of the netting benefit across accounts, per period.

    Columns: ``period, start, end, n_dates, n_accounts`` and, over the
    per-account time-average benefit in the period, ``mean, p5, median, p95``;
    ``worst_day_mean`` is the lowest cross-sectional mean benefit on any date
    of the period and ``worst_day`` its date (netting that vanishes in a
    crash shows here).
    """


def netting_summary(
    benefit: ArrayLike,
    dates: ArrayLike,
    windows: Mapping[str, tuple[str, str]] | None = STRESS_WINDOWS,
    name: str | None = None,
) -> NettingSummary:
    """Summarise a (T, P) netting-benefit panel for the full sample and each stress window."""
    B = _panel(benefit, "benefit")
    T, _ = B.shape
    idx = _as_dates(dates, T)
    wins = _check_windows(windows)
    periods: list[tuple[str, pd.Timestamp | None, pd.Timestamp | None]] = [("full", None, None)]
    periods += [(k, a, b) for k, (a, b) in wins.items()]
    sels = np.array([np.ones(T, dtype=bool) if a is None else (idx >= a) & (idx < b + pd.Timedelta(days=1))
                     for _, a, b in periods]).reshape(len(periods), T)
    # (one account: numpy sums the contiguous column pairwise, so the numpy expressions run)
    fused = B.dtype == np.float64 and B.flags.c_contiguous and B.shape[1] > 1
    if fused:  # one pass per period, no (T, P) temporaries: the sums of the numpy expressions below, bitwise
        sums, cnts, cnt_day = _period_sums(B, sels)
        day_sum = np.where(np.isnan(B), 0.0, B).sum(axis=1)
    else:
        valid = ~np.isnan(B)
        cnt_day = valid.sum(axis=1)
        day_sum = np.where(valid, B, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        day_mean = np.where(cnt_day > 0, day_sum / np.maximum(cnt_day, 1), np.nan)
    rows = []
    for j, (pname, a, b) in enumerate(periods):
        sel = sels[j]
        row: dict[str, Any] = {} if name is None else {"model": str(name)}
        row.update({"period": pname,
                    "start": a if a is not None else (idx[0] if T else pd.NaT),
                    "end": b if b is not None else (idx[-1] if T else pd.NaT),
                    "n_dates": int(sel.sum())})
        if fused:
            tot, cnt = sums[j], cnts[j]
        else:
            vsub = valid[sel]
            cnt = vsub.sum(axis=0)
            tot = np.where(vsub, B[sel], 0.0).sum(axis=0)
        has = cnt > 0
        acc_mean = tot[has] / cnt[has]
        row["n_accounts"] = int(has.sum())
        if acc_mean.size:
            row["mean"] = float(acc_mean.mean())
            row["p5"], row["median"], row["p95"] = (float(v) for v in np.quantile(acc_mean, [0.05, 0.5, 0.95]))
        else:
            row.update({"mean": np.nan, "p5": np.nan, "median": np.nan, "p95": np.nan})
        dm = day_mean[sel]
        if dm.size and not np.isnan(dm).all():
            k = int(np.nanargmin(dm))
            row["worst_day_mean"] = float(dm[k])
            row["worst_day"] = idx[sel][k]
        else:
            row["worst_day_mean"], row["worst_day"] = np.nan, pd.NaT
        rows.append(row)
    notes = ["benefit = 1 - cross-margined / sum of isolated requirements; distribution across "
             "accounts of each account's mean benefit in the period."]
    title = "Netting benefit" + (f": {name}" if name else "")
    return NettingSummary(pd.DataFrame(rows), title=title, notes=notes)
