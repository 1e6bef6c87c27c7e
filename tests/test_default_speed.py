"""The default backtest's speed-ups give the same numbers as the plain ways they replace.

Each shortcut (issue 23, benchmarks/README.md "Default backtest profile") is
checked against the computation it replaces, written out here independently:

* ``FittedMargin.account_requirement`` with every account isolated skips the
  cross requirement: equal to each account's own isolated requirement and to
  the mixed-book path (an extra cross-margined account forces the old branch);
* ``FittedGarch.path`` of an all-isolated book skips the quadratic form: equal
  to the stand-alone sum ``sum_a |x_a| sigma_a q_a(side)`` written out here;
* the tiered haircut fills its brackets once for IM and MM: equal to the
  bracket formula of METHODOLOGY.md 2.2 per element (Binance example: 110M at
  0% to 100M and 2.5% above is 0.25M);
* ``BacktestResult.margin_paths`` built from integer codes: equal (values,
  dtypes, category order) to the per-model string frames concatenated;
* the engine runs each model with numba on one thread and restores the
  caller's thread count; the numbers do not depend on it.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest.engine import run_models
from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.margin import FixedHaircut
from riskmodels.margin.base import get
from riskmodels.margin.haircut import bracket_charge
from riskmodels.portfolio import Book, generate_book

pytestmark = pytest.mark.filterwarnings("ignore::riskmodels.margin.garch_fit.GarchEstimationWarning")

PANEL = random_walk_panel(T=420, A=3, seed=3)
MODELS = [
    ("fixed_haircut", {"imf": 0.05, "mmf": 0.03, "haircut": 0.1}),
    ("scenario_grid", {"psr_lookback": 100, "recalibration": "monthly"}),
    ("deribit_pm", {"price_range": 0.16, "n_buckets": 9}),
    ("fixed_haircut", {"imf": 0.05, "mmf": 0.03, "haircut": 0.1, "position_tiers": {
        "default": [[0, 0.05, 0.03], [100_000, 0.10, 0.05], [500_000, 0.20, 0.10]]}}),
    ("historical_var", {"window": 100, "horizon": 2}),
    ("filtered_hs", {"window": 100, "horizon": 2}),
    ("garch", {"vol": "garch", "dist": "t", "horizon": 2, "refit_every": 50, "min_history": 200, "n_jobs": 1}),
    ("ewma", {"horizon": 2, "min_history": 200}),
]


def _book(n: int, isolated: bool) -> Book:
    b = generate_book(PANEL.assets, n, seed=11, collateral_assets=("A0",))
    return Book(b.assets, b.collateral, b.positions, b.cash, np.full(n, isolated), b.account_ids)


@pytest.mark.parametrize(("name", "params"), MODELS, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODELS)])
def test_all_isolated_requirement_is_the_isolated_one(name, params):
    fitted = apply_rule(get(name, **params).fit(PANEL), 1 / 1.1)
    book = _book(40, True)
    t = PANEL.n_dates - 5
    got = fitted.account_requirement(t, book.collateral, book.positions, book.isolated)
    want = fitted.isolated_requirement(t, book.collateral, book.positions)
    np.testing.assert_array_equal(got.initial, want.initial)
    np.testing.assert_array_equal(got.maintenance, want.maintenance)
    # the mixed branch (one extra cross-margined account) gives the same isolated rows
    c = np.vstack([book.collateral, book.collateral[:1]])
    p = np.vstack([book.positions, book.positions[:1]])
    mixed = fitted.account_requirement(t, c, p, np.append(book.isolated, False))
    np.testing.assert_array_equal(mixed.maintenance[:-1], got.maintenance)
    # each account alone
    for i in (0, 7, 39):
        one = fitted.isolated_requirement(t, book.collateral[i : i + 1], book.positions[i : i + 1])
        np.testing.assert_allclose(got.maintenance[i], one.maintenance[0], rtol=1e-12)


@pytest.mark.parametrize("name", ["garch", "ewma"])
def test_garch_all_isolated_path_is_the_standalone_sum(name):
    params = dict(MODELS)[name]
    fitted = get(name, **params).fit(PANEL)
    book = _book(25, True)
    path = fitted.path(book)
    T = PANEL.n_dates
    rows = np.flatnonzero(path.eligible.any(axis=1))
    assert rows.size > 50
    for t in rows[::37]:
        sig, qp, qn = fitted.sigma_h[t], fitted._qpos[t], fitted._qneg[t]
        c, p = book.collateral, book.positions
        want = (c * sig * qp).sum(1) + np.where(p > 0, p * sig * qp, 0).sum(1) + np.where(p < 0, -p * sig * qn, 0).sum(1)
        ok = path.eligible[t]
        np.testing.assert_allclose(path.maintenance[t, ok], want[ok], rtol=1e-12)
    # and equal to the columns of a mixed book (the branch that also prices the cross requirement)
    mixed = Book(book.assets, np.vstack([book.collateral, book.collateral[:1]]),
                 np.vstack([book.positions, book.positions[:1]]), np.append(book.cash, 0.0),
                 np.append(book.isolated, False), (*book.account_ids, "cross"))
    np.testing.assert_array_equal(fitted.path(mixed).maintenance[:, :-1], path.maintenance)
    assert path.maintenance.shape == (T, 25)


TIERS = {"default": [[0, 0.05, 0.03], [100_000, 0.10, 0.05], [500_000, 0.20, 0.10]]}


def _brackets_by_hand(x: float, rates: list[float]) -> float:
    bounds = [0.0, 100_000.0, 500_000.0, np.inf]
    return sum(r * min(max(x - lo, 0.0), hi - lo) for r, lo, hi in zip(rates, bounds[:-1], bounds[1:], strict=True))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-2e6, 2e6, allow_nan=False), min_size=3, max_size=3),
       st.lists(st.floats(0, 2e6, allow_nan=False), min_size=3, max_size=3))
def test_tiered_haircut_charges_by_hand(pos, coll):
    fitted = FixedHaircut(imf=0.05, mmf=0.03, haircut=0.1, position_tiers=TIERS).fit(PANEL)
    c, p = np.array([coll]), np.array([pos])
    req = fitted.isolated_requirement(0, c, p)  # no netting: every amount charged on its own
    im = sum(0.1 * coll[a] + _brackets_by_hand(abs(pos[a]), [0.05, 0.10, 0.20]) for a in range(3))
    mm = sum(0.1 * coll[a] + _brackets_by_hand(abs(pos[a]), [0.03, 0.05, 0.10]) for a in range(3))
    assert req.initial[0] == pytest.approx(im, rel=1e-12, abs=1e-9)
    assert req.maintenance[0] == pytest.approx(mm, rel=1e-12, abs=1e-9)
    # the two charges are exactly the per-rate bracket charges the old code computed one by one
    n = np.abs(p)
    got_im, got_mm = fitted._position_charges(n)
    tab = np.asarray(TIERS["default"], dtype=float)
    np.testing.assert_array_equal(got_im, bracket_charge(n, tab[:, 0], tab[:, 1]))
    np.testing.assert_array_equal(got_mm, bracket_charge(n, tab[:, 0], tab[:, 2]))


def test_binance_bracket_example():
    """METHODOLOGY.md 2.2: 110M at 0% to 100M and 2.5% above -> 0.25M."""
    assert bracket_charge(np.array([110e6]), np.array([0.0, 100e6]), np.array([0.0, 0.025]))[0] == pytest.approx(0.25e6)


def _small_result(n_jobs: int = 1):
    book = generate_book(PANEL.assets, 30, seed=5, isolated_share=0.3)
    models = [get("fixed_haircut", label="hc", imf=0.05, mmf=0.03),
              get("historical_var", label="HS", window=100, horizon=2),
              get("filtered_hs", label="FHS", window=100, horizon=2)]
    return run_models(PANEL, book, models, min_history=120, start=200, policy=LiquidationPolicy(), n_jobs=n_jobs)


def test_margin_paths_from_codes_equal_the_string_frames():
    res = _small_result()
    got = res.margin_paths()
    want = res._margin_paths_frames()
    pd.testing.assert_frame_equal(got, want, check_categorical=True)
    assert list(got["account"].cat.categories) == sorted(got["account"].astype(str).unique())
    assert list(got["model"].cat.categories) == ["FHS", "HS", "hc"]
    # an independent count: one row per eligible cell of each model
    assert len(got) == sum(int(r.path.eligible.sum()) for r in res.results.values())


def test_engine_numba_threads_restored_and_numbers_unchanged(monkeypatch):
    before = numba.get_num_threads()
    res = _small_result()
    assert numba.get_num_threads() == before
    # the FHS path on the parallel kernel (the caller's threads) gives the same margins
    from riskmodels.backtest.engine import _window_path
    from riskmodels.margin import _quantile_columns

    # tail_columns reads PARALLEL_COLUMNS in _quantile_columns (moved there from _quantile)
    monkeypatch.setattr(_quantile_columns, "PARALLEL_COLUMNS", 1)  # every per-date tail on the parallel kernel
    fhs = res.results["FHS"]
    fitted = apply_rule(fhs.model.fit(PANEL), LiquidationPolicy().maintenance_ratio)
    ok = fhs.path.eligible
    elig = np.zeros((PANEL.n_dates, ok.shape[1]), dtype=bool)
    elig[res.start : res.end + 1] = ok
    path, _ = _window_path(fitted, PANEL, res.book.align(PANEL.assets), elig, res.start, res.end, 2, "initial")
    np.testing.assert_array_equal(path.initial, fhs.path.initial)


def _boot_reference(x: np.ndarray, n: np.ndarray, p: float, h: int, n_boot: int, seed: int) -> tuple[float, float]:
    """The studentised moving-block bootstrap of ``verdict.exceedance_z`` written as a loop over resamples."""
    from riskmodels.backtest.verdict import block_length

    keep = n > 0
    d = (x - p * n)[keep].astype(float)
    T = d.size

    def hh(v: np.ndarray) -> float:
        v = v - v.mean()
        lag0 = float(np.dot(v, v))
        var = lag0 + sum(2.0 * float(np.dot(v[:-k], v[k:])) for k in range(1, h) if k < T)
        return var if var > 0 else lag0

    z = d.sum() / np.sqrt(hh(d))
    b = min(block_length(T, h), T)
    k = -(-T // b)
    starts = np.random.default_rng(seed).integers(0, T - b + 1, size=(n_boot, k))
    zs = []
    for row in starts:
        s = np.concatenate([d[a : a + b] for a in row])[:T]
        v = hh(s)
        if v > 0:
            zs.append((s.sum() - d.sum()) / np.sqrt(v))
    zs = np.array(zs)
    upper = (1 + np.sum(zs >= z)) / (1 + zs.size)
    lower = (1 + np.sum(zs <= z)) / (1 + zs.size)
    return float(z), float(min(1.0, 2 * min(upper, lower)))


def test_verdict_bootstrap_equals_the_loop_and_reuses_its_resamples():
    from riskmodels.backtest import verdict

    rng = np.random.default_rng(8)
    n = rng.integers(0, 400, size=700)
    x = rng.binomial(n, 0.012)
    for h in (1, 2, 3):
        z, pv = verdict.exceedance_z(x, n, 0.01, h, n_boot=199, seed=4)
        zr, pr = _boot_reference(x, n, 0.01, h, 199, 4)
        assert z == pytest.approx(zr, rel=1e-12)
        assert pv == pytest.approx(pr, abs=2.0 / 200)  # equal but for a tie decided by rounding
        again = verdict.exceedance_z(x, n, 0.01, h, n_boot=199, seed=4)  # the kept resamples
        assert again == (z, pv)
    starts = verdict._boot_starts(10, 3, 4, 0)  # kept: read-only, one start per block of 3 dates
    assert not starts.flags.writeable and starts.shape == (4, 4)
    assert verdict._boot_index(10, 3, 4, 0).shape == (4, 10)
