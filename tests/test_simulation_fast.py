"""The numba simulation path against the numpy loop it replaces in the common case (issue 23).

The reference is :func:`riskmodels.backtest.simulation_numpy.simulate_numpy`,
the per-date numpy loop whose rules the hand calculations of
``tests/test_backtest_engine.py`` check (liquidation without bad debt, gap
through bankruptcy, the short side at the high, re-entry, the close check
with the day's margin). Both paths must make the same decisions (events,
openings, open flags) and agree on every amount to 1e-9 relative (the
kernels sum over assets in another order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.backtest.simulation_fast import fast_path_applies, simulate_fast
from riskmodels.backtest.simulation_numpy import simulate_numpy
from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut, HistoricalVaR, ScenarioGrid
from riskmodels.margin.apc import Buffer25
from riskmodels.portfolio import Book


def _panel(T: int, A: int, seed: int, delist: bool = False) -> PricePanel:
    rng = np.random.default_rng(seed)
    r = 0.04 * rng.standard_normal((T, A)) * np.where(np.arange(T)[:, None] % 150 < 20, 2.5, 1.0)
    r[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    opn = np.vstack([close[:1], close[:-1]])
    high = np.maximum(opn, close) * (1 + 0.03 * rng.random((T, A)))
    low = np.minimum(opn, close) * (1 - 0.03 * rng.random((T, A)))
    vol = np.full((T, A), 1e8)
    if delist:  # the last asset stops trading two thirds of the way; the first lists late
        for arr in (opn, high, low, close):
            arr[2 * T // 3 :, A - 1] = np.nan
            arr[: T // 4, 0] = np.nan
    dates = pd.date_range("2019-01-01", periods=T, freq="D")
    return PricePanel(dates, tuple(f"A{j}" for j in range(A)), opn, high, low, close, vol)


def _book(P: int, A: int, seed: int) -> Book:
    rng = np.random.default_rng(seed + 1)
    coll = np.abs(rng.normal(1e4, 5e3, (P, A))) * (rng.random((P, A)) < 0.4)
    pos = rng.normal(0.0, 3e4, (P, A)) * (rng.random((P, A)) < 0.5)
    iso = rng.random(P) < 0.2
    return Book(tuple(f"A{j}" for j in range(A)), coll, pos, isolated=iso)


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert len(a.events) == len(b.events)
    for k in ("account", "t", "trigger"):
        np.testing.assert_array_equal(a.events[k], b.events[k])
    for k in ("equity", "maintenance", "notional", "slippage", "impact", "penalty", "bad_debt", "returned"):
        np.testing.assert_allclose(b.events[k], a.events[k], rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(a.is_open, b.is_open)
    for k in ("account", "t"):
        np.testing.assert_array_equal(a.openings[k], b.openings[k])
    np.testing.assert_allclose(b.openings["notional"], a.openings["notional"], rtol=1e-12)
    np.testing.assert_allclose(b.equity, a.equity, rtol=1e-6, atol=1e-3)  # float32 state
    np.testing.assert_allclose(b.maintenance, a.maintenance, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(b.notional_total, a.notional_total, rtol=1e-12)


MODELS = {
    "haircut": FixedHaircut(imf=0.08, mmf=0.05, haircut=0.15),
    "tiered": FixedHaircut(imf=0.05, mmf=0.03, haircut=0.1,
                           position_tiers={"default": [[0, 0.05, 0.03], [20000, 0.1, 0.05]]}),
    "hs": HistoricalVaR(confidence=0.99, horizon=2, window=120, min_history=60),
    "span": ScenarioGrid(psr_lookback=120),
    "buffer": Buffer25(HistoricalVaR(confidence=0.99, horizon=2, window=120, min_history=60)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("policy", [
    LiquidationPolicy(),
    LiquidationPolicy(reentry_days=None, intraday=False, cushion=0.1),
    LiquidationPolicy(closeout="impact", penalty=0.03, cushion=0.05, reentry_days=2),
], ids=["default", "no-intraday-no-reentry", "impact"])
def test_fast_path_equals_numpy_loop(name: str, policy: LiquidationPolicy):
    panel = _panel(400, 5, seed=3, delist=True)
    book = _book(60, 5, seed=3)
    fitted = MODELS[name].fit(panel)
    assert fast_path_applies(fitted, policy)
    ok = panel.eligible(60)
    a = simulate_numpy(fitted, book, policy, 80, None, ok)
    b = simulate_fast(MODELS[name].fit(panel), book, policy, 80, None, ok)
    assert (a.events["trigger"] == 2).any()  # the case exercises delisting
    if name != "span":  # and liquidations (the grid's 3x extreme move keeps this book safe)
        assert len(a.liquidations) > 0
    _same(a, b)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), cushion=st.floats(0.0, 1.0), reentry=st.sampled_from([None, 1, 3, 10]),
       intraday=st.booleans())
def test_fast_path_equals_numpy_loop_random(seed: int, cushion: float, reentry: int | None, intraday: bool):
    panel = _panel(150, 3, seed=seed, delist=seed % 2 == 0)
    book = _book(25, 3, seed=seed)
    model = FixedHaircut(imf=0.1, mmf=0.06, haircut=0.2)
    pol = LiquidationPolicy(cushion=cushion, reentry_days=reentry, intraday=intraday)
    ok = panel.eligible(10)
    _same(simulate_numpy(model.fit(panel), book, pol, 20, None, ok),
          simulate_fast(model.fit(panel), book, pol, 20, None, ok))


def test_dispatch_keeps_feedback_on_the_numpy_loop():
    panel = _panel(120, 3, seed=1)
    fitted = FixedHaircut().fit(panel)
    fb = LiquidationPolicy(closeout="impact", feedback=True)
    assert not fast_path_applies(fitted, fb)
    with pytest.raises(ValueError, match="numpy path"):
        simulate_fast(fitted, _book(5, 3, 1), fb, 10, None, None)
    assert simulate_accounts(fitted, _book(5, 3, 1), fb, start=10).feedback_log is not None


def test_parent_warm_up_runs_only_when_the_cache_lacks_a_kernel(monkeypatch: pytest.MonkeyPatch):
    """``cache_is_warm``: every kernel needs an index entry for this CPU; the engine's warm-up thread follows it."""
    import threading

    from riskmodels.backtest import _sim_kernels, engine

    magic = _sim_kernels.close_rows.targetctx.codegen().magic_tuple()
    kinds = {"all": {("sig", magic, "h"): 1}, "other cpu": {("sig", ("x86_64", "z80", ""), "h"): 1}, "empty": {}}
    started: list[str] = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self.name))
    for kind, index in kinds.items():
        for k in (_sim_kernels.delisted_rows, _sim_kernels.record_close):
            monkeypatch.setattr(type(k._cache._cache_file), "_load_index", lambda self, index=index: index)
        assert _sim_kernels.cache_is_warm() is (kind == "all"), kind
        started.clear()
        engine._warm_simulation_kernels()
        assert started == ([] if kind == "all" else ["riskmodels-numba-warm"]), kind

    def broken(self):  # numba internals changed: not known to be warm
        raise AttributeError("no such thing")

    monkeypatch.setattr(type(_sim_kernels.close_rows._cache._cache_file), "_load_index", broken)
    assert _sim_kernels.cache_is_warm() is False
