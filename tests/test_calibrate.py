"""Calibration: least-capital parameters against coverage, Kupiec and liquidation targets."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.calibrate import (
    EXAMPLE_CALIBRATE_TOML,
    Target,
    calibrate,
    calibrate_from_config,
    run_calibrate,
    single_asset_book,
)
from riskmodels.data.synthetic import synthetic_panel, true_quantile
from riskmodels.margin.haircut import FixedHaircut


def hday_losses(close: np.ndarray, h: int, start: int = 0) -> np.ndarray:
    """Loss of 1 USD of spot held from close t to close t+h (independent of the coverage module)."""
    c = np.asarray(close, dtype=float)
    t = np.arange(start, c.size - h)
    loss = 1.0 - c[t + h] / c[t]
    return loss[np.isfinite(loss)]


def breach_rate(loss: np.ndarray, haircut: float) -> float:
    return float(np.mean(loss > haircut))


def quantile_tolerance(p: float, n: int, density: float, h: int, n_sd: float = 4.0) -> float:
    """n_sd standard errors of the empirical p-quantile, inflated for overlapping windows.

    Asymptotic sd of a sample quantile: sqrt(p (1 - p) / n) / f(q) (van der Vaart 1998,
    *Asymptotic Statistics*, Cor. 21.5). With overlapping h-day windows the exceedance
    indicators are dependent over h - 1 lags; their long-run variance is at most
    (2h - 1) times the i.i.d. one (sum of |autocorrelations| <= 1 per lag), hence the factor.
    """
    return n_sd * math.sqrt((2 * h - 1) * p * (1 - p) / n) / density


# ----------------------------------------------------------------- analytic quantiles
def test_haircut_matches_normal_loss_quantile() -> None:
    """i.i.d. normal log returns (vol 3%, alpha=beta=0): the 1%-breach haircut over a 2-day
    MPOR is the 99% quantile of the 2-day simple loss, ``-(exp(vol sqrt(2) z_0.01) - 1)``
    (``true_quantile``). Tolerance: 4 sd of the empirical quantile for n ~ 50,000 (see
    ``quantile_tolerance``), about 0.005 on a quantile of 0.094.
    """
    vol, h, p, T = 0.03, 2, 0.01, 50_000
    panel = synthetic_panel(T, n_assets=1, seed=11, model="garch_normal", alpha=0.0, beta=0.0, vol=vol)
    res = calibrate(panel, "fixed_haircut", "haircut", Target("coverage", p), mpor=h, xtol=1e-5)
    q_log = true_quantile(p, vol=vol, horizon=h)
    analytic = -math.expm1(q_log)
    # density of the loss L = 1 - exp(r), r ~ N(0, 2 vol^2), at the quantile
    s = vol * math.sqrt(h)
    dens = stats.norm.pdf(q_log, scale=s) / math.exp(q_log)
    tol = quantile_tolerance(p, T - h, dens, h)
    row = res.rows[0]
    assert row.met and row.monotone
    assert abs(row.value - analytic) < tol, (row.value, analytic, tol)


def test_haircut_matches_student_t_loss_quantile() -> None:
    """i.i.d. standardised Student t (nu=4) returns, 1-day MPOR: the haircut is
    ``-(exp(q) - 1)`` with ``q = vol sqrt((nu-2)/nu) t_nu^{-1}(0.01)`` (true_quantile;
    McNeil, Frey & Embrechts 2005, sec. 3.2). Tolerance: 4 sd of the empirical quantile.
    """
    vol, nu, p, T = 0.03, 4.0, 0.01, 50_000
    panel = synthetic_panel(T, n_assets=1, seed=12, model="garch_t", alpha=0.0, beta=0.0, vol=vol, nu=nu)
    res = calibrate(panel, "fixed_haircut", "haircut", Target("coverage", p), mpor=1, xtol=1e-5)
    q_log = true_quantile(p, vol=vol, nu=nu)
    analytic = -math.expm1(q_log)
    scale = vol * math.sqrt((nu - 2) / nu)
    dens = stats.t.pdf(q_log / scale, nu) / scale / math.exp(q_log)
    tol = quantile_tolerance(p, T - 1, dens, 1)
    assert abs(res.rows[0].value - analytic) < tol, (res.rows[0].value, analytic, tol)


def test_haircut_is_the_empirical_order_statistic_and_least_capital() -> None:
    """The least h with #{L > h} <= p n is the (floor(p n) + 1)-th largest loss L_(k+1)
    (computed here with numpy from the closes): the result lies in [L_(k+1), L_(k+1) + xtol],
    meets the target, and the lower end of its bracket does not.
    """
    panel = synthetic_panel(3000, n_assets=2, seed=4, model="garch_t", vol=0.04)
    xtol = 1e-5
    res = calibrate(panel, "fixed_haircut", "haircut", Target("coverage", 0.01), mpor=2, xtol=xtol)
    for j, row in enumerate(res.rows):
        loss = hday_losses(panel.close[:, j], 2)
        k = int(np.floor(0.01 * loss.size))
        order_stat = np.sort(loss)[::-1][k]
        assert order_stat <= row.value <= order_stat + xtol
        assert breach_rate(loss, row.value) <= 0.01
        assert breach_rate(loss, row.bracket[0]) > 0.01
        assert row.bracket[1] - row.bracket[0] <= xtol
        assert row.capital == pytest.approx(row.value)  # IM / notional of a collateral-only account


# ----------------------------------------------------------------- other targets
def test_liquidation_target_matches_closed_form_threshold() -> None:
    """Collateral-only account, cushion k, close checks only, no re-entry. Opening equity is
    (1 + k) h x0 (loan of x0 - (1 + k) h x0), so at price ratio x the equity is
    (1 + k) h - 1 + x against maintenance h x: liquidated iff x < (1 - (1 + k) h) / (1 - h).
    Zero liquidations therefore needs h >= (1 - m) / (1 + k - m), m = min_t C_t / C_0
    (derived here from the simulation rules in riskmodels.backtest.simulation).
    """
    panel = synthetic_panel(300, n_assets=1, seed=21, model="garch_normal", alpha=0.0, beta=0.0, vol=0.04)
    k = 0.5
    pol = LiquidationPolicy(cushion=k, intraday=False, reentry_days=None)
    res = calibrate(panel, "fixed_haircut", "haircut", Target("liquidations", 0.0), policy=pol, mpor=1,
                    grid=5, xtol=1e-3)
    c = panel.close[:, 0]
    m = float(np.min(c[1:] / c[0]))
    closed_form = (1 - m) / (1 + k - m)
    row = res.rows[0]
    assert m < 1
    assert row.met and row.achieved == 0.0
    assert closed_form <= row.value <= closed_form + 1e-3 + 1e-12


def test_kupiec_target_accepts_a_rate_above_p_but_rejects_the_bracket() -> None:
    """One-sided Kupiec (1995) target: at the result the POF test is not rejected at 5%
    (or the rate is <= p), at the bracket's lower end the rate is above p and the LR statistic
    ``-2 [(n-x) ln(1-p) + x ln p - (n-x) ln(1-x/n) - x ln(x/n)]`` exceeds the chi2(1) 95%
    critical value 3.841, computed here by hand.
    """
    panel = synthetic_panel(4000, n_assets=1, seed=8, model="garch_normal", alpha=0.0, beta=0.0)
    p = 0.01
    res = calibrate(panel, "fixed_haircut", "haircut", Target("kupiec", p), mpor=1, xtol=1e-5)
    cov = calibrate(panel, "fixed_haircut", "haircut", Target("coverage", p), mpor=1, xtol=1e-5)
    loss = hday_losses(panel.close[:, 0], 1)
    n = loss.size

    def lr(h: float) -> tuple[float, float]:
        x = int(np.sum(loss > h))
        pi = x / n
        ll0 = (n - x) * math.log(1 - p) + x * math.log(p)
        ll1 = (n - x) * math.log(1 - pi) + (x * math.log(pi) if x else 0.0)
        return pi, -2 * (ll0 - ll1)

    rate, stat = lr(res.rows[0].value)
    assert rate <= p or stat <= stats.chi2.ppf(0.95, 1)
    rate_lo, stat_lo = lr(res.rows[0].bracket[0])
    assert rate_lo > p and stat_lo > 3.841
    assert res.rows[0].value <= cov.rows[0].value  # the test tolerates sampling noise above p


def test_non_monotone_metric_is_reported_and_grid_searched() -> None:
    """A parameter whose haircut is 0.3 |sin(8 x)| has a non-monotone breach rate: the result
    says so and returns the least-capital feasible grid point (checked against the grid).
    """
    panel = synthetic_panel(1500, n_assets=1, seed=2, model="garch_normal", alpha=0.0, beta=0.0)

    def wiggly(x: float, label: str | None = None) -> FixedHaircut:
        return FixedHaircut(haircut=0.3 * abs(math.sin(8 * x)), label=label)

    res = calibrate(panel, wiggly, "x", Target("coverage", 0.01), bounds=(0.0, 1.0), grid=21, mpor=1)
    row = res.rows[0]
    assert not row.monotone and not res.monotone
    assert "not monotone" in row.note
    g = res.grid
    feasible = g[g["met"]]
    assert row.value == feasible.loc[feasible["capital"].idxmin(), "value"]
    assert "not monotone" in str(res)


def test_discrete_values_and_tie() -> None:
    """Discrete candidates: the least-capital feasible candidate; ``tie`` sets mmf = 0.6 x imf."""
    panel = synthetic_panel(800, n_assets=1, seed=3, model="garch_normal", alpha=0.0, beta=0.0)
    res = calibrate(panel, "fixed_haircut", "imf", Target("coverage", 0.01), book="long_short",
                    values=[0.02, 0.05, 0.08, 0.12, 0.2], mpor=1)
    loss_long = hday_losses(panel.close[:, 0], 1)
    rate = lambda h: (np.sum(loss_long > h) + np.sum(-loss_long > h)) / (2 * loss_long.size)  # noqa: E731
    ok = [v for v in [0.02, 0.05, 0.08, 0.12, 0.2] if rate(v) <= 0.01]
    assert res.rows[0].value == min(ok)
    assert res.settings["tie"] == {"mmf": 0.6}


# ----------------------------------------------------------------- errors and layout
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "speed"}, "kind"),
        ({"kind": "coverage", "value": 1.5}, "value"),
        ({"kind": "liquidations", "value": -1}, "value"),
        ({"kind": "kupiec", "level": 0}, "level"),
        ({"kind": "coverage", "side": "up"}, "side"),
    ],
)
def test_bad_targets_name_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Target(**kwargs)


def test_bad_calibration_arguments() -> None:
    panel = synthetic_panel(100, n_assets=1, seed=0)
    with pytest.raises(ValueError, match="bounds"):
        calibrate(panel, "fixed_haircut", "haircut", bounds=(0.5, 0.1))
    with pytest.raises(ValueError, match="no default bounds"):
        calibrate(panel, "fixed_haircut", "hedge_rate")
    with pytest.raises(ValueError, match="grid"):
        calibrate(panel, "fixed_haircut", "haircut", grid=2)
    with pytest.raises(KeyError, match="unknown margin model"):
        calibrate(panel, "no_such_model", "haircut")
    with pytest.raises(ValueError, match="single-account"):
        calibrate(panel, "fixed_haircut", "imf", Target("kupiec", 0.01), book="long_short")
    with pytest.raises(ValueError, match="book"):
        single_asset_book("S0", "sideways")


def test_example_config_runs_and_frames(tmp_path) -> None:
    """The documented [calibrate] example parses and runs (on a synthetic panel with its assets)."""
    import tomllib

    from riskmodels.calibrate import parse_doc
    from riskmodels.config import SECTIONS, default_config, merge, validate_config

    doc = tomllib.loads(EXAMPLE_CALIBRATE_TOML)
    cfg, sec = parse_doc(doc, "calibrate", SECTIONS, default_config, merge, validate_config)
    panel = synthetic_panel(1500, assets=("BTC", "ETH", "SOL"), seed=9, start="2017-01-01")
    res = calibrate_from_config(cfg, sec, panel)
    df = res.to_frame()
    assert list(df["asset"]) == ["BTC", "ETH", "SOL"]
    assert df["met"].all() and df["monotone"].all()
    assert set(res.params()) == {"BTC", "ETH", "SOL"}
    assert "haircut" in str(res)


# ----------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_data_per_asset_haircuts_via_cli(daily_dir, tmp_path) -> None:
    """``riskmodels calibrate`` on BTC, ETH, SOL (2020+, MPOR 2): each calibrated haircut gives
    a breach rate <= 1% and the bracket's lower end (xtol less) breaks it, checked against 2-day
    losses computed here from the CSV closes with pandas (an independent route).
    """
    cfg = tmp_path / "calib.toml"
    cfg.write_text(EXAMPLE_CALIBRATE_TOML, encoding="utf-8")
    out = tmp_path / "out"
    args = argparse.Namespace(config=str(cfg), data=str(daily_dir.parent), out=str(out), quiet=True, offline=True)
    assert run_calibrate(args) == 0
    res = pd.read_csv(out / "calibration.csv")
    assert list(res["asset"]) == ["BTC", "ETH", "SOL"]
    for _, row in res.iterrows():
        px = pd.read_csv(daily_dir / f"{row['asset']}-USD_1d.csv", parse_dates=["datetime"]).set_index("datetime")
        close = px["close"].sort_index()
        loss = 1.0 - close.shift(-2) / close
        loss = loss[loss.index >= "2020-01-01"].dropna().to_numpy()
        assert breach_rate(loss, row["haircut"]) <= 0.01
        assert breach_rate(loss, row["bracket_lo"]) > 0.01
        assert row["haircut"] - row["bracket_lo"] <= 1e-4 + 1e-12
    assert (out / "calibration.json").exists() and (out / "grid.csv").exists()
