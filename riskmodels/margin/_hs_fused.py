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
* **Class order for the stressed share.** With two classes (calm and
  stressed scenarios) the columns are laid out calm rows first, then the
  stressed ones (:func:`by_class`, cached per date with the layout), and
  each class's contiguous range gets its own strided blocks: no per-row
  class test in the block maxima or the rescans (the two-class kernel took
  1.23 ms per 1,000 accounts and date with the classes interleaved, 1.03
  after; the unit one 0.68 -> 0.65 with the view that lets the block
  maxima vectorise; 2026-12-03, default book and history).
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
    True where the return is not finite; ``bad_any`` ``(A,)``. In class
    order (:func:`by_class`, what :func:`stress_tail` reads) the columns are
    the calm scenario rows, then the stressed ones: ``order`` ``(rows,)``
    holds each column's scenario row and ``n_calm`` the count of calm ones;
    in scenario order ``order`` is None and ``n_calm`` -1.
    """

    gT: np.ndarray
    bad: np.ndarray
    bad_any: np.ndarray
    order: np.ndarray | None = None
    n_calm: int = -1


def prepare(g: np.ndarray, stressed: np.ndarray | None = None) -> Prepared:
    """Transposed, NaN-zeroed scenario matrix of one date (cached per date by the caller).

    ``g`` is the ``(rows, A)`` scenario simple returns (one numba pass;
    :func:`prepare_reference` is the numpy statement of the same layout).
    With ``stressed`` ``(rows,)`` the columns are put in class order
    (:func:`by_class`), the layout of :func:`stress_tail`.
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    rows, A = g.shape
    gT = np.empty((A, rows))
    bad = np.empty((A, rows), dtype=np.bool_)
    _prepare_kernel(g, gT, bad)
    prep = Prepared(gT, bad, bad.any(axis=1))
    return prep if stressed is None else by_class(prep, stressed)


def by_class(prep: Prepared, stressed: np.ndarray) -> Prepared:
    """``prep`` with its columns in class order: the calm scenario rows, then the stressed ones (each in order).

    The two-class kernel then deals each class's contiguous range into its
    own strided blocks, with no per-row class test; a row's loss and the
    multiset of each class's losses are those of the scenario order, so VaR
    and ES are the same numbers (tested against the matrix path).
    """
    if prep.order is not None:
        raise ValueError("by_class: the Prepared is already in class order")
    st = np.asarray(stressed, dtype=np.bool_)
    if st.shape != (prep.gT.shape[1],):
        raise ValueError(f"by_class: {st.shape[0]} stressed flags for {prep.gT.shape[1]} scenario rows")
    calm = np.flatnonzero(~st)
    order = np.concatenate([calm, np.flatnonzero(st)])
    return Prepared(np.ascontiguousarray(prep.gT[:, order]), np.ascontiguousarray(prep.bad[:, order]),
                    prep.bad_any, order, int(calm.size))


@numba.njit(cache=True, fastmath=False)
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


@numba.njit(cache=True, fastmath={"contract"}, inline="always")
def accumulate(gT: np.ndarray, nz: np.ndarray, xv: np.ndarray, m: int, col: np.ndarray, start: int = 0) -> None:
    """``col[i] = sum_j xv[j] gT[nz[j], i]`` (``i >= start``) from 0 in asset order, four assets per pass.

    Each element gets the same operations in the same order as one pass per
    asset (``col[i] = col[i] + x_j g_j,i`` for ``j = 0..m-1``), so the sums
    are bitwise those of the one-asset passes (and of the GEMM's element,
    module docstring); a pass over up to four assets reads and writes ``col``
    once instead of once per asset (the loss pass is bound by those loads and
    stores). The loops run over views from index 0: with ``range(start, n)``
    numba keeps the negative-index check and LLVM does not vectorise
    (1.42 against 0.41 us for 1,500 rows and four assets).
    """
    c = col[start:]
    n = c.shape[0]
    j = 0
    while j < m:
        left = m - j
        if left >= 4:
            x0, x1, x2, x3 = xv[j], xv[j + 1], xv[j + 2], xv[j + 3]
            r0, r1 = gT[nz[j], start:], gT[nz[j + 1], start:]
            r2, r3 = gT[nz[j + 2], start:], gT[nz[j + 3], start:]
            if j == 0:
                for i in range(n):
                    c[i] = (((0.0 + x0 * r0[i]) + x1 * r1[i]) + x2 * r2[i]) + x3 * r3[i]
            else:
                for i in range(n):
                    c[i] = (((c[i] + x0 * r0[i]) + x1 * r1[i]) + x2 * r2[i]) + x3 * r3[i]
            j += 4
        elif left >= 2:
            x0, x1 = xv[j], xv[j + 1]
            r0, r1 = gT[nz[j], start:], gT[nz[j + 1], start:]
            if j == 0:
                for i in range(n):
                    c[i] = (0.0 + x0 * r0[i]) + x1 * r1[i]
            else:
                for i in range(n):
                    c[i] = (c[i] + x0 * r0[i]) + x1 * r1[i]
            j += 2
        else:
            x0 = xv[j]
            r0 = gT[nz[j], start:]
            if j == 0:
                for i in range(n):
                    c[i] = 0.0 + x0 * r0[i]
            else:
                for i in range(n):
                    c[i] = c[i] + x0 * r0[i]
            j += 1
    if m == 0:
        for i in range(n):
            c[i] = 0.0


