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
"""

from __future__ import annotations

import math

import numba
import numpy as np

SNAP = 1e-9
MEASURES = ("var", "es")


# ---------------------------------------------------------------- helpers
@numba.njit(cache=True)
def tail_count(n: float, alpha: float) -> float:
    """``n * alpha`` snapped to a whole number when within 1e-9 of one."""
    x = n * alpha
    r = math.floor(x + 0.5)
    if abs(x - r) < SNAP:
        return float(r)
    return x


@numba.njit(cache=True)
def _tail_unit(vals: np.ndarray, n_tail: float) -> tuple[float, float]:
    """VaR and ES from the largest losses ``vals`` (sorted decreasing, unit masses)."""
    k = math.ceil(n_tail - SNAP)
    if k < 1:
        k = 1
    acc = 0.0
    for j in range(k - 1):
        acc += vals[j]
    var = vals[k - 1]
    es = (acc + (n_tail - (k - 1)) * var) / n_tail
    return var, es


@numba.njit(cache=True)
def _tail_weighted(vals: np.ndarray, wts: np.ndarray, n_tail: float) -> tuple[float, float]:
    """VaR and ES from losses sorted decreasing with masses ``wts``."""
    cum = 0.0
    acc = 0.0
    tol = SNAP * max(1.0, n_tail)
    for j in range(vals.shape[0]):
        w = wts[j]
        if cum + w >= n_tail - tol:
            var = vals[j]
            return var, (acc + (n_tail - cum) * var) / n_tail
        acc += w * vals[j]
        cum += w
    # masses ran out before the tail was filled (cannot happen when n_tail < n)
    return np.nan, np.nan


@numba.njit(cache=True)
def _insert_desc(buf_v: np.ndarray, buf_i: np.ndarray, nb: int, k: int, v: float, idx: int) -> int:
    """Insert (v, idx) into the decreasing buffer of capacity k; return the new size."""
    if nb == k:
        if v <= buf_v[k - 1]:
            return nb
        j = k - 1
    else:
        j = nb
        nb += 1
    while j > 0 and buf_v[j - 1] < v:
        buf_v[j] = buf_v[j - 1]
        buf_i[j] = buf_i[j - 1]
        j -= 1
    buf_v[j] = v
    buf_i[j] = idx
    return nb


# ------------------------------------------------------- rolling (one series)
@numba.njit(cache=True)
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
    nb = 0
    npool = 0
    n_fin = 0
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
                    nb = 0
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


@numba.njit(cache=True)
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


@numba.njit(cache=True, parallel=True)
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


def _tail_count_py(n: float, alpha: float) -> float:
    x = n * alpha
    r = math.floor(x + 0.5)
    return float(r) if abs(x - r) < SNAP else x


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


# -------------------------------------------------- one date, many columns
@numba.njit(cache=True)
def _tail_one_column(
    col: np.ndarray,
    n_window: int,
    min_window: int,
    alpha: float,
    kmax: int,
    weights: np.ndarray,
    use_weights: bool,
    stressed: np.ndarray,
    stress_share: float,
) -> tuple[float, float]:
    n_rows = col.shape[0]
    n_fin = 0
    wsum = 0.0
    for i in range(n_window):
        if np.isfinite(col[i]):
            n_fin += 1
            wsum += weights[i]
    if n_fin < min_window or n_fin == 0:
        return np.nan, np.nan
    n_tail = tail_count(n_fin, alpha)
    if not use_weights and stress_share < 0.0:
        buf_v = np.empty(kmax)
        buf_i = np.empty(kmax, dtype=np.int64)
        nb = 0
        for i in range(n_rows):
            v = col[i]
            if np.isfinite(v):
                nb = _insert_desc(buf_v, buf_i, nb, kmax, v, i)
        return _tail_unit(buf_v[:nb], n_tail)
    vals = np.empty(n_rows)
    mass = np.empty(n_rows)
    is_s = np.zeros(n_rows, dtype=np.bool_)
    m = 0
    for i in range(n_rows):
        v = col[i]
        if not np.isfinite(v):
            continue
        vals[m] = v
        if i < n_window:
            mass[m] = weights[i] * n_fin / wsum if use_weights else 1.0
        else:
            mass[m] = 1.0
        is_s[m] = stressed[i]
        m += 1
    if stress_share >= 0.0:
        s_tot = 0.0
        o_tot = 0.0
        for i in range(m):
            if is_s[i]:
                s_tot += mass[i]
            else:
                o_tot += mass[i]
        if s_tot > 0.0:
            share = s_tot / (s_tot + o_tot)
            if stress_share > share:
                share = stress_share
            if o_tot == 0.0:
                share = 1.0
            fs = share * n_fin / s_tot
            fo = (1.0 - share) * n_fin / o_tot if o_tot > 0.0 else 0.0
            for i in range(m):
                mass[i] *= fs if is_s[i] else fo
    # Only the largest losses matter: take the K largest (threshold by np.partition),
    # sort those, and widen K only if their mass does not reach the tail.
    K = min(m, max(4 * kmax, 16))
    gv = np.empty(m)
    gw = np.empty(m)
    while True:
        if K < m:
            thr = np.partition(vals[:m].copy(), m - K)[m - K]
        else:
            thr = -np.inf
        g = 0
        tot = 0.0
        for i in range(m):
            if vals[i] >= thr:
                gv[g] = vals[i]
                gw[g] = mass[i]
                tot += mass[i]
                g += 1
        if tot >= n_tail - SNAP * max(1.0, n_tail) or K >= m:
            break
        K = min(m, 4 * K)
    order = np.argsort(-gv[:g], kind="mergesort")
    sv = np.empty(g)
    sw = np.empty(g)
    for j in range(g):
        sv[j] = gv[order[j]]
        sw[j] = gw[order[j]]
    return _tail_weighted(sv, sw, n_tail)


@numba.njit(cache=True)
def _tail_columns_serial(lt, n_window, min_window, alpha, weights, use_weights, stressed, stress_share, out_var, out_es):  # type: ignore[no-untyped-def]
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    for p in range(lt.shape[0]):
        out_var[p], out_es[p] = _tail_one_column(
            lt[p], n_window, min_window, alpha, kmax, weights, use_weights, stressed, stress_share
        )


@numba.njit(cache=True, parallel=True)
def _tail_columns_parallel(lt, n_window, min_window, alpha, weights, use_weights, stressed, stress_share, out_var, out_es):  # type: ignore[no-untyped-def]
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    for p in numba.prange(lt.shape[0]):
        out_var[p], out_es[p] = _tail_one_column(
            lt[p], n_window, min_window, alpha, kmax, weights, use_weights, stressed, stress_share
        )


#: columns above which the per-date kernel runs in parallel (thread start-up costs ~ms)
PARALLEL_COLUMNS = 512


def tail_columns(
    losses: np.ndarray,
    n_window: int,
    confidence: float,
    min_window: int | None = None,
    weights: np.ndarray | None = None,
    stressed: np.ndarray | None = None,
    stress_share: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES of each column of a scenario-loss matrix (one date).

    Parameters
    ----------
    losses : numpy.ndarray
        ``(n_rows, N)`` losses; rows ``[0, n_window)`` are the window, the rest
        extra (stressed) scenarios.
    n_window : int
        Number of window rows.
    confidence : float
        VaR level ``c``.
    min_window : int, optional
        Fewest finite window rows to price a column (default ``n_window``).
    weights : numpy.ndarray, optional
        ``(n_window,)`` relative weights of the window rows (e.g. BRW
        ``lambda**age``); renormalised per column over its finite rows so they
        sum to the number of finite rows. Extras have mass 1.
    stressed : numpy.ndarray, optional
        ``(n_rows,)`` bool, rows from stressed periods (for ``stress_share``).
    stress_share : float, optional
        When given, the stressed rows' total mass is raised to at least this
        share of the total (EMIR RTS 153/2013 Art. 28(1)(b)) and all masses
        rescaled to sum to the number of finite window rows.
    """
    losses = np.asarray(losses, dtype=np.float64)
    n_rows, N = losses.shape
    use_w = weights is not None
    w = np.ones(max(n_window, 1)) if weights is None else np.asarray(weights, dtype=np.float64)
    st = np.zeros(n_rows, dtype=np.bool_) if stressed is None else np.asarray(stressed, dtype=np.bool_)
    share = -1.0 if stress_share is None else float(stress_share)
    out_var = np.empty(N)
    out_es = np.empty(N)
    mw = n_window if min_window is None else int(min_window)
    kernel = _tail_columns_parallel if N >= PARALLEL_COLUMNS and numba.get_num_threads() > 1 else _tail_columns_serial
    lt = np.ascontiguousarray(losses.T)  # (N, rows): one account per row (no copy for X @ g.T results)
    kernel(lt, int(n_window), mw, 1.0 - float(confidence), w, use_w, st, share, out_var, out_es)
    return out_var, out_es


