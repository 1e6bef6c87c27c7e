"""Close-out cost that grows with the position (riskmodels.backtest.closeout).

Published formulas checked here:

* square-root law ``I(Q) = Y sigma sqrt(Q / V)`` (Toth et al. 2011, "Anomalous
  price impact and the critical nature of liquidity in financial markets",
  Phys. Rev. X 1, 021006, eq. 1; Bouchaud, Bonart, Donier & Gould 2018,
  "Trades, Quotes and Prices", ch. 12): a metaorder filled along the impact
  walk pays the average of the walk, ``(1/Q) int_0^Q Y sigma sqrt(q/V) dq =
  (2/3) I(Q)`` per dollar;
* Kyle's (1985) linear law ``I(Q) = lambda Q``: average fill move ``lambda Q / 2``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest.closeout import CloseOut, closeout_impact, market_liquidity
from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.cascade.impact import AssetState, LinearImpact, SquareRootImpact
from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import Book, generate_book


def _state(sigma: float, volume: float) -> AssetState:
    return AssetState(("X",), np.array([sigma]), np.array([volume]), np.array([volume]))


def test_sqrt_closeout_is_two_thirds_of_the_final_move_times_the_order():
    """Toth et al. (2011) eq. 1 with Y = 0.7, sigma = 4%, V = $1e9, Q = $1e7.

    Final move 0.7 x 0.04 x sqrt(0.01) = 0.28%; VWAP 2/3 of it; cost = $18,666.67.
    """
    law = SquareRootImpact(Y=0.7)
    cost = closeout_impact(law, np.array([[1e7]]), _state(0.04, 1e9))
    assert cost[0, 0] == pytest.approx(1e7 * (2.0 / 3.0) * 0.7 * 0.04 * 0.1, rel=1e-12)
    assert cost[0, 0] == pytest.approx(18_666.666666, rel=1e-9)


def test_sqrt_law_four_times_the_size_doubles_the_cost_per_dollar():
    law = SquareRootImpact(Y=0.5)
    st_ = _state(0.03, 5e8)
    c1, c4 = closeout_impact(law, np.array([[2e6, 8e6]]), st_)[0]
    assert (c4 / 8e6) / (c1 / 2e6) == pytest.approx(np.sqrt(4.0), rel=1e-12)


def test_linear_closeout_is_half_lambda_q_squared():
    """Kyle's lambda = per_volume / V: cost = lambda Q^2 / 2 (average move lambda Q / 2)."""
    law = LinearImpact(per_volume=0.1)
    q, v = 3e6, 2e8
    assert closeout_impact(law, np.array([[-q]]), _state(0.0, v))[0, 0] == pytest.approx(0.1 / v * q * q / 2, rel=1e-12)


def test_capped_sqrt_matches_the_closed_form_of_the_capped_walk():
    """Move capped at m: the walk reaches m at x* = V (m / (Y sigma))^2, then stays there.

    Cost = (2/3) Y sigma x*^1.5 / sqrt(V) + m (Q - x*), an independent closed form.
    """
    Y, sig, V, m = 1.0, 0.1, 1e6, 0.3
    law = SquareRootImpact(Y=Y, max_move=m)
    Q = 5e7  # uncapped move 1.0 x 0.1 x sqrt(50) = 0.71 > 0.3
    xs = V * (m / (Y * sig)) ** 2
    expected = (2.0 / 3.0) * Y * sig * xs**1.5 / np.sqrt(V) + m * (Q - xs)
    got = closeout_impact(law, np.array([[Q]]), _state(sig, V))[0, 0]
    assert got == pytest.approx(expected, rel=2e-3)  # 32-point quadrature of a kinked integrand


@settings(max_examples=60, deadline=None)
@given(q=st.floats(1e3, 1e9), k=st.floats(1.01, 20.0), sig=st.floats(0.005, 0.2), v=st.floats(1e6, 1e11))
def test_impact_cost_per_dollar_never_falls_with_size(q, k, sig, v):
    law = SquareRootImpact(Y=0.7)
    c = closeout_impact(law, np.array([[q], [k * q]]), _state(sig, v))[:, 0]
    assert np.all(c >= 0)
    assert c[1] / (k * q) >= c[0] / q * (1 - 1e-12)


def _panel(close, volume, low=None) -> PricePanel:
    close = np.asarray(close, float)[:, None]
    vol = np.asarray(volume, float)[:, None]
    lo = close if low is None else np.asarray(low, float)[:, None]
    dates = pd.date_range("2021-01-01", periods=len(close))
    return PricePanel(dates, ("BTC",), close, np.maximum(close, lo), lo, close, vol)


LONG_10K = Book(("BTC",), [[0.0]], [[10_000.0]])


def test_liquidation_pays_slippage_plus_sqrt_impact_by_hand():
    """The hand example of test_backtest_engine (IMF 10%, MMF 5%, liquidated at the low 88 on day 2).

    Sold: 100 units x 88 = $8,800; V = $880,000 -> sqrt(Q/V) = 0.1. sigma = sample std of
    the two log returns ln(95/100), ln(90/95). Impact = (2/3) 0.7 sigma 0.1 x 8,800.
    Remainder = 300 - 88 - impact; penalty min(88, remainder); returned the rest.
    """
    close = [100, 95, 90, 90]
    panel = _panel(close, [880_000] * 4, low=[100, 92, 88, 89])
    pol = LiquidationPolicy(cushion=0.5, slippage=0.01, penalty=0.01, reentry_days=None, closeout="impact")
    sim = simulate_accounts(FixedHaircut(imf=0.1, mmf=0.05, haircut=0).fit(panel), LONG_10K, pol, start=0)
    ev = sim.events[0]
    sigma = np.std([np.log(95 / 100), np.log(90 / 95)], ddof=1)
    impact = (2 / 3) * 0.7 * sigma * 0.1 * 8_800
    assert ev["t"] == 2
    assert ev["impact"] == pytest.approx(impact, rel=1e-12)
    assert ev["slippage"] == pytest.approx(88.0 + impact, rel=1e-12)
    assert ev["penalty"] == pytest.approx(88.0)
    assert ev["returned"] == pytest.approx(300 - 88 - impact - 88, rel=1e-12)


