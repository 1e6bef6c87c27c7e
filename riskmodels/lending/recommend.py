"""The parameter recommender: LT / LTV / LB and supply cap per collateral asset.

For each collateral asset ``a`` the question a risk team answers is asked on
a **single-asset market** (``a`` supplied, the stablecoin ``USD``
borrowed), on the same price history and liquidation rules:

* **LT** (with ``LTV = LT - (current LT - current LTV)``, the current
  buffer kept): the highest LT whose bad debt meets the target, found by
  :func:`riskmodels.calibrate._search` (grid scan in least-capital order,
  monotonicity check of the target metric along the grid, then monotone
  bisection to ``xtol``; a non-monotone metric returns the best feasible
  grid point and says so). Borrowers keep their borrow usage: a candidate
  LTV scales every debt by ``LTV' / LTV`` (same seeded population).
* **LB**: at the recommended LT, the smallest bonus on ``lb_values`` (with
  ``LT x LB <= 1``) for which liquidators still act: at most
  ``max_unprofitable`` of the liquidation attempts are skipped because they
  would not pay after price impact and gas, and the bad-debt target holds.
  (A larger bonus seizes collateral faster, so bad debt alone would always
  pick the smallest bonus; what the bonus buys is liquidators who show up.)
* **Supply cap**: at the recommended LT / LTV / LB, the largest cap on
  ``cap_values`` (USD) whose bad debt
  stays within the target when demand saturates it: positions are scaled so
  that uncapped demand is ``cap_demand`` times the cap, so the cap binds and
  the impact of liquidating a cap-sized book is what is measured.

Targets (:class:`LendingTarget`): ``bad_debt`` (total bad debt caused by
the asset's collateral over the history / peak supply <= ``value``) or
``var`` (95th-percentile daily insolvent amount / mean supply <= ``value``,
:func:`riskmodels.lending.metrics.var_table`).

Governance step limits: the change voted in one proposal is capped at
``max_step`` (absolute, default 0.03 = 3 percentage points, as Chaos Labs
caps its Aave parameter changes, METHODOLOGY.md 2.5); the table gives the
unconstrained and the capped recommendation and the **accounts the capped
change makes liquidatable** at the last date of the full-market run (HF >= 1
under the current parameters, < 1 under the new ones) with their debt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskmodels.calibrate import _Eval, _search
from riskmodels.cascade.impact import ImpactModel
from riskmodels.data.panel import PricePanel
from riskmodels.lending.generate import BorrowerGenerator
from riskmodels.lending.health import health_factor
from riskmodels.lending.market import STABLE, AssetParams, LendingMarket
from riskmodels.lending.metrics import asset_table, var_table
from riskmodels.lending.simulate import (
    LendingResult,
    MarketPrices,
    Positions,
    market_prices,
    simulate,
)

__all__ = ["LendingTarget", "RecommendConfig", "accounts_made_liquidatable", "recommend"]


@dataclass(frozen=True)
class LendingTarget:
    """``kind`` in {"bad_debt", "var"}; ``value`` the largest acceptable fraction (>= 0)."""

    kind: str = "bad_debt"
    value: float = 0.001

    def __post_init__(self) -> None:
        if self.kind not in ("bad_debt", "var"):
            raise ValueError(f"lending.recommend.target.kind={self.kind!r} must be 'bad_debt' or 'var'")
        if not (isinstance(self.value, int | float) and math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"lending.recommend.target.value={self.value!r} must be a fraction >= 0 (0.001 = 0.1%)")

    def achieved(self, res: LendingResult, asset: str) -> float:
        tab = asset_table(res)
        if self.kind == "bad_debt":
            return float(tab.loc[asset, "bad_debt_per_peak_supply"])
        mean_supply = float(tab.loc[asset, "mean_supply_usd"])
        var = float(var_table(res, (0.95,))["var_bad_debt_usd"].iloc[0])
        return var / mean_supply if mean_supply > 0 else 0.0

    def __str__(self) -> str:
        return (f"bad debt / peak supply <= {self.value:g}" if self.kind == "bad_debt"
                else f"VaR95 of daily insolvent amount / mean supply <= {self.value:g}")


@dataclass(frozen=True)
class RecommendConfig:
    """Search settings of the recommender (``[lending.recommend]``)."""

    target: LendingTarget = field(default_factory=LendingTarget)
    assets: tuple[str, ...] = ()
    accounts: int = 500
    lt_bounds: tuple[float, float] = (0.30, 0.95)
    grid: int = 7
    xtol: float = 0.005
    lb_values: tuple[float, ...] = (1.02, 1.04, 1.05, 1.075, 1.10, 1.125, 1.15)
    cap_values: tuple[float, ...] = ()
    cap_demand: float = 3.0
    max_step: float = 0.03
    max_unprofitable: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.target, dict):
            object.__setattr__(self, "target", LendingTarget(**self.target))
        lo, hi = (float(x) for x in self.lt_bounds)
        if not 0.0 < lo < hi < 1.0:
            raise ValueError(f"lending.recommend.lt_bounds={list(self.lt_bounds)} must satisfy 0 < lo < hi < 1")
        if int(self.grid) < 3:
            raise ValueError(f"lending.recommend.grid={self.grid!r} must be >= 3")
        if not 0 < self.xtol < 0.1:
            raise ValueError(f"lending.recommend.xtol={self.xtol!r} must be in (0, 0.1)")
        if any(v <= 1.0 for v in self.lb_values):
            raise ValueError(f"lending.recommend.lb_values={list(self.lb_values)}: every bonus must be > 1")
        if any(v <= 0 for v in self.cap_values):
            raise ValueError(f"lending.recommend.cap_values={list(self.cap_values)}: caps must be > 0 USD")
        if not self.cap_demand >= 1.0:
            raise ValueError(f"lending.recommend.cap_demand={self.cap_demand!r} must be >= 1")
        if not 0 < self.max_step <= 1:
            raise ValueError(f"lending.recommend.max_step={self.max_step!r} must be in (0, 1]")
        if not 0 <= self.max_unprofitable <= 1:
            raise ValueError(f"lending.recommend.max_unprofitable={self.max_unprofitable!r} must be in [0, 1]")
        if int(self.accounts) < 1:
            raise ValueError(f"lending.recommend.accounts={self.accounts!r} must be >= 1")


class _LendingProblem:
    """``x -> _Eval`` for one parameter of one asset's single-asset market (the calibrate protocol)."""

    def __init__(self, build, target: LendingTarget, asset: str, capital) -> None:
        self.build, self.target, self.asset, self.capital = build, target, asset, capital
        self.evaluations = 0

    def __call__(self, x: float) -> _Eval:
        self.evaluations += 1
        try:
            res = self.build(x)
        except ValueError:  # the candidate breaks a parameter rule (e.g. LT x LB > 1): infeasible
            return _Eval(x, float("inf"), False, self.capital(x))
        a = self.target.achieved(res, self.asset)
        return _Eval(x, a, bool(a <= self.target.value), self.capital(x))


