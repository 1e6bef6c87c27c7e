"""Procyclicality of margin paths (the netting benefit: :mod:`.procyclicality_netting`).

Procyclicality measures (Murphy, Vasios & Vause 2014, Bank of England
Financial Stability Paper 29; METHODOLOGY.md section 4), for the total margin
of a book (the sum over accounts of a (T, P) margin path, or one (T,) series):

* **peak-to-trough ratio** ``max_t M_t / min_t M_t`` over the period (variation
  across the cycle);
* **largest n-day increase** ``max_t (M_{t+n} - M_t)`` for n = 1, 5, 30
  (short-term liquidity strain; 30 days is MVV's liquidity-planning horizon),
  absolute (USD), relative to the margin at the start ``/ M_t``, and as a
  fraction of the notional at the start ``/ N_t``; 0 when margin never rose;
* **margin volatility**: standard deviation of daily log changes of total
  margin, annualised with ``sqrt(365)`` (crypto trades every calendar day).

Each is reported for the whole sample and for each named stress window.

Ragged panels (accounts that start or stop, NaN where absent) must not count
an account's arrival as a margin increase. So changes are measured on the
accounts present at both ends: ``Delta_n(t) = sum_{j valid at t and t+n}
(m_{t+n,j} - m_{t,j})`` with relative base ``sum_{same j} m_{t,j}``; levels are
chain-linked: ``I_t = I_{t-1} * S_t / S'_{t-1}`` with S, S' sums over accounts
present on both dates, and the peak-to-trough ratio is ``max I / min I`` (equal
to ``max M / min M`` when the set of accounts does not change). A step with no
common account does not move the index. Dates on which no account has a margin
are dropped; horizons count the remaining observations (daily dates assumed).
A trough of zero gives an infinite ratio.

Modules: this one holds the measures (:func:`procyclicality`,
:class:`ProcyclicalityReport`, the additive account sums of streamed runs);
the netting benefit and its summary table are in
:mod:`riskmodels.backtest.procyclicality_netting`, the stress windows and the
input checks in :mod:`riskmodels.backtest.procyclicality_inputs`. Every name
defined here before the split is still importable from this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.procyclicality_inputs import (
    STRESS_WINDOWS,
    ArrayLike,
    _as_dates,
    _check_horizons,
    _check_windows,
    _panel,
)
from riskmodels.backtest.procyclicality_netting import NETTING_CHUNK as NETTING_CHUNK
from riskmodels.backtest.procyclicality_netting import (
    NettingSummary,
    netting_benefit,
    netting_summary,
)

# The netting functions, the stress windows and the input checks are re-exported
# (listed in __all__ or imported `x as x`) so that every name importable from
# riskmodels.backtest.procyclicality before the split still is.

__all__ = [
    "HORIZONS",
    "STRESS_WINDOWS",
    "NettingSummary",
    "ProcyclicalityReport",
    "netting_benefit",
    "netting_summary",
    "procyclicality",
]

#: n-day horizons of the largest-increase measure (MVV 2014: 1 and 30 days; 5 days in between)
HORIZONS: tuple[int, ...] = (1, 5, 30)


class ProcyclicalityReport(Table):
    """Procyclicality measures, one row per period (``full`` and each stress window).

    Columns: ``model`` (when named), ``period, start, end, n_obs, mean_margin,
    max_margin, min_margin, peak_to_trough``, for each horizon n
    ``inc_{n}d_abs`` (USD), ``inc_{n}d_rel`` (fraction of margin at the start),
    ``inc_{n}d_notional`` (fraction of notional at the start; NaN without
    notional), ``inc_{n}d_date`` (start date of the largest absolute increase),
    and ``vol_annual`` (annualised std of daily log changes).
    """

    def period(self, name: str) -> dict[str, Any]:
        """The row of one period as a dict."""
        f = self._frame
        rows = f[f["period"] == name]
        if rows.empty:
            raise KeyError(f"{name!r}: unknown period; valid periods are {sorted(set(f['period']))}")
        return rows.iloc[0].to_dict()

    @staticmethod
    def combine(reports: Mapping[str, ProcyclicalityReport]) -> ProcyclicalityReport:
        """Stack reports of several models (adds/overrides the ``model`` column)."""
        frames = []
        for model, rep in reports.items():
            f = rep.to_frame()
            f = f.drop(columns=["model"], errors="ignore")
            f.insert(0, "model", str(model))
            frames.append(f)
        notes = next(iter(reports.values())).notes if reports else ()
        return ProcyclicalityReport(pd.concat(frames, ignore_index=True), title="Procyclicality", notes=notes)


def procyclicality(
    margin: ArrayLike,
    dates: ArrayLike | None = None,
    notional: ArrayLike | None = None,
    windows: Mapping[str, tuple[str, str]] | None = STRESS_WINDOWS,
    horizons: Sequence[int] = HORIZONS,
    periods_per_year: float = 365.0,
    name: str | None = None,
) -> ProcyclicalityReport:
    """Murphy-Vasios-Vause (2014) procyclicality measures of a margin path.

    Parameters
    ----------
    margin : array_like, (T,) or (T, P)
        Margin requirement in USD per date (and account); NaN = account absent.
        A pandas Series/DataFrame with a DatetimeIndex may omit ``dates``.
    dates : array_like of dates, (T,)
        Observation dates, increasing (daily).
    notional : array_like, (T,) or (T, P), optional
        Gross notional (USD, positive) for the "fraction of notional" measure;
        a (T, P) panel is summed over the same accounts as the margin change, a
        (T,) series is used as the book's total notional.
    windows : mapping name -> (start, end), optional
        Stress windows, inclusive; default :data:`STRESS_WINDOWS`. Windows
        outside the data give a row of NaN with ``n_obs = 0``.
    horizons : sequence of int
        n of the largest n-day increase (default 1, 5, 30).
    periods_per_year : float
        Annualisation of the volatility (365: crypto trades every day).
    name : str, optional
        Model name, added as the first column.

    Returns
    -------
    ProcyclicalityReport
    """
    if dates is None:
        if not hasattr(margin, "index"):
            raise ValueError("dates is required unless margin is a pandas object with a DatetimeIndex")
        dates = margin.index
    M = _panel(margin, "margin")
    T, P = M.shape
    idx = _as_dates(dates, T)
    wins = _check_windows(windows)
    hs = _check_horizons(horizons)
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year={periods_per_year!r} is outside its valid range (0, inf)")
    N = None
    if notional is not None:
        N = _panel(notional, "notional")
        if N.shape[0] != T or N.shape[1] not in (1, P):
            raise ValueError(f"notional has shape {N.shape}; expected ({T},) or ({T}, {P})")

    level, g, inc, keep = _aggregates(M, N, hs)
    return report_from_aggregates(level, g, inc, idx[keep], wins, hs, periods_per_year, name)


def report_from_aggregates(
    level: np.ndarray,
    g: np.ndarray,
    inc: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    idx: pd.DatetimeIndex,
    wins: dict[str, tuple[pd.Timestamp, pd.Timestamp]],
    hs: Sequence[int],
    periods_per_year: float = 365.0,
    name: str | None = None,
) -> ProcyclicalityReport:
    """The report of :func:`procyclicality` from the sums of :func:`_aggregates` on the kept dates ``idx``.

    Split out so that a streamed run (:mod:`riskmodels.backtest.stream_aggregate`), which adds the
    same sums chunk by chunk of accounts, builds the identical report.
    """
    periods: list[tuple[str, pd.Timestamp | None, pd.Timestamp | None]] = [("full", None, None)]
    periods += [(k, a, b) for k, (a, b) in wins.items()]
    rows = []
    for pname, a, b in periods:
        if a is None:
            lo, hi = 0, len(level) - 1
        else:
            lo = int(idx.searchsorted(a, side="left"))
            hi = int(idx.searchsorted(b + pd.Timedelta(days=1), side="left")) - 1
        row: dict[str, Any] = {} if name is None else {"model": str(name)}
        row.update({"period": pname,
                    "start": a if a is not None else (idx[0] if len(idx) else pd.NaT),
                    "end": b if b is not None else (idx[-1] if len(idx) else pd.NaT)})
        n_obs = max(0, hi - lo + 1)
        row["n_obs"] = n_obs
        lv = level[lo:hi + 1] if n_obs else np.zeros(0)
        row["mean_margin"] = float(lv.mean()) if n_obs else np.nan
        row["max_margin"] = float(lv.max()) if n_obs else np.nan
        row["min_margin"] = float(lv.min()) if n_obs else np.nan
        row["peak_to_trough"] = _peak_to_trough(lv, g[lo:hi]) if n_obs else np.nan
        for n in hs:
            delta, rel, frac = inc[n]
            sl = slice(lo, max(lo, hi - n + 1))  # start t with t >= lo and t + n <= hi
            d, r, f = delta[sl], rel[sl], frac[sl]
            row[f"inc_{n}d_abs"] = _largest(d)
            row[f"inc_{n}d_rel"] = _largest(r)
            row[f"inc_{n}d_notional"] = _largest(f)
            row[f"inc_{n}d_date"] = (idx[lo + int(np.nanargmax(d))]
                                     if d.size and not np.isnan(d).all() else pd.NaT)
        row["vol_annual"] = _vol(g[lo:hi], periods_per_year) if n_obs > 2 else np.nan
        rows.append(row)
    notes = [
        "Murphy, Vasios & Vause (2014, BoE FSP 29): peak-to-trough = max/min total margin "
        "(chain-linked over accounts present on consecutive dates); inc_nd = largest n-day rise "
        "(0 if none) in USD, as a fraction of margin and of notional at the start.",
        f"vol_annual = std of daily log changes x sqrt({periods_per_year:g}).",
    ]
    title = "Procyclicality" + (f": {name}" if name else "")
    return ProcyclicalityReport(pd.DataFrame(rows), title=title, notes=notes)


def _aggregates(
    M: np.ndarray, N: np.ndarray | None, hs: Sequence[int], block: int = 512
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """Sums over accounts behind the measures: ``(level, g, inc, keep)``.

    ``keep``: dates with at least one account present; on them ``level`` =
    total margin, ``g`` = chain-linked growth over accounts present on both
    consecutive dates, ``inc[n] = (delta, rel, frac)`` = n-day change over
    accounts present at both ends, relative to margin and to notional at the
    start. Every quantity is a sum over accounts, so it is accumulated over
    blocks of ``block`` accounts: a 10,000-account panel needs no full-size
    temporaries (it took ~1.5 GB of them). :func:`partial_sums` and
    :func:`finish_sums` are the two halves (a streamed run adds the first
    over chunks of accounts).
    """
    T, P = M.shape
    keep = np.zeros(T, dtype=bool)
    for c in range(0, P, block):
        keep |= ~np.isnan(M[:, c : c + block]).all(axis=1)
    per_account_n = N is not None and N.shape[1] == P and P > 1
    sums = partial_sums(M[keep], N[keep] if per_account_n else None, hs, block)  # type: ignore[index]
    total_n = None
    if N is not None and not per_account_n:
        nk = N[keep, 0]
        total_n = np.where(np.isnan(nk), 0.0, nk)
    level, g, inc = finish_sums(sums, hs, N is not None, total_n)
    return level, g, inc, keep


def partial_sums(M: np.ndarray, N: np.ndarray | None, hs: Sequence[int], block: int = 512) -> dict[str, Any]:
    """The additive sums over the accounts (columns) of ``M`` (NaN = absent) on its rows, taken as consecutive.

    ``N`` is the per-account notional of the same shape (or None). Sums of disjoint
    sets of accounts add (:func:`add_sums`); :func:`finish_sums` turns them into the measures.
    One numba pass (:func:`riskmodels.backtest._procyc_kernel.sums_kernel`);
    :func:`partial_sums_numpy` is the reference (``block`` is its block of accounts).
    """
    from riskmodels.backtest._procyc_kernel import sums_kernel

    K = M.shape[0]
    hs_in = [int(n) for n in hs if n < K]
    Mk = M if M.dtype in (np.float32, np.float64) else M.astype(np.float64)
    Nk = np.zeros((1, 1)) if N is None else np.asarray(N, dtype=np.float64)
    level, s_prev, s_cur, both_any, delta, base, nb, anyc = sums_kernel(
        Mk, Nk, N is not None, np.asarray(hs_in, dtype=np.int64))
    inc = {n: [delta[h, : K - n], base[h, : K - n], nb[h, : K - n], anyc[h, : K - n]] for h, n in enumerate(hs_in)}
    return {"level": level, "s_prev": s_prev, "s_cur": s_cur, "both_any": both_any, "inc": inc}


def partial_sums_numpy(M: np.ndarray, N: np.ndarray | None, hs: Sequence[int], block: int = 512) -> dict[str, Any]:
    """The additive sums over the accounts (columns) of ``M`` (NaN = absent) on its rows, taken as consecutive.

    ``N`` is the per-account notional of the same shape (or None). Sums of disjoint
    sets of accounts add (:func:`add_sums`); :func:`finish_sums` turns them into the measures.
    """
    K = M.shape[0]
    P = M.shape[1]
    out: dict[str, Any] = {
        "level": np.zeros(K), "s_prev": np.zeros(max(K - 1, 0)), "s_cur": np.zeros(max(K - 1, 0)),
        "both_any": np.zeros(max(K - 1, 0), dtype=bool),
        "inc": {n: [np.zeros(K - n), np.zeros(K - n), np.zeros(K - n), np.zeros(K - n, dtype=bool)]
                for n in hs if n < K},
    }
    for c in range(0, P, block):
        Mb = M[:, c : c + block].astype(np.float64)  # float32 storage: sums in float64
        present = ~np.isnan(Mb)
        Mz = np.where(present, Mb, 0.0)
        out["level"] += Mz.sum(axis=1)
        both = present[1:] & present[:-1]
        out["s_prev"] += np.where(both, Mz[:-1], 0.0).sum(axis=1)
        out["s_cur"] += np.where(both, Mz[1:], 0.0).sum(axis=1)
        out["both_any"] |= both.any(axis=1)
        Nz = None
        if N is not None:
            Nb = N[:, c : c + block]
            Nz = np.where(np.isnan(Nb), 0.0, Nb)
        for n, (delta, base, nb, any_c) in out["inc"].items():
            common = present[n:] & present[:-n]
            delta += np.where(common, Mz[n:] - Mz[:-n], 0.0).sum(axis=1)
            base += np.where(common, Mz[:-n], 0.0).sum(axis=1)
            any_c |= common.any(axis=1)
            if Nz is not None:
                nb += np.where(common, Nz[:-n], 0.0).sum(axis=1)
    return out


def add_sums(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a + b`` for two :func:`partial_sums` of disjoint accounts on the same rows (``a`` is updated)."""
    a["level"] += b["level"]
    a["s_prev"] += b["s_prev"]
    a["s_cur"] += b["s_cur"]
    a["both_any"] |= b["both_any"]
    for n, (delta, base, nb, any_c) in a["inc"].items():
        d2, b2, n2, c2 = b["inc"][n]
        delta += d2
        base += b2
        nb += n2
        any_c |= c2
    return a


