"""One-pass numba kernel of the fixed-haircut charges (cross and isolated accounts).

For account ``i`` and asset ``a`` with collateral ``c >= 0`` and signed perp
notional ``p`` (USD), netting flag ``nu_i`` (cross-margined and the model nets)::

    H   = nu_i * min(c, max(-p, 0))            hedged amount
    c'  = c - H,   n' = |p| - H                unhedged collateral and notional
    IM  = sum_a  C(c') + P_im(n') + r_h H
    MM  = sum_a  C_mm(c') + P_mm(n') + r_h H

with ``C(x) = h_a x`` (flat) or the bracket sum ``sum_k r_k clip(x - b_k, 0,
b_{k+1} - b_k)`` (tiered; the same rates in IM and MM), and likewise ``P``.
This is :meth:`FittedHaircut._charges_reference` evaluated element by element
in one pass over the ``(n, A)`` arrays, without the ``(n, A)`` and ``(n, A, K)``
temporaries; a NaN amount gives a NaN account requirement, as there.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _bracket(x: float, bounds: np.ndarray, rates: np.ndarray) -> float:
    """``sum_k rates[k] * clip(x - bounds[k], 0, bounds[k+1] - bounds[k])`` (last bracket unbounded)."""
    out = 0.0
    K = bounds.shape[0]
    for k in range(K):
        if bounds[k] == np.inf:  # padding: no more brackets
            break
        v = x - bounds[k]
        if v < 0.0:
            v = 0.0
        elif k + 1 < K:
            w = bounds[k + 1] - bounds[k]
            if v > w:
                v = w
        out += v * rates[k]
    return out


@njit(cache=True)
def _block_sum(x: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise leaf (``n <= 128``): 8 accumulators, then the tail in order."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += x[i]
        return res
    r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
    r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += x[lo + i]
        r1 += x[lo + i + 1]
        r2 += x[lo + i + 2]
        r3 += x[lo + i + 3]
        r4 += x[lo + i + 4]
        r5 += x[lo + i + 5]
        r6 += x[lo + i + 6]
        r7 += x[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += x[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(x: np.ndarray, lo: int, n: int) -> float:
    """``sum(x[lo:lo + n])``: bit for bit numpy's order for ``n <= 128`` (one pairwise leaf).

    Wider rows (more than 128 assets) are summed in order, equal to numpy to
    rounding; a recursive version crashed when numba reloaded it from its cache.
    """
    if n <= 128:
        return _block_sum(x, lo, n)
    res = 0.0
    for i in range(lo, lo + n):
        res += x[i]
    return res


@njit(cache=True)
def haircut_charges(
    collateral: np.ndarray,
    positions: np.ndarray,
    netting: np.ndarray,
    h: np.ndarray,
    h_mm: np.ndarray,
    imf: np.ndarray,
    mmf: np.ndarray,
    hedge_rate: float,
    coll_tab: np.ndarray,
    coll_of: np.ndarray,
    pos_tab: np.ndarray,
    pos_of: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(IM, MM)`` of ``n`` accounts, each ``(n,)``.

    Parameters
    ----------
    collateral, positions : numpy.ndarray
        ``(n, A)`` USD amounts (collateral >= 0, positions signed).
    netting : numpy.ndarray
        ``(n,)`` bool: offset collateral against short perps on that account.
    h, h_mm, imf, mmf : numpy.ndarray
        ``(A,)`` flat rates.
    hedge_rate : float
        Charge on the hedged amount.
    coll_tab, pos_tab : numpy.ndarray
        ``(G, K, 2)`` collateral and ``(G, K, 3)`` position tier tables (lower
        bound, rate(s)), padded to a common ``K`` with ``+inf`` bounds (an
        empty bracket adds 0).
    coll_of, pos_of : numpy.ndarray
        ``(A,)`` int: the tier table of each asset, -1 for flat rates.
    """
    n, A = collateral.shape
    im = np.empty(n)
    mm = np.empty(n)
    t_im = np.empty(A)  # per-asset terms, summed in numpy's order (bitwise equal sums)
    t_mm = np.empty(A)
    for i in range(n):
        bad = False
        nets = netting[i]
        for a in range(A):
            c = collateral[i, a]
            p = positions[i, a]
            if np.isnan(c) or np.isnan(p):
                bad = True
                continue
            hedged = 0.0
            if nets:
                neg = -p if p < 0.0 else 0.0
                hedged = c if c < neg else neg
            cc = c - hedged
            nn = abs(p) - hedged
            g = coll_of[a]
            if g < 0:
                c_im = cc * h[a]
                c_mm = cc * h_mm[a]
            else:
                c_im = _bracket(cc, coll_tab[g, :, 0], coll_tab[g, :, 1])
                c_mm = c_im
            g = pos_of[a]
            if g < 0:
                p_im = nn * imf[a]
                p_mm = nn * mmf[a]
            else:
                p_im = _bracket(nn, pos_tab[g, :, 0], pos_tab[g, :, 1])
                p_mm = _bracket(nn, pos_tab[g, :, 0], pos_tab[g, :, 2])
            hc = hedge_rate * hedged
            t_im[a] = (c_im + p_im) + hc
            t_mm[a] = (c_mm + p_mm) + hc
        if bad:
            im[i] = np.nan
            mm[i] = np.nan
        else:
            im[i] = _pairwise_sum(t_im, 0, A)
            mm[i] = _pairwise_sum(t_mm, 0, A)
    return im, mm


def pack_tiers(groups: list[tuple[np.ndarray, np.ndarray]], A: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, K, width)`` padded tables and ``(A,)`` table index (-1 = flat) from ``_tier_table`` groups.

    Padding rows have lower bound ``+inf`` (the kernel stops there), so the
    previous bracket's width ``inf - b`` keeps it unbounded, as the last
    bracket of the unpadded table.
    """
    of = np.full(A, -1, dtype=np.int64)
    if not groups:
        return np.zeros((1, 1, width)), of
    K = max(len(tab) for _, tab in groups)
    out = np.zeros((len(groups), K, width))
    out[:, :, 0] = np.inf
    for g, (cols, tab) in enumerate(groups):
        out[g, : len(tab)] = tab
        of[cols] = g
    return out, of
