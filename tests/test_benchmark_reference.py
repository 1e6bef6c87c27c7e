"""Parity of riskmodels with the plain reference implementation of benchmarks/reference.

The reference (pandas/arch, one account at a time, a Python loop over dates
and accounts for liquidations) is written from the documented conventions of
riskmodels.backtest.coverage / simulation and the margin modules, not from
their code. On a small real slice (BTC, ETH, XRP 2019-2021, 20 seeded
accounts, the 2021 window) both must give the same numbers:

* fixed haircut, SPAN grid and HS VaR: margin paths equal to 1e-12
  (floating-point summation order only), coverage observations and
  exceptions identical, the same liquidation events (account, date,
  trigger) with amounts equal to 1e-9;
* GARCH-t (same refit schedule, every 20 days): paths within 1e-4 relative
  (arch's own ``fit`` in the reference vs riskmodels' SLSQP driver with the
  exact constraint Jacobian, both stopping at ftol 1e-6; arch's variance
  bounds, which never bind here, are not applied by the reference), the
  same liquidation events with amounts within 1e-3.

Speed is never tested here (benchmarks/standard.py measures it).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import riskmodels.margin as rm
from benchmarks.reference import GarchRef, HaircutRef, HistoricalRef, SpanRef, run_model
from riskmodels.backtest.engine import run_models
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.data.loaders import load_panel
from riskmodels.portfolio import generate_book

EXACT = {"haircut": 1e-12, "span": 1e-12, "hs": 1e-12, "garch": 1e-4}
EVENT_RTOL = {"haircut": 1e-9, "span": 1e-9, "hs": 1e-9, "garch": 1e-3}
FIELDS = ("equity", "maintenance", "notional", "slippage", "penalty", "bad_debt", "returned")


@pytest.fixture(scope="module")
def both(daily_dir: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(daily_dir, assets=("BTC", "ETH", "XRP"), policy="truncate",
                           start="2019-01-01", end="2021-12-31")
        book = generate_book(panel.assets, 20, seed=3)
        start, end = panel.date_index("2021-01-01"), panel.n_dates - 1
        models = [
            rm.get("fixed_haircut", imf=0.05, mmf=0.03, haircut=0.10, label="haircut"),
            rm.get("scenario_grid", psr_quantile=0.99, psr_horizon=2, psr_lookback=365, psr_floor=0.05,
                   recalibration="monthly", im_multiplier=1.1, label="span"),
            rm.get("historical_var", confidence=0.99, horizon=2, window=500, label="hs"),
            rm.get("garch", vol="garch", dist="t", horizon=2, refit_every=20, window_length=500,
                   min_history=250, n_jobs=1, label="garch"),
        ]
        res = run_models(panel, book, models, mpor=2, min_history=365, start=start, end=end,
                         # the reference implements each model's own maintenance margin (MM = IM for HS)
                         policy=LiquidationPolicy(maintenance_ratio=None), netting=False)
        refs = {"haircut": HaircutRef(), "span": SpanRef(), "hs": HistoricalRef(), "garch": GarchRef(window_length=500)}
        out = {k: run_model(ref, panel, book.collateral, book.positions, book.isolated, start, end)
               for k, ref in refs.items()}
    return {"rm": res, "ref": out}


@pytest.mark.parametrize("model", ["haircut", "span", "hs", "garch"])
def test_margin_path_agrees(both: dict, model: str) -> None:
    rm_res = both["rm"]
    a = rm_res.results[model].path.initial  # the evaluation window's rows
    full = both["ref"][model]["initial"]  # every date of the panel
    b = full[rm_res.start : rm_res.end + 1]
    assert np.isnan(full[: rm_res.start]).all()  # nothing priced before the window was dropped
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.isfinite(a).sum() > 1000  # the comparison is not vacuous
    # a result stores margins in float32 (MarginPath.stored: relative rounding <= 2**-24 = 6e-8);
    # the float64 margins behind it are compared at EXACT by the coverage counts and events below
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=max(EXACT[model], 1.2e-7), atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("model", ["haircut", "span", "hs", "garch"])
def test_coverage_counts_agree(both: dict, model: str) -> None:
    cov = both["rm"].results[model].coverage
    ref = both["ref"][model]
    assert (cov.n_obs, cov.n_exceptions) == (ref["n_obs"], ref["n_exceptions"])


@pytest.mark.parametrize("model", ["haircut", "span", "hs", "garch"])
def test_liquidation_events_agree(both: dict, model: str) -> None:
    ev = both["rm"].results[model].simulation.events
    ref = sorted(both["ref"][model]["simulation"].events, key=lambda e: (e["t"], e["account"]))
    assert len(ev) > 20
    assert [(int(e["account"]), int(e["t"]), int(e["trigger"])) for e in ev] == [
        (e["account"], e["t"], e["trigger"]) for e in ref
    ]
    for f in FIELDS:
        np.testing.assert_allclose(ev[f], [e[f] for e in ref], rtol=EVENT_RTOL[model], atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("model", ["haircut", "span", "hs", "garch"])
def test_daily_maintenance_agrees(both: dict, model: str) -> None:
    """The simulation's recorded maintenance (float32 in riskmodels) on every open (date, account)."""
    sim = both["rm"].results[model].simulation
    a = sim.maintenance.astype(np.float64)  # rows: the simulated dates
    full = both["ref"][model]["simulation"].maintenance
    b = full[sim.start : sim.end + 1]
    assert np.isnan(full[: sim.start]).all()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=max(EXACT[model], 1e-6), atol=1e-3, equal_nan=True)
