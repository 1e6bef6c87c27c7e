"""VaR / ES with a minimum stressed share (EMIR RTS 153/2013 Art. 28(1)(b)): two-class kernels.

With ``stress_share = w`` (:func:`~riskmodels.margin._quantile.tail_columns`)
every scenario has one of two masses: a stressed one ``f_s`` and a calm one
``f_o``. With ``n`` finite window rows, ``S`` finite stressed rows (in the
window or kept after leaving it) and ``O`` finite calm window rows::

    share = max(w, S / (S + O))      (1 if O = 0)
    f_s = share n / S,   f_o = (1 - share) n / O

(all masses 1 when ``S = 0``), so the masses sum to ``n`` and the tail mass is
``n (1 - c)`` as everywhere (:mod:`riskmodels.margin._quantile`). The tail
walk over losses in decreasing order therefore needs only the largest few
losses *of each class*: the merge of two decreasing lists, each kept by a
bounded insertion buffer, stops when the cumulative mass reaches the tail.
Only when a class would need more losses than its buffer holds (a tiny mass
per scenario) does the kernel sort that class in full, so the result is
exact in every case; it equals the general weighted path of ``tail_columns``
up to the order in which tied losses are summed.

:func:`stress_tail_columns` prices the columns of one date (the account
simulation); :func:`rolling_stress_tail` slides over a constant book's loss
series (the margin path): the stressed buffer only grows (stressed scenarios
never leave the set), the calm buffer is rebuilt from the window when one of
its losses leaves it, as in :func:`~riskmodels.margin._quantile.rolling_tail`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from riskmodels.margin._quantile import SNAP, _insert_desc, tail_count
from riskmodels.margin._quantile_rule import _masses as _masses  # the stressed-share masses, shared

#: most losses a class keeps (one date: exactly what the tail walk can need, up to this); beyond, a full sort
CAP = 32
#: calm losses the sliding kernel keeps (a calm loss weighs about 1 - w: ~8 of them fill a 5-scenario tail)
ROLLING_CALM = 16


@numba.njit(cache=True, fastmath=False)
def _merge_two(sv: np.ndarray, ns: int, s_more: bool, ov: np.ndarray, no: int, o_more: bool,
               fs: float, fo: float, n_tail: float) -> tuple[float, float, bool]:
    """Walk two decreasing lists with masses fs / fo to the tail mass; ok False if a list ran short."""
    tol = SNAP * max(1.0, n_tail)
    a = 0
    b = 0
    cum = 0.0
    acc = 0.0
    while True:
        take_s = False
        if a < ns and (b >= no or sv[a] >= ov[b]):
            take_s = True
        elif b >= no:  # both lists exhausted
            if s_more or o_more:
                return np.nan, np.nan, False
            return np.nan, np.nan, True  # masses ran out (cannot happen when n_tail < n)
        # a list that is exhausted but has more members might hold the next loss
        if take_s and b >= no and o_more:
            return np.nan, np.nan, False
        if not take_s and a >= ns and s_more:
            return np.nan, np.nan, False
        if take_s:
            v, w = sv[a], fs
            a += 1
        else:
            v, w = ov[b], fo
            b += 1
        if cum + w >= n_tail - tol:
            return v, (acc + (n_tail - cum) * v) / n_tail, True
        acc += w * v
        cum += w


@numba.njit(cache=True, fastmath=False)
def _full_sorted(vals: np.ndarray, n: int) -> np.ndarray:
    return -np.sort(-vals[:n])


@numba.njit(cache=True, fastmath=False)
def _needed(n_tail: float, mass: float, count: int) -> int:
    """Losses of one class the tail walk can consume: ``ceil(n_tail / mass) + 1``, at most ``count``."""
    if mass <= 0.0:
        return 0
    k = math.ceil(n_tail / mass) + 1
    return count if k > count else k


@numba.njit(cache=True, fastmath=False)
def _column(col: np.ndarray, n_window: int, min_window: int, alpha: float, stressed: np.ndarray,
            share_min: float, sv: np.ndarray, si: np.ndarray, ov: np.ndarray, oi: np.ndarray) -> tuple[float, float]:
    n_rows = col.shape[0]
    n_fin = np.int64(0)
    s_tot = np.int64(0)
    o_tot = np.int64(0)
    for i in range(n_rows):
        if np.isfinite(col[i]):
            if i < n_window:
                n_fin += 1
            if stressed[i]:
                s_tot += 1
            else:
                o_tot += 1
    if n_fin < min_window or n_fin == 0:
        return np.nan, np.nan
    fs, fo = _masses(n_fin, s_tot, o_tot, share_min)
    n_tail = tail_count(n_fin, alpha)
    # the masses are known before the losses: keep exactly the largest losses each class can need
    ks = _needed(n_tail, fs, s_tot)
    ko = _needed(n_tail, fo, o_tot)
    if ks <= sv.shape[0] and ko <= ov.shape[0]:
        ns = np.int64(0)  # not literals: each literal argument is a build of its own (_quantile_rule)
        no = np.int64(0)
        for i in range(n_rows):
            v = col[i]
            if not np.isfinite(v):
                continue
            if stressed[i]:
                if ks:
                    ns = _insert_desc(sv, si, ns, ks, v, i)
            elif ko:
                no = _insert_desc(ov, oi, no, ko, v, i)
        var, es, ok = _merge_two(sv, ns, s_tot > ns, ov, no, o_tot > no, fs, fo, n_tail)
        if ok:
            return var, es
    all_s = np.empty(s_tot)
    all_o = np.empty(o_tot)
    a = np.int64(0)
    b = np.int64(0)
    for i in range(n_rows):
        v = col[i]
        if np.isfinite(v):
            if stressed[i]:
                all_s[a] = v
                a += 1
            else:
                all_o[b] = v
                b += 1
    full = np.bool_(False)  # every loss is in the sorted lists (a bool, not the literal False)
    var, es, ok = _merge_two(_full_sorted(all_s, a), a, full, _full_sorted(all_o, b), b, full, fs, fo, n_tail)
    return var, es


@numba.njit(cache=True, fastmath=False)
def _columns(lt, n_window, min_window, alpha, stressed, share_min, out_var, out_es):  # type: ignore[no-untyped-def]
    sv = np.empty(CAP)
    si = np.empty(CAP, dtype=np.int64)
    ov = np.empty(CAP)
    oi = np.empty(CAP, dtype=np.int64)
    for p in range(lt.shape[0]):
        out_var[p], out_es[p] = _column(lt[p], n_window, min_window, alpha, stressed, share_min, sv, si, ov, oi)


def stress_tail_columns(
    losses: np.ndarray, n_window: int, confidence: float, min_window: int | None, stressed: np.ndarray,
    stress_share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~riskmodels.margin._quantile.tail_columns` with ``stress_share`` and unit weights, two-class kernel.

    ``losses`` is ``(n_rows, N)`` (window rows first, then extras), ``stressed``
    ``(n_rows,)`` bool; returns VaR and ES ``(N,)``.
    """
    losses = np.asarray(losses, dtype=np.float64)
    N = losses.shape[1]
    out_var = np.empty(N)
    out_es = np.empty(N)
    lt = np.ascontiguousarray(losses.T)
    mw = n_window if min_window is None else int(min_window)
    _columns(lt, int(n_window), mw, 1.0 - float(confidence), np.asarray(stressed, dtype=np.bool_),
             float(stress_share), out_var, out_es)
    return out_var, out_es


