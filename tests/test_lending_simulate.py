"""The daily lending simulation on hand-built price paths, checked against hand calculations.

Scenario (Aave v3.3 rules, LiquidationLogic.sol constants): one account supplies 10 ETH at $2,000
($20,000) and borrows $15,000 USD; ETH LT 0.83, LTV 0.80, LB 1.05, protocol fee 10% of the bonus.
HF at entry = 20,000 x 0.83 / 15,000 = 1.1067. On day 2 the ETH low is L.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.cascade.impact import LinearImpact, NoImpact, SquareRootImpact
from riskmodels.data.panel import PricePanel
from riskmodels.lending.generate import BorrowerGenerator, read_positions_csv
from riskmodels.lending.market import LendingMarket
from riskmodels.lending.metrics import asset_table, daily_insolvent, summary, var_table
from riskmodels.lending.simulate import Positions, market_prices, simulate


def _panel(close, low=None, high=None, volume=1e12):
    close = np.asarray(close, dtype=float)[:, None]
    low = close if low is None else np.asarray(low, dtype=float)[:, None]
    high = close if high is None else np.asarray(high, dtype=float)[:, None]
    dates = pd.date_range("2022-01-01", periods=len(close), freq="D")
    return PricePanel(dates, ("ETH",), close, high, low, close, np.full_like(close, volume))


def _market(**kw):
    return LendingMarket({"USD": dict(ltv=0.75, lt=0.78, lb=1.05, collateral=False),
                          "ETH": dict(ltv=0.80, lt=0.83, lb=1.05, protocol_fee=0.10)}, **kw)


def _one(coll_eth=10.0, debt_usd=15000.0, entry=0, exit_=99):
    return Positions(("USD", "ETH"), np.array([[0.0, coll_eth]]), np.array([[debt_usd, 0.0]]),
                     np.array([entry]), np.array([exit_]))


def test_full_close_below_095():
    # low 1,700: HF = 17,000 x 0.83 / 15,000 = 0.9407 <= 0.95 -> close factor 100%: repay 15,000,
    # seize 15,750, fee (15,750 - 15,000) x 10% = 75, liquidator profit (no impact, no gas) 675
    p = _panel([2000, 1800, 1800], low=[2000, 1700, 1800])
    r = simulate(_market(), p, _one(), NoImpact())
    ev = r.events
    assert len(ev) == 1
    e = ev.iloc[0]
    assert e.repaid_usd == pytest.approx(15000.0)
    assert e.seized_usd == pytest.approx(15750.0)
    assert e.protocol_fee_usd == pytest.approx(75.0)
    assert e.liquidator_profit_usd == pytest.approx(675.0)
    assert e.hf_before == pytest.approx(17000 * 0.83 / 15000)
    assert r.final_coll_q[0, 1] == pytest.approx(10.0 - 15750.0 / 1700.0)
    assert r.final_debt_q[0].sum() == 0.0
    assert np.isinf(r.hf[1, 0])  # no debt left at the close
    assert r.hf[0, 0] == pytest.approx(20000 * 0.83 / 15000, rel=1e-6)


def test_half_close_between_095_and_1():
    # low 1,780: HF = 0.98493 > 0.95, collateral and debt >= $2,000 -> 50% of the total debt = 7,500;
    # seized 7,875; HF after = (17,800 - 7,875) x 0.83 / 7,500 = 1.0984 >= 1: one liquidation
    p = _panel([2000, 1900, 1900], low=[2000, 1780, 1900])
    r = simulate(_market(), p, _one(), NoImpact())
    assert len(r.events) == 1
    e = r.events.iloc[0]
    assert e.repaid_usd == pytest.approx(7500.0)
    assert e.seized_usd == pytest.approx(7875.0)
    assert r.final_debt_q[0, 0] == pytest.approx(7500.0)
    assert r.hf[1, 0] == pytest.approx((10 - 7875 / 1780) * 1900 * 0.83 / 7500, rel=1e-6)


def test_deficit_when_collateral_exhausted():
    # low 1,400: C = 14,000 < D. Seize all 14,000, repay 14,000 / 1.05 = 13,333.33; the remaining
    # 1,666.67 is burned into the USD reserve's deficit (v3.3 bad-debt feature)
    p = _panel([2000, 1500, 1500], low=[2000, 1400, 1500])
    r = simulate(_market(), p, _one(), NoImpact())
    e = r.events.iloc[0]
    assert e.seized_usd == pytest.approx(14000.0)
    assert e.repaid_usd == pytest.approx(14000.0 / 1.05)
    assert e.deficit_usd == pytest.approx(15000.0 - 14000.0 / 1.05)
    tab = asset_table(r)
    assert tab.loc["USD", "deficit_usd"] == pytest.approx(15000.0 - 14000.0 / 1.05)
    assert tab.loc["ETH", "bad_debt_by_collateral_usd"] == pytest.approx(15000.0 - 14000.0 / 1.05)
    assert daily_insolvent(r)[1] == pytest.approx(15000.0 - 14000.0 / 1.05)
    assert r.final_coll_q.sum() == 0.0 and r.final_debt_q.sum() == 0.0


def test_unprofitable_liquidation_does_not_happen():
    # gas $1,000 > the 675 the liquidator would make: no liquidation, the account stays underwater
    p = _panel([2000, 1700, 1700], low=[2000, 1700, 1700])
    r = simulate(_market(gas_usd=1000.0), p, _one(), NoImpact())
    assert len(r.events) == 0
    assert asset_table(r).loc["ETH", "unprofitable_skipped"] == 2
    assert r.hf[1, 0] == pytest.approx(17000 * 0.83 / 15000, rel=1e-6)


def test_impact_reduces_profit_by_hand_linear():
    # linear impact lam per USD: selling x = 15,750 - 75 fills at 1 - lam x / 2
    lam = 2e-6
    p = _panel([2000, 1800, 1800], low=[2000, 1700, 1800])
    r = simulate(_market(), p, _one(), LinearImpact(kyle_lambda={"ETH": lam, "USD": 0.0}))
    x = 15750.0 - 75.0
    assert r.events.iloc[0].liquidator_profit_usd == pytest.approx(x * (1 - lam * x / 2) - 15000.0)


def test_impact_makes_big_liquidation_unprofitable_then_partial():
    # a liquidator that cannot profit on the full size tries halves: with enough impact the full
    # 15,000 loses money but a smaller slice pays
    lam = 8e-6  # full: 15,675 x (1 - 0.0627) = 14,692 < 15,000; half: 7,837.5 x (1 - 0.03135) = 7,592 > 7,500
    p = _panel([2000, 1800, 1800], low=[2000, 1700, 1800])
    r = simulate(_market(), p, _one(), LinearImpact(kyle_lambda={"ETH": lam, "USD": 0.0}))
    e = r.events.iloc[0]
    assert e.repaid_usd == pytest.approx(7500.0)
    assert e.liquidator_profit_usd > 0


def test_morpho_blue_full_liquidation_with_lif():
    # Morpho Blue: no close factor; LIF(0.83) = 1 / (0.3 x 0.83 + 0.7) = 1.05374; at HF 0.985 the whole debt
    m = LendingMarket({"USD": dict(ltv=0.75, lt=0.78, collateral=False), "ETH": dict(ltv=0.80, lt=0.83)},
                      protocol="morpho_blue")
    p = _panel([2000, 1900, 1900], low=[2000, 1780, 1900])
    r = simulate(m, p, _one(), NoImpact())
    e = r.events.iloc[0]
    lif = 1 / (0.3 * 0.83 + 0.7)
    assert e.repaid_usd == pytest.approx(15000.0)
    assert e.seized_usd == pytest.approx(15000.0 * lif)
    assert e.protocol_fee_usd == 0.0


def test_supply_cap_refuses_entry():
    m = LendingMarket({"USD": dict(ltv=0.75, lt=0.78, collateral=False),
                       "ETH": dict(ltv=0.80, lt=0.83, supply_cap=30000.0)})
    pos = Positions(("USD", "ETH"), np.array([[0, 10.0], [0, 10.0]]), np.array([[10000.0, 0], [10000.0, 0]]),
                    np.array([0, 0]), np.array([9, 9]))
    r = simulate(m, _panel([2000] * 4), pos, NoImpact())
    assert r.state.tolist() == [1, 3]  # the second $20,000 supply would exceed the $30,000 cap


def test_open_above_ltv_refused():
    pos = _one(debt_usd=16001.0)  # LTV 0.80 of $20,000 = $16,000
    r = simulate(_market(), _panel([2000] * 3), pos, NoImpact())
    assert r.state[0] == 3
    assert np.isnan(r.hf).all()


def test_no_lookahead():
    # changing prices after day t changes nothing up to t
    rng = np.random.default_rng(3)
    T = 200
    close = 2000 * np.exp(np.cumsum(rng.normal(0, 0.05, T)))
    low = close * (1 - np.abs(rng.normal(0, 0.03, T)))
    m = _market()
    p1 = _panel(close, low=low, volume=1e8)
    c2, l2 = close.copy(), low.copy()
    c2[120:] *= 0.5
    l2[120:] *= 0.4
    p2 = _panel(c2, low=l2, volume=1e8)
    gen = BorrowerGenerator(accounts=300, seed=1)
    pos = gen.generate(m, market_prices(p1, m.names), 0, 100)
    r1 = simulate(m, p1, pos, SquareRootImpact())
    r2 = simulate(m, p2, pos, SquareRootImpact())
    np.testing.assert_array_equal(r1.hf[:120], r2.hf[:120])
    np.testing.assert_array_equal(r1.daily[:120], r2.daily[:120])
    assert (r1.events.date < p1.dates[120]).sum() == (r2.events.date < p1.dates[120]).sum()


def _random_run(seed, scale=1.0, gas=0.0):
    rng = np.random.default_rng(seed)
    T = 150
    close = 2000 * np.exp(np.cumsum(rng.normal(0, 0.06, T)))
    low = close * (1 - np.abs(rng.normal(0, 0.04, T)))
    p = _panel(close, low=low, volume=1e9)
    m = _market(gas_usd=gas, full_close_usd=0.0, min_leftover_usd=0.0)
    pos = BorrowerGenerator(accounts=200, seed=seed).generate(m, market_prices(p, m.names), 0, 100)
    pos = Positions(pos.assets, pos.coll_q * scale, pos.debt_q * scale, pos.entry, pos.exit)
    return simulate(m, p, pos, NoImpact()), pos


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 50.0))
def test_invariants_and_scaling(seed, scale):
    r1, pos = _random_run(seed)
    rs, _ = _random_run(seed, scale)
    # quantities never negative; nothing seized beyond what was supplied
    assert (r1.final_coll_q >= -1e-9).all() and (r1.final_debt_q >= -1e-9).all()
    tab = asset_table(r1)
    assert (tab["deficit_usd"] >= 0).all() and (tab["liquidator_profit_usd"] >= 0).all()
    # without dust thresholds, gas or impact the rules are scale-free: amounts scale, HF does not change
    np.testing.assert_allclose(rs.hf, r1.hf, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(asset_table(rs)["collateral_liquidated_usd"],
                               scale * tab["collateral_liquidated_usd"], rtol=1e-8)
    np.testing.assert_allclose(asset_table(rs)["deficit_usd"], scale * tab["deficit_usd"], rtol=1e-8, atol=1e-6)
    # an account that opened has HF >= LT / LTV at entry... at least > 1 on its entry close
    opened = r1.state != 3
    first = np.argmax(np.isfinite(r1.hf) | np.isinf(r1.hf), axis=0)
    hf_entry = r1.hf[first, np.arange(r1.hf.shape[1])]
    assert (hf_entry[opened & (pos.entry >= 0)] >= 0.83 / 0.80 - 1e-6).all()


def test_summary_and_var_tables():
    p = _panel([2000, 1500, 1500], low=[2000, 1400, 1500])
    r = simulate(_market(), p, _one(), NoImpact())
    s = summary(r).set_index("statistic")["value"]
    assert s["liquidations"] == 1 and s["deficit_usd"] == pytest.approx(15000 - 14000 / 1.05)
    v = var_table(r, (0.5,))
    # daily insolvent amounts [0, 1666.67, 0]: the median is 0
    assert v["var_bad_debt_usd"].iloc[0] == 0.0
    assert "rule" in v.columns and "aave_v3.3" in v["rule"].iloc[0]


def test_positions_csv(tmp_path):
    f = tmp_path / "pos.csv"
    f.write_text("account,asset,side,amount\na,ETH,supply,10\na,USD,borrow,15000\n")
    dates = pd.date_range("2022-01-01", periods=3)
    pos = read_positions_csv(f, _market(), dates, 0, 2)
    assert pos.coll_q.tolist() == [[0.0, 10.0]] and pos.debt_q.tolist() == [[15000.0, 0.0]]
    f.write_text("account,asset,side,amount\na,XYZ,supply,10\n")
    with pytest.raises(ValueError, match="row 2: asset 'XYZ'"):
        read_positions_csv(f, _market(), dates, 0, 2)
    f.write_text("account,asset,side,amount\na,ETH,lend,10\n")
    with pytest.raises(ValueError, match="side 'lend'"):
        read_positions_csv(f, _market(), dates, 0, 2)


def test_parity_with_plain_numpy_reference():
    # benchmarks/reference/lending_numpy.py is written from the documented rules, vectorised by rounds;
    # without impact the two must agree (HF stored in float32 by riskmodels)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from reference.lending_numpy import simulate_numpy

    rng = np.random.default_rng(11)
    T, names = 300, ("BTC", "ETH", "SOL")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, (T, 3)), axis=0))
    low = close * (1 - np.abs(rng.normal(0, 0.04, (T, 3))))
    high = close * (1 + np.abs(rng.normal(0, 0.04, (T, 3))))
    close[:40, 2] = np.nan  # SOL starts later (ragged panel)
    low[:40, 2] = high[:40, 2] = np.nan
    p = PricePanel(pd.date_range("2021-01-01", periods=T), names, close, high, low, close, np.full((T, 3), 1e9))
    m = LendingMarket({"USD": dict(ltv=0.75, lt=0.78, lb=1.05), "BTC": dict(ltv=0.73, lt=0.78, lb=1.05),
                       "ETH": dict(ltv=0.8, lt=0.83, lb=1.05), "SOL": dict(ltv=0.5, lt=0.6, lb=1.1)}, gas_usd=5.0)
    mp = market_prices(p, m.names)
    pos = BorrowerGenerator(accounts=400, seed=2, size_median_usd=3000.0).generate(m, mp, 0, T - 1)
    r = simulate(m, p, pos, NoImpact(), prices=mp)
    hf_ref, def_ref = simulate_numpy(m.arrays(), mp.close, mp.low, mp.high, pos.coll_q, pos.debt_q, pos.entry,
                                     pos.exit, 0, T - 1, gas=5.0)
    assert len(r.events) > 50
    assert (np.isnan(r.hf) == np.isnan(hf_ref)).all()
    np.testing.assert_allclose(r.hf, hf_ref, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(r.daily[:, :, 5], def_ref, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("low, capped", [(1724.138, False), (0.7 * 15000 / 8.3, True)])
def test_euler_v2_dynamic_discount(low, capped):
    # euler-xyz/euler-vault-kit Liquidation.sol: discount factor = HF floored at 1 - 0.2; the liquidator may
    # repay the whole debt and receives repaid / discount factor of collateral, capped at the balance (then
    # repaid = balance x discount factor); debt left with no collateral is socialised
    m = LendingMarket({"USD": dict(ltv=0.75, lt=0.78, collateral=False), "ETH": dict(ltv=0.80, lt=0.83)},
                      protocol="euler_v2")
    p = _panel([2000, low, low], low=[2000, low, low])
    r = simulate(m, p, _one(), NoImpact())
    e = r.events.iloc[0]
    C = 10 * low
    hf = C * 0.83 / 15000
    df = max(hf, 0.8)
    assert e.hf_before == pytest.approx(hf)
    if not capped:  # HF 0.954: repay all 15,000, seize 15,000 / 0.954
        assert e.repaid_usd == pytest.approx(15000.0)
        assert e.seized_usd == pytest.approx(15000.0 / hf)
    else:  # HF 0.70 -> factor 0.8: seize the whole 12,650.6, repay 0.8 of it, socialise the rest
        assert e.seized_usd == pytest.approx(C)
        assert e.repaid_usd == pytest.approx(C * 0.8)
        assert e.deficit_usd == pytest.approx(15000.0 - C * 0.8)
    assert e.protocol_fee_usd == 0.0 and df <= 1


def test_toxic_flag_per_account_day():
    # close 1,480 after an unprofitable day (gas blocks the liquidation): D / C = 15,000 / 14,800 = 1.0135 > 1 / 1.05
    p = _panel([2000, 1480, 1480], low=[2000, 1480, 1480])
    r = simulate(_market(gas_usd=1e6), p, _one(), NoImpact())
    hf = r.health_factors()
    assert hf["toxic"].tolist() == [False, True, True]
    assert r.totals_frame()["toxic_accounts"].tolist() == [0, 1, 1]
    # 1,500 x 10 = 15,000: D / C = 1 > 1 / 1.05 = 0.952 -> toxic; 1,600: D / C = 0.9375 < 0.952 -> not
    assert simulate(_market(gas_usd=1e6), _panel([2000, 1600, 1600]), _one(), NoImpact()).toxic[1:, 0].tolist() == \
        [False, False]
