"""Replays of real days: paths, variants A/B/C, calibration, the crash-day suite.

Intraday paths from daily bars
------------------------------
* :func:`ohlc_path` -- open -> first extreme -> second extreme -> close,
  log-linear between the anchors, which sit at sub-steps ``round(S/3)`` and
  ``round(2S/3)`` for every asset (a common clock: crash days co-move). The
  order follows open vs close: a down day (close < open) visits the high
  first, an up day the low first.
* :func:`bridge_path` -- one seeded Brownian bridge shape shared by all
  assets, drawn from the open to the close and mapped monotonically so its
  minimum is the day's low and its maximum the high (the segment between
  open and close is left unchanged).

Replay variants (all reported)
------------------------------
* **A** price-taker on the observed path (no impact);
* **B** feedback on top of the observed path (the population's forced flow
  moves prices that already contain the real day's cascade: an upper bound);
* **C** de-cascaded: remove the impact of the *observed* liquidation volume
  from the observed path (:func:`decascade`) to estimate the exogenous path,
  then re-inject the simulated population's forced flow. ``C - A`` (log of
  the trough ratio) is the endogenous move the model attributes to the
  simulated cascade beyond the observed path.

Observed liquidations are aggregator figures and LOWER BOUNDS (Binance
reports at most one liquidation per symbol per second since mid-2021; on
19 May 2021 it showed ~$1B of > $8B). The observed flow of variant C is split
across assets by the reported shares (else by open interest) and across
sub-steps in proportion to each sub-step's adverse move; when the long share
is not reported, 0.8 is assumed on a down day (0.2 on an up day).

Market state: sub-step volatility = trailing ``lookback``-day standard
deviation of daily log returns / sqrt(S); sub-step volume = trailing mean
daily USD volume / S (both from days before the replayed day).

Modules: this one holds the replays, the calibration and the suites; the paths,
the market state and the de-cascade are in :mod:`riskmodels.cascade.paths`, the
crash days in :mod:`riskmodels.cascade.crash_days`, both importable from here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import ComparisonTable, comparison_table
from riskmodels.cascade.crash_days import BASE_RATE_LONG, BASE_RATE_SHORT, CRASH_DAYS, CrashDay
from riskmodels.cascade.engine import CascadeParams, CascadeResult, Population, run_cascade
from riskmodels.cascade.impact import ImpactModel, NoImpact
from riskmodels.cascade.paths import (
    bridge_path,
    day_path,
    decascade,
    market_state,
    observed_flow,
    ohlc_path,
)
from riskmodels.cascade.population import LeverageMixture, isolate, market_assets, seed_population
from riskmodels.margin.base import FittedMargin

__all__ = [
    "BASE_RATE_LONG",
    "BASE_RATE_SHORT",
    "CRASH_DAYS",
    "Calibration",
    "CrashDay",
    "DayReplay",
    "bridge_path",
    "calibrate_mixture",
    "calm_days",
    "calm_rates",
    "compare_methods",
    "crash_suite",
    "cross_vs_isolated",
    "decascade",
    "market_state",
    "observed_flow",
    "ohlc_path",
    "replay_day",
]


# --------------------------------------------------------------------------- replays
@dataclass(frozen=True, eq=False)
class DayReplay:
    """Variants A, B, C of one day for one margin model and population."""

    date: pd.Timestamp
    t: int
    model: str
    observed: np.ndarray
    exogenous_c: np.ndarray
    A: CascadeResult
    B: CascadeResult
    C: CascadeResult
    main_asset: int

    def endogenous_move(self) -> float:
        """C minus A: log(trough_C / trough_A) of the main (largest-OI) asset."""
        j = self.main_asset
        return float(np.log(self.C.trough[j] / self.A.trough[j]))

    def table(self) -> pd.DataFrame:
        rows = []
        for name in ("A", "B", "C"):
            r = getattr(self, name)
            rows.append({"variant": name, "model": self.model, **r.summary(),
                         "trough_move_main": float(r.log_move()[self.main_asset])})
        return pd.DataFrame(rows)


def replay_day(
    fitted: FittedMargin,
    population: Population,
    t: int,
    *,
    impact: ImpactModel,
    params: CascadeParams | None = None,
    n_substeps: int = 12,
    path: str = "ohlc",
    seed: int = 0,
    lookback: int = 30,
    day: CrashDay | None = None,
    ok: np.ndarray | None = None,
    variants: str = "ABC",
) -> DayReplay:
    """Replay day index ``t``: variants A, B and C (C needs ``day`` for the observed flow)."""
    params = params or CascadeParams()
    ok = market_assets(fitted, t, lookback) if ok is None else ok
    obs = day_path(fitted, t, ok, n_substeps, path, seed)
    state = market_state(fitted, t, ok, n_substeps, lookback)
    oi_l, oi_s = population.open_interest(obs[0])
    main = int(np.argmax(oi_l + oi_s))
    run = {}
    for v in variants:
        if v == "A":
            run[v] = run_cascade(fitted, population, obs, t_margin=t - 1, impact=NoImpact(), states=state, params=params)
        elif v == "B":
            run[v] = run_cascade(fitted, population, obs, t_margin=t - 1, impact=impact, states=state, params=params)
    X = obs
    if "C" in variants:
        d = day or CrashDay(str(fitted.panel.dates[t].date()), "", 0.0, np.nan, np.nan)
        flow = observed_flow(d, obs, oi_l + oi_s, ok, fitted.panel.assets)
        X = decascade(obs, flow, impact, state, params.permanent)
        run["C"] = run_cascade(fitted, population, X, t_margin=t - 1, impact=impact, states=state, params=params)
    empty = run.get("A") or run.get("B") or run.get("C")
    return DayReplay(
        fitted.panel.dates[t], t, fitted.model.label, obs, X,
        run.get("A", empty), run.get("B", empty), run.get("C", empty), main,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- calibration
def calm_days(dates: pd.DatetimeIndex, first: int, n_days: int = 30, seed: int = 0, exclude_radius: int = 3) -> np.ndarray:
    """Seeded sample of ordinary day indices >= ``first``, away from every crash day."""
    crash = pd.DatetimeIndex([pd.Timestamp(d.date) for d in CRASH_DAYS])
    idx = np.arange(first, len(dates))
    dist = np.abs((dates[idx].values[:, None] - crash.values[None, :]) / np.timedelta64(1, "D"))
    idx = idx[(dist > exclude_radius).all(1)]
    if not len(idx):
        raise ValueError("no ordinary day to calibrate on in the data's range")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(idx, size=min(n_days, len(idx)), replace=False))


def calm_rates(
    fitted: FittedMargin,
    days: Sequence[int],
    mixture: LeverageMixture,
    *,
    n_accounts: int = 2000,
    n_substeps: int = 3,
    seed: int = 0,
    multiplier: Sequence[float] | None = None,
    **seed_kw: object,
) -> np.ndarray:
    """``(2,)`` mean (long, short) liquidated share of open interest over ``days``, variant A.

    Price-taker, no penalty, no fixed points; day ``k`` of ``days`` draws its
    population with seed ``seed + k``. ``multiplier[k]`` scales the high-leverage
    weights of day ``k`` (:meth:`LeverageMixture.scaled`, the regime term; default 1).
    """
    params = CascadeParams(fixed_points=False, penalty=0.0)
    mult = np.ones(len(days)) if multiplier is None else np.asarray(multiplier, dtype=np.float64)
    if mult.shape != (len(days),):
        raise ValueError(f"multiplier has {mult.size} values for {len(days)} days")
    out = []
    for k, t in enumerate(days):
        mx = mixture if mult[k] == 1.0 else mixture.scaled(float(mult[k]))
        pop = seed_population(fitted, int(t), n_accounts=n_accounts, mixture=mx, seed=seed + k, **seed_kw)  # type: ignore[arg-type]
        ok = market_assets(fitted, int(t))
        obs = day_path(fitted, int(t), ok, n_substeps)
        r = run_cascade(fitted, pop, obs, t_margin=int(t) - 1, params=params).liquidation_rates()
        out.append((r["long"], r["short"]))
    return np.nanmean(np.array(out), axis=0)


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate_mixture` (rates are means over the calm days)."""

    mixture: LeverageMixture
    rate_long: float
    rate_short: float
    target_long: float
    target_short: float
    days: tuple[str, ...]
    at_bound: bool


