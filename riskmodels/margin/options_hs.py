"""Historical and filtered-historical VaR with options: joint price and implied-vol scenarios, full revaluation.

Used by ``historical_var``, ``filtered_hs`` and ``age_weighted_hs``
(:class:`~riskmodels.margin.historical.FittedHistorical`) and by ``garch`` /
``ewma`` (:class:`~riskmodels.margin.garch.FittedGarch`).

Scenarios
---------
Scenario ``s`` (a past date, only dates up to t) carries the simple return of
each underlying that the linear method already uses (plain HS: the
historical h-day return; FHS: rescaled by today's volatility over the one
then; GARCH: the standardised residual times today's h-day volatility) and,
on the same dates, the move of the vol source's reference ATM implied vol
(:meth:`~riskmodels.instruments.options.VolSource.atm`)::

    rho_{s,a} = ATM_{s,a} / ATM_{s-h,a}              (overlapping h-day moves; GARCH too)
              = (ATM_{s,a} / ATM_{s-1,a}) ** sqrt(h)  (scaling="sqrt")

Vol moves are **relative**: every option on ``a`` is revalued at
``sigma_u rho_{s,a}`` (a floor of 1 vol point), so a move keeps its size in
proportion to the level and never makes a vol negative; an absolute move
(vol points) of a high-vol past day applied to today's low vols would. The
vol moves are **not filtered** (FHS and GARCH rescale the price returns
only): the ATM vol is itself the volatility forecast the filter would use.
Each position is revalued in full (:mod:`riskmodels.margin.options_scan`,
Black-76, time decays by the horizon ``h`` days) and the account's scenario
loss is the sum of the linear and the option losses::

    loss[s, n] = -(x_n . g_s) - sum_u W[n, u] (V_u(F_u (1 + g_{s,a_u}), tau_u - h, sigma_u rho_{s,a_u}) - V_u)

then the method's own quantile (VaR / ES, weights, stress floor) applies.
A scenario whose ATM move is unknown (no vol history yet) is NaN for the
accounts holding options on that asset, the way a missing return is for
linear holders. The parametric GARCH portfolio has no closed form for a
non-linear P&L: with options it uses the filtered scenario set (standardised
residuals of the last ``fhs_window`` days times today's h-day volatility).
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING

import numpy as np

from riskmodels.instruments.options import OptionState, VolSource
from riskmodels.margin._quantile import tail_columns
from riskmodels.margin.base import Requirement
from riskmodels.margin.options_scan import Contracts, contracts, on_assets, revalue_assets

if TYPE_CHECKING:
    from riskmodels.margin.garch import FittedGarch
    from riskmodels.margin.historical import FittedHistorical

__all__ = ["garch_requirement", "hs_requirement", "iv_ratio", "option_losses"]

_ATM: weakref.WeakKeyDictionary[VolSource, np.ndarray] = weakref.WeakKeyDictionary()


def _atm(vol: VolSource) -> np.ndarray:
    """``vol.atm()`` computed once per source object."""
    try:
        return _ATM[vol]
    except (KeyError, TypeError):
        arr = np.asarray(vol.atm(), dtype=np.float64)
        try:
            _ATM[vol] = arr
        except TypeError:
            pass
        return arr


def iv_ratio(vol: VolSource, dates: np.ndarray, horizon: int, sqrt_scaling: bool = False) -> np.ndarray:
    """``(R, A)`` relative ATM implied-vol moves of the scenario dates (module docstring)."""
    atm = _atm(vol)
    d = np.asarray(dates, dtype=np.int64)
    lag = 1 if sqrt_scaling else int(horizon)
    prev = d - lag
    ok = prev >= 0
    out = np.full((d.size, atm.shape[1]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = atm[d[ok]] / atm[prev[ok]]
        if sqrt_scaling:
            out = out ** math.sqrt(horizon)
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def option_losses(c: Contracts, returns: np.ndarray, ratio: np.ndarray, horizon_days: float) -> np.ndarray:
    """``(N, R)`` option loss per account and scenario row; NaN only for holders of a contract without data."""
    N = c.weights.shape[0]
    if c.n == 0:
        return np.zeros((N, returns.shape[0]))
    pnl = revalue_assets(c, returns, ratio, horizon_days)  # (U, R)
    out = np.asarray(c.weights @ pnl)
    np.negative(out, out=out)
    return out


def _held_bad(c: Contracts, coll: np.ndarray, pos: np.ndarray, ok: np.ndarray) -> np.ndarray:
    held = (coll != 0) | (pos != 0)
    if c.n:
        rows, cols = c.weights.nonzero()
        held[rows, c.asset[cols]] = True
    return (held & ~ok[None, :]).any(axis=1)


def _inputs(fit: FittedHistorical | FittedGarch, collateral: np.ndarray, positions: np.ndarray,
            options: OptionState) -> tuple[np.ndarray, np.ndarray, Contracts]:
    coll = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
    pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    c = on_assets(contracts(options, coll.shape[0]), options, fit.panel.assets)
    return coll, pos, c


def hs_requirement(fit: FittedHistorical, t: int, collateral: np.ndarray, positions: np.ndarray,
                   options: OptionState) -> Requirement:
    """HS / FHS / BRW VaR or ES of spot, perps and options together (module docstring)."""
    m = fit.model
    t = int(t)
    coll, pos, c = _inputs(fit, collateral, positions, options)
    g, n_window, weights, flags = fit.scenarios(t)
    lo = max(0, t - m.window + 1)  # type: ignore[attr-defined]
    dates = np.arange(lo, t + 1)
    if g.shape[0] > dates.size:  # stressed dates that left the window (raw moves)
        dates = np.concatenate([dates, np.flatnonzero(fit.stress[:lo])])
    losses = fit._losses(g, coll + pos)  # (R, N): the transpose of a C-ordered (N, R), as the kernels read it
    if c.n:
        ratio = iv_ratio(options.vol, dates, m.horizon, m.scaling == "sqrt")  # type: ignore[attr-defined]
        lossT = losses.T  # (N, R) C-ordered view
        lossT += option_losses(c, g, ratio, m.horizon)  # type: ignore[attr-defined]
    var, es = tail_columns(losses, n_window, m.confidence, m.min_window,  # type: ignore[attr-defined]
                           weights, flags, m.stress_weight)  # type: ignore[attr-defined]
    mm = fit._measure(var, es)
    mm = np.where(_held_bad(c, coll, pos, fit.asset_ok[t]), np.nan, mm)
    return Requirement(m.im_multiplier * mm, mm)  # type: ignore[attr-defined]


def garch_requirement(fit: FittedGarch, t: int, collateral: np.ndarray, positions: np.ndarray,
                      options: OptionState) -> Requirement:
    """GARCH-filtered HS of spot, perps and options (both ``portfolio`` settings; module docstring)."""
    m = fit.model
    t = int(t)
    coll, pos, c = _inputs(fit, collateral, positions, options)
    lo = max(0, t - m.fhs_window + 1)  # type: ignore[attr-defined]
    ret = np.expm1(fit.z[lo : t + 1] * fit.sigma_h[t])  # (R, A)
    loss = -(np.nan_to_num(ret) @ (coll + pos).T)  # (R, N)
    bad_lin = ~np.isfinite(ret)
    held = (coll + pos) != 0
    loss[(bad_lin.astype(np.float64) @ held.T.astype(np.float64)) > 0] = np.nan
    if c.n:
        ratio = iv_ratio(options.vol, np.arange(lo, t + 1), m.horizon)  # type: ignore[attr-defined]
        loss = loss + option_losses(c, ret, ratio, m.horizon).T  # type: ignore[attr-defined]
    n = loss.shape[0]
    k = max(1, math.ceil(n * (1.0 - m.confidence) - 1e-9))  # type: ignore[attr-defined]
    fin = np.isfinite(loss).all(axis=0)
    filled = np.where(np.isfinite(loss), loss, -np.inf)
    top = -np.partition(-filled, k - 1, axis=0)[:k]  # (k, N) the k largest losses
    out = top.min(axis=0) if m.measure == "var" else top.mean(axis=0)  # type: ignore[attr-defined]
    mm = np.where(fin, np.maximum(out, 0.0), np.nan)
    mm = np.where(_held_bad(c, coll, pos, fit.asset_ok[t]), np.nan, mm)
    return Requirement(m.im_multiplier * mm, mm)  # type: ignore[attr-defined]
