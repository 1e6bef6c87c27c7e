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


@njit(cache=True, fastmath=False)
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
    t_im = np.empty((n, A))  # per-asset terms, summed in numpy's order (bitwise equal sums)
    t_mm = np.empty((n, A))
    bad_row = np.zeros(n, dtype=np.bool_)
    Kc = coll_tab.shape[1]
    Kp = pos_tab.shape[1]
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
            else:  # C(c') bracket by bracket (module docstring), inline: a call with array arguments costs more
                c_im = 0.0
                for k in range(Kc):
                    lo = coll_tab[g, k, 0]
                    v = cc - lo  # padding bounds are +inf: v = -inf stops
                    if not v > 0.0:
                        break
                    if k + 1 < Kc:
                        w = coll_tab[g, k + 1, 0] - lo
                        if v > w:
                            v = w
                    c_im += v * coll_tab[g, k, 1]
                c_mm = c_im
            g = pos_of[a]
            if g < 0:
                p_im = nn * imf[a]
                p_mm = nn * mmf[a]
            else:  # P_im(n') and P_mm(n') in one walk of the bounds
                p_im = 0.0
                p_mm = 0.0
                for k in range(Kp):
                    lo = pos_tab[g, k, 0]
                    v = nn - lo
                    if not v > 0.0:
                        break
                    if k + 1 < Kp:
                        w = pos_tab[g, k + 1, 0] - lo
                        if v > w:
                            v = w
                    p_im += v * pos_tab[g, k, 1]
                    p_mm += v * pos_tab[g, k, 2]
            hc = hedge_rate * hedged
            t_im[i, a] = (c_im + p_im) + hc
            t_mm[i, a] = (c_mm + p_mm) + hc
        bad_row[i] = bad
    _row_sums(t_im, bad_row, im)  # one call for all rows (a call per row cost more than its sum)
    _row_sums(t_mm, bad_row, mm)
    return im, mm


@njit(cache=True, fastmath=False)
def _row_sums(t: np.ndarray, bad: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = sum(t[i])`` in numpy's order (NaN where ``bad``), so flat-rate sums are bit for bit numpy's.

    numpy sums a contiguous row of ``n <= 128`` terms as one pairwise leaf:
    in order below 8 terms, else 8 accumulators over the blocks of 8, combined
    as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the tail in
    order. Wider rows (more than 128 assets) are summed in order, equal to
    numpy to rounding. Inline per row: a numba call with an array argument
    per row cost more than the sum.
    """
    n, A = t.shape
    for i in range(n):
        if bad[i]:
            out[i] = np.nan
        elif A < 8 or A > 128:
            res = 0.0
            for j in range(A):
                res += t[i, j]
            out[i] = res
        else:
            r0, r1, r2, r3 = t[i, 0], t[i, 1], t[i, 2], t[i, 3]
            r4, r5, r6, r7 = t[i, 4], t[i, 5], t[i, 6], t[i, 7]
            j = 8
            while j < A - (A % 8):
                r0 += t[i, j]
                r1 += t[i, j + 1]
                r2 += t[i, j + 2]
                r3 += t[i, j + 3]
                r4 += t[i, j + 4]
                r5 += t[i, j + 5]
                r6 += t[i, j + 6]
                r7 += t[i, j + 7]
                j += 8
            res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while j < A:
                res += t[i, j]
                j += 1
            out[i] = res


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
