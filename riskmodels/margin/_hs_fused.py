"""One date's HS requirement, losses and tail fused per account, with chunk bounds that skip most rows.

:meth:`~riskmodels.margin.historical.FittedHistorical.requirement` (the
account simulation calls it two or three times per date on ~1,000 accounts)
used to build the whole ``(N, rows)`` loss matrix with one GEMM and then
select the tail of each column (:func:`~riskmodels.margin._quantile.tail_columns`,
:func:`~riskmodels.margin._stress_tail.stress_tail_columns`). The kernels here
give the same numbers without the matrix:

* **Losses per account, sparse.** An account holds a few of the ``A``
  assets; its loss in scenario ``i`` is ``L_i = -sum_{a: x_a != 0} x_a g_{i,a}``
  accumulated in asset order with fused multiply-adds (on the OpenBLAS
  Haswell kernel numpy ships this is bitwise the GEMM's element, which sums
  the same terms in the same order; zero exposures add exact zeros).
* **Chunk bounds.** Rows are cut into chunks of at most :data:`CHUNK`
  consecutive rows of one class (stressed or calm). With ``lo_{c,a}`` /
  ``hi_{c,a}`` the smallest / largest ``g`` of asset ``a`` in chunk ``c``::

      L_i <= U_c = sum_a max(-x_a lo_{c,a}, -x_a hi_{c,a}) + 1e-12 sum_a |x_a| max(|lo_{c,a}|, |hi_{c,a}|)

  for every row ``i`` of the chunk (the last term covers the rounding of
  both sides, at most about ``2 A 2^-53`` of that sum). The tail
  keeps the ``k`` largest losses of a class in a decreasing buffer; a chunk
  whose bound is below the buffer's smallest kept loss cannot change it and
  is skipped. Each class's :data:`SEEDS` chunks of largest bound are priced
  first, so the threshold is near its final value early and most chunks
  cost one bound (default workload: ~7 of 34 chunks priced per account).
* The kept losses are exactly the ``k`` largest (ties have equal values), so
  VaR and ES, which read only them, equal the matrix path's.

Rows where a held asset has no return (a NaN in ``g``: before a listing)
drop out of that account's scenario set as in the matrix path (NaN loss):
the account's own counts of finite window / stressed / calm rows and its
masses are recomputed and those rows skipped (the chunk bounds, taken over
NaN-zeroed returns, still bound the remaining rows). A class that needs more
than :data:`~riskmodels.margin._stress_tail.CAP` losses, or a walk the
buffers cannot settle, materialises the account's loss column and calls the
matrix path's own per-column kernel, so the numbers are the same there too.
An account holding an asset that is not eligible at the date is NaN without
pricing. Weighted scenarios (BRW) keep the matrix path.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numba
import numpy as np

from riskmodels.margin._quantile import SNAP, _tail_unit, tail_count
from riskmodels.margin._stress_tail import CAP, _column, _masses, _merge_two, _needed

#: most rows of a chunk (one bound per chunk and account)
CHUNK = 16
#: chunks of largest bound priced first, per class
SEEDS = 4
#: relative allowance for rounding in the chunk bound (the true slack is below 1e-14)
BOUND_SLACK = 1e-12


class Prepared(NamedTuple):
    """One date's scenario matrix in the layout of the fused kernels.

    ``gT`` ``(A, rows)`` NaN-zeroed transposed returns; ``bad`` ``(A, rows)``
    True where the return is not finite; ``bad_any`` ``(A,)``; chunks
    ``[c_lo, c_hi)`` of one class ``c_cls`` with per-asset extremes
    ``c_min`` / ``c_max`` ``(A, C)``.
    """

    gT: np.ndarray
    bad: np.ndarray
    bad_any: np.ndarray
    c_lo: np.ndarray
    c_hi: np.ndarray
    c_cls: np.ndarray
    c_min: np.ndarray
    c_max: np.ndarray


def prepare(g: np.ndarray, n_window: int, stressed: np.ndarray) -> Prepared:
    """Chunk table and transposed scenario matrix of one date (cached per date by the caller).

    ``g`` is the ``(rows, A)`` scenario simple returns, ``stressed`` the
    ``(rows,)`` stressed flags; a chunk starts at row 0, at every change of
    class, at the window's end and after :data:`CHUNK` rows (one numba pass;
    :func:`prepare_reference` is the numpy statement of the same table).
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    rows, A = g.shape
    gT = np.empty((A, rows))
    bad = np.empty((A, rows), dtype=np.bool_)
    c_lo = np.empty(rows, dtype=np.int64)
    c_hi = np.empty(rows, dtype=np.int64)
    c_cls = np.empty(rows, dtype=np.bool_)
    C = _prepare_kernel(g, int(n_window), np.asarray(stressed, dtype=np.bool_), gT, bad, c_lo, c_hi, c_cls)
    c_min = np.empty((A, C))
    c_max = np.empty((A, C))
    _chunk_extremes(gT, c_lo[:C], c_hi[:C], c_min, c_max)
    return Prepared(gT, bad, bad.any(axis=1), c_lo[:C].copy(), c_hi[:C].copy(), c_cls[:C].copy(), c_min, c_max)


