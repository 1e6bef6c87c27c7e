"""numba kernel of :func:`riskmodels.backtest.procyclicality.partial_sums`: one pass over the margin panel.

The numpy version (kept as ``partial_sums_numpy``, the reference of
``tests/test_procyclicality.py``) made ~10 masked temporaries of the panel per
block of accounts and horizon; this reads each cell once per horizon, in
float64. Sums over accounts run in another order (sequential, not pairwise):
results agree to ~1e-15 relative.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, fastmath=False)
def sums_kernel(M: np.ndarray, N: np.ndarray, has_n: bool, hs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Row sums behind the procyclicality measures (``NaN`` in ``M`` = account absent).

    With ``Mz`` = M with absent cells at 0, ``pres`` = present::

        level[t]      = sum_p Mz[t, p]
        s_prev[t - 1] = sum_p Mz[t - 1, p] 1{pres[t, p] & pres[t - 1, p]}   (s_cur: Mz[t, p])
        delta[h, t - n] = sum_p (Mz[t, p] - Mz[t - n, p]) 1{pres[t, p] & pres[t - n, p]},  n = hs[h]
        base[h, t - n]  = sum_p Mz[t - n, p] 1{...},   nb[h, t - n] = sum_p N0[t - n, p] 1{...}

    and the ``any`` flags of each indicator (N0 = N with NaN at 0).
    """
    K, P = M.shape
    H = hs.size
    level = np.zeros(K)
    s_prev = np.zeros(max(K - 1, 0))
    s_cur = np.zeros(max(K - 1, 0))
    both_any = np.zeros(max(K - 1, 0), dtype=np.bool_)
    delta = np.zeros((H, K))
    base = np.zeros((H, K))
    nb = np.zeros((H, K))
    anyc = np.zeros((H, K), dtype=np.bool_)
    for t in range(K):
        lv = 0.0
        for p in range(P):
            m = np.float64(M[t, p])
            if m == m:
                lv += m
        level[t] = lv
        if t >= 1:
            sp = 0.0
            sc = 0.0
            ba = False
            for p in range(P):
                a = np.float64(M[t - 1, p])
                b = np.float64(M[t, p])
                if a == a and b == b:
                    sp += a
                    sc += b
                    ba = True
            s_prev[t - 1] = sp
            s_cur[t - 1] = sc
            both_any[t - 1] = ba
        for h in range(H):
            n = hs[h]
            if n >= K or t < n:
                continue
            d = 0.0
            bs = 0.0
            nn = 0.0
            ac = False
            for p in range(P):
                a = np.float64(M[t - n, p])
                b = np.float64(M[t, p])
                if a == a and b == b:
                    d += b - a
                    bs += a
                    ac = True
                    if has_n:
                        x = N[t - n, p]
                        if x == x:
                            nn += x
            delta[h, t - n] = d
            base[h, t - n] = bs
            nb[h, t - n] = nn
            anyc[h, t - n] = ac
    return level, s_prev, s_cur, both_any, delta, base, nb, anyc
