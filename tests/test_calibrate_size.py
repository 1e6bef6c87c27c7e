"""Calibration with size: books sized to a fraction of ADV; a larger book needs a larger margin rate."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from riskmodels.backtest.engine import run_models
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.book_sizing import adv_before, scale_to_adv
from riskmodels.calibrate import Target, calibrate, single_asset_book
from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import Book


def gappy_panel(T: int = 400, seed: int = 11, volume: float = 1e8) -> PricePanel:
    """Daily vol 3% with 15% down-gaps on ~2% of days; intraday lows below the close."""
    rng = np.random.default_rng(seed)
    r = 0.03 * rng.standard_normal(T)
    r[rng.random(T) < 0.02] -= 0.15
    close = 100 * np.exp(np.cumsum(r))[:, None]
    low = close * np.exp(-np.abs(0.02 * rng.standard_normal((T, 1))))
    return PricePanel(pd.date_range("2020-01-01", periods=T), ("X",), close, close, low, close,
                      np.full((T, 1), volume))


def test_adv_before_uses_only_the_days_before_start():
    p = gappy_panel(T=50)
    vol = np.arange(1.0, 51.0)[:, None] * 1e6
    vol[8] = 0.0
    panel = PricePanel(p.dates, p.assets, p.open, p.high, p.low, p.close, vol)
    assert adv_before(panel, 10, 5)[0] == pytest.approx(np.mean([6e6, 7e6, 8e6, 10e6]))  # days 5..9, day 8 zero


def test_scale_to_adv_sets_the_largest_holding_to_the_fraction():
    p = gappy_panel(T=50)
    vol = np.column_stack([np.full(50, 1e8), np.full(50, 1e7)])
    close = np.column_stack([p.close[:, 0], p.close[:, 0]])
    panel = PricePanel(p.dates, ("X", "Y"), close, close, close, close, vol)
    book = Book(("X", "Y"), [[1e6, 0.0], [0.0, 0.0]], [[0.0, -5e5], [2e6, 0.0]])
    big = scale_to_adv(book, panel, 40, 0.02)
    # account 0: X 1e6 / 1e8 = 0.01, Y 5e5 / 1e7 = 0.05 -> k = 0.02 / 0.05 = 0.4
    np.testing.assert_allclose(big.collateral[0], [4e5, 0.0])
    np.testing.assert_allclose(big.positions[0], [0.0, -2e5])
    # account 1: X 2e6 / 1e8 = 0.02 -> k = 1
    np.testing.assert_allclose(big.positions[1], [2e6, 0.0])
    with pytest.raises(ValueError, match="adv_fraction"):
        scale_to_adv(book, panel, 40, 0.0)


def test_a_larger_book_gets_a_larger_margin_rate_for_the_same_bad_debt_target():
    panel = gappy_panel()
    pol = LiquidationPolicy(closeout="impact", reentry_days=1, penalty=0.0)
    kw = dict(per_asset=True, book="long", bounds=(0.01, 0.6), grid=7, xtol=1e-3, start="2020-03-01", policy=pol)
    target = Target("bad_debt", 1e-4)
    small = calibrate(panel, "fixed_haircut", "imf", target, adv_fraction=0.001, **kw).rows[0]
    large = calibrate(panel, "fixed_haircut", "imf", target, adv_fraction=1.0, **kw).rows[0]
    assert small.met and large.met and small.monotone and large.monotone
    assert large.value > small.value + 2e-3
    # independent check: at the small book's rate the large book misses the target
    s = panel.date_index("2020-03-01")
    book = scale_to_adv(single_asset_book("X", "long"), panel, s, 1.0)
    res = run_models(panel, book, [FixedHaircut(imf=small.value, mmf=0.6 * small.value, label="m")], start=s,
                     min_history=0, policy=pol, netting=False).results["m"]
    assert res.metrics["bad_debt_bp_per_year"] / 1e4 > 1e-4


def test_size_without_a_size_term_warns():
    panel = gappy_panel(T=120)
    with pytest.warns(UserWarning, match="size of the book cannot change"):
        calibrate(panel, "fixed_haircut", "haircut", Target("coverage", 0.05), book="collateral", grid=3,
                  xtol=0.05, start="2020-02-15", adv_fraction=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibrate(panel, "fixed_haircut", "haircut", Target("coverage", 0.05), book="collateral", grid=3, xtol=0.05,
                  start="2020-02-15", adv_fraction=0.5, policy=LiquidationPolicy(closeout="impact"))


def test_adv_fraction_from_the_calibrate_section():
    from riskmodels.calibrate import calibrate_from_config
    from riskmodels.config import default_config

    cfg = default_config()
    cfg["data"]["universe"] = ["X"]
    cfg["data"]["start"] = "2020-03-01"
    cfg["liquidation"]["closeout"] = "impact"
    sec = {"model": "fixed_haircut", "param": "imf", "book": "long", "bounds": [0.01, 0.6], "grid": 3, "xtol": 0.05,
           "adv_fraction": 0.5, "target": {"kind": "bad_debt", "value": 1e-3}}
    res = calibrate_from_config(cfg, sec, gappy_panel())
    assert res.settings["adv_fraction"] == 0.5 and res.settings["closeout"] == "impact"
    with pytest.raises(ValueError, match="adv_fraction"):
        calibrate_from_config(cfg, {**sec, "adv_fraction": -1.0}, gappy_panel())