@numba.njit(cache=True)
def _prepare_kernel(g, n_window, stressed, gT, bad, c_lo, c_hi, c_cls):  # type: ignore[no-untyped-def]
    rows, A = g.shape
    for i in range(rows):
        for a in range(A):
            v = g[i, a]
            b = not np.isfinite(v)
            bad[a, i] = b
            gT[a, i] = 0.0 if b else v
    C = 0
    start = 0
    for i in range(rows):
        if i == 0 or stressed[i] != stressed[i - 1] or i == n_window or i - start == CHUNK:
            if C:
                c_hi[C - 1] = i
            c_lo[C] = i
            c_cls[C] = stressed[i]
            start = i
            C += 1
    if C:
        c_hi[C - 1] = rows
    return C


@numba.njit(cache=True)
def _chunk_extremes(gT, c_lo, c_hi, c_min, c_max):  # type: ignore[no-untyped-def]
    A = gT.shape[0]
    for c in range(c_lo.shape[0]):
        for a in range(A):
            lo = np.inf
            hi = -np.inf
            for i in range(c_lo[c], c_hi[c]):
                v = gT[a, i]
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
            c_min[a, c] = lo
            c_max[a, c] = hi


def prepare_reference(g: np.ndarray, n_window: int, stressed: np.ndarray) -> Prepared:
    """Numpy statement of :func:`prepare` (runs split at class changes and the window's end, then CHUNK rows).

    ``g`` is the ``(rows, A)`` scenario simple returns, ``stressed`` the
    ``(rows,)`` stressed flags; chunks never straddle a change of class or
    the window's end.
    """
    g = np.asarray(g, dtype=np.float64)
    bad = ~np.isfinite(g)
    gz = np.where(bad, 0.0, g) if bad.any() else g
    gT = np.ascontiguousarray(gz.T)
    badT = np.ascontiguousarray(bad.T)
    rows = g.shape[0]
    st = np.asarray(stressed, dtype=np.bool_)
    cut = np.zeros(rows + 1, dtype=bool)
    cut[0] = cut[rows] = True
    if rows:
        cut[1:rows] = st[1:] != st[:-1]
        if 0 < n_window < rows:
            cut[n_window] = True
    edges = np.flatnonzero(cut)
    lo_l: list[np.ndarray] = []
    for a, b in itertools.pairwise(edges):
        lo_l.append(np.arange(a, b, CHUNK))
    c_lo = np.concatenate(lo_l) if lo_l else np.zeros(0, dtype=np.int64)
    c_hi = np.minimum(np.append(c_lo[1:], rows), c_lo + CHUNK) if c_lo.size else c_lo.copy()
    # every chunk ends at the next chunk's start or CHUNK rows on; runs end at a cut, which starts a chunk
    c_lo = c_lo.astype(np.int64)
    c_hi = c_hi.astype(np.int64)
    c_cls = st[c_lo] if c_lo.size else np.zeros(0, dtype=np.bool_)
    if c_lo.size:
        c_min = np.minimum.reduceat(gT, c_lo, axis=1)
        c_max = np.maximum.reduceat(gT, c_lo, axis=1)
    else:
        c_min = c_max = np.zeros((g.shape[1], 0))
    return Prepared(gT, badT, badT.any(axis=1), c_lo, c_hi, np.ascontiguousarray(c_cls),
                    np.ascontiguousarray(c_min), np.ascontiguousarray(c_max))


