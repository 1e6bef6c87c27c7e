"""Tail statistics of scenario losses: VaR and ES, fast kernels and references.

Quantile convention (one rule everywhere)
-----------------------------------------
Every scenario ``i`` carries a *mass* ``w_i`` counted in scenarios (an
equally weighted window of ``n`` scenarios has ``w_i = 1``; age weights are
normalised so the window's masses sum to ``n``). The tail mass at confidence
``c`` is ``n_tail = n (1 - c)`` (snapped to the nearest whole number when
within 1e-9, so ``500 x (1 - 0.99)`` is exactly 5). Sort losses in decreasing
order ``L_(1) >= L_(2) >= ...`` with cumulative masses ``M_j = w_(1) + ... +
w_(j)``; then

* ``VaR = L_(j*)`` with ``j*`` the first ``j`` such that ``M_j >= n_tail``.
  With unit masses this is the ``k``-th largest loss, ``k = ceil(n (1 - c))``:
  for ``n = 500``, ``c = 99%`` the 5th-worst loss (Hull, *Risk Management and
  Financial Institutions*, ch. "Historical Simulation": "the one-day 99% VaR is
  the fifth-worst loss" of 500 scenarios).
* ``ES = (sum_{j<j*} w_(j) L_(j) + (n_tail - M_{j*-1}) L_(j*)) / n_tail``, the
  mean loss over the worst ``n_tail`` of scenario mass (Acerbi & Tasche 2002,
  "On the coherence of expected shortfall", eq. for the empirical ES, which
  counts the VaR scenario with the fractional mass left over). With unit
  masses and ``n (1 - c)`` whole this is the mean of the ``k`` worst losses.

Window rows and extra rows
--------------------------
Loss columns hold ``n_window`` window rows followed by optional *extra* rows
(stressed scenarios outside the window). A non-finite window row drops out of
the scenario set (an asset without a price that day); the account is priced
only if at least ``min_window`` finite window rows remain, and ``n`` above is
the number of finite window rows. Extra rows carry mass 1 each on top of the
window (they add tail mass, never dilute it, so adding stressed scenarios can
never lower VaR or ES); non-finite extras are skipped.

Kernels
-------
:func:`rolling_tail` is the speed core of :class:`HistoricalVaR.path`: for a
constant book each account has one loss series and the window slides over it.
It keeps the ``k`` largest losses of the window (``k = ceil(W (1 - c))``,
e.g. 5 for W = 500) and rescans the window only when one of those leaves,
which happens with probability about ``k / W`` per step, so the cost is
``O(k)`` per step on average instead of ``O(W)`` for a partition.
:func:`rolling_tail_reference` is the plain numpy version (``np.partition``
of every window) kept for the parity test. :func:`tail_columns` prices the
columns of one scenario-loss matrix (one date), with or without masses.

Modules: this one holds the convention (above), :data:`MEASURES` and the
rolling kernel (:func:`rolling_tail`, :func:`rolling_tail_reference`);
:func:`tail_columns` and :func:`tail_columns_reference` are in
:mod:`riskmodels.margin._quantile_columns`, the shared building blocks
(:data:`SNAP`, :func:`tail_count`, the sorted-tail VaR/ES, the decreasing
insertion) in :mod:`riskmodels.margin._quantile_rule`; every moved name is
importable from here too.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from riskmodels.margin._quantile_columns import PARALLEL_COLUMNS as PARALLEL_COLUMNS
from riskmodels.margin._quantile_columns import tail_columns as tail_columns
from riskmodels.margin._quantile_columns import tail_columns_reference as tail_columns_reference
from riskmodels.margin._quantile_rule import (
    SNAP,
    _insert_desc,
    _tail_count_py,
    _tail_unit,
    tail_count,
)
from riskmodels.margin._quantile_rule import _tail_weighted as _tail_weighted

# Re-exported (`x as x`) from riskmodels.margin._quantile_columns and
# riskmodels.margin._quantile_rule, so every name defined here before the split
# (SNAP, tail_count, _tail_unit, _insert_desc used by _hs_fused and _stress_tail)
# is still importable from riskmodels.margin._quantile.
# tail_columns reads PARALLEL_COLUMNS in _quantile_columns: set it there, not here.

MEASURES = ("var", "es")

# ------------------------------------------------------- rolling (one series)
@numba.njit(cache=True, fastmath=False)
def _rolling_one(
    x: np.ndarray,
    window: int,
    min_window: int,
    alpha: float,
    extra: np.ndarray,
    out_var: np.ndarray,
    out_es: np.ndarray,
) -> None:
    T = x.shape[0]
    kmax = math.ceil(tail_count(window, alpha) - SNAP)
    if kmax < 1:
        kmax = 1
    buf_v = np.empty(kmax)
    buf_i = np.empty(kmax, dtype=np.int64)
    pool_v = np.empty(kmax)
    pool_i = np.empty(kmax, dtype=np.int64)
    merged = np.empty(kmax)
    nb = np.int64(0)  # not the literal 0: a call with Literal[int](0) is a build of its own (_quantile_rule)
    npool = np.int64(0)
    n_fin = np.int64(0)
    for t in range(T):
        v = x[t]
        if np.isfinite(v):
            n_fin += 1
            nb = _insert_desc(buf_v, buf_i, nb, kmax, v, t)
        if t >= window:
            s = t - window
            u = x[s]
            if np.isfinite(u):
                n_fin -= 1
                if extra[s]:
                    npool = _insert_desc(pool_v, pool_i, npool, kmax, u, s)
                found = -1
                for j in range(nb):
                    if buf_i[j] == s:
                        found = j
                        break
                if found >= 0:
                    # a top-k loss left the window: rebuild from the window
                    nb = np.int64(0)
                    for q in range(s + 1, t + 1):
                        w = x[q]
                        if np.isfinite(w):
                            nb = _insert_desc(buf_v, buf_i, nb, kmax, w, q)
        if n_fin < min_window or n_fin == 0:
            out_var[t] = np.nan
            out_es[t] = np.nan
            continue
        n_tail = tail_count(n_fin, alpha)
        # merge window top-k and stressed pool top-k (both decreasing)
        a = 0
        b = 0
        m = 0
        while m < kmax and (a < nb or b < npool):
            if b >= npool or (a < nb and buf_v[a] >= pool_v[b]):
                merged[m] = buf_v[a]
                a += 1
            else:
                merged[m] = pool_v[b]
                b += 1
            m += 1
        var, es = _tail_unit(merged[:m], n_tail)
        out_var[t] = var
        out_es[t] = es


@numba.njit(cache=True, fastmath=False)
def _rolling_many_serial(
    losses: np.ndarray,
    window: int,
    min_window: int,
    alpha: float,
    extra: np.ndarray,
    out_var: np.ndarray,
    out_es: np.ndarray,
) -> None:
    for p in range(losses.shape[0]):
        _rolling_one(losses[p], window, min_window, alpha, extra, out_var[p], out_es[p])


@numba.njit(cache=True, fastmath=False, parallel=True)
def _rolling_many(
    losses: np.ndarray,
    window: int,
    min_window: int,
    alpha: float,
    extra: np.ndarray,
    out_var: np.ndarray,
    out_es: np.ndarray,
) -> None:
    for p in numba.prange(losses.shape[0]):
        _rolling_one(losses[p], window, min_window, alpha, extra, out_var[p], out_es[p])


#: accounts from which the rolling kernel runs in parallel (thread start-up costs ~ms)
PARALLEL_ACCOUNTS = 64


def rolling_tail(
    losses: np.ndarray,
    window: int,
    confidence: float,
    min_window: int | None = None,
    extra: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling VaR and ES of loss series, one row per account (numba).

    Parameters
    ----------
    losses : numpy.ndarray
        ``(P, T)`` losses (positive = loss) of each account's scenario on each
        date; NaN where the scenario does not exist for the account.
    window : int
        Number of dates in the window ending at t (``t - W + 1 .. t``).
    confidence : float
        VaR level ``c``; the tail mass is ``(1 - c)`` per scenario.
    min_window : int, optional
        Fewest finite window rows needed (default ``window``).
    extra : numpy.ndarray, optional
        ``(T,)`` bool: dates whose scenario stays in the set (mass 1) after it
        leaves the window (stressed dates).

    Returns
    -------
    var, es : numpy.ndarray
        ``(P, T)``; NaN where fewer than ``min_window`` finite rows.
    """
    losses = np.ascontiguousarray(losses, dtype=np.float64)
    if losses.ndim == 1:
        losses = losses[None, :]
    P, T = losses.shape
    extra_arr = np.zeros(T, dtype=np.bool_) if extra is None else np.asarray(extra, dtype=np.bool_)
    mw = window if min_window is None else int(min_window)
    out_var = np.empty((P, T))
    out_es = np.empty((P, T))
    # one numba thread (the backtest engine runs one model per core): the serial kernel, which also
    # spares a cold start the parallel kernel's compile; the numbers are the same (one account per task)
    kernel = _rolling_many if P >= PARALLEL_ACCOUNTS and numba.get_num_threads() > 1 else _rolling_many_serial
    kernel(losses, int(window), mw, 1.0 - float(confidence), extra_arr, out_var, out_es)
    return out_var, out_es


