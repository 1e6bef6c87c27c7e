"""The recommender: its answer re-checked by independent simulations, step caps, accounts made liquidatable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodels.cascade.impact import NoImpact, SquareRootImpact
from riskmodels.data.panel import PricePanel
from riskmodels.lending.generate import BorrowerGenerator
from riskmodels.lending.market import AssetParams, LendingMarket
from riskmodels.lending.recommend import (
    LendingTarget,
    RecommendConfig,
    _single_market,
    accounts_made_liquidatable,
    recommend,
)
from riskmodels.lending.simulate import Positions, market_prices, simulate


def _panel(T=260, seed=5):
    rng = np.random.default_rng(seed)
    close = 2000 * np.exp(np.cumsum(rng.normal(0, 0.03, T)))
    close[150:] *= 0.7  # a crash day
    low = close * (1 - np.abs(rng.normal(0, 0.02, T)))
    low[150] = close[150] * 0.85
    dates = pd.date_range("2021-01-01", periods=T, freq="D")
    c = close[:, None]
    return PricePanel(dates, ("ETH",), c, c * 1.01, low[:, None], c, np.full_like(c, 5e7))


MARKET = LendingMarket({"USD": dict(ltv=0.75, lt=0.78, collateral=False),
                        "ETH": dict(ltv=0.80, lt=0.83, lb=1.05)}, gas_usd=5.0)


def _bad_debt_at(panel, gen, lt, gap, target, impact, accounts):
    """Independent re-run of the single-asset market at LT ``lt`` (LTV = lt - gap)."""
    cur = MARKET.assets["ETH"]
    m = _single_market(MARKET, "ETH", AssetParams(**{**cur.__dict__, "lt": lt, "ltv": lt - gap}))
    g = BorrowerGenerator(**{**gen.__dict__, "accounts": accounts, "short_share": 0.0, "second_collateral_prob": 0.0})
    base = g.generate(_single_market(MARKET, "ETH", cur), market_prices(panel, m.names), 0, 200)
    f = (lt - gap) / cur.ltv
    pos = Positions(base.assets, base.coll_q, base.debt_q * f, base.entry, base.exit)
    return target.achieved(simulate(m, panel, pos, impact, start=0, end=panel.n_dates - 1), "ETH")


def test_recommended_lt_meets_target_and_a_step_higher_does_not():
    panel = _panel()
    gen = BorrowerGenerator(accounts=400, seed=3, mean_holding_days=400)
    target = LendingTarget("bad_debt", 0.002)
    cfg = RecommendConfig(target=target, assets=("ETH",), accounts=400, grid=6, xtol=0.004, max_step=0.03)
    impact = SquareRootImpact()
    tab, grid = recommend(MARKET, panel, gen, cfg, start=0, end=200, impact=impact)
    row = tab.loc["ETH"]
    assert row.met and row.monotone
    feasible, infeasible = row.bracket_lt  # numeric order: the recommendation, then xtol above it
    assert feasible == pytest.approx(row.recommended_lt)
    gap = 0.83 - 0.80
    assert _bad_debt_at(panel, gen, row.recommended_lt, gap, target, impact, 400) <= 0.002
    assert _bad_debt_at(panel, gen, infeasible, gap, target, impact, 400) > 0.002
    assert 0 < infeasible - feasible <= 0.004 + 1e-12
    assert row.recommended_ltv == pytest.approx(row.recommended_lt - gap)
    # governance step cap: at most 3 points per proposal
    assert abs(row.capped_lt - 0.83) <= 0.03 + 1e-12
    assert row.capped_lt == pytest.approx(0.83 + np.clip(row.recommended_lt - 0.83, -0.03, 0.03))
    assert set(grid["parameter"]) >= {"lt", "lb"}
    assert "single-asset ETH/USD" in row.rule


def test_accounts_made_liquidatable_by_hand():
    # one account: 10 ETH at $2,000, $15,000 debt: HF 1.1067 at LT 0.83; at LT 0.74 HF = 0.9867 (< 1)
    c = np.full((5, 1), 2000.0)
    panel = PricePanel(pd.date_range("2022-01-01", periods=5), ("ETH",), c, c, c, c, np.full_like(c, 1e9))
    pos = Positions(("USD", "ETH"), np.array([[0.0, 10.0]]), np.array([[15000.0, 0.0]]), np.array([0]),
                    np.array([99]))
    res = simulate(MARKET, panel, pos, NoImpact())
    assert accounts_made_liquidatable(res, "ETH", 0.76) == (0, 0.0)  # HF 1.0133
    n, debt = accounts_made_liquidatable(res, "ETH", 0.74)
    assert n == 1 and debt == pytest.approx(15000.0)


def test_recommend_config_errors():
    with pytest.raises(ValueError, match=r"lending.recommend.lt_bounds"):
        RecommendConfig(lt_bounds=(0.9, 0.5))
    with pytest.raises(ValueError, match=r"lending.recommend.lb_values"):
        RecommendConfig(lb_values=(1.0, 1.05))
    with pytest.raises(ValueError, match=r"lending.recommend.target.value=-1"):
        LendingTarget("bad_debt", -1)
