"""VaR and ES of each column of one date's scenario-loss matrix: kernel and reference.

Holds :func:`tail_columns` (numba; serial and parallel kernels over the
columns, one account per column, with optional window weights and a stressed
share) and :func:`tail_columns_reference` (plain numpy, sorts each column,
kept for the parity test). The quantile convention and the rolling kernel are
in :mod:`riskmodels.margin._quantile`, which re-exports both functions.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from riskmodels.margin._quantile_rule import (
    SNAP,
    _insert_desc,
    _masses,
    _tail_count_py,
    _tail_unit,
    _tail_weighted,
    tail_count,
)


@numba.njit(cache=True, fastmath=False)
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
    n_fin = np.int64(0)
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
        nb = np.int64(0)  # not a literal (one build of _insert_desc)
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
            fs, fo = _masses(n_fin, s_tot, o_tot, stress_share)
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


@numba.njit(cache=True, fastmath=False)
def _tail_columns_serial(lt, n_window, min_window, alpha, weights, use_weights, stressed, stress_share, out_var, out_es):  # type: ignore[no-untyped-def]
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    for p in range(lt.shape[0]):
        out_var[p], out_es[p] = _tail_one_column(
            lt[p], n_window, min_window, alpha, kmax, weights, use_weights, stressed, stress_share
        )


@numba.njit(cache=True, fastmath=False, parallel=True)
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
