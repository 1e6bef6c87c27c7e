"""The leverage regime term and the record-scope comparison of the crash-day suite (issue 17).

* regime: the high-leverage weights of day t are ``min(1, h exp(lambda r_t))``, ``r_t`` the
  trailing BTC log return to the close of t - 1 (no look-ahead: perturbing day t and later
  leaves it unchanged); ``lambda = 0`` is the one global mixture, and the calm-day rates with a
  multiplier of 1 are those without one;
* scope: a venue-only record is compared with the venue's share of the model market, a
  straddling 24 h record with the time-weighted replays of both bars, a lower bound as a bound.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import random_walk_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.cascade.calibrate import LOOSettings, trailing_return
from riskmodels.cascade.observed import (
    LOWER_BOUND_SLACK,
    OBSERVED,
    WINDOW_WEIGHTS,
    WINDOWS,
    Observation,
    consistent,
    predict,
)
from riskmodels.cascade.population import LeverageMixture
from riskmodels.cascade.replay import calm_days, calm_rates
from riskmodels.margin import get


@settings(max_examples=30, deadline=None)
@given(h=st.floats(0.0, 1.0), m=st.floats(0.0, 50.0))
def test_scaled_weights_are_capped_and_monotone(h, m):
    mx = LeverageMixture(high_long=h, high_short=h / 2)
    s = mx.scaled(m)
    assert s.high_long == pytest.approx(min(1.0, h * m)) and s.high_short == pytest.approx(min(1.0, h / 2 * m))
    assert mx.scaled(m * 1.5).high_long >= s.high_long  # more rally, never less leverage
    u = np.linspace(0.001, 0.999, 101)
    z = np.zeros_like(u)
    long = np.ones_like(u, bool)
    # the share drawn from the high component is the (capped) weight itself
    assert (s.draw(u, z, long) == mx.medians[2]).mean() == pytest.approx(min(1.0, h * m), abs=0.011)
    with pytest.raises(ValueError, match="multiplier"):
        mx.scaled(-1.0)


def test_calm_rates_multiplier_identity_and_direction():
    panel = random_walk_panel(T=160, A=3, seed=5, vol=0.04)
    f = get("fixed_haircut", imf=0.05, mmf=0.03).fit(panel)
    days = calm_days(panel.dates, 40, 6, seed=2)
    mx = LeverageMixture(high_long=0.2, high_short=0.2)
    base = calm_rates(f, days, mx, n_accounts=300, seed=3)
    np.testing.assert_array_equal(calm_rates(f, days, mx, n_accounts=300, seed=3, multiplier=np.ones(len(days))),
                                  base)
    # no high-leverage accounts on any day: never more liquidations
    none = calm_rates(f, days, mx, n_accounts=300, seed=3, multiplier=np.zeros(len(days)))
    assert (none <= base + 1e-12).all()
    with pytest.raises(ValueError, match="multiplier"):
        calm_rates(f, days, mx, n_accounts=300, multiplier=[1.0])


def test_regime_state_has_no_look_ahead():
    panel = replace(random_walk_panel(T=500, A=2, seed=4), assets=("BTC", "ETH"))
    t = 420
    c = panel.close[:, 0]
    assert trailing_return(panel, t, 365) == pytest.approx(np.log(c[t - 1] / c[t - 366]), rel=1e-12)
    future = panel.close.copy()
    future[t:] *= 0.2  # the crash day itself and everything after
    assert trailing_return(replace(panel, close=future), t, 365) == trailing_return(panel, t, 365)


def test_regime_grid_validation_names_the_key():
    with pytest.raises(ValueError, match="leverage_beta"):
        LOOSettings(leverage_beta=(11.0,))
    with pytest.raises(ValueError, match="leverage_days"):
        LOOSettings(leverage_days=(0,))
    with pytest.raises(ValueError, match="leverage_days"):
        LOOSettings(leverage_days=(30.5,))
    assert LOOSettings(leverage_days=(30.0,)).leverage_days == (30,)


class R:
    """The fields predict() reads: per asset long / short liquidated USD and long OI."""

    def __init__(self, ll, sl, oi, assets=("BTC", "ETH")):
        self.assets = assets
        self.liquidated_long_usd = np.asarray(ll, float)
        self.liquidated_short_usd = np.asarray(sl, float)
        self.oi_long = np.asarray(oi, float)


def test_straddling_window_is_time_weighted_by_hand():
    """CoinDesk, 10 May 2022 06:38 UTC, 'past 24 hours': 17.37 h of the 9 May bar, 6.63 h of the 10th."""
    w = WINDOW_WEIGHTS["2022-05-10"]
    assert w == pytest.approx((17.37 / 24, 6.63 / 24)) and sum(w) == pytest.approx(1.0)
    assert WINDOWS["2022-05-10"] == ("2022-05-09", "2022-05-10")
    d9 = R([80.0, 20.0], [10.0, 0.0], [1000.0, 500.0])
    d10 = R([4.0, 0.0], [16.0, 0.0], [900.0, 450.0])
    a, b = 17.37 / 24, 6.63 / 24
    runs = [d9, d10]
    assert predict(runs, "liq_usd", w) == pytest.approx(a * 110 + b * 20)
    assert predict(runs, "long_share", w) == pytest.approx((a * 100 + b * 4) / (a * 110 + b * 20))
    assert predict(runs, "oi_drop", w) == pytest.approx((a * 110 + b * 20) / (a * 1500 + b * 1350))
    assert predict(runs, "liq_long_usd_btc", w) == pytest.approx(a * 80 + b * 4)
    with pytest.raises(ValueError, match="weights"):
        predict(runs, "liq_usd", (1.0,))
    # two whole days without weights: totals summed, the BTC-only total too
    assert predict(runs, "liq_long_usd_btc") == pytest.approx(84.0)
    assert predict(runs, "liq_usd") == pytest.approx(130.0)


def test_consistency_of_points_and_bounds():
    point = Observation("d", "liq_usd", 100.0, True)
    low = Observation("d", "liq_usd", 100.0, True, bound="lower")
    for pred, p_ok, l_ok in ((49.0, False, False), (50.0, True, True), (200.0, True, True),
                             (201.0, False, True), (2 * LOWER_BOUND_SLACK * 100.0, False, True),
                             (2 * LOWER_BOUND_SLACK * 100.0 + 1, False, False), (0.0, False, False)):
        assert consistent(pred, point) is p_ok, pred
        assert consistent(pred, low) is l_ok, pred
    with pytest.raises(ValueError, match="scope_share"):
        Observation("d", "liq_usd", 1.0, scope_share=0.0)
    with pytest.raises(ValueError, match="bound"):
        Observation("d", "liq_usd", 1.0, bound="upper")


def test_record_scopes_are_stated():
    """Every venue-only figure names its venue share; the scoped observed values by hand."""
    by = {(o.day, o.metric): o for o in OBSERVED}
    bitmex = by[("2020-03-12", "liq_long_usd_btc")]
    assert bitmex.scope_share == 0.36 and "BitMEX" in bitmex.note and bitmex.scope == "venue share 0.36"
    may21 = by[("2021-05-19", "liq_usd")]
    assert may21.value == pytest.approx(8.0e9 - 1.0e9) and may21.scope_share == pytest.approx(1 - 0.19)
    may22 = by[("2022-05-10", "liq_usd")]
    assert may22.value == pytest.approx(1.0e9 - 0.181e9) and may22.scope_share == pytest.approx(1 - 0.30)
    for o in OBSERVED:
        if o.scope_share < 1:
            assert "share" in o.note or "%" in o.note, o