def test_flat_rule_is_the_default_and_leaves_events_unchanged(tmp_path):
    """closeout='flat' gives the same events as a policy without the new keys, field for field;
    'impact' with a vanishing law gives the flat costs (the impact part is additive)."""
    rng = np.random.default_rng(3)
    T, A = 200, 3
    close = 100 * np.exp(np.cumsum(0.04 * rng.standard_normal((T, A)), axis=0))
    dates = pd.date_range("2020-01-01", periods=T)
    panel = PricePanel(dates, ("A0", "A1", "A2"), close, close * 1.02, close * 0.97, close, np.full((T, A), 1e12))
    book = generate_book(panel.assets, 150, seed=1, collateral_assets=["A0"])
    fitted = FixedHaircut(imf=0.05, mmf=0.03).fit(panel)
    base = simulate_accounts(fitted, book, LiquidationPolicy(), start=10)
    flat = simulate_accounts(fitted, book, LiquidationPolicy(closeout="flat"), start=10)
    assert len(base.events) > 20
    assert base.events.tobytes() == flat.events.tobytes()
    tiny = simulate_accounts(fitted, book, LiquidationPolicy(closeout="impact", impact_law="linear",
                                                             impact_per_volume=0.0), start=10)
    assert tiny.events.tobytes() == base.events.tobytes()


def test_a_larger_book_pays_more_per_dollar_to_close():
    rng = np.random.default_rng(5)
    T = 150
    close = 100 * np.exp(np.cumsum(0.05 * rng.standard_normal((T, 2)), axis=0))
    dates = pd.date_range("2020-01-01", periods=T)
    panel = PricePanel(dates, ("A0", "A1"), close, close * 1.03, close * 0.96, close, np.full((T, 2), 5e7))
    book = generate_book(panel.assets, 100, seed=2, collateral_assets=["A0"])
    fitted = FixedHaircut(imf=0.05, mmf=0.03).fit(panel)
    pol = LiquidationPolicy(closeout="impact", reentry_days=None)
    small = simulate_accounts(fitted, book, pol, start=5).liquidations
    big = simulate_accounts(fitted, book.scaled(100.0), pol, start=5).liquidations
    assert len(small) == len(big) > 5  # fixed haircuts are homogeneous: same triggers
    np.testing.assert_array_equal(small["account"], big["account"])
    assert np.all(big["impact"] / big["notional"] > small["impact"] / small["notional"])
    np.testing.assert_allclose(big["impact"] / small["impact"], 100.0**1.5, rtol=1e-9)  # G(Q) ~ Q^1.5


def test_missing_volume_is_warned_and_the_trailing_adv_is_used():
    close = np.linspace(100, 110, 12)
    vol = np.full(12, 1e6)
    vol[5:7] = 0.0
    panel = _panel(close, vol)
    with pytest.warns(UserWarning, match=r"BTC: 2 day\(s\) 2021-01-06..2021-01-07 -> trailing ADV"):
        CloseOut("impact", 0.0, panel).warn_fallbacks(0, 11, panel.live, np.array([True]))
    liq = market_liquidity(panel, adv_window=3)
    assert liq.volume[5, 0] == pytest.approx(1e6) and liq.source[5, 0] == 1
    assert liq.volume[6, 0] == pytest.approx(1e6)  # mean of the positive volumes of days 3..5
    nothing = _panel(close, np.zeros(12))
    with pytest.warns(UserWarning, match="flat slippage only"):
        co = CloseOut("impact", 0.01, nothing)
        co.warn_fallbacks(0, 11, nothing.live, np.array([True]))
    total, impact = co.cost(4, np.zeros((1, 1)), np.array([[10.0]]), np.array([[100.0]]))
    assert impact[0] == 0.0 and total[0] == pytest.approx(10.0)


def test_closeout_state_uses_no_future_data():
    """Perturbing every price and volume after day t leaves the cost at t unchanged."""
    rng = np.random.default_rng(0)
    T = 80
    close = 100 * np.exp(np.cumsum(0.03 * rng.standard_normal(T)))
    vol = rng.uniform(1e6, 1e7, T)
    vol[40] = 0.0  # forces the ADV fallback on the day tested
    a = CloseOut("impact", 0.002, _panel(close, vol))
    close2, vol2 = close.copy(), vol.copy()
    close2[41:] *= rng.uniform(0.5, 2.0, T - 41)
    vol2[41:] = rng.uniform(1e3, 1e9, T - 41)
    b = CloseOut("impact", 0.002, _panel(close2, vol2))
    args = (np.array([[0.0]]), np.array([[-5e4]]), np.array([[close[40]]]))
    for t in (20, 39, 40):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert a.cost(t, *args) == b.cost(t, *args)


@pytest.mark.parametrize(
    ("key", "value"),
    [("closeout", "twap"), ("impact_law", "cubic"), ("impact_y", 0.0), ("impact_max_move", 1.0), ("vol_window", 1),
     ("adv_window", 2.5)],
)
def test_policy_errors_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"liquidation.{key}"):
        LiquidationPolicy(**{key: value})
