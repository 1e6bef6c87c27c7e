"""Intraday paths from daily bars, the market state, and the observed-flow de-cascade.

:func:`ohlc_path` (open -> first extreme -> second extreme -> close, log-linear
between anchors at sub-steps ``round(S/3)`` and ``round(2S/3)``; a down day visits
the high first) and :func:`bridge_path` (one seeded Brownian bridge shape mapped
monotonically onto each asset's low and high); :func:`day_path` picks one;
:func:`market_state` gives sub-step volatility (trailing ``lookback``-day standard
deviation of daily log returns / sqrt(S)) and volume (trailing mean daily USD
volume / S). :func:`observed_flow` spreads a crash day's observed liquidations
over assets and sub-steps, and :func:`decascade` removes their impact from the
observed path (variant C of :mod:`riskmodels.cascade.replay`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskmodels.cascade.crash_days import CrashDay
from riskmodels.cascade.impact import AssetState, ImpactModel
from riskmodels.margin.base import FittedMargin


# --------------------------------------------------------------------------- paths
def _oriented(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    o, h, lo, c = (np.asarray(x, dtype=np.float64) for x in (o, h, lo, c))
    h = np.maximum.reduce([h, o, c])
    lo = np.minimum.reduce([lo, o, c])
    return o, h, lo, c


def ohlc_path(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, n_substeps: int = 3) -> np.ndarray:
    """``(S+1, A)`` path open -> first extreme -> second extreme -> close (log-linear legs).

    A down day (close < open) visits the high first; otherwise the low first.
    """
    S = int(n_substeps)
    if S < 3:
        raise ValueError(f"n_substeps={n_substeps} must be >= 3 (open, two extremes, close)")
    o, h, lo, c = _oriented(o, h, lo, c)
    down = c < o
    e1 = np.where(down, h, lo)
    e2 = np.where(down, lo, h)
    k1 = max(1, round(S / 3))
    k2 = min(S - 1, max(k1 + 1, round(2 * S / 3)))
    knots = np.array([0, k1, k2, S])
    vals = np.log(np.vstack([o, e1, e2, c]))  # (4, A)
    steps = np.arange(S + 1)
    out = np.empty((S + 1, len(o)))
    for j in range(len(o)):
        out[:, j] = np.interp(steps, knots, vals[:, j])
    return np.exp(out)


def bridge_path(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, n_substeps: int = 24, seed: int = 0
) -> np.ndarray:
    """``(S+1, A)`` seeded Brownian bridge from open to close pinned at the low and the high."""
    S = int(n_substeps)
    if S < 3:
        raise ValueError(f"n_substeps={n_substeps} must be >= 3")
    o, h, lo, c = _oriented(o, h, lo, c)
    rng = np.random.default_rng(seed)
    w = np.concatenate([[0.0], np.cumsum(rng.standard_normal(S))])
    s = np.arange(S + 1) / S
    b = (w - s * w[-1]) / np.sqrt(S)  # bridge shape, b_0 = b_S = 0
    lo_g, hi_g, lo_oc, hi_oc = np.log(lo), np.log(h), np.log(np.minimum(o, c)), np.log(np.maximum(o, c))
    x = np.log(o)[None, :] + s[:, None] * (np.log(c) - np.log(o))[None, :] + b[:, None] * 0.05
    inner = slice(1, S)
    # make sure the shape goes below the lower and above the upper endpoint where the day did
    for j in range(x.shape[1]):
        if lo_g[j] < lo_oc[j] and x[:, j].min() >= lo_oc[j]:
            x[1 + np.argmin(x[inner, j]), j] = lo_oc[j] - 1e-9
        if hi_g[j] > hi_oc[j] and x[:, j].max() <= hi_oc[j]:
            x[1 + np.argmax(x[inner, j]), j] = hi_oc[j] + 1e-9
    m, M = x.min(0), x.max(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        down = np.where(m < lo_oc, (lo_oc - lo_g) / (lo_oc - m), 0.0)
        up = np.where(M > hi_oc, (hi_g - hi_oc) / (M - hi_oc), 0.0)
    y = np.where(x < lo_oc, lo_oc + (x - lo_oc) * down, np.where(x > hi_oc, hi_oc + (x - hi_oc) * up, x))
    return np.exp(y)


def day_path(panel_or_fitted: object, t: int, ok: np.ndarray, n_substeps: int, kind: str = "ohlc", seed: int = 0) -> np.ndarray:
    """Observed intraday path of day ``t`` (1.0 for assets outside ``ok``)."""
    p = getattr(panel_or_fitted, "panel", panel_or_fitted)
    o, h, lo, c = (np.where(ok, getattr(p, f)[t], 1.0) for f in ("open", "high", "low", "close"))
    if kind == "ohlc":
        return ohlc_path(o, h, lo, c, n_substeps)
    if kind == "bridge":
        return bridge_path(o, h, lo, c, n_substeps, seed)
    raise ValueError(f"path={kind!r} must be 'ohlc' or 'bridge'")


def market_state(fitted: FittedMargin, t: int, ok: np.ndarray, n_substeps: int, lookback: int = 30) -> AssetState:
    """Sub-step volatility and volume from the ``lookback`` days before ``t`` (docstring)."""
    p = fitted.panel
    r = np.diff(np.log(p.close[t - lookback - 1 : t]), axis=0)
    sig = np.where(ok, np.nan_to_num(np.nanstd(r, axis=0, ddof=1)), 0.0)
    vol = np.where(ok, np.nan_to_num(np.nanmean(p.volume[t - lookback : t], axis=0)), 0.0)
    S = int(n_substeps)
    return AssetState(p.assets, sig / np.sqrt(S), vol / S, vol)


# --------------------------------------------------------------------------- C: de-cascade
def observed_flow(day: CrashDay, path: np.ndarray, oi: np.ndarray, ok: np.ndarray, assets: Sequence[str]) -> np.ndarray:
    """``(S, A)`` signed USD flow of the day's observed liquidations (module docstring)."""
    S, A = path.shape[0] - 1, path.shape[1]
    share = np.zeros(A)
    rest = 1.0 - sum(v for a, v in day.asset_share.items() if a in assets)
    named = {a for a in day.asset_share if a in assets}
    others = np.array([ok[j] and assets[j] not in named for j in range(A)])
    if others.any():
        share[others] = max(rest, 0.0) * oi[others] / oi[others].sum()
    for a, v in day.asset_share.items():
        if a in assets and ok[list(assets).index(a)]:
            share[list(assets).index(a)] = v
    share /= share.sum()
    d = np.diff(np.log(path), axis=0)  # (S, A)
    down_day = path[-1] < path[0]
    ls = day.long_share if np.isfinite(day.long_share) else np.where(down_day, 0.8, 0.2)
    dn = np.maximum(-d, 0.0)
    up = np.maximum(d, 0.0)
    wdn = np.divide(dn, dn.sum(0), out=np.full_like(dn, 1.0 / S), where=dn.sum(0) > 0)
    wup = np.divide(up, up.sum(0), out=np.full_like(up, 1.0 / S), where=up.sum(0) > 0)
    total = day.liq_usd * share
    return -ls * total * wdn + (1.0 - ls) * total * wup  # long liquidations sell, short ones buy


def decascade(observed: np.ndarray, flow: np.ndarray, impact: ImpactModel, state: AssetState | Sequence[AssetState], permanent: float) -> np.ndarray:
    """Exogenous path ``X`` such that the engine's marks with ``flow`` equal ``observed``.

    ``X_s = Obs_s / (perm_s (1 + I(Q_s)))``, ``perm_s = prod_{u<s} (1 + phi I(Q_u))``.
    """
    S = observed.shape[0] - 1
    states = [state] * S if isinstance(state, AssetState) else list(state)
    X = observed.astype(np.float64).copy()
    perm = np.ones(observed.shape[1])
    for s in range(1, S + 1):
        move = impact.price_move(flow[s - 1], states[s - 1])
        X[s] = observed[s] / (perm * (1.0 + move))
        perm = perm * (1.0 + permanent * move)
    return X
