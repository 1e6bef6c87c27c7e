"""No look-ahead, for every registered model: perturb every price after t and
check that margins and all simulation events up to t are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_walk_panel

from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.data.panel import PricePanel
from riskmodels.margin import available, get
from riskmodels.portfolio import generate_book

_INNER = {"name": "historical_var", "window": 60, "min_history": 60}
# small, fast parameters for every registered model; a new model must be added here
SPECS: dict[str, list[dict]] = {
    "fixed_haircut": [{}, {"position_tiers": {"default": [[0, 0.05, 0.03], [50_000, 0.1, 0.05]]}}],
    "scenario_grid": [{"psr_lookback": 60, "psr_min_obs": 20, "recalibration": "monthly"}],
    "deribit_pm": [{}],
    "derive_pm": [{}],
    "historical_var": [{"window": 60, "min_history": 60}],
    "garch": [{"refit_every": 40, "window_length": 150, "min_history": 120, "n_jobs": 1}],
    "ewma": [{}],
    "filtered_hs": [{"window": 60, "min_history": 100}],
    "age_weighted_hs": [{"window": 60, "min_history": 60, "brw_decay": 0.97}],
    "apc_buffer": [{"inner": _INNER, "history": 60}],
    "apc_speed_limit": [{"inner": _INNER, "n_days": 10, "max_increase": 0.3, "history": 60}],
    "apc_floor": [{"inner": _INNER, "lookback_days": 250}],
    "apc_stress_weight": [{"inner": _INNER, "stress_windows": [["2020-02-01", "2020-03-01"]]}],
    "concentration": [{"inner": _INNER, "law": "sqrt", "capacity_fraction": 100.0, "coef": 0.01},
                      {"inner": _INNER, "law": "tiers", "basis": "usd", "tiers": [[0, 0], [20_000, 0.1]]}],
}


def perturbed(panel: PricePanel, t: int, seed: int = 5) -> PricePanel:
    rng = np.random.default_rng(seed)
    close = panel.close.copy()
    close[t + 1 :] *= np.exp(0.3 * rng.standard_normal(close[t + 1 :].shape))
    return panel.with_close(close)


def cases() -> list[tuple[str, dict]]:
    out = []
    for name in available():
        for params in SPECS.get(name, [None]):
            out.append((name, params))
    return out


@pytest.mark.parametrize(("name", "params"), cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_lookahead(name: str, params: dict | None) -> None:
    if params is None:
        pytest.fail(f"model {name!r} has no look-ahead spec: add small parameters to SPECS")
    model = get(name, **params)
    panel = random_walk_panel(320, 3, seed=11, vol=0.04)
    t = 260
    other = perturbed(panel, t)
    assert not np.allclose(other.close[t + 1 :], panel.close[t + 1 :])
    book = generate_book(panel.assets, 30, seed=4)
    a = model.fit(panel)
    b = model.fit(other)
    pa, pb = a.path(book), b.path(book)
    np.testing.assert_array_equal(pa.initial[: t + 1], pb.initial[: t + 1])
    np.testing.assert_array_equal(pa.maintenance[: t + 1], pb.maintenance[: t + 1])
    pol = LiquidationPolicy(cushion=0.1, reentry_days=2)
    start = model.min_history + 5
    sa = simulate_accounts(a, book, pol, start=start, asset_ok=panel.eligible(model.min_history))
    sb = simulate_accounts(b, book, pol, start=start, asset_ok=panel.eligible(model.min_history))
    ea, eb = sa.events[sa.events["t"] <= t], sb.events[sb.events["t"] <= t]
    np.testing.assert_array_equal(ea, eb)
    upto = sa.row(t) + 1  # the daily state's rows start at the first simulated date
    assert np.isfinite(sa.equity[:upto]).any()  # not vacuous
    np.testing.assert_array_equal(sa.equity[:upto], sb.equity[:upto])
    np.testing.assert_array_equal(sa.maintenance[:upto], sb.maintenance[:upto])
