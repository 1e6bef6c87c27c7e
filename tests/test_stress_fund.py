"""The insurance-fund ledger and auto-deleveraging, by hand and on simulated accounts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_panel
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from riskmodels.backtest.simulation import (
    EVENT_DTYPE,
    LiquidationPolicy,
    SimulationResult,
    simulate_accounts,
)
from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import Book, generate_book
from riskmodels.stress.fund import FundPolicy, Holdings, fund_ledger


def hand_case(eq_c2: float = 2_000.0, bad: float = 1_000.0, penalty: float = 0.0):
    """One asset, closes 100, 120, 90; b long 12k from t=1, c1 short 10k from t=0, c2 short 6k from t=1.

    At t=2 b is liquidated with ``bad`` of bad debt. At the close of t=2:
    c1: P&L -100 x (90-100) = 1,000 on entry notional 10,000 (0.10), gross 9,000, equity 3,000 -> score 0.30;
    c2: P&L -50 x (90-120) = 1,500 on 6,000 (0.25), gross 4,500, equity ``eq_c2`` -> 0.25 x 4,500 / eq_c2.
    """
    close = np.array([[100.0], [120.0], [90.0]])
    dates = pd.date_range("2022-01-01", periods=3)
    panel = PricePanel(dates, ("BTC",), close, close, close, close, np.ones_like(close))
    book = Book(("BTC",), np.zeros((3, 1)), np.array([[12_000.0], [-10_000.0], [-6_000.0]]),
                account_ids=("b", "c1", "c2"))
    ev = np.zeros(1, dtype=EVENT_DTYPE)
    ev["account"], ev["t"], ev["trigger"], ev["bad_debt"], ev["penalty"] = 0, 2, 0, bad, penalty
    op = np.zeros(3, dtype=[("account", np.int32), ("t", np.int32), ("notional", np.float64)])
    op["account"], op["t"] = [1, 0, 2], [0, 1, 1]
    is_open = np.array([[False, True, False], [True, True, True], [False, True, True]])
    eq = np.array([[np.nan, 1_500, np.nan], [1_800, 1_000, 900], [np.nan, 3_000, eq_c2]], dtype=np.float32)
    sim = SimulationResult("hand", dates, book.account_ids, ev, is_open, eq, np.zeros_like(eq), np.array([10e3, 28e3, 16e3]),
                           op, 0, 2)
    return sim, book, panel


def test_adl_ranks_by_profit_times_leverage_and_closes_at_the_bankruptcy_price():
    sim, book, panel = hand_case()
    lg = fund_ledger(sim, book, panel, FundPolicy(initial=0.0))
    adl = lg.adl
    # c2 scores 0.25 x 4,500 / 2,000 = 0.5625 > c1's 0.30: c2 first. b held 100 units (12,000 / 120),
    # the bankruptcy gap is 1,000 / 100 = 10 USD per unit: c2 closes its 50 units (500), c1 the other 50 (500)
    assert list(adl["account"]) == ["c2", "c1"]
    np.testing.assert_allclose(adl["rank_score"], [0.5625, 0.30])
    np.testing.assert_allclose(adl["units"], [50, 50])
    np.testing.assert_allclose(adl["usd"], [500, 500])
    row = lg.ledger.iloc[2]
    assert row["bad_debt"] == 1_000 and row["fund_paid"] == 0 and row["adl"] == pytest.approx(1_000)
    assert row["socialised"] == pytest.approx(0)


def test_adl_never_takes_more_than_an_accounts_equity():
    sim, book, panel = hand_case(eq_c2=300.0)
    lg = fund_ledger(sim, book, panel, FundPolicy(initial=0.0))
    adl = lg.adl
    # c2 now 0.25 x 4,500 / 300 = 3.75, still first, but pays at most its 300 of equity
    assert list(adl["account"]) == ["c2", "c1"]
    np.testing.assert_allclose(adl["usd"], [300, 500])
    assert (adl["equity_after"] >= 0).all() and adl["equity_after"].iloc[0] == 0
    row = lg.ledger.iloc[2]
    assert row["adl"] == pytest.approx(800) and row["socialised"] == pytest.approx(200)


def test_fund_pays_first_then_adl():
    sim, book, panel = hand_case(penalty=100.0)
    lg = fund_ledger(sim, book, panel, FundPolicy(initial=600.0, penalty_share=0.5))
    row = lg.ledger.iloc[2]
    # 600 + 0.5 x 100 = 650 available, all paid; the 350 left is spread over b's 100 units (3.5 per unit):
    # c2's 50 units pay 175, c1's 50 units 175
    assert row["inflow"] == 50 and row["fund_paid"] == 650 and row["balance_close"] == 0
    assert row["adl"] == pytest.approx(350)
    assert list(lg.adl["account"]) == ["c2", "c1"]
    np.testing.assert_allclose(lg.adl["usd"], [175, 175])
    lg = fund_ledger(sim, book, panel, FundPolicy(initial=600.0, adl=False))
    assert lg.ledger.iloc[2]["socialised"] == pytest.approx(300) and len(lg.adl) == 0


def test_holdings_rebuild_the_simulations_quantities():
    sim, book, panel = hand_case()
    q, entry = Holdings(sim, book, panel).at(np.array([0, 1, 2]), 2)
    np.testing.assert_allclose(q[:, 0], [100, -100, -50])
    np.testing.assert_allclose(entry[:, 0], [120, 100, 120])
    q, _ = Holdings(sim, book, panel).at(np.array([0]), 1, strict=True)
    assert q[0, 0] == 0  # b had not opened before t=1


def _check_ledger(lg) -> None:
    L = lg.ledger
    np.testing.assert_allclose(L["balance_close"] - L["balance_open"], L["inflow"] - L["fund_paid"], atol=1e-6)
    np.testing.assert_allclose(L["balance_open"].iloc[1:].to_numpy(), L["balance_close"].iloc[:-1].to_numpy())
    np.testing.assert_allclose(L["bad_debt"], L["fund_paid"] + L["adl"] + L["socialised"], atol=1e-6)
    assert (L["balance_close"] >= -1e-9).all()
    assert (L["fund_paid"] <= L["balance_open"] + L["inflow"] + 1e-9).all()
    if len(lg.adl):
        assert (lg.adl["equity_after"] >= 0).all()
        assert (lg.adl["usd"] >= 0).all()


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate])  # no slow shrinking
@given(st.integers(0, 10_000), st.floats(0, 0.3), st.sampled_from([0.0, 1e3, 1e5]))
def test_ledger_balances_every_day_and_adl_leaves_no_negative_equity(seed, cushion, initial):
    panel = random_walk_panel(T=260, A=3, seed=seed % 50, vol=0.08)
    book = generate_book(panel.assets, 60, seed=seed, long_probability=0.5)
    model = FixedHaircut(imf=0.05, mmf=0.03, haircut=0.1)
    sim = simulate_accounts(model.fit(panel), book, LiquidationPolicy(cushion=cushion, penalty=0.01), start=10)
    lg = fund_ledger(sim, book, panel, FundPolicy(initial=initial, penalty_share=0.5))
    _check_ledger(lg)
    liq = sim.liquidations
    assert lg.ledger["penalties"].sum() == pytest.approx(liq["penalty"].sum())
    assert lg.ledger["bad_debt"].sum() == pytest.approx(liq["bad_debt"].sum())
    # ADL equity_after is the equity at the close minus that day's hits
    if len(lg.adl):
        ids = np.asarray(sim.account_ids)
        for (d, a), grp in lg.adl.groupby(["date", "account"]):
            row = sim.row(int(np.flatnonzero(sim.dates == d)[0]))
            eq0 = float(sim.equity[row, int(np.flatnonzero(ids == a)[0])])
            assert grp["equity_after"].iloc[-1] == pytest.approx(eq0 - grp["usd"].sum(), abs=1e-6)


def test_fund_policy_validation():
    with pytest.raises(ValueError, match=r"stress.fund_initial=-1"):
        FundPolicy(initial=-1.0)
    with pytest.raises(ValueError, match=r"stress.fund_initial_share=2"):
        FundPolicy(initial_share=2)


def test_two_bankrupt_accounts_use_each_counterpartys_units_once():
    """b (100 units, 1,000 of bad debt: gap 10/unit) and b2 (50 units, 200: gap 4/unit) on the same day.

    Bankrupt units laid end to end: b's [0, 100) at 10, b2's [100, 150) at 4. c2 (ranked first, 50 units)
    covers [0, 50): 500; c1 (100 units) covers [50, 150): 50 x 10 + 50 x 4 = 700. Total 1,200 = the bad debt.
    """
    close = np.array([[100.0], [120.0], [90.0]])
    dates = pd.date_range("2022-01-01", periods=3)
    panel = PricePanel(dates, ("BTC",), close, close, close, close, np.ones_like(close))
    book = Book(("BTC",), np.zeros((4, 1)), np.array([[12_000.0], [-10_000.0], [-6_000.0], [6_000.0]]),
                account_ids=("b", "c1", "c2", "b2"))
    ev = np.zeros(2, dtype=EVENT_DTYPE)
    ev["account"], ev["t"], ev["bad_debt"] = [0, 3], 2, [1_000.0, 200.0]
    op = np.zeros(4, dtype=[("account", np.int32), ("t", np.int32), ("notional", np.float64)])
    op["account"], op["t"] = [1, 0, 2, 3], [0, 1, 1, 1]
    is_open = np.array([[False, True, False, False], [True, True, True, True], [False, True, True, False]])
    eq = np.array([[np.nan, 1_500, np.nan, np.nan], [1_800, 1_000, 900, 900], [np.nan, 3_000, 2_000, np.nan]],
                  dtype=np.float32)
    sim = SimulationResult("hand", dates, book.account_ids, ev, is_open, eq, np.zeros_like(eq),
                           np.array([10e3, 34e3, 16e3]), op, 0, 2)
    lg = fund_ledger(sim, book, panel, FundPolicy(initial=0.0))
    assert list(lg.adl["account"]) == ["c2", "c1"]
    np.testing.assert_allclose(lg.adl["units"], [50, 100])
    np.testing.assert_allclose(lg.adl["usd"], [500, 700])
    assert (lg.adl["bankrupt_accounts"] == 2).all() and (lg.adl["bankrupt_side"] == "long").all()
    assert lg.ledger.iloc[2]["adl"] == pytest.approx(1_200) and lg.ledger.iloc[2]["socialised"] == pytest.approx(0)