# ---------------------------------------------------------------- kernel
@numba.njit(cache=True, fastmath={"contract"})
def _column_losses(gT: np.ndarray, bad: np.ndarray, nz: np.ndarray, xv: np.ndarray, m: int, col: np.ndarray) -> None:
    """The account's full loss column, NaN where a held asset has no return (the matrix path's column)."""
    col[:] = 0.0
    for j in range(m):
        x = xv[j]
        row = gT[nz[j]]
        for i in range(col.shape[0]):
            col[i] = col[i] + x * row[i]
    for i in range(col.shape[0]):
        col[i] = -col[i]
    for j in range(m):
        brow = bad[nz[j]]
        for i in range(col.shape[0]):
            if brow[i]:
                col[i] = np.nan


@numba.njit(cache=True, fastmath={"contract"})
def _kernel(X, gT, bad, bad_any, c_lo, c_hi, c_cls, c_min, c_max, n_window, min_window, alpha, stressed,
            share_min, two_class, asset_ok, out_var, out_es):  # type: ignore[no-untyped-def]
    """Both tails: ``two_class`` False = unit masses (one top-``k`` buffer over all rows), True = stress share.

    Everything per row is inlined (a numba call with array arguments costs
    reference counting, more than pricing a row).
    """
    N, A = X.shape
    rows = gT.shape[1]
    C = c_lo.shape[0]
    nz = np.empty(A, dtype=np.int64)
    xv = np.empty(A)
    ub = np.empty(C)
    sc = np.empty(C)
    neg_min = -c_min  # (A, C) per-unit bound of a long
    amax = np.maximum(np.abs(c_min), np.abs(c_max))  # (A, C) the rounding allowance's scale
    tmp = np.empty(CHUNK)
    col = np.empty(rows)
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    # buffers: class 1 = stressed (two-class only), class 0 = calm, or every row with unit masses
    bufv = np.empty((2, max(CAP, kmax)))
    bufi = np.empty((2, max(CAP, kmax)), dtype=np.int64)
    s_tot = 0
    if two_class:
        for i in range(rows):
            if stressed[i]:
                s_tot += 1
    o_tot = rows - s_tot
    n_fin = n_window  # with every held return finite
    n_tail = tail_count(n_fin, alpha)
    fs, fo = _masses(n_fin, s_tot, o_tot, share_min)
    if two_class:
        kk = (_needed(n_tail, fo, o_tot), _needed(n_tail, fs, s_tot))
        fits = kk[0] <= CAP and kk[1] <= CAP
    else:
        kk = (kmax, 0)
        fits = True
    cap0, cap1 = kk
    cap = np.empty(2, dtype=np.int64)
    rowbad = np.zeros(rows, dtype=np.bool_)
    seeds = np.empty((2, SEEDS), dtype=np.int64)
    seeded = np.zeros(C, dtype=np.bool_)
    nb = np.zeros(2, dtype=np.int64)
    thr = np.empty(2)
    for p in range(N):
        # held assets
        m = 0
        anybad = False
        inelig = False
        for a in range(A):
            x = X[p, a]
            if x != 0.0:
                nz[m] = a
                xv[m] = x
                m += 1
                if bad_any[a]:
                    anybad = True
                if not asset_ok[a]:
                    inelig = True
        if inelig:  # holds an asset that is not eligible at t: not priced (the requirement is NaN)
            out_var[p] = np.nan
            out_es[p] = np.nan
            continue
        # rows where a held asset has no return drop out (NaN loss): this account's counts and masses
        a_fin = n_fin
        a_s = s_tot
        a_o = o_tot
        a_fits = fits
        a_k0 = cap0
        a_k1 = cap1
        if anybad:
            rowbad[:] = False
            for j in range(m):
                if bad_any[nz[j]]:
                    brow = bad[nz[j]]
                    for i in range(rows):
                        if brow[i]:
                            rowbad[i] = True
            a_fin = 0
            a_s = 0
            a_o = 0
            for i in range(rows):
                if not rowbad[i]:
                    if i < n_window:
                        a_fin += 1
                    if two_class and stressed[i]:
                        a_s += 1
                    else:
                        a_o += 1
        if a_fin < min_window or a_fin == 0:
            out_var[p] = np.nan
            out_es[p] = np.nan
            continue
        a_tail = n_tail
        a_fs = fs
        a_fo = fo
        if anybad:
            a_tail = tail_count(a_fin, alpha)
            if two_class:
                a_fs, a_fo = _masses(a_fin, a_s, a_o, share_min)
                a_k0 = _needed(a_tail, a_fo, a_o)
                a_k1 = _needed(a_tail, a_fs, a_s)
                a_fits = a_k0 <= CAP and a_k1 <= CAP
        if not a_fits:  # a class needs more than CAP losses: the matrix path's column kernel
            _column_losses(gT, bad, nz, xv, m, col)
            out_var[p], out_es[p] = _column(col, n_window, min_window, alpha, stressed, share_min,
                                            bufv[1], bufi[1], bufv[0], bufi[0])
            continue
        cap[0] = a_k0
        cap[1] = a_k1
        # chunk bounds U_c, and each class's SEEDS chunks of largest bound (priced first: the kept tail's
        # threshold is then near its final value and the other chunks mostly fail the bound test)
        # U_c for every chunk, held asset by held asset over contiguous rows of (A, C) tables (SIMD): with
        # lo <= hi, max(-x lo, -x hi) is (-x) * hi for a short and x * (-lo) for a long, bit for bit
        for c in range(C):
            ub[c] = 0.0
            sc[c] = 0.0
        for j in range(m):
            a = nz[j]
            x = xv[j]
            ax = abs(x)
            if x > 0.0:
                for c in range(C):
                    ub[c] += x * neg_min[a, c]
                    sc[c] += ax * amax[a, c]
            else:
                nx = -x
                for c in range(C):
                    ub[c] += nx * c_max[a, c]
                    sc[c] += ax * amax[a, c]
        ns0 = 0
        ns1 = 0
        for c in range(C):
            u = ub[c] + BOUND_SLACK * sc[c]
            ub[c] = u
            q = 1 if (two_class and c_cls[c]) else 0
            cnt = ns1 if q else ns0
            if cnt < SEEDS or u > ub[seeds[q, cnt - 1]]:
                jj = cnt if cnt < SEEDS else SEEDS - 1
                if cnt < SEEDS:
                    cnt += 1
                while jj > 0 and ub[seeds[q, jj - 1]] < u:
                    seeds[q, jj] = seeds[q, jj - 1]
                    jj -= 1
                seeds[q, jj] = c
                if q:
                    ns1 = cnt
                else:
                    ns0 = cnt
        nb[0] = 0
        nb[1] = 0
        thr[0] = -np.inf
        thr[1] = -np.inf
        seeded[:] = False
        for j in range(ns0):
            seeded[seeds[0, j]] = True
        for j in range(ns1):
            seeded[seeds[1, j]] = True
        for step in range(C + 2 * SEEDS):
            # the seeds first (largest bound first), then every other chunk in order
            if step < SEEDS:
                if step >= ns0:
                    continue
                c = seeds[0, step]
            elif step < 2 * SEEDS:
                if step - SEEDS >= ns1:
                    continue
                c = seeds[1, step - SEEDS]
            else:
                c = step - 2 * SEEDS
                if seeded[c]:
                    continue
            q = 1 if (two_class and c_cls[c]) else 0
            k = cap[q]
            if k == 0 or (nb[q] == k and ub[c] < thr[q]):
                continue
            lo_r = c_lo[c]
            n = c_hi[c] - lo_r
            for i in range(n):
                tmp[i] = 0.0
            for j in range(m):
                x = xv[j]
                a = nz[j]
                for i in range(n):
                    tmp[i] = tmp[i] + x * gT[a, lo_r + i]
            cnt = nb[q]
            th = thr[q]
            for i in range(n):
                v = -tmp[i]
                if anybad and rowbad[lo_r + i]:
                    continue
                if cnt < k or v > th:
                    # insertion into the decreasing buffer (as _insert_desc: a value equal to the k-th is not kept)
                    if cnt == k:
                        jj = k - 1
                    else:
                        jj = cnt
                        cnt += 1
                    while jj > 0 and bufv[q, jj - 1] < v:
                        bufv[q, jj] = bufv[q, jj - 1]
                        bufi[q, jj] = bufi[q, jj - 1]
                        jj -= 1
                    bufv[q, jj] = v
                    bufi[q, jj] = lo_r + i
                    if cnt == k:
                        th = bufv[q, k - 1]
            nb[q] = cnt
            thr[q] = th
        if not two_class:
            out_var[p], out_es[p] = _tail_unit(bufv[0, : nb[0]], a_tail)
            continue
        var, es, ok = _merge_two(bufv[1], nb[1], a_s > nb[1], bufv[0], nb[0], a_o > nb[0], a_fs, a_fo, a_tail)
        if not ok:  # a class ran short of kept losses: the matrix path's column kernel (full sort)
            _column_losses(gT, bad, nz, xv, m, col)
            var, es = _column(col, n_window, min_window, alpha, stressed, share_min, bufv[1], bufi[1], bufv[0],
                              bufi[0])
        out_var[p] = var
        out_es[p] = es