def slice_sums(sums: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    """The sums of rows ``lo..hi`` (inclusive) of :func:`partial_sums` taken on more rows."""
    K = hi - lo + 1
    return {"level": sums["level"][lo : hi + 1], "s_prev": sums["s_prev"][lo:hi], "s_cur": sums["s_cur"][lo:hi],
            "both_any": sums["both_any"][lo:hi],
            "inc": {n: [x[lo : hi + 1 - n] for x in v] for n, v in sums["inc"].items() if n < K}}


def finish_sums(
    sums: dict[str, Any], hs: Sequence[int], has_notional: bool, total_n: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """``(level, g, inc)`` of :func:`_aggregates` from :func:`partial_sums` (``total_n``: a (K,) book notional)."""
    s_prev, s_cur = sums["s_prev"], sums["s_cur"]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(s_prev > 0, s_cur / s_prev, np.where(s_cur > 0, np.inf, 1.0))
    g[~sums["both_any"]] = 1.0
    inc: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for n in hs:
        if n not in sums["inc"]:
            inc[n] = (np.zeros(0), np.zeros(0), np.zeros(0))
            continue
        delta, base, nb, any_c = sums["inc"][n]
        delta = np.where(any_c, delta, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(base > 0, delta / base, np.nan)
            if not has_notional:
                frac = np.full_like(delta, np.nan)
            else:
                if total_n is not None:
                    nb = total_n[:-n]
                frac = np.where(nb > 0, delta / nb, np.nan)
        inc[n] = (delta, rel, frac)
    return sums["level"], g, inc


def _largest(x: np.ndarray) -> float:
    if x.size == 0 or np.isnan(x).all():
        return float("nan")
    return max(0.0, float(np.nanmax(x)))


def _peak_to_trough(level: np.ndarray, growth: np.ndarray) -> float:
    """max/min of the chain-linked index over a period (growth factors inside it)."""
    if level.size == 0:
        return float("nan")
    if np.any(np.isinf(growth)) or np.any(growth == 0):
        return float("inf")
    if level[0] == 0:
        return float("nan") if np.all(level == 0) else float("inf")
    index = np.concatenate([[1.0], np.cumprod(growth)])
    return float(index.max() / index.min())


def _vol(growth: np.ndarray, periods_per_year: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log(growth)
    lg = lg[np.isfinite(lg)]
    if lg.size < 2:
        return float("nan")
    return float(np.std(lg, ddof=1) * math.sqrt(periods_per_year))
