"""One date's HS requirement, losses and tail fused per account, with block maxima that skip most rows.

:meth:`~riskmodels.margin.historical.FittedHistorical.requirement` (the
account simulation calls it twice per date on ~1,000 accounts) used to build
the whole ``(N, rows)`` loss matrix with one GEMM and then select the tail of
each column (:func:`~riskmodels.margin._quantile.tail_columns`,
:func:`~riskmodels.margin._stress_tail.stress_tail_columns`). The kernel here
gives the same numbers without the matrix, one account at a time:

* **Losses, sparse.** An account holds a few of the ``A`` assets; its loss in
  scenario ``i`` is ``L_i = -sum_{a: x_a != 0} x_a g_{i,a}``, accumulated in
  asset order with fused multiply-adds from 0 (on the OpenBLAS Haswell kernel
  numpy ships this is bitwise the GEMM's element, which sums the same terms
  in the same order). One contiguous pass per held asset over the
  ``(A, rows)`` transposed scenarios (SIMD).
* **Strided block maxima, then a threshold.** The rows are dealt into
  ``nb = ceil(rows / BLOCK)`` strided blocks (block ``b`` holds rows ``b, b +
  nb, b + 2 nb, ...``), so each block's largest loss of a class, ``M_b``, is
  an element-wise maximum over ``BLOCK`` contiguous slices (SIMD). The
  ``k``-th largest of the ``M_b``, ``th0``, is the ``k``-th largest of ``k``
  losses of distinct rows, hence ``th0 <= L_(k)``, the ``k``-th largest loss
  of the class: every row of the tail lies in a block with ``M_b >= th0``.
  Only those blocks (about ``k`` of them) are read again, and only their rows
  with ``L_i >= th0`` enter the decreasing top-``k`` buffer, so the data-
  dependent branches, which cost more than the arithmetic, run on ~``k``
  rows instead of all of them. With fewer than ``k`` blocks holding the class
  ``th0 = -inf`` and every row is read.
* The kept losses are exactly the ``k`` largest of the class (ties have equal
  values), so VaR and ES, which read only them, equal the matrix path's.

Rows where a held asset has no return (a NaN in ``g``: before a listing)
drop out of that account's scenario set as in the matrix path (NaN loss):
the account's own counts of finite window / stressed / calm rows and its
masses are recomputed and those rows skipped. A class that needs more than
:data:`~riskmodels.margin._stress_tail.CAP` losses, or masses the kept losses
cannot settle, materialises the account's loss column and calls the matrix
path's own per-column kernel, so the numbers are the same there too. An
account holding an asset that is not eligible at the date is NaN without
pricing. Weighted scenarios (BRW) keep the matrix path.

(Until 2026-12 the rows were cut into chunks of 16 with per-asset upper
bounds, priced largest bound first: ~9 of 32 chunks per account, 0.93 us
per account and date on the default workload; the bound and the per-chunk
branches cost more than pricing every row.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from riskmodels.margin._quantile import SNAP, _tail_unit, tail_count
from riskmodels.margin._stress_tail import CAP, _column, _masses, _merge_two, _needed

#: most rows of a strided block (one maximum per block, class and account)
BLOCK = 16


class Prepared(NamedTuple):
    """One date's scenario matrix in the layout of the fused kernel.

    ``gT`` ``(A, rows)`` NaN-zeroed transposed returns; ``bad`` ``(A, rows)``
    True where the return is not finite; ``bad_any`` ``(A,)``.
    """

    gT: np.ndarray
    bad: np.ndarray
    bad_any: np.ndarray


def prepare(g: np.ndarray) -> Prepared:
    """Transposed, NaN-zeroed scenario matrix of one date (cached per date by the caller).

    ``g`` is the ``(rows, A)`` scenario simple returns (one numba pass;
    :func:`prepare_reference` is the numpy statement of the same layout).
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    rows, A = g.shape
    gT = np.empty((A, rows))
    bad = np.empty((A, rows), dtype=np.bool_)
    _prepare_kernel(g, gT, bad)
    return Prepared(gT, bad, bad.any(axis=1))


@numba.njit(cache=True)
def _prepare_kernel(g, gT, bad):  # type: ignore[no-untyped-def]
    rows, A = g.shape
    for i in range(rows):
        for a in range(A):
            v = g[i, a]
            b = not np.isfinite(v)
            bad[a, i] = b
            gT[a, i] = 0.0 if b else v