def _tail_from_desc_py(vals: np.ndarray, n_tail: float) -> tuple[float, float]:
    k = max(1, math.ceil(n_tail - SNAP))
    acc = 0.0
    for j in range(k - 1):
        acc += vals[j]
    var = vals[k - 1]
    return var, (acc + (n_tail - (k - 1)) * var) / n_tail


def rolling_tail_reference(
    losses: np.ndarray,
    window: int,
    confidence: float,
    min_window: int | None = None,
    extra: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain-numpy reference of :func:`rolling_tail`: ``np.partition`` per window.

    Loops over dates and accounts; used only by the parity test and the
    benchmark.
    """
    losses = np.atleast_2d(np.asarray(losses, dtype=np.float64))
    P, T = losses.shape
    extra_arr = np.zeros(T, dtype=bool) if extra is None else np.asarray(extra, dtype=bool)
    mw = window if min_window is None else int(min_window)
    alpha = 1.0 - float(confidence)
    kmax = max(1, math.ceil(_tail_count_py(window, alpha) - SNAP))
    out_var = np.full((P, T), np.nan)
    out_es = np.full((P, T), np.nan)
    for p in range(P):
        x = losses[p]
        for t in range(T):
            win = x[max(0, t - window + 1) : t + 1]
            win = win[np.isfinite(win)]
            n = win.size
            if n < mw or n == 0:
                continue
            pool = x[: max(0, t - window + 1)][extra_arr[: max(0, t - window + 1)]]
            pool = pool[np.isfinite(pool)]
            cand = np.concatenate([win, pool])
            kk = min(kmax, cand.size)
            top = -np.sort(-np.partition(cand, cand.size - kk)[cand.size - kk :])
            out_var[p, t], out_es[p, t] = _tail_from_desc_py(top, _tail_count_py(n, alpha))
    return out_var, out_es