class _BonusProblem:
    """LB candidates: met when the bad-debt target holds **and** the share of liquidation attempts
    skipped as unprofitable after impact is <= ``max_unprofitable``; ``achieved`` is that share."""

    def __init__(self, build, config: RecommendConfig, asset: str) -> None:
        self.build, self.config, self.asset = build, config, asset
        self.evaluations = 0

    def __call__(self, x: float) -> _Eval:
        self.evaluations += 1
        try:
            res = self.build(x)
        except ValueError:
            return _Eval(x, float("inf"), False, x)
        tab = asset_table(res)
        skipped = float(tab.loc[self.asset, "unprofitable_skipped"])
        done = float(tab.loc[self.asset, "liquidations"])
        share = skipped / (skipped + done) if skipped + done > 0 else 0.0
        ok = share <= self.config.max_unprofitable and self.config.target.achieved(res, self.asset) <= \
            self.config.target.value
        return _Eval(x, share, bool(ok), x)


def _single_market(market: LendingMarket, asset: str, params: AssetParams) -> LendingMarket:
    usd = market.assets.get(STABLE, AssetParams(ltv=0.0, lt=0.01, lb=1.01, collateral=False))
    kw = {k: getattr(market, k) for k in ("protocol", "close_factor", "close_factor_hf", "full_close_usd",
                                            "min_leftover_usd", "gas_usd", "max_discount")}
    return LendingMarket({STABLE: usd, asset: params}, **kw)


