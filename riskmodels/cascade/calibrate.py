"""Leave-one-out calibration of the cascade over the crash days.

Parameters fitted (a deterministic grid search; every grid is a key of
:class:`LOOSettings`)
------------------------------------------------------------------------
* population -- the leverage mixture's ``low_weight`` (share of the low,
  2x component outside the high one) and its ``mid_leverage`` (median of the
  middle component), and ``oi_to_volume`` (market size: open interest =
  ``k`` x trailing 30-day mean daily USD volume);
* market regime -- ``rally_beta``: open interest builds up in rallies, so the
  market size of day ``t`` is ``k exp(beta r_t)`` with ``r_t`` the trailing
  ``rally_days`` log return of BTC to the close of ``t - 1`` (data before the
  day only; ``beta = 0`` is a constant ``k``, the default: with the grid
  ``{0, 1, 2}`` the in-sample fit chose 0 and the held-out hits fell from 4 to
  3 of 8, README "Cascades");
* leverage regime -- ``leverage_beta`` and ``leverage_days``: the population's
  high-leverage weights on day ``t`` are ``min(1, h exp(lambda r_t))`` with ``r_t``
  the trailing ``leverage_days`` log return of BTC to the close of ``t - 1``
  (:meth:`~riskmodels.cascade.population.LeverageMixture.scaled`): leverage builds
  up in rallies and is cut after sell-offs. Observable before the day (data to
  ``t - 1`` only); the base weights ``h`` are re-bisected with the term in place,
  so the calm days still liquidate the base rate; ``lambda = 0`` is the one
  global mixture;
* impact -- ``Y`` of the square-root law ``Y sigma sqrt(Q / V)`` (the impact
  named in ``[cascade].impact`` when it is not ``sqrt``: then ``impact_y`` is
  ignored and the configured law is used as it is).

The high-leverage weights are not free: for every mixture shape they are
re-bisected (:func:`~riskmodels.cascade.replay.calibrate_mixture`) so that
ordinary days liquidate the base rate of Cheng et al. (3.51% of long, 1.89% of
short open interest per day), on the *even* calm days of a seeded sample; the
*odd* calm days are held out and reported (``day = "calm"``).

Objective and leave-one-out
---------------------------
For a grid point ``c`` and crash day ``d``, ``L(c, d) = sum_o w_o ln(pred_o / obs_o)^2``
over the day's observations (:mod:`~riskmodels.cascade.observed`), ``w = 1``
for the primary figure (the day's liquidation total) and ``secondary_weight``
for the others; a prediction of zero counts as ``pred = obs / 1000``. The
held-out fit of day ``d`` is ``argmin_c sum_{d' != d} L(c, d')`` (fit on seven,
predict the eighth); the in-sample fit is ``argmin_c sum_d L(c, d)``; ties go to
the first grid point. A record spanning two days is replayed on both
(:data:`~riskmodels.cascade.observed.WINDOWS`). Every (day, grid point) run uses the same seeded draws
(common random numbers), so the objective is a smooth function of the grid.

Variant B of :func:`~riskmodels.cascade.replay.replay_day` is the prediction
(the population's forced flow on top of the observed path).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from riskmodels.cascade.engine import CascadeParams
from riskmodels.cascade.impact import ImpactModel
from riskmodels.cascade.observed import (
    WINDOW_WEIGHTS,
    WINDOWS,
    Observation,
    consistent,
    day_observations,
    log_ratio,
    predict,
)
from riskmodels.cascade.population import LeverageMixture, seed_population
from riskmodels.cascade.replay import (
    BASE_RATE_LONG,
    BASE_RATE_SHORT,
    CrashDay,
    calibrate_mixture,
    calm_rates,
    cross_vs_isolated,
    replay_day,
)
from riskmodels.margin.base import FittedMargin

__all__ = ["LOOSettings", "SuiteResult", "leave_one_out", "loo_suite", "trailing_return"]


def _grid(name: str, values: Sequence[float], lo: float, hi: float, lo_open: bool = False) -> tuple[float, ...]:
    vals = tuple(float(v) for v in values)
    if not vals:
        raise ValueError(f"[cascade.calibration].{name} is empty; give at least one value")
    for v in vals:
        if not np.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
            side = f"({lo}" if lo_open else f"[{lo}"
            raise ValueError(f"[cascade.calibration].{name} = {v} is outside {side}, {hi}]; change that value")
    return vals


@dataclass(frozen=True)
class LOOSettings:
    """Grids and sizes of the leave-one-out calibration (``[cascade.calibration]``).

    Parameters
    ----------
    low_weight : tuple of float
        Grid of the mixture's low-component share, each in [0, 1].
    mid_leverage : tuple of float
        Grid of the middle component's median leverage, each in [1, high median).
    oi_to_volume : tuple of float
        Grid of the market size ``k`` (OI = k x trailing volume), each in (0, 100].
    impact_y : tuple of float
        Grid of the square-root law's ``Y``, each in (0, 10].
    rally_beta : tuple of float
        Grid of the regime exponent ``beta``, each in [-5, 5].
    rally_days : int
        Trailing window of the regime's BTC return, days (>= 1).
    leverage_beta : tuple of float
        Grid of the leverage regime's exponent ``lambda``, each in [-10, 10].
    leverage_days : tuple of int
        Grid of the leverage regime's trailing BTC-return window, days (>= 1).
    secondary_weight : float
        Weight of the non-primary observations in the objective, [0, 10].
    accounts : int
        Accounts per crash-day run (>= 10).
    calm_days : int
        Ordinary days sampled (>= 2): the even ones calibrate the high-leverage
        weights, the odd ones are held out.
    calibration_accounts : int
        Accounts per calm-day run (>= 10).
    """

    low_weight: tuple[float, ...] = (0.7, 1.0)
    mid_leverage: tuple[float, ...] = (2.5, 4.0)
    oi_to_volume: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
    impact_y: tuple[float, ...] = (0.5, 1.0)
    rally_beta: tuple[float, ...] = (0.0,)
    rally_days: int = 90
    leverage_beta: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    leverage_days: tuple[int, ...] = (90, 365)
    secondary_weight: float = 0.5
    accounts: int = 1000
    calm_days: int = 60
    calibration_accounts: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "low_weight", _grid("low_weight", self.low_weight, 0.0, 1.0))
        object.__setattr__(self, "mid_leverage", _grid("mid_leverage", self.mid_leverage, 1.0, 1e3))
        object.__setattr__(self, "oi_to_volume", _grid("oi_to_volume", self.oi_to_volume, 0.0, 100.0, lo_open=True))
        object.__setattr__(self, "impact_y", _grid("impact_y", self.impact_y, 0.0, 10.0, lo_open=True))
        object.__setattr__(self, "rally_beta", _grid("rally_beta", self.rally_beta, -5.0, 5.0))
        object.__setattr__(self, "leverage_beta", _grid("leverage_beta", self.leverage_beta, -10.0, 10.0))
        days = tuple(int(v) for v in self.leverage_days)
        if not days or min(days) < 1 or any(float(v) != int(v) for v in self.leverage_days):
            raise ValueError(f"[cascade.calibration].leverage_days = {list(self.leverage_days)} must be "
                             "whole days >= 1 (at least one)")
        object.__setattr__(self, "leverage_days", days)
        if int(self.rally_days) < 1:
            raise ValueError(f"[cascade.calibration].rally_days = {self.rally_days} must be >= 1 day")
        if not 0.0 <= float(self.secondary_weight) <= 10.0:
            raise ValueError(f"[cascade.calibration].secondary_weight = {self.secondary_weight} must be in [0, 10]")
        for k in ("accounts", "calibration_accounts"):
            if int(getattr(self, k)) < 10:
                raise ValueError(f"[cascade.calibration].{k} = {getattr(self, k)} must be >= 10 accounts")
        if int(self.calm_days) < 2:
            raise ValueError(f"[cascade.calibration].calm_days = {self.calm_days} must be >= 2 (half fit, half held out)")

    @classmethod
    def from_mapping(cls, d: dict[str, object]) -> LOOSettings:
        """From a ``[cascade.calibration]`` table (unknown keys are errors)."""
        valid = set(cls.__dataclass_fields__)
        unknown = set(d) - valid
        if unknown:
            raise ValueError(f"[cascade.calibration] has unknown key(s) {sorted(unknown)}; valid: {sorted(valid)}")
        return cls(**d)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class SuiteResult:
    """Output of :func:`loo_suite`.

    ``table``: one row per (day, metric, in_sample) with the columns ``day``,
    ``observed``, ``predicted``, ``ratio``, ``metric``, ``in_sample``,
    ``primary``, ``within_2x``, ``scope``, ``bound``, ``consistent``, ``fit``,
    ``model``, ``cross_liq_usd``, ``isolated_liq_usd``, ``note``
    (``predicted`` is in the record's scope; :mod:`~riskmodels.cascade.observed`). ``cross_isolated``: one row per crash day at
    its held-out fit. ``fits``: the grid point chosen for each held-out day
    (and ``"all"``), with its training loss. ``grid``: the loss of every grid
    point on every day.
    """

    table: pd.DataFrame
    cross_isolated: pd.DataFrame
    fits: pd.DataFrame
    grid: pd.DataFrame
    model: str

    def hits(self, column: str = "within_2x") -> tuple[int, int]:
        """(days whose held-out primary figure is ``column`` (within a factor 2, or ``consistent``), days)."""
        t = self.table
        p = t[t["primary"] & ~t["in_sample"]]
        return int(p[column].sum()), len(p)


@dataclass(frozen=True)
class _Point:
    low_weight: float
    mid_leverage: float
    oi_to_volume: float
    impact: str
    rally_beta: float = 0.0
    leverage_beta: float = 0.0
    leverage_days: int = 90

    def label(self) -> str:
        return (f"low_weight={self.low_weight:g} mid={self.mid_leverage:g} k={self.oi_to_volume:g} "
                f"beta={self.rally_beta:g} lev={self.leverage_beta:g}/{self.leverage_days}d {self.impact}")

    @property
    def shape(self) -> tuple[float, float, float, int]:
        return (self.low_weight, self.mid_leverage, self.leverage_beta, self.leverage_days)

    def k(self, rally: float) -> float:
        """Market size of a day whose trailing BTC log return is ``rally``."""
        return float(self.oi_to_volume * np.exp(self.rally_beta * rally))


def loo_suite(
    fitted: FittedMargin,
    days: Sequence[CrashDay],
    calm: Sequence[int],
    *,
    impacts: dict[str, ImpactModel],
    params_for: Callable[[int, float], CascadeParams],
    settings: LOOSettings | None = None,
    mixture: LeverageMixture | None = None,
    n_substeps: int = 12,
    path: str = "ohlc",
    seed: int = 0,
    lookback: int = 30,
    progress: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Leave-one-out fit and prediction of every crash day (module docstring).

    Parameters
    ----------
    fitted : FittedMargin
        The margin rule every run is liquidated under (stated in the table).
    days : sequence of CrashDay
        Crash days; those outside the panel are skipped.
    calm : sequence of int
        Ordinary day indices (e.g. :func:`~riskmodels.cascade.replay.calm_days`).
    impacts : dict
        Label -> impact law, the impact grid.
    params_for : callable
        ``(t, oi_to_volume) -> CascadeParams`` of day index ``t``.
    """
    s = settings or LOOSettings()
    base = mixture or LeverageMixture()
    say = progress or (lambda _m: None)
    panel = fitted.panel
    todo = []
    win: dict[str, list[int]] = {}
    for d in days:
        ts = pd.Timestamp(d.date)
        t = panel.date_index(ts)
        if t < len(panel.dates) and panel.dates[t] == ts and day_observations(d.date):
            todo.append((d, t))
            win[d.date] = [panel.date_index(x) for x in WINDOWS.get(d.date, (d.date,))]
    if len(todo) < 2:
        raise ValueError(f"leave-one-out needs >= 2 crash days in the data, found {len(todo)}")
    calm = np.sort(np.asarray(calm, dtype=np.int64))
    fit_calm, held_calm = calm[0::2], calm[1::2]
    if not len(held_calm):
        raise ValueError("leave-one-out needs >= 2 calm days (half fit, half held out)")

    crash_t = sorted({t for _d, t0 in todo for t in [t0, *win[_d.date]]})

    def lev_mult(beta: float, ldays: int, ts: Sequence[int]) -> np.ndarray:
        return np.exp(beta * np.array([trailing_return(panel, int(t), ldays) for t in ts]))

    # -- mixture shapes: high-leverage weights bisected on the fitting calm days (regime term in place)
    shapes: dict[tuple[float, float, float, int], tuple[LeverageMixture, np.ndarray, np.ndarray]] = {}
    mult: dict[tuple[float, float, float, int], dict[int, float]] = {}
    for lw, mid, lb, ld in itertools.product(s.low_weight, s.mid_leverage, s.leverage_beta, s.leverage_days):
        if lb == 0.0 and ld != s.leverage_days[0]:
            continue  # no regime term: the window does not matter
        med = base.medians
        if not med[0] <= mid < med[2]:
            raise ValueError(f"[cascade.calibration].mid_leverage = {mid} must be in [{med[0]}, {med[2]})")
        mx = replace(base, low_weight=lw, medians=(med[0], mid, med[2]))
        cal = calibrate_mixture(fitted, fit_calm, mixture=mx, n_accounts=s.calibration_accounts, seed=seed,
                                lookback=lookback, multiplier=lev_mult(lb, ld, fit_calm))
        held = calm_rates(fitted, held_calm, cal.mixture, n_accounts=s.calibration_accounts, seed=seed + 1000,
                          lookback=lookback, multiplier=lev_mult(lb, ld, held_calm))
        key = (lw, mid, lb, ld)
        shapes[key] = (cal.mixture, np.array([cal.rate_long, cal.rate_short]), held)
        mult[key] = dict(zip(crash_t, lev_mult(lb, ld, crash_t).tolist(), strict=True))
        say(f"  mixture low_weight={lw:g} mid={mid:g} lev={lb:g}/{ld}d: high weights {cal.mixture.high_long:.4f} / "
            f"{cal.mixture.high_short:.4f}, held-out calm rates {held[0]:.4f} / {held[1]:.4f}")

    points = [_Point(lw, mid, k, name, b, lb, ld) for (lw, mid, lb, ld), k, b, name in
              itertools.product(shapes, s.oi_to_volume, s.rally_beta, impacts)]
    rally = {t: trailing_return(panel, t, s.rally_days) for t in crash_t}
    obs_of = {d.date: day_observations(d.date) for d, _ in todo}
    pred: dict[str, np.ndarray] = {d.date: np.full((len(points), len(obs_of[d.date])), np.nan) for d, _ in todo}
    for d, _t in todo:
        say(f"  {d.date}: {len(points)} grid points")
        for c, pt in enumerate(points):
            mx = shapes[pt.shape][0]
            runs = []
            for k, tw in enumerate(win[d.date]):
                pop = seed_population(fitted, tw, n_accounts=s.accounts, mixture=mx.scaled(mult[pt.shape][tw]),
                                      seed=seed + k,
                                      oi_to_volume=pt.k(rally[tw]), lookback=lookback)
                runs.append(replay_day(fitted, pop, tw, impact=impacts[pt.impact],
                                       params=params_for(tw, pt.k(rally[tw])), n_substeps=n_substeps, path=path,
                                       seed=seed, lookback=lookback, variants="B").B)
            wts = WINDOW_WEIGHTS.get(d.date)
            pred[d.date][c] = [o.scope_share * predict(runs, o.metric, wts) for o in obs_of[d.date]]

    def loss(date: str) -> np.ndarray:
        w = np.array([1.0 if o.primary else s.secondary_weight for o in obs_of[date]])
        obs = np.array([o.value for o in obs_of[date]])
        p = np.where(np.isfinite(pred[date]) & (pred[date] > 0), pred[date], obs / 1000.0)
        return (w * np.log(p / obs) ** 2).sum(1)

    L = np.column_stack([loss(d.date) for d, _ in todo])  # (points, days)
    c_all, held = leave_one_out(L)
    fits = [{"held_out": "all", "point": points[c_all].label(), "train_loss": float(L[c_all].sum()),
             **_point_cols(points[c_all])}]
    held_fit: dict[str, int] = {}
    for j, (d, _) in enumerate(todo):
        c = int(held[j])
        held_fit[d.date] = c
        fits.append({"held_out": d.date, "point": points[c].label(),
                     "train_loss": float(np.delete(L[c], j).sum()), **_point_cols(points[c])})

    # -- cross vs isolated at each day's held-out fit
    ci_rows = []
    for d, t in todo:
        pt = points[held_fit[d.date]]
        mx = shapes[pt.shape][0].scaled(mult[pt.shape][t])
        pop = seed_population(fitted, t, n_accounts=s.accounts, mixture=mx, seed=seed,
                              oi_to_volume=pt.k(rally[t]), lookback=lookback)
        frame, _ = cross_vs_isolated(fitted, pop, t, impact=impacts[pt.impact],
                                     params=params_for(t, pt.k(rally[t])), n_substeps=n_substeps, path=path, seed=seed)
        oi_l, oi_s = pop.open_interest(pop.entry[0])
        both = float(oi_l.sum() + oi_s.sum())
        by = frame.set_index("mode")
        row: dict[str, object] = {"day": d.date, "model": fitted.model.label, "fit": pt.label()}
        for mode in ("cross", "isolated"):
            row[f"{mode}_liq_usd"] = float(by.loc[mode, "liq_frac_oi"]) * both
            row[f"{mode}_traders_liquidated"] = int(by.loc[mode, "traders_liquidated"])
            row[f"{mode}_bad_debt"] = float(by.loc[mode, "bad_debt"])
            row[f"{mode}_initial_margin"] = float(by.loc[mode, "initial_margin"])
            row[f"{mode}_multiple_equilibria"] = bool(by.loc[mode, "multiple_equilibria"])
            row[f"{mode}_fixed_points_converged"] = bool(by.loc[mode, "fixed_points_converged"])
        row["isolated_over_cross"] = (row["isolated_liq_usd"] / row["cross_liq_usd"]  # type: ignore[operator]
                                      if row["cross_liq_usd"] else float("nan"))
        ci_rows.append(row)
    ci = pd.DataFrame(ci_rows)

    # -- the table
    rows = []
    for d, _ in todo:
        cross = ci.set_index("day").loc[d.date]
        for in_sample, c in ((False, held_fit[d.date]), (True, c_all)):
            for i, o in enumerate(obs_of[d.date]):
                rows.append(_table_row(o, float(pred[d.date][c, i]), in_sample, points[c], fitted.model.label,
                                       float(cross["cross_liq_usd"]), float(cross["isolated_liq_usd"])))
    sh = shapes[points[c_all].shape]
    for in_sample, rates in ((False, sh[2]), (True, sh[1])):
        for side, r, target in (("long", rates[0], BASE_RATE_LONG), ("short", rates[1], BASE_RATE_SHORT)):
            o = Observation("calm", f"base_rate_{side}", target, False,
                            "Cheng et al. (BitMEX) mean daily liquidations / OI; "
                            + ("odd calm days, held out" if not in_sample else "even calm days, the bisection's target"))
            rows.append(_table_row(o, float(r), in_sample, points[c_all], fitted.model.label, np.nan, np.nan))
    table = pd.DataFrame(rows)
    grid = pd.DataFrame(L, columns=[d.date for d, _ in todo])
    grid.insert(0, "point", [p.label() for p in points])
    return SuiteResult(table, ci, pd.DataFrame(fits), grid, fitted.model.label)


def trailing_return(panel: object, t: int, days: int, asset: str = "BTC") -> float:
    """``ln(C[t-1] / C[t-1-days])`` of ``asset`` (0 when it is missing): data before day ``t`` only."""
    p = panel
    if asset not in p.assets or t - 1 - days < 0:  # type: ignore[attr-defined]
        return 0.0
    c = p.close[:, p.assets.index(asset)]  # type: ignore[attr-defined]
    r = float(np.log(c[t - 1] / c[t - 1 - days]))
    return r if np.isfinite(r) else 0.0


def leave_one_out(loss: np.ndarray) -> tuple[int, np.ndarray]:
    """In-sample and held-out choices from a ``(points, days)`` loss matrix.

    Returns ``argmin_c sum_d L[c, d]`` and, per day ``j``, ``argmin_c sum_{d != j} L[c, d]``
    (the choice for day ``j`` never sees column ``j``); ties go to the first point.
    """
    L = np.asarray(loss, dtype=np.float64)
    if L.ndim != 2 or L.shape[1] < 2:
        raise ValueError(f"leave_one_out needs a (points, days >= 2) loss matrix, got shape {L.shape}")
    held = np.array([np.argmin(np.delete(L, j, axis=1).sum(1)) for j in range(L.shape[1])])
    return int(np.argmin(L.sum(1))), held


def _point_cols(p: _Point) -> dict[str, object]:
    return {"low_weight": p.low_weight, "mid_leverage": p.mid_leverage, "oi_to_volume": p.oi_to_volume,
            "rally_beta": p.rally_beta, "leverage_beta": p.leverage_beta, "leverage_days": p.leverage_days,
            "impact": p.impact}


def _table_row(o: Observation, predicted: float, in_sample: bool, p: _Point, model: str,
               cross: float, isolated: float) -> dict[str, object]:
    lr = log_ratio(predicted, o.value)
    return {
        "day": o.day,
        "metric": o.metric,
        "observed": o.value,
        "predicted": predicted,
        "ratio": float(np.exp(lr)) if np.isfinite(lr) else float("nan"),
        "in_sample": in_sample,
        "primary": o.primary,
        "within_2x": bool(np.isfinite(lr) and abs(lr) <= np.log(2.0)),
        "scope": o.scope,
        "bound": o.bound,
        "consistent": consistent(predicted, o),
        "fit": p.label(),
        "model": model,
        "cross_liq_usd": cross,
        "isolated_liq_usd": isolated,
        "note": o.note,
    }
