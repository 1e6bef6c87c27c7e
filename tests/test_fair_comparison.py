"""Issue 22: one declared liquidation rule, a valid verdict, bounded models, honest windows."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import riskmodels.margin as margin
from riskmodels.backtest.engine import run_models
from riskmodels.backtest.mm_rule import DeclaredMaintenance, apply_rule, maintenance_rule
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.backtest.verdict import coverage_verdict, daily_counts, exceedance_z, side_masks
from riskmodels.config import liquidation_policy, load_config
from riskmodels.portfolio import Book, generate_book
from tests.conftest import make_panel, random_walk_panel

# ----------------------------------------------------------------- item 1: the declared rule


def test_declared_rule_sets_mm_to_ratio_times_im_for_risk_models_only() -> None:
    panel = random_walk_panel(T=300, A=3, seed=1)
    book = generate_book(panel.assets, 30, seed=2, collateral_assets=("A0",))
    hs = margin.get("historical_var", window=100, label="hs")
    hc = margin.get("fixed_haircut", imf=0.1, mmf=0.05, label="hc")
    f_hs = apply_rule(hs.fit(panel), 0.8)
    f_hc = apply_rule(hc.fit(panel), 0.8)
    assert isinstance(f_hs, DeclaredMaintenance) and not isinstance(f_hc, DeclaredMaintenance)
    t = 250
    raw = hs.fit(panel).requirement(t, book.collateral, book.positions)
    req = f_hs.requirement(t, book.collateral, book.positions)
    np.testing.assert_array_equal(req.initial, raw.initial)
    np.testing.assert_allclose(req.maintenance, 0.8 * raw.initial)
    path = f_hs.path(book)
    np.testing.assert_allclose(path.maintenance, 0.8 * path.initial)
    # the simulation's exact intraday skip bound scales with the rule (IM = MM for HS here), >= 1 for the cap
    np.testing.assert_allclose(f_hs.maintenance_lipschitz(t), np.maximum(0.8 * hs.fit(panel).maintenance_lipschitz(t), 1))
    assert maintenance_rule(hs, 0.8) == "MM = 0.800 x IM (declared)"
    assert maintenance_rule(hc, 0.8) == "own: MMF 0.05 / IMF 0.1"
    assert maintenance_rule(margin.get("garch", vol="ewma", horizon=2), None) == "own: MM = IM / 1.1"
    tiered = margin.get("fixed_haircut", position_tiers={"default": [[0, 0.05, 0.03], [1e5, 0.1, 0.05]]})
    assert maintenance_rule(tiered, 0.8) == "own: tiered MMF/IMF"
    wrapped = margin.get("apc_buffer", inner={"name": "fixed_haircut"})
    assert maintenance_rule(wrapped, 0.8).startswith("own:")


def test_maintenance_ratio_config_key_is_validated_and_model_keeps_own() -> None:
    assert liquidation_policy(load_config()).maintenance_ratio == pytest.approx(1 / 1.1)
    assert load_config(overrides={"liquidation": {"maintenance_ratio": "model"}})["liquidation"]
    assert liquidation_policy({"liquidation": {"maintenance_ratio": "model"}}).maintenance_ratio is None
    for bad in (0.0, 1.5, -1, "x", True):
        with pytest.raises(ValueError, match="maintenance_ratio"):
            LiquidationPolicy(maintenance_ratio=bad)  # type: ignore[arg-type]


def test_every_comparison_row_states_its_rule_and_the_ratio_moves_only_risk_rows() -> None:
    panel = random_walk_panel(T=500, A=3, seed=4, vol=0.04)
    book = generate_book(panel.assets, 60, seed=5, collateral_assets=("A0",))
    models = [margin.get("fixed_haircut", imf=0.1, mmf=0.05, label="hc"),
              margin.get("historical_var", window=100, label="hs")]
    runs = {r: run_models(panel, book, models, min_history=120, start=150,
                          policy=LiquidationPolicy(maintenance_ratio=r)) for r in (0.5, 1.0)}
    for r, res in runs.items():
        assert res.summary().to_frame()["mm rule"].tolist() == ["own: MMF 0.05 / IMF 0.1", f"MM = {r:.3f} x IM (declared)"]
    # haircut row: identical under both ratios; HS row: lower MM -> fewer liquidations
    ev = {r: res.results["hc"].simulation.events for r, res in runs.items()}
    np.testing.assert_array_equal(ev[0.5], ev[1.0])
    n = {r: len(res.results["hs"].simulation.liquidations) for r, res in runs.items()}
    assert n[0.5] < n[1.0]


# ----------------------------------------------------------------- item 2: the verdict


def test_exceedance_z_matches_a_hand_computation() -> None:
    """Z = sum(d) / sqrt(sum d^2 + 2 sum d_t d_{t+1}) for h = 2 (Hansen & Hodrick 1980), demeaned variance."""
    rng = np.random.default_rng(0)
    n = rng.integers(50, 100, 400)
    x = rng.binomial(n, 0.02)
    d = x - 0.01 * n
    e = d - d.mean()
    v = sum(e[i] ** 2 for i in range(len(e))) + 2 * sum(e[i] * e[i + 1] for i in range(len(e) - 1))
    z, p = exceedance_z(x, n, 0.01, 2, n_boot=0)
    assert z == pytest.approx(d.sum() / math.sqrt(v))
    assert p == pytest.approx(2 * stats.norm.sf(abs(z)))
    z1, p1 = exceedance_z(x, n, 0.01, 2)
    assert z1 == pytest.approx(z) and 0 < p1 < 0.01  # 2% observed vs 1%: rejected
    assert exceedance_z(x, n, 0.01, 2) == (z1, p1)  # seeded: reproducible


def test_daily_counts_and_side_masks_count_cells_per_side() -> None:
    exc = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=bool)
    ok = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=bool)
    X, N = daily_counts(exc, ok, side_masks(np.array([1, -1, 1])))
    np.testing.assert_array_equal(X, [[2, 2, 0], [0, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(N, [[3, 2, 1], [2, 2, 0], [2, 1, 1]])


def _one_factor_world(seed: int, scale: float, T: int = 1500, P: int = 400) -> tuple[np.ndarray, ...]:
    """Accounts exposed to one common t-distributed factor (strong dependence), h = 1, true quantile known."""
    rng = np.random.default_rng(seed)
    f = stats.t.rvs(4, size=T, random_state=rng)
    e = stats.t.rvs(4, size=(T, P), random_state=rng)
    side = np.where(rng.random(P) < 0.6, 1, -1)
    loss = -side * (0.9 * f[:, None] + math.sqrt(1 - 0.81) * e)
    q = np.quantile(-side[0] * (0.9 * stats.t.rvs(4, size=400_000, random_state=np.random.default_rng(1))
                                + math.sqrt(0.19) * stats.t.rvs(4, size=400_000, random_state=np.random.default_rng(2))), 0.99)
    valid = np.ones((T, P), dtype=bool)
    return loss > scale * abs(q), valid, side


def test_verdict_tells_a_bad_model_from_a_good_one_where_the_pooled_test_cannot() -> None:
    exc, ok, side = _one_factor_world(0, 1.0)
    good = coverage_verdict(exc, ok, side, 0.01, 1)
    exc_b, ok_b, side_b = _one_factor_world(0, 0.7)
    bad = coverage_verdict(exc_b, ok_b, side_b, 0.01, 1)
    assert good.verdict == "adequate" and bad.verdict.startswith("under-margined")
    assert good.tests["combined"].cells == ok.sum() and 0.005 < good.tests["combined"].rate < 0.02


@pytest.mark.slow
def test_verdict_size_and_power_on_the_synthetic_generator() -> None:
    """Smaller version of benchmarks/verdict_size.py (README): 1,000 accounts, 2,608 dates, 40 seeds.

    True quantile: at most 6 of 40 rejections (P(X >= 7 | 5%) = 1.4%); 0.8 x quantile:
    at least 36 of 40.
    """
    from benchmarks.verdict_size import simulate_seed, sum_t_quantile

    q2 = sum_t_quantile(0.99, 5.0)
    rej = {1.0: 0, 0.8: 0}
    seeds = 40
    for seed in range(1000, 1000 + seeds):
        res = simulate_seed(seed, n_accounts=1000, n_dates=2608, scales=(1.0, 0.8), q2=q2)
        for c in rej:
            rej[c] += res[c][0]
    assert rej[1.0] <= 6, rej
    assert rej[0.8] >= 36, rej


def test_sum_t_quantile_matches_monte_carlo() -> None:
    from benchmarks.verdict_size import sum_t_quantile

    rng = np.random.default_rng(0)
    z = stats.t.rvs(5, size=(2_000_000, 2), random_state=rng) * math.sqrt(3 / 5)
    assert sum_t_quantile(0.99, 5.0) == pytest.approx(np.quantile(z.sum(axis=1), 0.99), rel=5e-3)


# ----------------------------------------------------------------- item 3: bounded models


def _jump_panel(constant: bool = True) -> object:
    """A calm asset that jumps +355% one day (the DOGE 2021-01-28 shape) next to two random walks."""
    rng = np.random.default_rng(7)
    T = 700
    r = 0.01 * rng.standard_normal((T, 3))
    r[0] = 0
    r[600, 0] = math.log(4.55)
    r[601:, 0] *= 8  # and stays volatile
    close = 100 * np.exp(np.cumsum(r, axis=0))
    if constant:
        close[:, 2] = np.where(np.arange(T) < 300, 50.0, close[:, 2])  # constant price for 300 days
    return make_panel(close, spread=0.02)


def test_fhs_ratio_cap_bounds_the_scenarios_and_prices_constant_price_assets() -> None:
    panel = _jump_panel()
    capped = margin.get("filtered_hs", window=250, max_vol_ratio=3.0).fit(panel)
    free = margin.get("filtered_hs", window=250, max_vol_ratio=None).fit(panel)
    t = 603
    short = np.array([[0.0, 0.0, 0.0]]), np.array([[-1.0, 0.0, 0.0]])
    im_c = capped.requirement(t, *short).initial[0]
    im_f = free.requirement(t, *short).initial[0]
    # independent bound: the largest scenario up-move at most 3x its own log return
    g = capped.R[t - 249 : t + 1, 0]
    assert im_c <= np.expm1(3.0 * np.nanmax(g)) + 1e-12
    assert im_f > im_c
    ratio = capped.vol_ratio(t, t - 249)
    assert np.nanmax(ratio) <= 3.0 and np.nanmin(ratio) >= 1 / 3
    # constant price (zero EWMA volatility): the capped model prices it, the textbook one does not
    t0 = 400  # window reaches into the constant stretch
    x = np.array([[0.0, 0.0, 1.0]])
    assert np.isfinite(capped.requirement(t0, x, 0 * x).initial[0])
    assert np.isnan(free.requirement(t0, x, 0 * x).initial[0])


def _models_for_property() -> dict[str, object]:
    out = {}
    for name in margin.available():
        if name.startswith("apc_") or name == "concentration":  # wrappers around an inner model
            m = margin.get(name, inner={"name": "historical_var", "window": 100})
        elif name in ("historical_var", "filtered_hs", "age_weighted_hs"):
            m = margin.get(name, window=100)
        elif name == "scenario_grid":
            m = margin.get(name, psr_lookback=100)
        elif name == "garch":
            m = margin.get(name, vol="garch", refit_every=200, n_jobs=1)
        else:
            m = margin.get(name)
        out[name] = m
    return out


_FITTED: dict[str, object] = {}


def _fitted(name: str) -> object:
    """The model as the comparison runs it (:func:`apply_rule`: bounded IM, declared MM) on the jump panel."""
    if name not in _FITTED:
        panel = _jump_panel(constant=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITTED[name] = apply_rule(_models_for_property()[name].fit(panel), 1 / 1.1)
    return _FITTED[name]


@pytest.mark.parametrize("name", margin.available())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_im_of_a_long_book_never_exceeds_its_gross_value(name: str, data: st.DataObject) -> None:
    """For every registered model: a long-only spot or long-perp book can lose at most its value.

    The panel has a +355% day and a volatility regime 8x the calm one (the DOGE
    January 2021 shape), where the grid's scan range and GARCH's quantile pass 100%.
    """
    fitted = _fitted(name)
    t = data.draw(st.integers(420, 699))
    amounts = np.array([data.draw(st.floats(0, 1e6)) for _ in range(3)])[None, :]
    kind = data.draw(st.sampled_from(["spot", "perp", "both"]))
    coll = amounts if kind in ("spot", "both") else 0 * amounts
    pos = amounts if kind in ("perp", "both") else 0 * amounts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        req = fitted.requirement(t, coll, pos)
    gross = float(coll.sum() + pos.sum())
    im = req.initial[0]
    if np.isfinite(im):
        assert im <= gross * (1 + 1e-9) + 1e-9, (name, kind, t, im, gross)
        assert im >= 0


# ----------------------------------------------------------------- item 3-4: common cells, windows


def test_comparison_uses_cells_all_models_price_and_states_the_dropped() -> None:
    panel = _jump_panel()
    book = Book(panel.assets, np.zeros((3, 3)), np.array([[1e4, 0, 0], [0, 1e4, 0], [0, 0, 1e4]]),
                np.zeros(3), np.zeros(3, dtype=bool), ("a", "b", "c"))
    models = [margin.get("historical_var", window=100, label="hs"),
              margin.get("filtered_hs", window=100, max_vol_ratio=None, label="fhs raw")]
    res = run_models(panel, book, models, min_history=150, start=200, netting=False)
    hs, fhs = res.results["hs"].coverage, res.results["fhs raw"].coverage
    assert hs.valid is fhs.valid  # one shared mask
    assert res.common["unpriced"]["fhs raw"]["cells"] > 0 and "C" not in res.common["unpriced"]["fhs raw"]["reason"]
    assert "A2" in res.common["unpriced"]["fhs raw"]["reason"]
    assert res.common["cells"] == int(hs.valid.sum())
    f = res.window_facts()
    ok = res.results["hs"].path.eligible
    first = res.panel.dates[200 + int(np.argmax(ok.any(axis=1)))]
    assert f["first_priced_date"] == str(first.date())
    assert f["priced_account_days"] == res.common["cells"]
    assert "account-days priced by every model" in res.summary().title


def test_the_bound_is_what_keeps_raw_models_within_the_book_value() -> None:
    """Not vacuous: on the jump panel the raw grid asks a long spot book for more than its value."""
    panel = _jump_panel(constant=False)
    raw = margin.get("scenario_grid", psr_lookback=100).fit(panel)
    x, z = np.array([[1.0, 0.0, 0.0]]), np.zeros((1, 3))
    assert raw.requirement(601, x, z).initial[0] > 1.0
    req = apply_rule(raw, 1 / 1.1).requirement(601, x, z)
    assert req.initial[0] == pytest.approx(1.0) and req.maintenance[0] == pytest.approx(1 / 1.1)
    # a book with a net short is not capped (it can lose without bound)
    xs = np.array([[1.0, -0.5, 0.0]])
    assert apply_rule(raw, 1 / 1.1).requirement(601, xs, z).initial[0] == pytest.approx(raw.requirement(601, xs, z).initial[0])


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 12), a=st.integers(1, 20))
def test_max_loss_is_the_net_long_value_or_inf(seed: int, n: int, a: int) -> None:
    """``max_loss`` (numba) against its definition written out in numpy (mm_rule docstring)."""
    from riskmodels.backtest.mm_rule import max_loss

    rng = np.random.default_rng(seed)
    c = np.abs(rng.normal(0, 1e4, (n, a))) * (rng.random((n, a)) < 0.5)
    p = rng.normal(0, 1e4, (n, a)) * (rng.random((n, a)) < 0.3)
    c[rng.random((n, a)) < 0.05] = np.nan
    x = c + p
    want = np.where((x < 0).any(axis=1), np.inf, np.maximum(x, 0.0).sum(axis=1))
    np.testing.assert_allclose(max_loss(c, p), want, rtol=1e-14)
    assert max_loss(c[0], p[0]).shape == (1,) if n else True
