"""Building blocks of the quantile convention shared by every tail kernel.

Holds :data:`SNAP`, :func:`tail_count` (the tail mass ``n (1 - c)`` snapped
to a whole number within 1e-9) and its plain-Python twin ``_tail_count_py``,
the VaR and ES of the largest losses sorted in decreasing order with unit
(``_tail_unit``) or weighted (``_tail_weighted``) masses, and ``_insert_desc``
(insertion into a decreasing buffer of the ``k`` largest losses). The
convention itself is stated in :mod:`riskmodels.margin._quantile`, which
re-exports these names; the rolling kernel is there, the one-date kernel in
:mod:`riskmodels.margin._quantile_columns`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

SNAP = 1e-9


@numba.njit(cache=True, fastmath=False)
def _masses(n_fin: float, s_tot: float, o_tot: float, share_min: float) -> tuple[float, float]:
    """Per-scenario mass factors ``(f_s, f_o)`` of the stressed and calm scenarios (stressed share >= w).

    With ``S`` the stressed and ``O`` the calm scenario mass (counts, or
    summed weights) and ``n`` the finite window rows: the stressed share is
    ``s = max(w, S / (S + O))`` (``1`` without calm scenarios), each stressed
    scenario weighs ``f_s = s n / S`` and each calm one ``f_o = (1 - s) n / O``
    so the masses total ``n``; ``(1, 1)`` without stressed scenarios (module
    docstring of :mod:`riskmodels.margin._stress_tail`).
    """
    if s_tot == 0:
        return 1.0, 1.0
    share = s_tot / (s_tot + o_tot)
    if share_min > share:
        share = share_min
    if o_tot == 0:
        share = 1.0
    fs = share * n_fin / s_tot
    fo = (1.0 - share) * n_fin / o_tot if o_tot > 0 else 0.0
    return fs, fo


@numba.njit(cache=True, fastmath=False)
def tail_count(n: float, alpha: float) -> float:
    """``n * alpha`` snapped to a whole number when within 1e-9 of one."""
    x = n * alpha
    r = math.floor(x + 0.5)
    if abs(x - r) < SNAP:
        return float(r)
    return x


@numba.njit(cache=True, fastmath=False)
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


@numba.njit(cache=True, fastmath=False)
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


@numba.njit(cache=True, fastmath=False)
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


def _tail_count_py(n: float, alpha: float) -> float:
    x = n * alpha
    r = math.floor(x + 0.5)
    return float(r) if abs(x - r) < SNAP else x