def calibrate_mixture(
    fitted: FittedMargin,
    days: Sequence[int],
    *,
    mixture: LeverageMixture | None = None,
    target_long: float = BASE_RATE_LONG,
    target_short: float = BASE_RATE_SHORT,
    n_accounts: int = 2000,
    n_substeps: int = 3,
    iterations: int = 12,
    seed: int = 0,
    multiplier: Sequence[float] | None = None,
    **seed_kw: object,
) -> Calibration:
    """Bisect the high-leverage weights so ordinary-day liquidations hit the base rates.

    Variant A (price-taker) on every day of ``days``; the long rate depends on
    ``high_long`` only and the short rate on ``high_short`` only (no impact,
    no cross-side coupling but ADL), so both are bisected together. Done once,
    globally: never per crash day. ``multiplier`` (one per day) applies the
    regime term on each calm day, so the base rate is met with it in place.
    """
    mixture = mixture or LeverageMixture()
    lo = np.zeros(2)
    hi = np.ones(2)

    def rates(h: np.ndarray) -> np.ndarray:
        return calm_rates(fitted, days, mixture.with_high(h[0], h[1]), n_accounts=n_accounts,
                          n_substeps=n_substeps, seed=seed, multiplier=multiplier, **seed_kw)

    target = np.array([target_long, target_short])
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        r = rates(mid)
        below = r < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    h = 0.5 * (lo + hi)
    r = rates(h)
    at_bound = bool((h < 1e-3).any() or (h > 1 - 1e-3).any())
    dates = tuple(str(fitted.panel.dates[int(t)].date()) for t in days)
    return Calibration(mixture.with_high(h[0], h[1]), float(r[0]), float(r[1]), target_long, target_short, dates, at_bound)


