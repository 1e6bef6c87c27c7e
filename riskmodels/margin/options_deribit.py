"""Deribit and Derive portfolio margin with options: the joint price x implied-vol scan.

Sources (cite these when you change a number)
---------------------------------------------
* Deribit, "Portfolio Margin" (support.deribit.com/hc/en-us/articles/25944756247837):
  price move +-16% in 9 buckets incl. 0, vol Up / Same / Down per bucket, an
  extended table for far-OTM shorts (-66%, -33%, +50%, +100%..+500%, vol up
  only, "only a fraction of simulated P&L", a dampener) and contingencies.
  Its current vol-shock parameters are not on that page; riskmodels uses a
  vendor's published replication of Deribit's BTC set (docs.oreome.com,
  "Advanced Risk Scenarios"): volRangeUp 0.5, volRangeDown 0.25, vega power
  0.30 below 30 days to expiry and 0.13 above, minVolForShockUp 0.5 [S].
* Deribit legacy PM (deribit.com/pages/docs/portfoliomargin, METHODOLOGY 2.1
  v-A): price move +-10%, "maximum implied volatility change of
  (30/days to expiration)^0.30 x 38%", a contingency of 0.01 BTC per option
  "for all net short options per strike" (call +10 and put -20 at one strike
  is net short 10) and 1% of the underlying for offsetting futures.
* Derive (docs.derive.xyz "Portfolio Margin" and "Portfolio Margin
  Parameters"; the same values in the public derivexyz/v2-core deployment
  config): 23 scenarios from -18% to +18% in steps of 4.5% (vol up / static /
  down, only up at +-18%), tail scenarios -66%..+500% with dampening 0.21,
  0.42, 0.27, 0.13, 0.069, 0.046, 0.034, 0.027 (vol up), vol shocks
  ``sigma (1 + 0.6 k)`` up and ``sigma (1 - 0.3 k)`` down with
  ``k = (30 / max(DTE, 1))^p``, ``p = 0.3`` to 30 days and 0.13 beyond;
  contingencies 3% of spot per base unit and per perp, 2% of spot per net
  short option per strike; IM = 1.25 x (max loss + contingencies).

Formulas
--------
For a contract with ``D`` days to expiry (floored at ``dte_floor``)::

    k        = (30 / D) ** (vega_power_short if D <= 30 else vega_power_long)
    sigma_up = max(sigma (1 + vol_range_up k), min_vol_up),   sigma_down = sigma (1 - vol_range_down k)

The shocks are **relative** (multiplicative), as the replication and
Derive's contract state; riskmodels reads the legacy "x 38%" the same way.
Scenario ``s`` moves every underlying by its bucket (a fraction of its own
range, or the extended move) and sets each option's vol to up / same / down;
spot, perps and options are revalued together (full revaluation, no time
decay: the scan is instantaneous) and the loss is weighted (1, the extended
fraction, or Derive's dampening)::

    loss[n, s] = w_s (-(e_n . move_s) - sum_u W[n, u] (V_u(s) - V_u))
    MM = max(max_s loss[n, s], 0) + contingencies,   IM = im_multiplier x MM

Deribit X:PM scans all assets jointly (one loss per scenario); Derive's PM
account holds one underlying, so riskmodels scans each asset alone and sums
(no cross-asset netting). Contingencies::

    option  = option_contingency x sum over (asset, expiry, strike) of F_a max(-net quantity, 0)
    futures = futures_contingency x offsetting exposure (Deribit, see span.py)
    Derive: base_contingency x |collateral| + perp_contingency x |perp| (USD)

Not modelled: Deribit's dampener on the extended table (its value is not
public: the extended fraction is a parameter, default 0 = off), Derive's
forward, oracle and depeg contingencies and static discounting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from riskmodels.instruments.options import MIN_VOL, OptionState
from riskmodels.margin.base import Requirement, check_range, register
from riskmodels.margin.deribit import DeribitPM
from riskmodels.margin.options_scan import (
    Contracts,
    account_pnl,
    asset_pnl,
    contracts,
    net_short_per_strike,
    on_assets,
    revalue,
)
from riskmodels.margin.span import FittedScenarioGrid
from riskmodels.margin.span_arrays import ScenarioTable

if TYPE_CHECKING:
    from riskmodels.data.panel import PricePanel

__all__ = ["DERIVE_TAIL", "RULE_SETS", "DerivePM", "derive_table", "option_rules", "requirement", "vol_shocks"]

#: Option rule sets (sources in the module docstring).
RULE_SETS: dict[str, dict[str, float]] = {
    "current": {"vol_range_up": 0.5, "vol_range_down": 0.25, "vega_power_short": 0.30, "vega_power_long": 0.13,
                "min_vol_up": 0.5, "dte_floor": 1.0, "option_contingency": 0.01},
    "legacy": {"vol_range_up": 0.38, "vol_range_down": 0.38, "vega_power_short": 0.30, "vega_power_long": 0.30,
               "min_vol_up": 0.0, "dte_floor": 1.0, "option_contingency": 0.01},
    "derive": {"vol_range_up": 0.6, "vol_range_down": 0.3, "vega_power_short": 0.30, "vega_power_long": 0.13,
               "min_vol_up": 0.0, "dte_floor": 1.0, "option_contingency": 0.02},
}
#: price range of each rule set (the +-move of the outer bucket)
RULE_PRICE_RANGE: dict[str, float] = {"current": 0.16, "legacy": 0.10, "derive": 0.18}
_BOUNDS = {"vol_range_up": (0.0, 2.0), "vol_range_down": (0.0, 1.0), "vega_power_short": (0.0, 1.0),
           "vega_power_long": (0.0, 1.0), "min_vol_up": (0.0, 5.0), "dte_floor": (0.01, 100.0),
           "option_contingency": (0.0, 0.2)}
#: Derive tail scenarios: (spot move, dampening), all vol up.
DERIVE_TAIL: tuple[tuple[float, float], ...] = (
    (-0.66, 0.21), (-0.33, 0.42), (0.50, 0.27), (1.00, 0.13), (2.00, 0.069), (3.00, 0.046), (4.00, 0.034),
    (5.00, 0.027),
)


def option_rules(rule_set: str, overrides: dict[str, Any] | None) -> dict[str, float]:
    """The rule set's option parameters with ``overrides``; unknown keys and out-of-range values raise."""
    if rule_set not in RULE_SETS:
        raise ValueError(f"rule_set={rule_set!r} must be one of {sorted(RULE_SETS)}")
    out = dict(RULE_SETS[rule_set])
    for k, v in (overrides or {}).items():
        if k not in out:
            raise ValueError(f"option_params has unknown key {k!r}; valid: {', '.join(sorted(out))}")
        lo, hi = _BOUNDS[k]
        out[k] = check_range(f"option_params.{k}", v, lo, hi)
    return out


