"""The coverage backtest, the account simulation and the metrics against hand calculations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_panel

from riskmodels.backtest.coverage import coverage_backtest, realised_loss
from riskmodels.backtest.engine import run_models
from riskmodels.backtest.simulation import TRIGGERS, LiquidationPolicy, simulate_accounts
from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import Book, generate_book


def panel_from(rows: list[tuple[float, float, float, float]], assets=("BTC",)) -> PricePanel:
    """rows of (open, high, low, close) for a single asset."""
    arr = np.array(rows, dtype=float)
    dates = pd.date_range("2021-01-01", periods=len(rows))
    o, h, low, c = (arr[:, i : i + 1] for i in range(4))
    return PricePanel(dates, assets, o, h, low, c, np.ones_like(c))


LONG_10K = Book(("BTC",), [[0.0]], [[10_000.0]])


def test_coverage_loss_and_exceptions_by_hand():
    """Long 10k BTC, closes 100, 96, 90, 99, 99; IM = 5% x 10k = 500 (h = 1).

    Losses: 10k x 4% = 400 (< 500), 10k x (1 - 90/96) = 625 (exception),
    10k x (1 - 99/90) = -1,000, 0; the last day has no realised loss.
    """
    panel = panel_from([(100, 100, 100, 100), (96, 96, 96, 96), (90, 90, 90, 90), (99, 99, 99, 99), (99, 99, 99, 99)])
    loss = realised_loss(panel, LONG_10K, 1)[:, 0]
    np.testing.assert_allclose(loss[:4], [400.0, 625.0, -1_000.0, 0.0])
    assert np.isnan(loss[4])
    path = FixedHaircut(imf=0.05, mmf=0.03).fit(panel).path(LONG_10K)
    cov = coverage_backtest(panel, LONG_10K, path, 1)
    assert cov.n_obs == 4
    assert cov.exceptions[:, 0].tolist() == [False, True, False, False, False]
    assert cov.by_side() == {"combined": (4, 1), "long": (4, 1), "short": (0, 0)}
    # two-day horizon: 10k x (1 - 90/100) = 1,000 > 500 at t=0
    cov2 = coverage_backtest(panel, LONG_10K, path, 2)
    assert cov2.loss[0, 0] == pytest.approx(1_000.0)
    assert cov2.exceptions[0, 0]


def test_liquidation_without_bad_debt_by_hand():
    """IMF 10%, MMF 5%, cushion 0.5, slippage 1%, penalty 1%, long 100 BTC-units of 10k.

    Open at 100: IM 1,000, equity 1,500 (cash). Day 1 low 92: equity 700 >= MM
    (5% x 9,200 = 460). Day 2 low 88: equity 300 < MM 440 -> liquidated at 88:
    slippage 1% x 8,800 = 88, penalty min(1% x 8,800, 212) = 88, returned 124.
    """
    panel = panel_from([(100, 100, 100, 100), (100, 101, 92, 95), (95, 96, 88, 90), (90, 91, 89, 90)])
    pol = LiquidationPolicy(cushion=0.5, slippage=0.01, penalty=0.01, reentry_days=None)
    sim = simulate_accounts(FixedHaircut(imf=0.1, mmf=0.05, haircut=0).fit(panel), LONG_10K, pol, start=0)
    assert len(sim.events) == 1
    ev = sim.events[0]
    assert ev["t"] == 2 and TRIGGERS[ev["trigger"]] == "intraday"
    assert ev["equity"] == pytest.approx(300.0)
    assert ev["maintenance"] == pytest.approx(440.0)
    assert ev["slippage"] == pytest.approx(88.0)
    assert ev["penalty"] == pytest.approx(88.0)
    assert ev["returned"] == pytest.approx(124.0)
    assert ev["bad_debt"] == 0.0
    assert sim.equity[0, 0] == pytest.approx(1_500.0)
    assert sim.equity[1, 0] == pytest.approx(1_500 - 500.0)
    assert sim.is_open[:, 0].tolist() == [True, True, False, False]


def test_gap_through_bankruptcy_is_bad_debt():
    """Same account; day 1 low 80: equity 1,500 - 2,000 = -500; slippage 1% x 8,000 = 80;
    bad debt 580, no penalty, nothing returned."""
    panel = panel_from([(100, 100, 100, 100), (100, 100, 80, 85), (85, 85, 85, 85)])
    pol = LiquidationPolicy(cushion=0.5, slippage=0.01, penalty=0.01, reentry_days=None)
    sim = simulate_accounts(FixedHaircut(imf=0.1, mmf=0.05, haircut=0).fit(panel), LONG_10K, pol, start=0)
    ev = sim.events[0]
    assert ev["bad_debt"] == pytest.approx(580.0)
    assert ev["penalty"] == 0.0 and ev["returned"] == 0.0


def test_short_side_uses_the_high_and_reentry():
    """Short 10k at 100: the day-1 high 112 gives equity 1,500 - 1,200 = 300 < MM 5% x 11,200 = 560.

    With reentry_days = 2 the account re-opens at day 3's close (price 120):
    quantity -10,000/120, IM 1,000, equity 1,500 again.
    """
    panel = panel_from([(100, 100, 100, 100), (100, 112, 99, 110), (110, 111, 109, 110), (110, 121, 109, 120), (120, 120, 120, 120)])
    book = Book(("BTC",), [[0.0]], [[-10_000.0]])
    pol = LiquidationPolicy(cushion=0.5, slippage=0.0, penalty=0.0, reentry_days=2)
    sim = simulate_accounts(FixedHaircut(imf=0.1, mmf=0.05, haircut=0).fit(panel), book, pol, start=0)
    assert sim.events[0]["t"] == 1
    assert sim.events[0]["equity"] == pytest.approx(300.0)
    assert sim.is_open[:, 0].tolist() == [True, False, False, True, True]
    assert sim.equity[3, 0] == pytest.approx(1_500.0)
    assert sim.openings["t"].tolist() == [0, 3]
    # account-days open: days 0, 3, 4
    assert sim.account_days == 3


def test_close_check_uses_the_margin_set_that_day():
    """With the intraday check off, only closes matter: close 91 gives equity 600 >= MM 455."""
    panel = panel_from([(100, 100, 100, 100), (100, 100, 50, 91), (91, 91, 91, 91)])
    pol = LiquidationPolicy(cushion=0.5, slippage=0.0, penalty=0.0, reentry_days=None, intraday=False)
    sim = simulate_accounts(FixedHaircut(imf=0.1, mmf=0.05, haircut=0).fit(panel), LONG_10K, pol, start=0)
    assert len(sim.events) == 0


def test_metrics_by_hand():
    """One liquidation (the bad-debt case above) over 2 open days of 10k/8.5k notional."""
    panel = panel_from([(100, 100, 100, 100), (100, 100, 80, 85), (85, 85, 85, 85)])
    pol = LiquidationPolicy(cushion=0.5, slippage=0.01, penalty=0.01, reentry_days=None)
    res = run_models(panel, LONG_10K, [FixedHaircut(imf=0.1, mmf=0.05, haircut=0)], mpor=1, min_history=0, policy=pol)
    m = res.results["fixed_haircut"].metrics
    assert m["mean_im_per_notional"] == pytest.approx(0.10)
    assert m["implied_max_leverage"] == pytest.approx(10.0)
    # open on day 0 only (liquidated intraday on day 1): 1 account-day = 1/365 year
    assert m["liquidations_per_account_year"] == pytest.approx(365.0)
    assert m["share_ever_liquidated"] == 1.0
    # bad debt 580 per (10,000 x 1 day / 365) notional-years, in bp
    assert m["bad_debt_bp_per_year"] == pytest.approx(1e4 * 580 / (10_000 / 365))
    # breaches: t0 loss 1,500 > IM 1,000; t1 loss 0 -> 1 of 2
    assert m["breach_rate"] == pytest.approx(0.5)


def test_engine_vectorised_equals_one_account_at_a_time():
    """The simulation of 40 accounts together equals 40 single-account simulations."""
    panel = random_walk_panel(300, 4, seed=3, vol=0.05)
    book = generate_book(panel.assets, 40, seed=2)
    pol = LiquidationPolicy(reentry_days=3)
    fitted = FixedHaircut(imf=0.05, mmf=0.03).fit(panel)
    together = simulate_accounts(fitted, book, pol, start=10)
    for p in range(0, 40, 7):
        alone = simulate_accounts(fitted, book.subset([p]), pol, start=10)
        np.testing.assert_allclose(alone.equity[:, 0], together.equity[:, p], rtol=1e-6, equal_nan=True)
        mine = together.events[together.events["account"] == p]
        np.testing.assert_allclose(alone.events["bad_debt"], mine["bad_debt"])
        assert alone.events["t"].tolist() == mine["t"].tolist()


def test_policy_validation():
    with pytest.raises(ValueError, match="cushion"):
        LiquidationPolicy(cushion=-1)
    with pytest.raises(ValueError, match="penalty"):
        LiquidationPolicy(penalty=0.7)
    with pytest.raises(ValueError, match="reentry_days"):
        LiquidationPolicy(reentry_days=0)


def test_models_in_parallel_processes_give_the_same_numbers():
    """n_jobs=2 runs models in worker processes; every number must equal the serial run."""
    panel = random_walk_panel(300, 3, seed=8, vol=0.04)
    book = generate_book(panel.assets, 25, seed=5)
    models = [FixedHaircut(label="a"), FixedHaircut(imf=0.1, mmf=0.05, label="b")]
    pol = LiquidationPolicy(reentry_days=3)
    serial = run_models(panel, book, models, start=30, min_history=20, policy=pol)
    parallel = run_models(panel, book, models, start=30, min_history=20, policy=pol, n_jobs=2)
    assert list(parallel.results) == ["a", "b"]
    pd.testing.assert_frame_equal(serial.metrics_frame(), parallel.metrics_frame())
    np.testing.assert_array_equal(serial.results["b"].simulation.events, parallel.results["b"].simulation.events)


def test_accounts_split_between_processes_give_the_same_numbers(monkeypatch: pytest.MonkeyPatch):
    """A cheap-fit model's accounts are split between the processes (engine.account_splits);
    the merged result must equal the serial run array for array (accounts are independent)."""
    import riskmodels.margin as rm
    from riskmodels.backtest import engine

    monkeypatch.setattr(engine, "MIN_CHUNK", 10)
    panel = random_walk_panel(330, 3, seed=9, vol=0.05)
    book = generate_book(panel.assets, 64, seed=6, isolated_share=0.2)
    models = [
        FixedHaircut(imf=0.05, mmf=0.03, label="hc"),
        rm.get("historical_var", confidence=0.99, horizon=2, window=100, label="hs"),
        rm.get("scenario_grid", psr_lookback=100, recalibration="weekly", label="span"),
    ]
    assert [len(engine.account_splits(m, 2, 64)) for m in models] == [2, 2, 2]
    assert len(engine.account_splits(rm.get("garch"), 2, 64)) == 1  # the fit dominates: one process
    assert len(engine.account_splits(models[0], 2, 15)) == 1  # too few accounts to split
    pol = LiquidationPolicy(reentry_days=3, cushion=0.05)
    kw = {"start": 120, "min_history": 100, "policy": pol, "netting": True}
    serial = run_models(panel, book, models, **kw)
    for model in models:  # one model, two processes: its accounts are split
        name = model.label
        split = run_models(panel, book, [model], n_jobs=2, **kw)
        a, b = serial.results[name], split.results[name]
        assert b.timings["simulation"] > 0
        assert len(a.simulation.liquidations) > 0  # not vacuous
        for x, y in ((a.path, b.path), (a.isolated_path, b.isolated_path)):
            np.testing.assert_array_equal(x.initial, y.initial)
            np.testing.assert_array_equal(x.maintenance, y.maintenance)
            np.testing.assert_array_equal(x.eligible, y.eligible)
            assert x.account_ids == y.account_ids
        np.testing.assert_array_equal(a.coverage.exceptions, b.coverage.exceptions)
        np.testing.assert_array_equal(a.coverage.loss, b.coverage.loss)
        np.testing.assert_array_equal(a.coverage.side, b.coverage.side)
        # the same events and open accounts; amounts equal up to the last bit of a BLAS product
        # (the intraday requirement is a GEMM over whichever accounts are checked that day, and
        # its rounding can depend on how many rows it has)
        ea, eb = a.simulation.events, b.simulation.events
        for f in ("account", "t", "trigger"):
            np.testing.assert_array_equal(ea[f], eb[f])
        for f in ("equity", "maintenance", "notional", "slippage", "penalty", "bad_debt", "returned"):
            np.testing.assert_allclose(ea[f], eb[f], rtol=1e-12, atol=0, equal_nan=True)
        np.testing.assert_array_equal(a.simulation.openings, b.simulation.openings)
        np.testing.assert_array_equal(a.simulation.is_open, b.simulation.is_open)
        for f in ("equity", "maintenance", "notional_total"):
            np.testing.assert_allclose(getattr(a.simulation, f), getattr(b.simulation, f), rtol=1e-6, equal_nan=True)
        for k, v in a.metrics.items():
            assert v == pytest.approx(b.metrics[k], rel=1e-12, nan_ok=True), k


def test_margin_path_in_account_blocks_equals_one_block(monkeypatch: pytest.MonkeyPatch):
    """engine._window_path prices accounts in blocks of PATH_BLOCK (bounded memory); the stored
    path and the coverage cells must not depend on the block size."""
    import riskmodels.margin as rm
    from riskmodels.backtest import engine

    panel = random_walk_panel(330, 3, seed=12, vol=0.05)
    book = generate_book(panel.assets, 50, seed=7, isolated_share=0.2)
    models = [FixedHaircut(label="hc"), rm.get("historical_var", window=100, horizon=2, label="hs"),
              rm.get("scenario_grid", psr_lookback=100, label="span")]
    kw = {"start": 120, "min_history": 100, "netting": True}
    whole = run_models(panel, book, models, **kw)
    monkeypatch.setattr(engine, "PATH_BLOCK", 16)  # 4 blocks, the last one short
    blocks = run_models(panel, book, models, **kw)
    for name in ("hc", "hs", "span"):
        a, b = whole.results[name], blocks.results[name]
        assert a.coverage.n_exceptions > 0 and a.path.initial.dtype == np.float32
        for x, y in ((a.path, b.path), (a.isolated_path, b.isolated_path)):
            np.testing.assert_allclose(x.initial, y.initial, rtol=1e-6)
            np.testing.assert_allclose(x.maintenance, y.maintenance, rtol=1e-6)
            np.testing.assert_array_equal(x.eligible, y.eligible)
        np.testing.assert_array_equal(a.coverage.valid, b.coverage.valid)
        np.testing.assert_array_equal(a.coverage.exceptions, b.coverage.exceptions)