@numba.njit(cache=True, fastmath=False)
def _rolling_one(x: np.ndarray, window: int, min_window: int, alpha: float, stressed: np.ndarray, share_min: float,
                 out_var: np.ndarray, out_es: np.ndarray, need: np.ndarray) -> None:
    """One account's sliding tail; a date whose class needs more than its buffer holds is marked in ``need``.

    Those dates are priced by :func:`_rolling_fallback` (a full sort), a
    kernel of its own: a first call then compiles the sort only when some
    date needs it (the sort and its helpers were ~1.4 s of this kernel's
    cold build).
    """
    T = x.shape[0]
    sv = np.empty(CAP)
    si = np.empty(CAP, dtype=np.int64)
    ov = np.empty(ROLLING_CALM)
    oi = np.empty(ROLLING_CALM, dtype=np.int64)
    cap = np.int64(CAP)  # the buffer sizes and counters as int64, not literals: one build of _insert_desc
    calm = np.int64(ROLLING_CALM)
    ns = np.int64(0)
    no = np.int64(0)
    s_tot = np.int64(0)  # finite stressed rows up to t (in the window or kept after it)
    o_tot = np.int64(0)  # finite calm rows in the window
    n_fin = np.int64(0)  # finite window rows
    for t in range(T):
        v = x[t]
        if np.isfinite(v):
            n_fin += 1
            if stressed[t]:
                s_tot += 1
                ns = _insert_desc(sv, si, ns, cap, v, t)
            else:
                o_tot += 1
                no = _insert_desc(ov, oi, no, calm, v, t)
        if t >= window:
            s = t - window
            u = x[s]
            if np.isfinite(u):
                n_fin -= 1
                if not stressed[s]:
                    o_tot -= 1
                    found = False
                    for j in range(no):
                        if oi[j] == s:
                            found = True
                            break
                    if found:  # a kept calm loss left the window: rebuild from the window
                        no = np.int64(0)
                        for q in range(s + 1, t + 1):
                            w = x[q]
                            if np.isfinite(w) and not stressed[q]:
                                no = _insert_desc(ov, oi, no, calm, w, q)
        need[t] = False
        if n_fin < min_window or n_fin == 0:
            out_var[t] = np.nan
            out_es[t] = np.nan
            continue
        fs, fo = _masses(n_fin, s_tot, o_tot, share_min)
        n_tail = tail_count(n_fin, alpha)
        var, es, ok = _merge_two(sv, ns, s_tot > ns, ov, no, o_tot > no, fs, fo, n_tail)
        if not ok:  # a class needs more than its kept losses today: _rolling_fallback sorts it in full
            need[t] = True
        out_var[t] = var
        out_es[t] = es


