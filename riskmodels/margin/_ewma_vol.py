"""EWMA (RiskMetrics) 1-day volatility forecasts, the filter of filtered historical simulation."""

from __future__ import annotations

import numpy as np

#: Squared returns averaged to seed the EWMA variance (no value before).
EWMA_WARMUP = 20


def ewma_volatility(returns: np.ndarray, lam: float = 0.94, warmup: int = EWMA_WARMUP) -> np.ndarray:
    """EWMA 1-day volatility forecasts, ``(T, A)``; row t uses returns up to t.

    ``v_t = lambda v_{t-1} + (1 - lambda) r_t^2`` (RiskMetrics Technical
    Document 1996, s.5.2), seeded at an asset's ``warmup``-th return with the
    mean of its first ``warmup`` squared returns; NaN before and where the
    return is missing. ``sigma[t] = sqrt(v_t)`` is the forecast for day t+1.
    """
    r = np.asarray(returns, dtype=np.float64)
    T, A = r.shape
    out = np.full((T, A), np.nan)
    v = np.full(A, np.nan)
    count = np.zeros(A, dtype=np.int64)
    sumsq = np.zeros(A)
    for t in range(T):
        rt = r[t]
        fin = np.isfinite(rt)
        r2 = np.where(fin, rt * rt, 0.0)
        count += fin
        sumsq += r2
        seed = fin & (count == warmup)
        upd = fin & (count > warmup)
        v = np.where(seed, sumsq / warmup, v)
        v = np.where(upd, lam * v + (1.0 - lam) * r2, v)
        out[t] = np.where(fin & (count >= warmup), np.sqrt(v), np.nan)
    return out