def tail_columns_reference(
    losses: np.ndarray,
    n_window: int,
    confidence: float,
    min_window: int | None = None,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain-numpy reference of :func:`tail_columns` without stress shares (sorts each column)."""
    losses = np.asarray(losses, dtype=np.float64)
    _n_rows, N = losses.shape
    mw = n_window if min_window is None else int(min_window)
    alpha = 1.0 - float(confidence)
    out_var = np.full(N, np.nan)
    out_es = np.full(N, np.nan)
    for p in range(N):
        col = losses[:, p]
        fin_w = np.isfinite(col[:n_window])
        n = int(fin_w.sum())
        if n < mw or n == 0:
            continue
        if weights is None:
            mass_w = np.ones(n)
        else:
            ww = np.asarray(weights, dtype=np.float64)[fin_w]
            mass_w = ww * n / ww.sum()
        ext = col[n_window:]
        ext = ext[np.isfinite(ext)]
        vals = np.concatenate([col[:n_window][fin_w], ext])
        mass = np.concatenate([mass_w, np.ones(ext.size)])
        order = np.argsort(-vals, kind="mergesort")
        vals, mass = vals[order], mass[order]
        n_tail = _tail_count_py(n, alpha)
        cum = np.concatenate([[0.0], np.cumsum(mass)])
        j = int(np.argmax(cum[1:] >= n_tail - SNAP * max(1.0, n_tail)))
        out_var[p] = vals[j]
        out_es[p] = (np.dot(mass[:j], vals[:j]) + (n_tail - cum[j]) * vals[j]) / n_tail
    return out_var, out_es
