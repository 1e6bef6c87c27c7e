"""Market structure: e-mode categories, isolation mode with a debt ceiling (Aave v3.2 / v3.3 rules).

Sources: aave-dao/aave-v3-origin docs/3.2/Aave-v3.2-features.md ("Liquid eModes": e-mode LT/LTV/LB apply
only to the category's collateral, other collateral keeps its own; only e-mode-borrowable assets may be
borrowed); LiquidationLogic.sol (isolated debt falls by the repaid amount, not by the deficit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodels.cascade.impact import NoImpact
from riskmodels.data.panel import PricePanel
from riskmodels.lending.generate import BorrowerGenerator
from riskmodels.lending.market import LendingMarket
from riskmodels.lending.simulate import Positions, market_prices, simulate

NAMES = ("USD", "ETH", "BTC", "AVAX")


def _panel(eth_close, eth_low=None):
    T = len(eth_close)
    eth_close = np.asarray(eth_close, dtype=float)
    eth_low = eth_close if eth_low is None else np.asarray(eth_low, dtype=float)
    close = np.column_stack([eth_close, np.full(T, 40000.0), np.full(T, 20.0)])
    low = np.column_stack([eth_low, np.full(T, 40000.0), np.full(T, 20.0)])
    return PricePanel(pd.date_range("2023-01-01", periods=T), ("ETH", "BTC", "AVAX"), close, close, low, close,
                      np.full_like(close, 1e12))


def _market(**emode):
    return LendingMarket({
        "USD": dict(ltv=0.75, lt=0.78, collateral=False, borrowable_in_isolation=True),
        "ETH": dict(ltv=0.80, lt=0.83, lb=1.05),
        "BTC": dict(ltv=0.73, lt=0.78, lb=1.05),
        "AVAX": dict(ltv=0.50, lt=0.60, lb=1.10, debt_ceiling=25000.0),
    }, emode=emode or {"majors": dict(ltv=0.90, lt=0.93, lb=1.02, collateral=["ETH", "BTC"], borrowable=["USD"])})


def _pos(rows, emode=None):
    coll = np.zeros((len(rows), 4))
    debt = np.zeros((len(rows), 4))
    for i, (c, d) in enumerate(rows):
        for a, q in c.items():
            coll[i, NAMES.index(a)] = q
        for a, q in d.items():
            debt[i, NAMES.index(a)] = q
    n = len(rows)
    return Positions(NAMES, coll, debt, np.zeros(n, dtype=np.int64), np.full(n, 99), emode)


def test_emode_opens_above_reserve_ltv_and_uses_its_lt_lb():
    # 10 ETH at $2,000, $17,000 USD debt: above the reserve LTV (16,000) but within e-mode LTV 0.90 (18,000)
    pos = _pos([({"ETH": 10}, {"USD": 17000}), ({"ETH": 10}, {"USD": 17000})], emode=("majors", ""))
    p = _panel([2000, 1800, 1800], eth_low=[2000, 1800, 1800])
    r = simulate(_market(), p, pos, NoImpact())
    assert r.state.tolist()[1] == 3  # outside e-mode: refused
    assert r.hf[0, 0] == pytest.approx(20000 * 0.93 / 17000, rel=1e-6)
    # low 1,800: HF = 18,000 x 0.93 / 17,000 = 0.9847 > 0.95 -> 50% close: repay 8,500, seize 8,500 x 1.02
    e = r.events.iloc[0]
    assert e.repaid_usd == pytest.approx(8500.0)
    assert e.seized_usd == pytest.approx(8670.0)


def test_emode_other_collateral_keeps_its_parameters_and_borrowable_set():
    m = _market(majors=dict(ltv=0.90, lt=0.93, lb=1.02, collateral=["ETH"], borrowable=["USD"]))
    # ETH (e-mode 0.93) + BTC (reserve 0.78) collateral: HF = (20,000 x 0.93 + 40,000 x 0.78) / 30,000
    pos = _pos([({"ETH": 10, "BTC": 1}, {"USD": 30000}), ({"ETH": 10}, {"BTC": 0.1})], emode=("majors", "majors"))
    r = simulate(m, _panel([2000] * 3), pos, NoImpact())
    assert r.hf[0, 0] == pytest.approx((20000 * 0.93 + 40000 * 0.78) / 30000, rel=1e-6)
    assert r.state[1] == 3  # BTC is not borrowable in the category


def test_isolation_debt_ceiling_and_single_collateral():
    # AVAX isolated, ceiling $25,000: 2 x $15,000 -> the second is refused; AVAX + ETH refused; AVAX -> ETH debt
    # refused (ETH is not borrowable in isolation)
    pos = _pos([({"AVAX": 2000}, {"USD": 15000}), ({"AVAX": 2000}, {"USD": 15000}),
                ({"AVAX": 500, "ETH": 5}, {"USD": 1000}), ({"AVAX": 2000}, {"ETH": 1})])
    r = simulate(_market(), _panel([2000] * 3), pos, NoImpact())
    assert r.state.tolist() == [1, 3, 3, 3]


def test_isolated_debt_falls_by_repaid_amount():
    # account 0: 2,000 AVAX at $20 against $16,000 (isolated total 16,000). Day 1 AVAX at $10: HF =
    # 20,000 x 0.6 / 16,000 = 0.75 <= 0.95 -> the whole 16,000 is repaid (seized 17,600 < 20,000), so the
    # isolated total falls to 0 and account 1 (5,000 AVAX, $20,000 debt, entering day 2) fits the $25,000
    # ceiling; had the total not fallen, 16,000 + 20,000 > 25,000 would refuse it
    T = 4
    c = np.column_stack([np.full(T, 2000.0), np.full(T, 40000.0), [20.0, 10.0, 10.0, 10.0]])
    p = PricePanel(pd.date_range("2023-01-01", periods=T), ("ETH", "BTC", "AVAX"), c, c, c, c, np.full_like(c, 1e12))
    m = _market()
    pos = Positions(NAMES, np.array([[0, 0, 0, 2000.0], [0, 0, 0, 5000.0]]),
                    np.array([[16000.0, 0, 0, 0], [20000.0, 0, 0, 0]]), np.array([0, 2]), np.array([99, 99]))
    r = simulate(m, p, pos, NoImpact())
    assert r.events.iloc[0].repaid_usd == pytest.approx(16000.0)
    assert r.state.tolist() == [1, 1] or r.state.tolist() == [2, 1]
    # without the liquidation (AVAX stays at $20) the second account is refused by the ceiling
    c2 = c.copy()
    c2[:, 2] = 20.0
    p2 = PricePanel(p.dates, p.assets, c2, c2, c2, c2, np.full_like(c2, 1e12))
    assert simulate(m, p2, pos, NoImpact()).state.tolist()[1] == 3


@pytest.mark.parametrize("cat, match", [
    (dict(ltv=0.9, lt=1.0, lb=1.02, collateral=["ETH"]), r"lending.emode.majors.lt=1.0"),
    (dict(ltv=0.9, lt=0.93, lb=1.02, collateral=["SOL"]), r"lending.emode.majors.collateral: \['SOL'\]"),
    (dict(ltv=0.9, lt=0.93, lb=1.02, collateral=["USD"]), r"USD is not collateral outside e-mode"),
    (dict(ltv=0.9, lt=0.93, lb=1.02, colour=1), r"lending.emode.majors: unknown key"),
])
def test_emode_validation(cat, match):
    with pytest.raises(ValueError, match=match):
        _market(majors=cat)


def test_generator_emode_share():
    m = _market()
    p = _panel([2000] * 30)
    mp = market_prices(p, m.names)
    pos = BorrowerGenerator(accounts=400, seed=4, emode_share=1.0, short_share=0.0).generate(m, mp, 0, 20)
    em = np.array([e == "majors" for e in pos.emode])
    only_majors = ~((pos.coll_q[:, [0, 3]] > 0).any(axis=1))
    assert em.any() and (em == only_majors).all()
    r = simulate(m, p, pos, NoImpact())
    assert (r.state[em] != 3).all()  # every e-mode account opens within the category LTV
