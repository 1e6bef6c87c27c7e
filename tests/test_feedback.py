"""Endogenous cascades in the account simulation (riskmodels.backtest.feedback)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from riskmodels.backtest.engine import run_models
from riskmodels.backtest.feedback import feedback_comparison
from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import Book, generate_book

FB = dict(closeout="impact", impact_law="linear", impact_per_volume=0.1, feedback=True, feedback_oi_to_volume=0.5,
          reentry_days=None, penalty=0.0)


def one_asset(low_day2: float = 89.2, volume: float = 1e6) -> PricePanel:
    close = np.full((4, 1), 100.0)
    low = close.copy()
    low[2] = low_day2
    return PricePanel(pd.date_range("2021-01-01", periods=4), ("X",), close, close, low, close,
                      np.full((4, 1), volume))


# A: long perp 10k, IM 1,000, equity 1,500: liquidated below x = 8,500 / 9,500 = 0.8947 of the entry price.
# B: long perp 10k + 5k of X collateral (haircut 20%): IM 2,000, equity 3,000, MM 1,500 x:
#    liquidated below x = 12,000 / 13,500 = 0.8889.
BOOK = Book(("X",), [[0.0], [5_000.0]], [[10_000.0], [10_000.0]])
MODEL = FixedHaircut(imf=0.1, mmf=0.05, haircut=0.2)


def test_a_forced_sale_liquidates_a_second_account_by_hand():
    """Day 2 low 89.2: only A is below maintenance at the historical price.

    Scale: OI = 0.5 x ADV 1e6 = 5e5 against book holdings 25,000 at the previous close -> k = 20.
    Round 1: A sells 100 x 89.2 = 8,920 -> real flow -178,400; linear law 0.1 / V: move -1.784%.
    Round 2: B at 89.2 x (1 - 0.01784) = 87.609 (x < 0.8889) is liquidated: sells 150 x 87.609,
    flow x 20 more; fills at the VWAP of the walk, lambda (Q0 + Q1) / 2.
    """
    panel = one_asset()
    f = MODEL.fit(panel)
    plain = simulate_accounts(f, BOOK, LiquidationPolicy(**{**FB, "feedback": False}), start=0)
    assert plain.liquidations["account"].tolist() == [0]
    sim = simulate_accounts(f, BOOK, LiquidationPolicy(**FB), start=0)
    ev = sim.liquidations
    assert ev["account"].tolist() == [0, 1] and ev["t"].tolist() == [2, 2]
    lam = 0.1 / 1e6
    qa = -20 * 100 * 89.2
    m1 = lam * qa
    pb = 89.2 * (1 + m1)
    qb = qa - 20 * 150 * pb
    cost_a = (-8_920.0) * (lam * qa / 2)
    cost_b = (-150 * pb) * ((lam * (qa + qb) / 2 - m1) / (1 + m1))
    assert ev["impact"][0] == pytest.approx(cost_a, rel=1e-12)
    assert ev["impact"][1] == pytest.approx(cost_b, rel=1e-12)
    assert ev["equity"][0] == pytest.approx(1_500 + 10_000 * (0.892 - 1), rel=1e-12)
    assert ev["equity"][1] == pytest.approx(15_000 * pb / 100 - 12_000, rel=1e-12)
    assert ev["slippage"][1] == pytest.approx(0.002 * 150 * pb + cost_b, rel=1e-12)
    assert ev["notional"][1] == pytest.approx(100 * pb, rel=1e-12)
    log = sim.feedback_log
    row = log[log["t"] == 2][0]
    assert row["rounds"] == 2 and row["liquidated"] == 2
    assert row["max_move"] == pytest.approx(-lam * qb, rel=1e-12)


def test_conservation_sold_equals_liquidated_and_equity_balances():
    """Every liquidated account closes all it holds; equity - costs = bad debt + returned, per event."""
    panel = one_asset()
    sim = simulate_accounts(MODEL.fit(panel), BOOK, LiquidationPolicy(**FB), start=0)
    ev = sim.liquidations
    assert not sim.is_open[sim.row(2):].any()  # both accounts closed whole
    rem = ev["equity"] - ev["slippage"]
    np.testing.assert_allclose(ev["returned"] + ev["penalty"] - ev["bad_debt"], rem, rtol=1e-12, atol=1e-9)


def crash_panel(depth: float, seed: int = 2, crash: float = 0.8) -> PricePanel:
    """Three assets, 125 calm days then an intraday low of ``crash`` x the close; volume x ``depth``."""
    rng = np.random.default_rng(seed)
    T, A = 130, 3
    r = 0.01 * rng.standard_normal((T, A))
    close = 100 * np.exp(np.cumsum(r, axis=0))
    low = close * 0.995
    low[125] = close[125] * crash
    vol = np.full((T, A), 2e6 * depth)
    return PricePanel(pd.date_range("2021-01-01", periods=T), ("A0", "A1", "A2"), close, close * 1.005, low, close, vol)


@pytest.fixture(scope="module")
def crash_book():
    return generate_book(("A0", "A1", "A2"), 200, seed=3, collateral_assets=["A0"], long_probability=0.8)


def test_a_deeper_market_never_gives_a_larger_cascade():
    """Depth = traded volume per USD of open interest (1 / feedback_oi_to_volume): the book stands for
    the open interest, so only this ratio sets how far the forced flow moves prices.

    On a long-only book (more forced selling lowers every account's surplus: the monotone case of
    Tarski's theorem, as in the cascade engine) the liquidated set of a deeper market is contained in
    that of a thinner one. (Liquidated *notional* is valued at the impacted marks, so it need not be
    monotone; the set is.)
    """
    book = generate_book(("A0", "A1", "A2"), 200, seed=3, collateral_assets=["A0"], long_probability=1.0)
    fitted = FixedHaircut(imf=0.1, mmf=0.05).fit(crash_panel(1.0, crash=0.93))
    sets = []
    for oi_to_volume in (20.0, 5.0, 1.0, 0.5, 0.1, 1e-9):
        sim = simulate_accounts(fitted, book, LiquidationPolicy(**{**FB, "feedback_oi_to_volume": oi_to_volume}),
                                start=100)
        sets.append(set(sim.liquidations["account"].tolist()))
    assert all(b <= a for a, b in itertools.pairwise(sets))
    flat = simulate_accounts(fitted, book, LiquidationPolicy(reentry_days=None, penalty=0.0), start=100)
    base = set(flat.liquidations["account"].tolist())
    assert len(sets[0]) > len(base) > 0  # the cascade amplifies the crash of a thin market
    assert sets[-1] == base  # an infinitely deep market is the price-taker


def test_no_look_ahead_with_feedback(crash_book):
    model = FixedHaircut(imf=0.1, mmf=0.05)
    p = crash_panel(0.5)
    t = 126
    rng = np.random.default_rng(0)
    close = p.close.copy()
    close[t + 1:] *= np.exp(0.3 * rng.standard_normal(close[t + 1:].shape))
    vol = p.volume.copy()
    vol[t + 1:] *= 20.0
    q = p.with_close(close)
    q = PricePanel(q.dates, q.assets, q.open, q.high, q.low, q.close, vol)
    pol = LiquidationPolicy(**{**FB, "reentry_days": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = simulate_accounts(model.fit(p), crash_book, pol, start=100)
        b = simulate_accounts(model.fit(q), crash_book, pol, start=100)
    ea, eb = a.events[a.events["t"] <= t], b.events[b.events["t"] <= t]
    assert len(ea) > 0
    np.testing.assert_array_equal(ea, eb)
    np.testing.assert_array_equal(a.equity[: a.row(t) + 1], b.equity[: b.row(t) + 1])


def test_comparison_table_and_no_split_between_processes(crash_book):
    panel = crash_panel(0.3)
    models = [FixedHaircut(imf=0.1, mmf=0.05, label="m")]
    pol = LiquidationPolicy(**FB)
    base = run_models(panel, crash_book, models, start=100, min_history=20,
                      policy=LiquidationPolicy(**{**FB, "feedback": False}), netting=False)
    fb1 = run_models(panel, crash_book, models, start=100, min_history=20, policy=pol, netting=False)
    fb2 = run_models(panel, crash_book, models, start=100, min_history=20, policy=pol, netting=False, n_jobs=2)
    np.testing.assert_array_equal(fb1.results["m"].simulation.events, fb2.results["m"].simulation.events)
    tab = feedback_comparison(base, fb1)
    row = tab.iloc[0]
    assert row["liquidations_feedback"] >= row["liquidations"] > 0
    assert row["amplification"] == pytest.approx(row["liquidated_notional_feedback"] / row["liquidated_notional"])
    assert row["amplification"] > 1 and row["max_rounds_per_day"] >= 2


def test_feedback_needs_the_impact_close_out():
    with pytest.raises(ValueError, match=r"liquidation\.feedback"):
        LiquidationPolicy(feedback=True)
    with pytest.raises(ValueError, match="feedback_oi_to_volume"):
        LiquidationPolicy(closeout="impact", feedback=True, feedback_oi_to_volume=0.0)