def prepare_reference(g: np.ndarray) -> Prepared:
    """Numpy statement of :func:`prepare`: ``g.T`` with non-finite returns set to 0, and their mask."""
    g = np.asarray(g, dtype=np.float64)
    bad = ~np.isfinite(g)
    gz = np.where(bad, 0.0, g)
    badT = np.ascontiguousarray(bad.T)
    return Prepared(np.ascontiguousarray(gz.T), badT, badT.any(axis=1))


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
def _kernel(X, gT, bad, bad_any, n_window, min_window, alpha, stressed, share_min, two_class, asset_ok,
            out_var, out_es):  # type: ignore[no-untyped-def]
    """Both tails: ``two_class`` False = unit masses (one top-``k`` buffer over all rows), True = stress share.

    Everything per row is inlined (a numba call with array arguments costs
    reference counting, more than pricing a row).
    """
    N, A = X.shape
    rows = gT.shape[1]
    nb = max(1, (rows + BLOCK - 1) // BLOCK)
    nz = np.empty(A, dtype=np.int64)
    xv = np.empty(A)
    col = np.empty(rows)
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    kbuf = max(CAP, kmax)
    # buffers: class 1 = stressed (two-class only), class 0 = calm, or every row with unit masses
    bufv = np.empty((2, kbuf))
    bufi = np.empty((2, kbuf), dtype=np.int64)
    mb = np.empty(kbuf)
    lmin = np.empty((2, nb))  # per class and strided block: the least col (= the largest loss -col)
    cls = np.zeros(rows, dtype=np.bool_)
    s_tot = 0
    if two_class:
        for i in range(rows):
            if stressed[i]:
                cls[i] = True
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
    nkept = np.zeros(2, dtype=np.int64)
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
        if anybad:  # branch-free passes (the bad rows of a late listing are a block, the others scattered)
            for i in range(rows):
                rowbad[i] = False
            for j in range(m):
                if bad_any[nz[j]]:
                    brow = bad[nz[j]]
                    for i in range(rows):
                        rowbad[i] = rowbad[i] | brow[i]
            a_fin = 0
            a_s = 0
            n_good = 0
            for i in range(rows):
                good = np.int64(not rowbad[i])
                n_good += good
                a_fin += good * np.int64(i < n_window)
                a_s += good * np.int64(cls[i])
            a_o = n_good - a_s
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
        # every row's col = sum_j x_j g_j (loss -col), one contiguous pass per held asset
        for i in range(rows):
            col[i] = 0.0
        for j in range(m):
            x = xv[j]
            row = gT[nz[j]]
            for i in range(rows):
                col[i] = col[i] + x * row[i]
        if anybad:  # dropped rows: never a block's extreme (and skipped below)
            for i in range(rows):
                if rowbad[i]:
                    col[i] = np.inf
        # strided block minima of col per class: element-wise over contiguous slices
        for b in range(nb):
            lmin[0, b] = np.inf
            lmin[1, b] = np.inf
        for s in range(BLOCK):
            o = s * nb
            e = min(nb, rows - o)
            if two_class:
                for b in range(e):
                    v = col[o + b]
                    st = cls[o + b]
                    v1 = v if st else np.inf
                    v0 = np.inf if st else v
                    lmin[1, b] = v1 if v1 < lmin[1, b] else lmin[1, b]
                    lmin[0, b] = v0 if v0 < lmin[0, b] else lmin[0, b]
            else:
                for b in range(e):
                    v = col[o + b]
                    lmin[0, b] = v if v < lmin[0, b] else lmin[0, b]
        for q in range(2 if two_class else 1):
            k = cap[q]
            nkept[q] = 0
            if k == 0:
                continue
            # th0: the k-th largest block maximum of the class (-inf with fewer than k blocks holding it)
            for j in range(k):
                mb[j] = -np.inf
            for b in range(nb):
                v = -lmin[q, b]
                if v > mb[k - 1]:
                    for j in range(k):
                        w = mb[j]
                        if v > w:
                            mb[j] = v
                            v = w
            th0 = mb[k - 1]
            cnt = 0
            th = -np.inf
            for b in range(nb):
                if -lmin[q, b] < th0:
                    continue
                for i in range(b, rows, nb):
                    if cls[i] != (q == 1):
                        continue
                    if anybad and rowbad[i]:
                        continue
                    v = -col[i]
                    if v < th0:
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
                            jj -= 1
                        bufv[q, jj] = v
                        if cnt == k:
                            th = bufv[q, k - 1]
            nkept[q] = cnt
        if not two_class:
            out_var[p], out_es[p] = _tail_unit(bufv[0, : nkept[0]], a_tail)
            continue
        var, es, ok = _merge_two(bufv[1], nkept[1], a_s > nkept[1], bufv[0], nkept[0], a_o > nkept[0], a_fs, a_fo,
                                 a_tail)
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
    _kernel(X, prep.gT, prep.bad, prep.bad_any, int(n_window), int(min_window), 1.0 - float(confidence),
            np.asarray(stressed, dtype=np.bool_), float(share), bool(two_class), ok, out_var, out_es)
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