@numba.njit(cache=True, fastmath=False)
def _rolling_serial(losses, window, min_window, alpha, stressed, share_min, out_var, out_es, need):  # type: ignore[no-untyped-def]
    for p in range(losses.shape[0]):
        _rolling_one(losses[p], window, min_window, alpha, stressed, share_min, out_var[p], out_es[p], need[p])


@numba.njit(cache=True, fastmath=False, parallel=True)
def _rolling_parallel(losses, window, min_window, alpha, stressed, share_min, out_var, out_es, need):  # type: ignore[no-untyped-def]
    for p in numba.prange(losses.shape[0]):
        _rolling_one(losses[p], window, min_window, alpha, stressed, share_min, out_var[p], out_es[p], need[p])


@numba.njit(cache=True, fastmath=False)
def _rolling_fallback(losses: np.ndarray, ps: np.ndarray, ts: np.ndarray, window: int, alpha: float,
                      stressed: np.ndarray, share_min: float, out_var: np.ndarray, out_es: np.ndarray) -> None:
    """The dates :func:`_rolling_one` marked, each from its full scenario set sorted per class.

    At ``(p, t)`` the scenarios are the finite losses of the window
    ``lo..t`` (``lo = max(0, t - window + 1)``) and every finite stressed loss
    before it; the counts ``n`` (finite window rows), ``S`` (stressed rows up
    to t) and ``O`` (calm window rows) are those the sliding kernel carries,
    so the masses and the tail mass are the same numbers.
    """
    for j in range(ps.shape[0]):
        p = ps[j]
        t = ts[j]
        x = losses[p]
        lo = max(0, t - window + 1)
        n_fin = np.int64(0)
        s_tot = np.int64(0)
        o_tot = np.int64(0)
        for q in range(t + 1):
            if np.isfinite(x[q]):
                if q >= lo:
                    n_fin += 1
                if stressed[q]:
                    s_tot += 1
                elif q >= lo:
                    o_tot += 1
        fs, fo = _masses(n_fin, s_tot, o_tot, share_min)
        n_tail = tail_count(n_fin, alpha)
        all_s = np.empty(s_tot)
        all_o = np.empty(o_tot)
        a = np.int64(0)
        b = np.int64(0)
        for q in range(t + 1):
            w = x[q]
            if not np.isfinite(w):
                continue
            if stressed[q]:
                all_s[a] = w
                a += 1
            elif q >= lo:
                all_o[b] = w
                b += 1
        full = np.bool_(False)  # every loss is in the sorted lists (a bool, not the literal False)
        var, es, _ok = _merge_two(_full_sorted(all_s, a), a, full, _full_sorted(all_o, b), b, full, fs, fo, n_tail)
        out_var[p, t] = var
        out_es[p, t] = es


def rolling_stress_tail(
    losses: np.ndarray, window: int, confidence: float, min_window: int | None, stressed: np.ndarray,
    stress_share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling VaR and ES with a minimum stressed share, one row per account (numba).

    ``losses`` is ``(P, T)`` (each account's loss in each date's scenario),
    ``stressed`` ``(T,)``: at date t the scenarios are the window ``t-W+1..t``
    plus every stressed date before it, exactly the set
    :meth:`~riskmodels.margin.historical.FittedHistorical.scenarios` builds for
    plain HS. Returns VaR and ES ``(P, T)``.
    """
    losses = np.ascontiguousarray(losses, dtype=np.float64)
    P, T = losses.shape
    out_var = np.empty((P, T))
    out_es = np.empty((P, T))
    mw = window if min_window is None else int(min_window)
    # one numba thread (the engine's workers): the serial kernel (the same numbers; a cold cache skips the parfor build)
    kernel = _rolling_parallel if P >= 64 and numba.get_num_threads() > 1 else _rolling_serial
    need = np.empty((P, T), dtype=np.bool_)
    alpha, flags, share = 1.0 - float(confidence), np.asarray(stressed, dtype=np.bool_), float(stress_share)
    kernel(losses, int(window), mw, alpha, flags, share, out_var, out_es, need)
    ps, ts = np.nonzero(need)
    if ps.size:  # dates a class needed more than its kept losses: full sorts, in their own kernel
        _rolling_fallback(losses, ps, ts, int(window), alpha, flags, share, out_var, out_es)
    return out_var, out_es