def _run(X: np.ndarray, prep: Prepared, n_window: int, confidence: float, min_window: int, stressed: np.ndarray,
         share: float, two_class: bool, asset_ok: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    N = X.shape[0]
    out_var = np.empty(N)
    out_es = np.empty(N)
    ok = np.ones(X.shape[1], dtype=np.bool_) if asset_ok is None else np.asarray(asset_ok, dtype=np.bool_)
    _kernel(X, prep.gT, prep.bad, prep.bad_any, prep.c_lo, prep.c_hi, prep.c_cls, prep.c_min, prep.c_max,
            int(n_window), int(min_window), 1.0 - float(confidence), np.asarray(stressed, dtype=np.bool_),
            float(share), bool(two_class), ok, out_var, out_es)
    return out_var, out_es


def unit_tail(X: np.ndarray, prep: Prepared, n_window: int, confidence: float, min_window: int,
              stressed: np.ndarray, asset_ok: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES ``(N,)`` of exposures ``X`` ``(N, A)``, unit masses: ``tail_columns(losses, ...)`` fused.

    Equal to ``tail_columns(-(X @ g.T).T, n_window, confidence, min_window)``
    with NaN losses where a held asset has no return (the quantile convention
    of :mod:`riskmodels.margin._quantile`: ``k``-th largest loss,
    ``k = ceil(n (1 - c))``, ``n`` the finite window rows; extras mass 1).
    ``asset_ok`` ``(A,)``: an account holding an asset that is not ok gets NaN
    (not priced).
    """
    return _run(X, prep, n_window, confidence, min_window, stressed, -1.0, False, asset_ok)


def stress_tail(X: np.ndarray, prep: Prepared, n_window: int, confidence: float, min_window: int,
                stressed: np.ndarray, stress_share: float,
                asset_ok: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``stress_tail_columns(losses, ...)`` of exposures ``X`` fused: two masses (stressed share >= w).

    Masses and quantile convention of :mod:`riskmodels.margin._stress_tail`;
    ``asset_ok`` as in :func:`unit_tail`.
    """
    return _run(X, prep, n_window, confidence, min_window, stressed, stress_share, True, asset_ok)
