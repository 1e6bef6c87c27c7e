"""Compiled kernels of the coverage verdict (:mod:`riskmodels.backtest.verdict`).

:func:`boot_tail_counts` is the studentised moving-block bootstrap of
:func:`~riskmodels.backtest.verdict.exceedance_z` without its ``(n_boot, T)``
arrays: each resample is read block by block from ``d`` (the block starts are
the only stored draw), summed, demeaned and given its Hansen-Hodrick
variance in two passes, and only the counts of ``Z* >= z`` and ``Z* <= z``
leave the kernel. The numpy statement it replaces
(``ds = d[idx]; ss = ds.sum(1); vs = _hh_var(ds - ds.mean(1), h)``) sums in
a different order (pairwise, einsum), so a resample whose ``Z*`` lies within
rounding of ``z`` can count differently; the tests compare both with a loop
over resamples.
"""

from __future__ import annotations

import math

import numba
import numpy as np


#: reassociated sums (SIMD); no 'nnan' / 'ninf': the kernel tests for non-finite Z*
@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def boot_tail_counts(d: np.ndarray, starts: np.ndarray, b: int, h: int, s: float, z: float) -> tuple[int, int, int]:
    """``(finite, ge, le)``: resamples with a finite ``Z*``, and those with ``Z* >= z`` and ``Z* <= z``.

    Resample ``r`` is ``d[starts[r, j] : starts[r, j] + b]`` for ``j = 0, 1, ...``
    concatenated and cut at ``T = len(d)``;
    ``Z* = (S* - s) / sqrt(V*)`` with ``S*`` its sum and ``V*`` the
    Hansen-Hodrick variance of lag ``h - 1`` of the demeaned resample
    (``sum e_t^2 + 2 sum_{k<h} sum_t e_t e_{t+k}``, the lag-0 term if that is
    not positive), as in :func:`~riskmodels.backtest.verdict.exceedance_z`.
    """
    T = d.size
    n_boot, k = starts.shape
    x = np.empty(T)
    finite = 0
    ge = 0
    le = 0
    for r in range(n_boot):
        t = 0
        for j in range(k):
            a = starts[r, j]
            n = min(b, T - t)
            for i in range(n):  # an element loop: a slice assignment compiles numba's shape-error formatting (~2 s cold)
                x[t + i] = d[a + i]
            t += n
        tot = 0.0
        for i in range(T):
            tot += x[i]
        m = tot / T
        v0 = 0.0
        for i in range(T):
            x[i] -= m
            v0 += x[i] * x[i]
        lag = 0.0
        for q in range(1, h):
            for i in range(T - q):
                lag += x[i] * x[i + q]
        v = v0 + 2.0 * lag
        if not v > 0.0:
            v = v0
        zs = (tot - s) / math.sqrt(v) if v > 0.0 else math.nan
        if math.isfinite(zs):
            finite += 1
            if zs >= z:
                ge += 1
            if zs <= z:
                le += 1
    return finite, ge, le


@numba.njit(cache=True, fastmath=False)
def group_counts(exc: np.ndarray, valid: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X, N)`` ``(T, G)`` int64: ``X[t, g]`` cells ``exc & valid`` and ``N[t, g]`` cells ``valid`` of group ``g``.

    ``exc`` and ``valid`` are ``(T, P)`` bool, ``masks`` ``(P, G)`` bool (account ``p`` in group ``g``).
    """
    T, P = exc.shape
    G = masks.shape[1]
    X = np.zeros((T, G), dtype=np.int64)
    N = np.zeros((T, G), dtype=np.int64)
    for t in range(T):
        for p in range(P):
            if valid[t, p]:
                e = int(exc[t, p])
                for g in range(G):
                    if masks[p, g]:
                        X[t, g] += e
                        N[t, g] += 1
    return X, N


def warm() -> None:
    """Compile the verdict's and the coverage table's kernels on tiny inputs, unless numba's cache has them.

    Called by the tail's import thread (:mod:`riskmodels.backtest.pool_start`)
    while the models run: on a cold cache they then compile there (~1 CPU-s)
    and not in the run's serial tail.
    """
    from riskmodels._numba_cache import is_cached
    from riskmodels.backtest.stats_core import panel_counts

    if is_cached(boot_tail_counts, group_counts, panel_counts):
        return
    b = np.zeros((2, 2), dtype=np.bool_)
    starts = np.zeros((1, 1), dtype=np.int64)
    starts.setflags(write=False)  # the signature of the real call: verdict's cached starts are read-only
    boot_tail_counts(np.array([1.0, -1.0]), starts, 2, 2, 0.0, 0.0)
    group_counts(b, b, b)
    panel_counts(b, b, 0, 1)