# --------------------------------------------------------------------------- suites
def _row(rep: DayReplay, day: CrashDay | None) -> dict[str, object]:
    p = rep.observed
    j = rep.main_asset
    a, b, c = (getattr(rep, v).liquidation_rates() for v in "ABC")
    obs_frac = day.liq_frac_oi if day else np.nan
    return {
        "day": str(rep.date.date()),
        "model": rep.model,
        "main_asset_move": float(p[:, j].min() / p[0, j] - 1.0),
        "sim_frac_oi_A": a["total"],
        "sim_frac_oi_B": b["total"],
        "sim_frac_oi_C": c["total"],
        "obs_frac_oi": obs_frac,
        "error_B": b["total"] - obs_frac,
        "sim_long_share_B": b["long_share"],
        "obs_long_share": day.long_share if day else np.nan,
        "bad_debt_B": rep.B.bad_debt,
        "rounds_B": rep.B.n_rounds,
        "multiple_eq_B": rep.B.multiple_equilibria,
        "fp_converged_B": rep.B.fixed_points_converged,
        "endogenous_C_minus_A": rep.endogenous_move(),
        "note": day.note if day else "",
    }


def crash_suite(
    fitted: FittedMargin,
    mixture: LeverageMixture,
    *,
    impact: ImpactModel,
    params: CascadeParams | None = None,
    n_accounts: int = 5000,
    n_substeps: int = 12,
    path: str = "ohlc",
    seed: int = 0,
    days: Sequence[CrashDay] = CRASH_DAYS,
    **seed_kw: object,
) -> tuple[ComparisonTable, list[DayReplay]]:
    """Every crash day inside the data's range: simulated vs observed (validation table)."""
    panel = fitted.panel
    rows, reps = [], []
    for d in days:
        ts = pd.Timestamp(d.date)
        if ts < panel.dates[0] or ts > panel.dates[-1]:
            continue
        t = panel.date_index(ts)
        if panel.dates[t] != ts or t < 31:
            continue
        pop = seed_population(fitted, t, n_accounts=n_accounts, mixture=mixture, seed=seed, **seed_kw)  # type: ignore[arg-type]
        rep = replay_day(fitted, pop, t, impact=impact, params=params, n_substeps=n_substeps, path=path, seed=seed, day=d)
        reps.append(rep)
        rows.append(_row(rep, d))
    notes = (
        "obs_frac_oi: aggregator liquidations / open interest; liquidation totals are LOWER BOUNDS "
        "(Binance reports <= 1 liquidation per symbol per second since mid-2021); NaN = not reported.",
        "sim_frac_oi: liquidated perp notional / population open interest at the open (quantities x open price).",
        "The leverage mixture is calibrated once on ordinary days (base rate 3.51% long / 1.89% short); never per crash day.",
    )
    return comparison_table(rows, title="Crash-day validation: simulated vs observed liquidations", notes=notes), reps