@numba.njit(cache=True, fastmath={"contract"})
def _kernel(X, gT, bad, bad_any, order, n_calm, n_window, min_window, alpha, stressed, share_min, two_class,
            asset_ok, out_var, out_es, need):  # type: ignore[no-untyped-def]
    """Both tails: ``two_class`` False = unit masses (one top-``k`` buffer over all rows), True = stress share.

    An account whose class needs more than ``CAP`` kept losses, or whose
    kept losses ran short, gets ``need[p] = True`` (``out_var`` / ``out_es``
    left unset) and is priced by :func:`_fallback`: the column kernel is a
    separate build, so a cold cache compiles it (and the sort it calls) only
    when some account needs it (measured: this kernel's first call 5.3 s
    of compiling with the column kernel inlined).

    The rows of ``gT`` / ``bad`` are in class order (:func:`by_class`): the
    ``n_calm`` calm rows, then the stressed ones; ``order[i]`` is row ``i``'s
    place in the scenario set (``< n_window``: a window row). With unit
    masses every row is one class (``n_calm = rows``). Each class is its own
    contiguous range, dealt into its own strided blocks: no per-row class
    test. Everything per row is inlined (a numba call with array arguments
    costs reference counting, more than pricing a row).
    """
    N, A = X.shape
    rows = gT.shape[1]
    nb_all = max(1, (rows + BLOCK - 1) // BLOCK)
    nz = np.empty(A, dtype=np.int64)
    xv = np.empty(A)
    col = np.empty(rows)
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    kbuf = max(CAP, kmax)
    # buffers: class 1 = stressed (two-class only), class 0 = calm, or every row with unit masses
    bufv = np.empty((2, kbuf))
    mb = np.empty(kbuf)
    lmin = np.empty(nb_all)  # per strided block of the class in hand: the least col (= the largest loss -col)
    lo_q = np.zeros(2, dtype=np.int64)
    hi_q = np.zeros(2, dtype=np.int64)
    if two_class:
        hi_q[0] = n_calm
        lo_q[1] = n_calm
        hi_q[1] = rows
    else:
        hi_q[0] = rows
    s_tot = rows - n_calm if two_class else 0
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
                a_fin += good * np.int64(order[i] < n_window)
                a_s += good * np.int64(two_class and i >= n_calm)
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
        if not a_fits:  # a class needs more than CAP losses: the matrix path's column kernel (_fallback)
            need[p] = True
            continue
        cap[0] = a_k0
        cap[1] = a_k1
        # every row's col = sum_j x_j g_j (loss -col), contiguous passes over up to four held assets
        accumulate(gT, nz, xv, m, col)
        if anybad:  # dropped rows: never a block's extreme (and skipped below)
            for i in range(rows):
                if rowbad[i]:
                    col[i] = np.inf
        for q in range(2 if two_class else 1):
            k = cap[q]
            nkept[q] = 0
            lo = lo_q[q]
            hi_r = hi_q[q]
            n_q = hi_r - lo
            if k == 0 or n_q == 0:
                continue
            nb = max(1, (n_q + BLOCK - 1) // BLOCK)
            # strided block minima of col over the class's range: element-wise over contiguous slices
            for b in range(nb):
                lmin[b] = np.inf
            for s in range(BLOCK):
                o = lo + s * nb
                e = min(nb, hi_r - o)
                seg = col[o : o + e]  # a view: the loop vectorises on it (not on col[o + b]; measured 1.4x)
                for b in range(e):
                    lmin[b] = min(seg[b], lmin[b])
            # th0: the k-th largest block maximum of the class (-inf with fewer than k blocks)
            for j in range(k):
                mb[j] = -np.inf
            for b in range(nb):
                v = -lmin[b]
                if v > mb[k - 1]:  # branch-free bubble through the k kept (max / min selects, no jumps)
                    for j in range(k):
                        w = mb[j]
                        hi = v if v > w else w
                        v = w if v > w else v
                        mb[j] = hi
            th0 = mb[k - 1]
            cnt = 0
            th = -np.inf
            for b in range(nb):
                if -lmin[b] < th0:
                    continue
                for i in range(lo + b, hi_r, nb):
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
        if not ok:  # a class ran short of kept losses: the matrix path's column kernel (full sort, _fallback)
            need[p] = True
            continue
        out_var[p] = var
        out_es[p] = es


@numba.njit(cache=True, fastmath=False)
def _fallback(X, gT, bad, order, accounts, n_window, min_window, alpha, stressed, share_min, out_var,
              out_es):  # type: ignore[no-untyped-def]
    """The accounts :func:`_kernel` flagged, priced by the matrix path's column kernel (``_stress_tail._column``).

    The same calls as the kernel made inline before: the held assets in
    asset order, the loss column (:func:`_column_losses`), put in scenario
    order, and ``_column`` with scratch buffers of the kernel's size
    (``max(CAP, kmax)``, on which its choice of path depends).
    """
    A = X.shape[1]
    rows = gT.shape[1]
    nz = np.empty(A, dtype=np.int64)
    xv = np.empty(A)
    col = np.empty(rows)
    colo = np.empty(rows)
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    kbuf = max(CAP, kmax)
    bufv = np.empty((2, kbuf))
    bufi = np.empty((2, kbuf), dtype=np.int64)
    for p in accounts:
        m = 0
        for a in range(A):
            x = X[p, a]
            if x != 0.0:
                nz[m] = a
                xv[m] = x
                m += 1
        _column_losses(gT, bad, nz, xv, m, col)
        for i in range(rows):
            colo[order[i]] = col[i]
        out_var[p], out_es[p] = _column(colo, n_window, min_window, alpha, stressed, share_min, bufv[1], bufi[1],
                                        bufv[0], bufi[0])


def _run(X: np.ndarray, prep: Prepared, n_window: int, confidence: float, min_window: int, stressed: np.ndarray,
         share: float, two_class: bool, asset_ok: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    stressed = np.asarray(stressed, dtype=np.bool_)
    if two_class and prep.order is None:
        prep = by_class(prep, stressed)
    rows = prep.gT.shape[1]
    if stressed.shape != (rows,) or (prep.order is not None and int((~stressed).sum()) != prep.n_calm):
        raise ValueError(f"{stressed.shape[0]} stressed flags ({int(stressed.sum())} stressed) do not match the "
                         f"prepared layout ({rows} rows, {prep.n_calm} calm)")
    order = np.arange(rows, dtype=np.int64) if prep.order is None else prep.order
    n_calm = rows if prep.order is None else prep.n_calm
    N = X.shape[0]
    out_var = np.empty(N)
    out_es = np.empty(N)
    ok = np.ones(X.shape[1], dtype=np.bool_) if asset_ok is None else np.asarray(asset_ok, dtype=np.bool_)
    need = np.zeros(N, dtype=np.bool_)
    alpha = 1.0 - float(confidence)
    _kernel(X, prep.gT, prep.bad, prep.bad_any, order, int(n_calm), int(n_window), int(min_window),
            alpha, stressed, float(share), bool(two_class), ok, out_var, out_es, need)
    if need.any():
        _fallback(X, prep.gT, prep.bad, order, np.flatnonzero(need), int(n_window), int(min_window), alpha, stressed,
                  float(share), out_var, out_es)
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
