"""HS VaR only where it exceeds a threshold: the 10-year floor of :class:`~riskmodels.margin.apc.LookbackFloor`.

The floored margin is ``max(b, f)`` (``f`` the long-look-back VaR, ``b`` the
inner model's margin). ``f`` matters only where ``f > b``, and the
``k``-th largest loss ``f`` exceeds ``b`` exactly when at least ``k``
scenario losses do. So per account the kernel prices every row (one
contiguous pass per held asset, the fused multiply-adds of
:func:`riskmodels.margin._hs_fused.unit_tail`: bitwise the same losses),
counts the losses above ``th = b`` in one branch-free pass and, only when
there are ``k`` or more, takes the strided block maxima as that kernel does
and reads again the blocks whose maximum exceeds ``th``, keeping the losses
above ``th`` in a top-``k`` buffer:

* with ``k`` or more losses above ``th`` the ``k``-th largest of them is the
  VaR (every other loss is ``<= th``): :func:`~riskmodels.margin._hs_fused.unit_tail`'s value;
* else the result is NaN, which :func:`~riskmodels.margin.apc_rules.floor_rule`
  reads as "the floor does not bind": ``max(b, f) = b`` either way.

What this saves over the full kernel is its threshold step: the ``k``-th
largest of the block maxima costs ``k`` per block, and a 10-year window at
99% has ``k = 37`` and ~230 blocks, more than pricing its rows; here the
threshold is given. Unit masses and VaR only (the default floor); the caller
checks that, anything else takes the full kernel. Rows where a held asset has
no return drop out of the account's scenario set (its finite-row count sets
``k``), as in the full kernel.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from riskmodels.margin._hs_fused import accumulate
from riskmodels.margin._quantile_rule import SNAP, tail_count

#: most rows of a strided block (as :data:`riskmodels.margin._hs_fused.BLOCK`)
BLOCK = 16


@numba.njit(cache=True, fastmath=False)
def listing_prefix(bad: np.ndarray, bad_any: np.ndarray) -> np.ndarray:
    """Per asset, the count of leading missing returns if they are all its missing ones (a listing), else -1.

    ``bad`` ``(A, rows)``; 0 for an asset with no missing return. An account
    whose held assets all have such a prefix drops the rows before the
    largest one (no per-row test); any other gap is handled row by row.
    """
    A, rows = bad.shape
    prefix = np.zeros(A, dtype=np.int64)
    for a in range(A):
        if bad_any[a]:
            r = 0
            while r < rows and bad[a, r]:
                r += 1
            for i in range(r, rows):
                if bad[a, i]:
                    r = -1
                    break
            prefix[a] = r
    return prefix


@numba.njit(cache=True, fastmath={"contract"})
def var_above(X, gT, bad, bad_any, n_window, min_window, alpha, asset_ok, th, out):  # type: ignore[no-untyped-def]
    """``out[p]``: the unit-mass VaR of account ``p`` if it exceeds ``th[p]``, else NaN (module docstring).

    The held-asset gather, the missing-row marks and the top-``k`` insertion
    are written out as in :func:`riskmodels.margin._hs_fused._kernel`, not
    called: as shared ``inline="always"`` helpers (array arguments) the fused
    kernel measured ~5% slower (0.452-0.465 -> 0.480-0.483 ms per 1,000
    accounts and date, alternated, 2026-12-03), the reference-count cost its
    docstring describes.
    """
    N, A = X.shape
    rows = gT.shape[1]
    nb = max(1, (rows + BLOCK - 1) // BLOCK)
    nz = np.empty(A, dtype=np.int64)
    xv = np.empty(A)
    col = np.empty(rows)
    rowbad = np.zeros(rows, dtype=np.bool_)
    lmin = np.empty(nb)
    kmax = max(1, math.ceil(tail_count(n_window, alpha) - SNAP))
    buf = np.empty(kmax)
    prefix = listing_prefix(bad, bad_any)
    for p in range(N):
        out[p] = np.nan
        t = th[p]
        if not np.isfinite(t):
            continue  # NaN base: the floored margin is NaN whatever the floor
        m = 0
        inelig = False
        anybad = False
        for a in range(A):
            x = X[p, a]
            if x != 0.0:
                nz[m] = a
                xv[m] = x
                m += 1
                if not asset_ok[a]:
                    inelig = True
                if bad_any[a]:
                    anybad = True
        if inelig:
            continue  # the floor is NaN: the base stands
        n_fin = n_window
        start = 0
        if anybad:  # the missing returns of a listing are a prefix: skip it (else row by row)
            for j in range(m):
                r = prefix[nz[j]]
                if r < 0:
                    start = -1
                    break
                start = max(start, r)
            if start >= 0:
                n_fin = rows - start
                anybad = False
            else:
                start = 0
        if anybad:
            for i in range(rows):
                rowbad[i] = False
            for j in range(m):
                if bad_any[nz[j]]:
                    brow = bad[nz[j]]
                    for i in range(rows):
                        rowbad[i] = rowbad[i] | brow[i]
            n_fin = 0
            for i in range(rows):
                n_fin += np.int64(not rowbad[i])
        if n_fin < min_window or n_fin == 0:
            continue
        k = max(1, math.ceil(tail_count(n_fin, alpha) - SNAP))
        accumulate(gT, nz, xv, m, col, start)
        for i in range(start):
            col[i] = np.inf  # dropped: never above the threshold
        if anybad:
            for i in range(rows):
                if rowbad[i]:
                    col[i] = np.inf
        # the losses above t, counted branch-free: fewer than k and the floor does not bind (most accounts)
        above = 0
        for i in range(rows):
            above += np.int64(col[i] < -t)
        if above < k:
            continue
        for b in range(nb):
            lmin[b] = np.inf
        for s in range(BLOCK):
            o = s * nb
            e = min(nb, rows - o)
            if e <= 0:
                break
            seg = col[o : o + e]
            for b in range(e):
                lmin[b] = min(seg[b], lmin[b])
        cnt = 0
        kth = -np.inf
        for b in range(nb):
            if -lmin[b] <= t:
                continue
            for i in range(b, rows, nb):
                v = -col[i]
                if v <= t:  # also the dropped rows (-inf)
                    continue
                if cnt < k or v > kth:
                    if cnt == k:
                        jj = k - 1
                    else:
                        jj = cnt
                        cnt += 1
                    while jj > 0 and buf[jj - 1] < v:
                        buf[jj] = buf[jj - 1]
                        jj -= 1
                    buf[jj] = v
                    if cnt == k:
                        kth = buf[k - 1]
        if cnt >= k:
            out[p] = buf[k - 1]


@numba.njit(cache=True, fastmath=False)
def abs_nanmax_columns(g: np.ndarray) -> np.ndarray:
    """``numpy.nanmax(numpy.abs(g), axis=0)`` of a ``(rows, A)`` array in one pass; NaN for an all-NaN column.

    The per-asset intraday bound of the HS models (``maintenance_lipschitz``),
    asked for once per simulated date: numpy's version takes an ``abs``
    temporary and NaN-aware passes (~35 us a date on a 1,500 x 6 window).
    """
    rows, A = g.shape
    out = np.full(A, np.nan)
    for i in range(rows):
        for a in range(A):
            v = g[i, a]
            if v == v:  # not NaN (an infinite return is kept, as numpy keeps it)
                v = abs(v)
                o = out[a]
                if not (o >= v):  # NaN (nothing yet) or smaller
                    out[a] = v
    return out


@numba.njit(cache=True, fastmath={"contract"})
def base_and_floor(X, gT, bad, bad_any, inner_rows, inner_min, inner_alpha, inner_ok,  # type: ignore[no-untyped-def]
                   min_window, alpha, asset_ok, out_base, out_floor):
    """The base HS VaR and the floor where it binds, from one loss pass (:class:`~riskmodels.margin.apc.LookbackFloor`).

    ``gT`` ``(A, rows)`` is the floor's window (unit masses, no extras) and
    the base's window is its last ``inner_rows`` rows (the same scenario
    returns: the caller checks it). Per account the losses of the floor's
    rows are priced once (:func:`~riskmodels.margin._hs_fused.accumulate`,
    bitwise the fused kernel's); then

    * ``out_base[p]``: the base VaR, the ``k_b``-th largest finite loss of the
      last ``inner_rows`` rows, ``k_b = ceil(n_b (1 - c_b))`` (the unit-mass
      rule of :mod:`riskmodels.margin._quantile`; an order statistic, so the
      value :func:`~riskmodels.margin._hs_fused.unit_tail` gives on the
      base's own window), NaN where a held asset is not ``inner_ok`` or fewer
      than ``inner_min`` rows are finite;
    * ``out_floor[p]``: what :func:`var_above` gives with the threshold
      ``max(out_base[p], 0)`` (the base's maintenance): the floor's VaR where
      it exceeds it, else NaN.

    The base then costs its selection only (strided block maxima of its rows,
    as the fused kernel selects); where the floor cannot be priced (an asset
    not ``asset_ok``, too few finite rows) only the base's rows are priced.
    """
    N, A = X.shape
    rows = gT.shape[1]
    off = rows - inner_rows
    nb = max(1, (rows + BLOCK - 1) // BLOCK)
    nbi = max(1, (inner_rows + BLOCK - 1) // BLOCK)
    nz = np.empty(A, dtype=np.int64)
    xv = np.empty(A)
    col = np.empty(rows)
    rowbad = np.zeros(rows, dtype=np.bool_)
    lmin = np.empty(max(nb, nbi))
    kmax = max(1, math.ceil(tail_count(rows, alpha) - SNAP))
    kmax_b = max(1, math.ceil(tail_count(inner_rows, inner_alpha) - SNAP))
    buf = np.empty(max(kmax, kmax_b))
    mb = np.empty(kmax_b)
    prefix = listing_prefix(bad, bad_any)
    for p in range(N):
        out_base[p] = np.nan
        out_floor[p] = np.nan
        m = 0
        inelig_b = False
        inelig_f = False
        anybad = False
        for a in range(A):
            x = X[p, a]
            if x != 0.0:
                nz[m] = a
                xv[m] = x
                m += 1
                if not inner_ok[a]:
                    inelig_b = True
                if not asset_ok[a]:
                    inelig_f = True
                if bad_any[a]:
                    anybad = True
        if inelig_b:
            continue  # the base is NaN, so is the floored margin
        start = 0
        n_fin = rows
        n_b = inner_rows
        if anybad:
            for j in range(m):
                r = prefix[nz[j]]
                if r < 0:
                    start = -1
                    break
                start = max(start, r)
            if start >= 0:
                n_fin = rows - start
                n_b = inner_rows - max(0, start - off)
                anybad = False
            else:
                start = 0
        if anybad:
            for i in range(rows):
                rowbad[i] = False
            for j in range(m):
                if bad_any[nz[j]]:
                    brow = bad[nz[j]]
                    for i in range(rows):
                        rowbad[i] = rowbad[i] | brow[i]
            n_fin = 0
            n_b = 0
            for i in range(rows):
                good = np.int64(not rowbad[i])
                n_fin += good
                n_b += good * np.int64(i >= off)
        if n_b < inner_min or n_b == 0:
            continue
        floor_on = not inelig_f and n_fin >= min_window and n_fin > 0
        first = start if floor_on else max(start, off)  # without a floor only the base's rows are priced
        accumulate(gT, nz, xv, m, col, first)
        for i in range(0 if floor_on else off, start):
            col[i] = np.inf  # dropped rows: never a block's extreme, never above a threshold
        if anybad:
            for i in range(rows):
                if rowbad[i]:
                    col[i] = np.inf
        # the base: the k_b-th largest loss of rows off..rows-1 (the fused kernel's block selection)
        k = max(1, math.ceil(tail_count(n_b, inner_alpha) - SNAP))
        for b in range(nbi):
            lmin[b] = np.inf
        for s in range(BLOCK):
            o = off + s * nbi
            e = min(nbi, rows - o)
            if e <= 0:
                break
            seg = col[o : o + e]
            for b in range(e):
                lmin[b] = min(seg[b], lmin[b])
        for j in range(k):
            mb[j] = -np.inf
        for b in range(nbi):
            v = -lmin[b]
            if v > mb[k - 1]:
                for j in range(k):
                    w = mb[j]
                    hi = v if v > w else w
                    v = w if v > w else v
                    mb[j] = hi
        th0 = mb[k - 1]
        cnt = 0
        kth = -np.inf
        for b in range(nbi):
            if -lmin[b] < th0:
                continue
            for i in range(off + b, rows, nbi):
                v = -col[i]
                if v < th0 or v == -np.inf:  # below the threshold, or a dropped row
                    continue
                if cnt < k or v > kth:
                    if cnt == k:
                        jj = k - 1
                    else:
                        jj = cnt
                        cnt += 1
                    while jj > 0 and buf[jj - 1] < v:
                        buf[jj] = buf[jj - 1]
                        jj -= 1
                    buf[jj] = v
                    if cnt == k:
                        kth = buf[k - 1]
        if cnt < k:
            continue  # cannot happen with n_b >= k finite rows; NaN rather than a wrong number
        base = buf[k - 1]
        out_base[p] = base
        if not floor_on:
            continue
        t = base if base > 0.0 else 0.0  # the base's maintenance, max(VaR, 0): the floor's threshold
        kf = max(1, math.ceil(tail_count(n_fin, alpha) - SNAP))
        above = 0
        for i in range(rows):
            above += np.int64(col[i] < -t)
        if above < kf:
            continue
        for b in range(nb):
            lmin[b] = np.inf
        for s in range(BLOCK):
            o = s * nb
            e = min(nb, rows - o)
            if e <= 0:
                break
            seg = col[o : o + e]
            for b in range(e):
                lmin[b] = min(seg[b], lmin[b])
        cnt = 0
        kth = -np.inf
        for b in range(nb):
            if -lmin[b] <= t:
                continue
            for i in range(b, rows, nb):
                v = -col[i]
                if v <= t:
                    continue
                if cnt < kf or v > kth:
                    if cnt == kf:
                        jj = kf - 1
                    else:
                        jj = cnt
                        cnt += 1
                    while jj > 0 and buf[jj - 1] < v:
                        buf[jj] = buf[jj - 1]
                        jj -= 1
                    buf[jj] = v
                    if cnt == kf:
                        kth = buf[kf - 1]
        if cnt >= kf:
            out_floor[p] = buf[kf - 1]