def cross_vs_isolated(
    fitted: FittedMargin,
    population: Population,
    t: int,
    *,
    impact: ImpactModel,
    params: CascadeParams | None = None,
    n_substeps: int = 12,
    path: str = "ohlc",
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Variant B for the population cross-margined and split into isolated sub-accounts.

    Returns a summary frame (one row per mode, with the traders liquidated and
    the capital each mode requires at the open) and the transmission matrices.
    """
    ok = market_assets(fitted, t)
    obs = day_path(fitted, t, ok, n_substeps, path, seed)
    state = market_state(fitted, t, ok, n_substeps)
    out, mats = [], {}
    for mode, pop in (("cross", population), ("isolated", isolate(population, fitted, t - 1, obs[0]))):
        res = run_cascade(fitted, pop, obs, t_margin=t - 1, impact=impact, states=state, params=params)
        req = fitted.account_requirement(t - 1, pop.q_coll * obs[0], pop.q_perp * obs[0], pop.isolated)
        traders = np.unique(pop.parent[res.liquidated])  # type: ignore[index]
        out.append({"mode": mode, **res.summary(), "traders_liquidated": len(traders),
                    "initial_margin": float(req.initial.sum()), "equity": float(pop.equity(obs[0]).sum())})
        mats[mode] = res.transmission_frame()
    return pd.DataFrame(out), mats


def compare_methods(
    fitteds: Sequence[FittedMargin],
    t: int,
    mixture: LeverageMixture,
    *,
    impact: ImpactModel,
    params: CascadeParams | None = None,
    n_accounts: int = 5000,
    n_substeps: int = 12,
    path: str = "ohlc",
    seed: int = 0,
    day: CrashDay | None = None,
    **seed_kw: object,
) -> ComparisonTable:
    """Same draws and path for every margin method (equity floored at each method's IM)."""
    rows = []
    for f in fitteds:
        pop = seed_population(f, t, n_accounts=n_accounts, mixture=mixture, seed=seed, **seed_kw)  # type: ignore[arg-type]
        rep = replay_day(f, pop, t, impact=impact, params=params, n_substeps=n_substeps, path=path, seed=seed, day=day)
        s = rep.B.summary()
        rows.append({
            "model": f.model.label,
            "accounts_liquidated": s["accounts_liquidated"],
            "forced_notional": s["forced_notional"],
            "liq_frac_oi": s["liq_frac_oi"],
            "bad_debt": s["bad_debt"],
            "fund_drawdown": s["fund_drawdown"],
            "adl_events": s["adl_events"],
            "rounds": s["rounds"],
            "multiple_equilibria": s["multiple_equilibria"],
            "fixed_points_converged": s["fixed_points_converged"],
            "endogenous_C_minus_A": rep.endogenous_move(),
            "liq_frac_oi_A": rep.A.summary()["liq_frac_oi"],
            "liq_frac_oi_C": rep.C.summary()["liq_frac_oi"],
        })
    return comparison_table(rows, title="Cascade by margin method (variant B unless named)",
                            notes=("same population draws and path; equity floored at each method's initial margin",))