def accounts_made_liquidatable(res: LendingResult, asset: str, new_lt: float) -> tuple[int, float]:
    """Accounts open at the last date with HF >= 1 now and < 1 with ``asset``'s LT at ``new_lt``; their debt."""
    open_ = res.state == 1
    if not open_.any():
        return 0, 0.0
    p = market_prices_last(res)
    lt = res.market.arrays()["lt"]
    lt2 = lt.copy()
    lt2[res.assets.index(asset)] = new_lt
    c, d = res.final_coll_q[open_], res.final_debt_q[open_]
    before = health_factor(c, d, p, lt)
    after = health_factor(c, d, p, lt2)
    hit = (before >= 1.0) & (after < 1.0)
    return int(hit.sum()), float((d[hit] @ p).sum())


def market_prices_last(res: LendingResult) -> np.ndarray:
    """Close prices of the result's assets on its last date (kept in ``meta`` by :func:`simulate_run`)."""
    return np.asarray(res.meta["last_close"], dtype=np.float64)


def recommend(
    market: LendingMarket,
    panel: PricePanel,
    generator: BorrowerGenerator,
    config: RecommendConfig,
    *,
    start: int,
    end: int,
    impact: ImpactModel | None = None,
    current: LendingResult | None = None,
    prices: MarketPrices | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recommendation table (one row per asset) and every evaluation (the evidence).

    ``current``: the full-market run under the current parameters (for the
    accounts each change makes liquidatable); without it those columns are NaN.
    """
    assets = config.assets or tuple(a for a in market.names if a != STABLE and market.assets[a].collateral)
    rows, grids = [], []
    for a in assets:
        if a not in market.assets:
            raise KeyError(f"lending.recommend.assets: {a!r} is not a reserve of the market ({', '.join(market.names)})")
        cur = market.assets[a]
        m0 = _single_market(market, a, cur)
        mp = market_prices(panel, m0.names) if prices is None else _subset(prices, m0.names)
        gen = BorrowerGenerator(**{**generator.__dict__, "accounts": int(config.accounts), "short_share": 0.0,
                                   "second_collateral_prob": 0.0})
        base = gen.generate(m0, mp, start, end)
        gap = cur.lt - cur.ltv

        def run(params: AssetParams, pos: Positions, _m0=m0, _a=a, _mp=mp) -> LendingResult:
            m = _single_market(_m0, _a, params)
            return simulate(m, panel, pos, impact, start=start, end=end, prices=_mp)

        def with_ltv(ltv: float, _base=base, _cur=cur) -> Positions:
            f = ltv / _cur.ltv if _cur.ltv > 0 else 0.0
            return Positions(_base.assets, _base.coll_q, _base.debt_q * f, _base.entry, _base.exit, _base.emode)

        def lt_build(x: float, _cur=cur, _gap=gap) -> LendingResult:
            ltv = max(x - _gap, 0.0)
            return run(AssetParams(**{**_cur.__dict__, "lt": x, "ltv": ltv}), with_ltv(ltv))

        prob = _LendingProblem(lt_build, config.target, a, capital=lambda x: 1.0 - x)
        hi = min(config.lt_bounds[1], 1.0 / cur.lb if market.protocol == "aave_v3.3" else config.lt_bounds[1])
        lt_row, lt_grid = _search(prob, bounds=(config.lt_bounds[0], hi), values=None, grid=int(config.grid),
                                  xtol=config.xtol, increasing=False, max_iter=20, asset=a)
        grids.append(lt_grid.assign(parameter="lt"))
        rec_lt = lt_row.value if math.isfinite(lt_row.value) else float("nan")
        rec_ltv = max(rec_lt - gap, 0.0) if math.isfinite(rec_lt) else float("nan")
        rec_lb = float("nan")
        lb_note = ""
        if math.isfinite(rec_lt) and market.protocol == "aave_v3.3":  # LB is protocol-set elsewhere
            lt_fixed = rec_lt

            def lb_build(x: float, _cur=cur, _lt=lt_fixed, _ltv=rec_ltv) -> LendingResult:
                return run(AssetParams(**{**_cur.__dict__, "lt": _lt, "ltv": _ltv, "lb": x}), with_ltv(_ltv))

            vals = [v for v in config.lb_values if v * lt_fixed <= 1.0]
            if vals:
                prob_lb = _BonusProblem(lb_build, config, a)
                lb_row, lb_grid = _search(prob_lb, bounds=(min(vals), max(vals)), values=vals, grid=len(vals),
                                          xtol=1e-3, increasing=True, max_iter=0, asset=a)
                grids.append(lb_grid.assign(parameter="lb"))
                rec_lb, lb_note = lb_row.value, lb_row.note
        rec_cap, cap_note = float("nan"), ""
        if config.cap_values and math.isfinite(rec_lt):
            at_rec = AssetParams(**{**cur.__dict__, "lt": rec_lt, "ltv": rec_ltv,
                                    "lb": rec_lb if math.isfinite(rec_lb) else cur.lb})
            base_rec = with_ltv(rec_ltv)
            uncapped = run(at_rec, base_rec)
            demand = float(asset_table(uncapped).loc[a, "mean_supply_usd"])

            def cap_build(x: float, _p=at_rec, _base=base_rec, _demand=demand) -> LendingResult:
                f = config.cap_demand * x / _demand if _demand > 0 else 1.0
                pos = Positions(_base.assets, _base.coll_q * f, _base.debt_q * f, _base.entry, _base.exit, _base.emode)
                return run(AssetParams(**{**_p.__dict__, "supply_cap": x}), pos)

            prob_cap = _LendingProblem(cap_build, config.target, a, capital=lambda x: -x)
            vals = sorted(config.cap_values)
            cap_row, cap_grid = _search(prob_cap, bounds=(vals[0], vals[-1]), values=vals, grid=len(vals), xtol=1.0,
                                        increasing=False, max_iter=0, asset=a)
            grids.append(cap_grid.assign(parameter="supply_cap"))
            rec_cap, cap_note = cap_row.value, cap_row.note
        step = config.max_step

        def capped(new: float, old: float, step: float = step) -> float:
            return old + float(np.clip(new - old, -step, step)) if math.isfinite(new) else float("nan")

        c_lt = capped(rec_lt, cur.lt)
        c_ltv = max(min(capped(rec_ltv, cur.ltv), c_lt), 0.0) if math.isfinite(rec_ltv) else float("nan")
        c_lb = capped(rec_lb, cur.lb)
        n_liq, d_liq = (accounts_made_liquidatable(current, a, c_lt) if current is not None and math.isfinite(c_lt)
                        else (float("nan"), float("nan")))
        rows.append({
            "asset": a, "current_ltv": cur.ltv, "current_lt": cur.lt, "current_lb": cur.lb,
            "current_supply_cap": cur.supply_cap or float("inf"),
            "recommended_ltv": rec_ltv, "recommended_lt": rec_lt, "recommended_lb": rec_lb,
            "recommended_supply_cap": rec_cap,
            "change_lt": rec_lt - cur.lt, "change_ltv": rec_ltv - cur.ltv, "change_lb": rec_lb - cur.lb,
            "capped_ltv": c_ltv, "capped_lt": c_lt, "capped_lb": c_lb,
            "accounts_made_liquidatable": n_liq, "debt_made_liquidatable_usd": d_liq,
            "achieved": lt_row.achieved, "target": str(config.target), "met": lt_row.met,
            "monotone": lt_row.monotone, "bracket_lt": lt_row.bracket, "evaluations": lt_row.iterations,
            "note": "; ".join(x for x in (lt_row.note, lb_note and f"lb: {lb_note}", cap_note and f"cap: {cap_note}")
                              if x),
            "rule": f"{market.protocol}, single-asset {a}/USD market, {config.accounts} seeded borrowers, "
                    f"max step {step:g}",
        })
    return pd.DataFrame(rows).set_index("asset"), pd.concat(grids, ignore_index=True) if grids else pd.DataFrame()


def _subset(mp: MarketPrices, names: tuple[str, ...]) -> MarketPrices:
    idx = [mp.assets.index(a) for a in names]
    return MarketPrices(mp.dates, names, mp.close[:, idx], mp.low[:, idx], mp.high[:, idx], mp.volume[:, idx],
                        mp.sigma[:, idx])