def derive_table(price_range: float = 1.0) -> ScenarioTable:
    """Derive's 23 regular scenarios (in units of the range) and 8 dampened tail scenarios (absolute moves)."""
    scaled, absolute, vol, weight, pair, labels = [], [], [], [], [], []
    for f in np.linspace(1.0, -1.0, 9):
        vols = (1.0,) if abs(f) == 1.0 else (1.0, 0.0, -1.0)
        base = len(scaled)
        for v in vols:
            scaled.append(float(f))
            absolute.append(0.0)
            vol.append(v)
            weight.append(1.0)
            labels.append(f"px{f:+.3g}R/vol{'+' if v > 0 else '0' if v == 0 else '-'}")
        pair += [base] if len(vols) == 1 else [base + 2, base + 1, base]
    time = [i for i in range(len(scaled)) if scaled[i] == 0.0]
    for mv, damp in DERIVE_TAIL:
        pair.append(len(scaled))
        scaled.append(0.0)
        absolute.append(mv)
        vol.append(1.0)
        weight.append(damp)
        labels.append(f"tail{mv:+.0%}/vol+")
    return ScenarioTable(np.array(scaled), np.array(absolute), np.array(vol), np.array(weight), np.array(pair),
                         np.array(time), tuple(labels))


def vol_shocks(c: Contracts, rules: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(U,)`` shocked-up and shocked-down implied vols (module docstring)."""
    dte = np.maximum(c.expiry_days, rules["dte_floor"])
    power = np.where(dte <= 30.0, rules["vega_power_short"], rules["vega_power_long"])
    k = (30.0 / dte) ** power
    up = np.maximum(c.iv * (1.0 + rules["vol_range_up"] * k), rules["min_vol_up"])
    down = np.maximum(c.iv * (1.0 - rules["vol_range_down"] * k), MIN_VOL)
    return up, down


def requirement(fit: FittedScenarioGrid, t: int, collateral: np.ndarray, positions: np.ndarray,
                options: OptionState) -> Requirement:
    """IM and MM of ``N`` accounts with options under the Deribit / Derive scan (module docstring)."""
    m = fit.model
    rules: dict[str, float] = m.option_rules  # type: ignore[attr-defined]
    t = int(t)
    coll = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
    pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    N, A = coll.shape
    e = coll + pos
    table = fit.table
    ra = fit._ra0[t]  # (A, S) weighted linear loss per USD
    c = on_assets(contracts(options, N), options, fit.panel.assets)
    per_asset = bool(getattr(m, "per_asset_scan", False))
    if c.n:
        rng = np.nan_to_num(fit.ranges[t])
        move = table.scaled[:, None] * rng[None, c.asset] + table.absolute[:, None]  # (S, U)
        up, down = vol_shocks(c, rules)
        v = table.vol[:, None]
        sig = np.where(v > 0, up[None, :], np.where(v < 0, down[None, :], c.iv[None, :]))
        opt_loss = -table.weight[:, None] * revalue(c, 1.0 + move, sig, 0.0)  # (S, U)
    if per_asset:
        loss = e[:, :, None] * ra[None, :, :]
        if c.n:
            loss += asset_pnl(c, opt_loss, A)
        mm = np.maximum(loss.max(axis=-1), 0.0).sum(axis=1)
        mm += getattr(m, "base_contingency", 0.0) * np.abs(coll).sum(axis=1)
        mm += m.perp_contingency * np.abs(pos).sum(axis=1)  # type: ignore[attr-defined]
    else:
        loss = e @ ra  # (N, S)
        if c.n:
            loss += account_pnl(c, opt_loss)
        mm = np.maximum(loss.max(axis=-1), 0.0)
        if fit.contingency > 0:
            gross = np.abs(coll).sum(axis=1) + np.abs(pos).sum(axis=1)
            mm = mm + fit.contingency * 0.5 * (gross - np.abs(e.sum(axis=1)))
    if len(options.table):
        ns = net_short_per_strike(options, N)  # (N, A_table)
        mm = mm + rules["option_contingency"] * (ns @ np.asarray(options.spot, dtype=np.float64))
    mm = mm + coll @ fit.haircut
    held = (coll != 0) | (pos != 0)
    if c.n:
        rows, cols = c.weights.nonzero()
        held[rows, c.asset[cols]] = True
    bad = (held & ~fit.asset_ok[t]).any(axis=1)
    mm = np.where(bad, np.nan, mm)
    return Requirement(m.im_multiplier * mm, mm)  # type: ignore[attr-defined]


@register
class DerivePM(DeribitPM):
    """Derive-style portfolio margin (``"derive_pm"``; sources and formulas in the module docstring).

    Parameters
    ----------
    price_range : float or mapping
        Outer regular spot shock per asset, in (0, 1]; default 0.18.
    base_contingency, perp_contingency : float
        Charge per USD of collateral (base asset) and of |perp|, in [0, 0.2];
        defaults 0.03 and 0.03.
    option_params : mapping, optional
        Overrides of the "derive" option rules (vol shocks, option contingency 0.02).
    collateral_haircut : float or mapping
        Extra charge on collateral value, in [0, 1]; default 0.
    im_multiplier : float
        IM / MM (Derive's mFactor), in [1, 2]; default 1.25.
    """

    name: ClassVar[str] = "derive_pm"
    summary: ClassVar[str] = "Derive-style PM: per-asset +-18% x vol grid, dampened tail moves, contingencies"
    per_asset_scan: ClassVar[bool] = True

    def __init__(
        self,
        price_range: float | Mapping[str, float] = 0.18,
        base_contingency: float = 0.03,
        perp_contingency: float = 0.03,
        option_params: Mapping[str, float] | None = None,
        collateral_haircut: float | Mapping[str, float] = 0.0,
        im_multiplier: float = 1.25,
        *,
        label: str | None = None,
    ) -> None:
        self.base_contingency = check_range("base_contingency", base_contingency, 0.0, 0.2)
        self.perp_contingency = check_range("perp_contingency", perp_contingency, 0.0, 0.2)  # type: ignore[misc]
        super().__init__(price_range=price_range, futures_contingency=0.0, collateral_haircut=collateral_haircut,
                         im_multiplier=im_multiplier, rule_set="derive", option_params=option_params,  # type: ignore[arg-type]
                         label=label)

    def table(self) -> ScenarioTable:
        return derive_table()

    def fit(self, panel: PricePanel) -> FittedDerivePM:
        return FittedDerivePM(self, panel)


class FittedDerivePM(FittedScenarioGrid):
    """Derive on a panel: the linear fast path scans each asset alone and adds the base / perp contingencies,
    the same rules :func:`requirement` applies with options (so a book without options gets the same number)."""

    def _maintenance(self, ts: np.ndarray, coll: np.ndarray, pos: np.ndarray) -> np.ndarray:
        m: DerivePM = self.model  # type: ignore[assignment]
        e = coll + pos
        loss = e[None, :, :, None] * self._ra0[ts][:, None, :, :]  # (B, N, A, S)
        mm = np.maximum(loss.max(axis=-1), 0.0).sum(axis=-1)
        extra = m.base_contingency * np.abs(coll).sum(axis=1) + m.perp_contingency * np.abs(pos).sum(axis=1)
        return mm + (extra + coll @ self.haircut)[None, :]

    def _chunk(self, n: int) -> int:
        width = self.panel.n_assets * self.table.n * 2
        return max(1, int(32_000_000 // (8 * max(n, 1) * max(width, 1))))
