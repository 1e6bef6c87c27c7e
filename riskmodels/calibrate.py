"""Calibration: the least-capital parameter of a margin method that meets a target.

A risk team does not only compare margin methods, it chooses their
parameters. :func:`calibrate` searches one parameter of one method (a
collateral haircut, an IMF, a VaR confidence level, a scan-range floor...)
for the value that meets a **target** with the **least capital**, either per
asset (each asset on its own single-asset book) or jointly (one value for a
multi-asset book).

Targets (:class:`Target`)
-------------------------
``coverage``
    Breach rate <= ``value`` (default 1%): the share of (date, account)
    cells where the realised loss over the margin period of risk (MPOR)
    exceeds the margin (:mod:`riskmodels.backtest.coverage`). ``side`` picks
    the combined rate, the long or short side, or the worst of the two.
``kupiec``
    The Kupiec (1995) proportion-of-failures test at exception probability
    ``value`` is not rejected *on the too-many-exceptions side* at
    significance ``level``: a value is infeasible when ``x / n > p`` and the
    test rejects. Too few exceptions (over-margining) is not a coverage
    failure, and without this one-sided reading the least-capital value of a
    two-sided test is simply the lower edge of its acceptance band. For
    ``mpor > 1`` the test runs on the h non-overlapping sub-samples with the
    Bonferroni bound (:func:`riskmodels.backtest.stats.coverage_tests`).
    Single-account books only (per-asset mode), since the test assumes one
    series of independent observations.
``liquidations``
    Liquidations per account-year <= ``value`` (account simulation with the
    :class:`~riskmodels.backtest.simulation.LiquidationPolicy`).
``bad_debt``
    Bad debt <= ``value`` as a **fraction** of perp notional held for a year
    (``0.0001`` = 1 bp/yr; the ``bad_debt_bp_per_year`` metric is in bp).

Capital is ``mean_im_per_notional`` (mean initial margin / gross notional).

Size (``adv_fraction``)
-----------------------
``adv_fraction = f`` rescales every account of the book (per-asset or joint)
so that its largest holding is ``f`` x the asset's average daily USD volume
of the ``adv_window`` days before the scored window
(:func:`riskmodels.book_sizing.scale_to_adv`). Size changes the answer only
through size-dependent terms: the close-out impact (``[liquidation] closeout
= "impact"``) and concentration add-ons (``concentration`` models); with a
flat close-out and a homogeneous model a warning says the size is inert.
A ``bad_debt`` target on a larger book then needs a larger margin rate.

Search
------
The parameter is scanned on a grid of ``grid`` points over ``bounds`` (or on
explicit ``values``). The target metric is checked for **monotonicity** along
the grid, ordered from least to most capital (``increasing=True``: a larger
parameter means more capital, e.g. haircut, IMF, confidence, psr_floor,
extreme_multiplier). When it is monotone (non-increasing in capital) and the
parameter is continuous, monotone bisection between the last infeasible and
the first feasible grid point keeps the invariant ``lo`` infeasible, ``hi``
feasible until ``hi - lo <= xtol`` and returns ``hi``: a value that meets the
target, with ``bracket = (lo, hi)`` showing that ``xtol`` less does not.
(Backtest metrics are step functions of the parameter on a finite sample, so
a sign-change root finder such as Brent's method may stop on the infeasible
side of a jump; bisection never does.) When the metric is **not** monotone,
or the parameter is discrete (``values``, e.g. a lookback in days), the
result is the least-capital feasible grid point and ``monotone`` is False
with the grid points that break monotonicity in ``note``.

Worked example: for a flat haircut ``h`` on a constant-notional long spot
position, the margin is ``h x`` and the h-day loss ``-x r``, so the breach
rate is ``#{-r_t > h} / n`` and the least ``h`` with breach rate <= ``p`` is
the ``(floor(p n) + 1)``-th largest h-day loss, i.e. the empirical
``(1 - p)`` quantile of the loss. The calibration returns it within
``xtol``.

Example::

    from riskmodels.calibrate import Target, calibrate
    res = calibrate(panel, "fixed_haircut", "haircut", Target("coverage", 0.01),
                    per_asset=True, book="collateral", mpor=2)
    print(res)                 # asset, value, achieved, capital, iterations, monotone...
    FixedHaircut(haircut=res.params())   # {asset: haircut}

Command line (``riskmodels calibrate --config FILE [--data DIR] [--out DIR]``);
the TOML file may hold the backtest sections (``[data]``, ``[book]``,
``[backtest]``, ``[liquidation]``; merged over the default config) and one
``[calibrate]`` section, see :data:`EXAMPLE_CALIBRATE_TOML`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.coverage import coverage_backtest
from riskmodels.backtest.engine import build_book, run_models
from riskmodels.backtest.metrics import METRICS
from riskmodels.backtest.result import ModelResult
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.data.panel import PricePanel
from riskmodels.margin.base import MarginModel, account_eligibility
from riskmodels.portfolio import Book

__all__ = [
    "BOOK_KINDS",
    "EXAMPLE_CALIBRATE_TOML",
    "TARGET_KINDS",
    "CalibrationResult",
    "Target",
    "add_calibrate_parser",
    "calibrate",
    "run_calibrate",
    "single_asset_book",
]

TARGET_KINDS = ("coverage", "kupiec", "liquidations", "bad_debt")
SIDES = ("combined", "long", "short", "worst")
BOOK_KINDS = ("collateral", "long", "short", "long_short")

#: default search ranges of common parameters (the models' valid ranges, narrowed where useful)
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "haircut": (0.0, 1.0),
    "maintenance_haircut": (0.0, 1.0),
    "imf": (0.0, 1.0),
    "mmf": (0.0, 1.0),
    "collateral_haircut": (0.0, 1.0),
    "psr_floor": (0.0, 1.0),
    "extreme_multiplier": (1.0, 10.0),
    "im_multiplier": (1.0, 2.0),
    "confidence": (0.9, 0.999),
    "psr_quantile": (0.9, 0.999),
    "price_range": (0.01, 1.0),
}

#: the commented example shipped as riskmodels/configs/calibrate.toml (``riskmodels config --example calibrate``)
EXAMPLE_CALIBRATE_TOML = (files("riskmodels") / "configs" / "calibrate.toml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    """What the calibrated parameter must achieve (see module docstring).

    Parameters
    ----------
    kind : {"coverage", "kupiec", "liquidations", "bad_debt"}
    value : float
        Coverage: the highest acceptable breach rate in (0, 1) (default 1%).
        Kupiec: the exception probability p in (0, 1). Liquidations: per
        account-year, >= 0. Bad debt: fraction of notional per year, >= 0.
    level : float
        Significance level of the Kupiec test in (0, 1); default 0.05.
    side : {"combined", "long", "short", "worst"}
        Which breach rate the coverage / Kupiec targets use.
    """

    kind: str
    value: float = 0.01
    level: float = 0.05
    side: str = "combined"

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"target kind={self.kind!r} must be one of {TARGET_KINDS}")
        v = float(self.value)
        if self.kind in ("coverage", "kupiec") and not 0.0 < v < 1.0:
            raise ValueError(f"target value={self.value!r} is outside its valid range (0, 1) for {self.kind}")
        if self.kind in ("liquidations", "bad_debt") and not (v >= 0.0 and math.isfinite(v)):
            raise ValueError(f"target value={self.value!r} is outside its valid range [0, inf) for {self.kind}")
        if not 0.0 < float(self.level) < 1.0:
            raise ValueError(f"target level={self.level!r} is outside its valid range (0, 1)")
        if self.side not in SIDES:
            raise ValueError(f"target side={self.side!r} must be one of {SIDES}")
        object.__setattr__(self, "value", v)

    @property
    def needs_simulation(self) -> bool:
        return self.kind in ("liquidations", "bad_debt")

    @property
    def metric(self) -> str:
        """Name of the achieved quantity reported in results."""
        return {
            "coverage": f"breach_rate ({self.side})",
            "kupiec": f"exception rate ({self.side})",
            "liquidations": "liquidations_per_account_year",
            "bad_debt": "bad_debt (fraction of notional / yr)",
        }[self.kind]

    def __str__(self) -> str:
        if self.kind == "coverage":
            return f"breach rate ({self.side}) <= {self.value:.4g}"
        if self.kind == "kupiec":
            return f"Kupiec POF p={self.value:g} not rejected (too many exceptions) at {self.level:g}"
        if self.kind == "liquidations":
            return f"liquidations per account-year <= {self.value:.4g}"
        return f"bad debt <= {self.value:.4g} of notional per year"


@dataclass(frozen=True)
class _Eval:
    """One evaluation: the target quantity, whether it is met, and the capital."""

    value: float
    achieved: float
    met: bool
    capital: float


def _side_rate(cov: Any, side: str) -> float:
    if side == "worst":
        rates = [_side_rate(cov, s) for s in ("long", "short")]
        rates = [r for r in rates if math.isfinite(r)]
        return max(rates) if rates else float("nan")
    if side == "combined":
        return cov.breach_rate
    n, x = cov.by_side()[side]
    return x / n if n else float("nan")


def _kupiec_ok(cov: Any, target: Target, h: int) -> tuple[float, bool]:
    from riskmodels.backtest.stats import coverage_tests

    if cov.valid.shape[1] != 1:
        raise ValueError(
            "target kind='kupiec' needs a single-account book (one series): use per_asset=True "
            "with book='collateral', 'long' or 'short', or target kind='coverage'"
        )
    exc = cov.exceptions[:, 0]
    ok = cov.valid[:, 0]
    n, x = int(ok.sum()), int(exc[ok].sum())
    rate = x / n if n else float("nan")
    if not n:
        return rate, False
    if rate <= target.value:
        return rate, True
    tests = coverage_tests(exc, target.value, h=h, valid=ok, level=target.level)
    return rate, tests.verdict("pof", target.level) != "reject"


# --------------------------------------------------------------------------- books
def single_asset_book(asset: str, kind: str = "collateral", notional: float = 10_000.0) -> Book:
    """A one-asset book for per-asset calibration.

    ``collateral``: one account holding ``notional`` USD of spot collateral;
    ``long`` / ``short``: one account with a perp of +/- ``notional``;
    ``long_short``: two accounts, one long and one short perp. Margins of the
    built-in methods are homogeneous, so ``notional`` only sets the units.
    """
    if kind not in BOOK_KINDS:
        raise ValueError(f"book={kind!r} must be one of {BOOK_KINDS}")
    if not notional > 0:
        raise ValueError(f"notional={notional!r} must be > 0")
    if kind == "collateral":
        return Book((asset,), [[notional]], [[0.0]], account_ids=(f"{asset}-collateral",))
    if kind == "long":
        return Book((asset,), [[0.0]], [[notional]], account_ids=(f"{asset}-long",))
    if kind == "short":
        return Book((asset,), [[0.0]], [[-notional]], account_ids=(f"{asset}-short",))
    return Book((asset,), [[0.0], [0.0]], [[notional], [-notional]], account_ids=(f"{asset}-long", f"{asset}-short"))


# --------------------------------------------------------------------------- evaluation
ModelFactory = Callable[..., MarginModel]


def _factory(model: str | ModelFactory) -> ModelFactory:
    if callable(model):
        return model
    import riskmodels.margin  # noqa: F401  (registers the built-in models)
    from riskmodels.margin import base

    def build(**params: Any) -> MarginModel:
        return base.get(model, **params)

    base.available()
    if model not in base._REGISTRY:
        raise KeyError(f"unknown margin model {model!r}; valid names: {', '.join(base.available())}")
    return build


@dataclass
class _Problem:
    panel: PricePanel
    book: Book
    factory: ModelFactory
    param: str
    fixed: dict[str, Any]
    tie: dict[str, float]
    integer: bool
    target: Target
    mpor: int
    min_history: int
    start: int
    end: int
    policy: LiquidationPolicy
    coverage_on: str
    evaluations: int = 0

    def model(self, x: float) -> MarginModel:
        v: Any = round(x) if self.integer else float(x)
        params = dict(self.fixed)
        params[self.param] = v
        for k, ratio in self.tie.items():
            params[k] = float(ratio) * float(v)
        return self.factory(label="calibration", **params)

    def __call__(self, x: float) -> _Eval:
        self.evaluations += 1
        model = self.model(x)
        t = self.target
        if t.needs_simulation:
            res = run_models(
                self.panel, self.book, [model], mpor=self.mpor, min_history=self.min_history,
                start=self.start, end=self.end, policy=self.policy, coverage_on=self.coverage_on,
            ).results[model.label]
            capital = res.metrics["mean_im_per_notional"]
            if t.kind == "liquidations":
                achieved = res.metrics["liquidations_per_account_year"]
            else:
                achieved = res.metrics["bad_debt_bp_per_year"] / 1e4
            met = bool(achieved <= t.value) if math.isfinite(achieved) else False
            return _Eval(x, achieved, met, capital)
        # coverage only: no account simulation needed (same eligibility as run_models)
        need = max(self.min_history, model.min_history)
        in_window = np.zeros(self.panel.n_dates, dtype=bool)
        in_window[self.start : self.end + 1] = True
        eligible = account_eligibility(self.panel.eligible(need), self.book) & in_window[:, None]
        fitted = model.fit(self.panel)
        path = fitted.path(self.book, eligible)
        cov = coverage_backtest(self.panel, self.book, path, self.mpor, on=self.coverage_on)
        mr = ModelResult(model, path, cov, None, self.book.gross_notional)  # type: ignore[arg-type]
        capital = METRICS["mean_im_per_notional"].func(mr)
        if t.kind == "coverage":
            achieved = _side_rate(cov, t.side)
            met = bool(achieved <= t.value) if math.isfinite(achieved) else False
        else:
            achieved, met = _kupiec_ok(cov, t, self.mpor)
        return _Eval(x, achieved, met, capital)


def _monotone_breaks(evals: list[_Eval], rtol: float = 1e-12) -> list[float]:
    """Grid values (least-capital order) where the metric rises or feasibility is lost."""
    bad = []
    for a, b in itertools.pairwise(evals):
        if math.isfinite(a.achieved) and math.isfinite(b.achieved) and b.achieved > a.achieved * (1 + rtol) + 1e-15:
            bad.append(b.value)
        elif a.met and not b.met:
            bad.append(b.value)
    return bad


@dataclass(frozen=True)
class CalibrationRow:
    """The calibration of one asset (or ``"joint"``)."""

    asset: str
    value: float
    achieved: float
    capital: float
    met: bool
    iterations: int
    monotone: bool
    bracket: tuple[float, float]
    note: str = ""


def _search(
    prob: _Problem,
    *,
    bounds: tuple[float, float],
    values: Sequence[float] | None,
    grid: int,
    xtol: float,
    increasing: bool,
    max_iter: int,
    asset: str,
) -> tuple[CalibrationRow, pd.DataFrame]:
    pts = sorted(float(v) for v in values) if values is not None else list(np.linspace(bounds[0], bounds[1], grid))
    if not increasing:
        pts = pts[::-1]  # least capital first
    evals = [prob(x) for x in pts]
    breaks = _monotone_breaks(evals)
    monotone = not breaks
    frame = pd.DataFrame(
        {"asset": asset, "value": [e.value for e in evals], "achieved": [e.achieved for e in evals],
         "met": [e.met for e in evals], "capital": [e.capital for e in evals]}
    )
    notes = []
    if not monotone:
        notes.append("not monotone at " + ", ".join(f"{v:.6g}" for v in breaks) + ": least-capital feasible grid point")
    feasible = [e for e in evals if e.met]
    if not feasible:
        row = CalibrationRow(asset, float("nan"), evals[-1].achieved, float("nan"), False, prob.evaluations,
                             monotone, (pts[0], pts[-1]),
                             "; ".join([*notes, f"target not met anywhere in {min(pts):.6g}..{max(pts):.6g}"]))
        return row, frame
    if not monotone or values is not None:
        best = min(feasible, key=lambda e: (e.capital, e.value if increasing else -e.value))
        i = evals.index(best)
        lo = evals[i - 1].value if i > 0 else best.value
        if values is not None and monotone:
            notes.append("discrete values: first feasible value")
        row = CalibrationRow(asset, best.value, best.achieved, best.capital, True, prob.evaluations, monotone,
                             (lo, best.value), "; ".join(notes))
        return row, frame
    i = next(k for k, e in enumerate(evals) if e.met)
    if i == 0:
        row = CalibrationRow(asset, evals[0].value, evals[0].achieved, evals[0].capital, True, prob.evaluations,
                             True, (evals[0].value, evals[0].value), "met at the least-capital bound")
        return row, frame
    lo, hi = evals[i - 1], evals[i]
    for _ in range(max_iter):
        if abs(hi.value - lo.value) <= xtol:
            break
        mid = prob(0.5 * (lo.value + hi.value))
        if mid.met:
            hi = mid
        else:
            lo = mid
    else:
        notes.append(f"stopped after max_iter={max_iter} bisection steps")
    brk = (lo.value, hi.value) if increasing else (hi.value, lo.value)
    row = CalibrationRow(asset, hi.value, hi.achieved, hi.capital, True, prob.evaluations, True, brk, "; ".join(notes))
    return row, frame


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """Calibrated values per asset (or one joint value) with the evidence.

    ``rows`` hold, per asset: the value, the achieved target quantity, the
    capital (mean IM / notional), whether the target is met, the number of
    evaluations, the monotone flag and the final bracket ``(lo, hi)`` (``lo``
    fails the target, ``hi`` = value meets it, for a monotone search).
    ``grid`` is every grid evaluation (asset, value, achieved, met, capital).
    """

    model: str
    param: str
    target: Target
    rows: tuple[CalibrationRow, ...]
    grid: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def monotone(self) -> bool:
        return all(r.monotone for r in self.rows)

    def params(self) -> dict[str, float] | float:
        """``{asset: value}`` (per asset), or the single joint value: ready to pass to the model."""
        if len(self.rows) == 1 and self.rows[0].asset == "joint":
            return self.rows[0].value
        return {r.asset: r.value for r in self.rows}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "asset": [r.asset for r in self.rows],
                self.param: [r.value for r in self.rows],
                "achieved": [r.achieved for r in self.rows],
                "target": self.target.value,
                "met": [r.met for r in self.rows],
                "mean_im_per_notional": [r.capital for r in self.rows],
                "iterations": [r.iterations for r in self.rows],
                "monotone": [r.monotone for r in self.rows],
                "bracket_lo": [r.bracket[0] for r in self.rows],
                "bracket_hi": [r.bracket[1] for r in self.rows],
                "note": [r.note for r in self.rows],
            }
        )

    def table(self) -> Table:
        title = f"Calibration of {self.model}.{self.param}: {self.target} ({self.target.metric})"
        notes = [] if self.monotone else ["a non-monotone metric: see the note column and .grid"]
        return Table(self.to_frame(), title, notes)

    def __str__(self) -> str:
        return str(self.table())

    def _repr_html_(self) -> str:
        return self.table().to_html()


# --------------------------------------------------------------------------- API
def calibrate(
    panel: PricePanel,
    model: str | ModelFactory,
    param: str,
    target: Target | str = "coverage",
    *,
    per_asset: bool = True,
    assets: Sequence[str] | None = None,
    book: Book | str = "collateral",
    fixed: Mapping[str, Any] | None = None,
    tie: Mapping[str, float] | None = None,
    bounds: tuple[float, float] | None = None,
    values: Sequence[float] | None = None,
    integer: bool = False,
    increasing: bool = True,
    grid: int = 11,
    xtol: float = 1e-4,
    max_iter: int = 60,
    mpor: int = 2,
    min_history: int = 0,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    policy: LiquidationPolicy | None = None,
    coverage_on: str = "initial",
    progress: Callable[[str, int, int], None] | None = None,
    adv_fraction: float | None = None,
    adv_window: int = 30,
) -> CalibrationResult:
    """Find the least-capital value of ``param`` that meets ``target``.

    Parameters
    ----------
    panel : PricePanel
        Prices (the model may use all dates up to each t; the window below
        selects which dates are scored).
    model : str or callable
        A registered model name (``"fixed_haircut"``, ``"scenario_grid"``...)
        or a factory ``f(label=..., **params) -> MarginModel``.
    param : str
        Constructor parameter searched (``"haircut"``, ``"imf"``,
        ``"psr_floor"``, ``"confidence"``, ``"window"``...).
    target : Target or str
        A :class:`Target` or its kind (default value).
    per_asset : bool
        One value per asset, each asset on ``single_asset_book(asset, book)``
        over ``panel.select([asset])``; False: one joint value on ``book``
        (a :class:`Book`) over the whole panel.
    assets : sequence of str, optional
        Assets calibrated in per-asset mode (default: all of the panel's).
    book : Book or {"collateral", "long", "short", "long_short"}
        The per-asset book kind, or the joint book.
    fixed : mapping, optional
        Other constructor parameters, held fixed.
    tie : mapping, optional
        ``{other_param: ratio}``: set ``other_param = ratio x value`` (e.g.
        ``{"mmf": 0.6}`` when searching ``imf``). For ``fixed_haircut`` and
        ``param="imf"`` without an ``mmf``, ``{"mmf": 0.6}`` is the default
        (dYdX's 0.03 / 0.05).
    bounds : (float, float), optional
        Search range (default :data:`DEFAULT_BOUNDS` for known parameters).
    values : sequence of float, optional
        Discrete candidates (lookbacks, windows): least-capital feasible one.
    integer : bool
        Round the parameter to an integer before building the model.
    increasing : bool
        True when a larger value means more capital (default).
    grid : int
        Grid points of the monotonicity check, >= 3.
    xtol : float
        Bisection tolerance on the parameter, > 0.
    max_iter : int
        Bisection steps at most.
    mpor, min_history, start, end, policy, coverage_on
        As :func:`riskmodels.backtest.engine.run_models`; ``start``/``end``
        are dates (inclusive) of the scored window.
    progress : callable, optional
        ``progress(message, i, n)`` after each asset.
    adv_fraction : float, optional
        Size every account so that its largest holding is this fraction of the
        asset's ADV (module docstring "Size"); default: the book as given.
    adv_window : int
        Days of volume before the scored window in that ADV; default 30.
    """
    if not isinstance(target, Target):
        target = Target(str(target))
    if int(grid) != grid or grid < 3:
        raise ValueError(f"grid={grid!r} is outside its valid range: integers >= 3")
    if not (xtol > 0 and math.isfinite(xtol)):
        raise ValueError(f"xtol={xtol!r} is outside its valid range (0, inf)")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter={max_iter!r} is outside its valid range: integers >= 1")
    if int(mpor) != mpor or mpor < 1:
        raise ValueError(f"mpor={mpor!r} is outside its valid range: integers >= 1 (days)")
    if coverage_on not in ("initial", "maintenance"):
        raise ValueError(f"coverage_on={coverage_on!r} must be 'initial' or 'maintenance'")
    if values is not None:
        values = [float(v) for v in values]
        if len(values) < 1:
            raise ValueError("values must list at least one candidate")
    else:
        if bounds is None:
            if param not in DEFAULT_BOUNDS:
                raise ValueError(
                    f"no default bounds for param {param!r}: pass bounds=(lo, hi) or values=[...]; "
                    f"defaults exist for {sorted(DEFAULT_BOUNDS)}"
                )
            bounds = DEFAULT_BOUNDS[param]
        lo, hi = (float(b) for b in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds={bounds!r} must be two finite numbers lo < hi")
        bounds = (lo, hi)
    fixed = dict(fixed or {})
    tie = dict(tie or {})
    if param in fixed or param in tie:
        raise ValueError(f"param {param!r} is searched: remove it from fixed/tie")
    if model == "fixed_haircut" and param == "imf" and "mmf" not in fixed and "mmf" not in tie:
        tie["mmf"] = 0.6
    factory = _factory(model)
    policy = policy or LiquidationPolicy()
    model_name = model if isinstance(model, str) else getattr(model, "__name__", "model")

    if per_asset:
        if isinstance(book, Book):
            raise ValueError("per_asset=True builds single-asset books: pass book as one of " f"{BOOK_KINDS}")
        jobs = [(a, panel.select([a]), single_asset_book(a, book)) for a in (assets or panel.assets)]
    else:
        if not isinstance(book, Book):
            raise ValueError("per_asset=False needs book=<a Book> (e.g. engine.build_book(cfg, panel.assets))")
        jobs = [("joint", panel, book.align(panel.assets))]

    if adv_fraction is not None:
        _warn_if_size_inert(policy, factory, fixed)
    rows, frames = [], []
    for k, (name, pan, bk) in enumerate(jobs):
        s = pan.date_index(start) if start is not None else 0
        e = pan.date_index(end, side="right") - 1 if end is not None else pan.n_dates - 1
        if s > e:
            raise ValueError(f"no dates between start={start} and end={end}")
        if adv_fraction is not None:
            from riskmodels.book_sizing import scale_to_adv

            bk = scale_to_adv(bk, pan, s, float(adv_fraction), int(adv_window))
        prob = _Problem(pan, bk, factory, param, fixed, tie, integer, target, int(mpor), int(min_history),
                        s, e, policy, coverage_on)
        row, frame = _search(prob, bounds=bounds or (0.0, 0.0), values=values, grid=int(grid), xtol=float(xtol),
                             increasing=increasing, max_iter=int(max_iter), asset=name)
        rows.append(row)
        frames.append(frame)
        if progress:
            progress(f"{name}: {param}={row.value:.6g}", k + 1, len(jobs))
    settings = {"per_asset": per_asset, "book": book if isinstance(book, str) else "custom", "mpor": mpor,
                "min_history": min_history, "start": None if start is None else str(start),
                "end": None if end is None else str(end), "coverage_on": coverage_on, "xtol": xtol,
                "grid": grid, "fixed": fixed, "tie": tie, "adv_fraction": adv_fraction, "adv_window": adv_window,
                "closeout": getattr(policy, "closeout", "flat")}
    return CalibrationResult(str(model_name), param, target, tuple(rows), pd.concat(frames, ignore_index=True),
                             settings)


def _warn_if_size_inert(policy: LiquidationPolicy, factory: ModelFactory, fixed: Mapping[str, Any]) -> None:
    """Warn when nothing in the run depends on the size of the accounts."""
    import warnings

    if getattr(policy, "closeout", "flat") == "impact":
        return
    try:
        m = factory(label="probe", **fixed)
    except Exception:  # the searched parameter may be required: cannot tell
        return
    if getattr(m, "name", "") != "concentration" and not getattr(m, "position_tiers", None) \
            and not getattr(m, "collateral_tiers", None):
        warnings.warn("adv_fraction is set but the close-out is flat and the model has no size term: the size of "
                      "the book cannot change the result (set [liquidation] closeout = \"impact\" or use a "
                      "concentration model)", stacklevel=3)


# --------------------------------------------------------------------------- config + CLI
CALIBRATE_KEYS = {
    "model", "param", "per_asset", "assets", "book", "params", "tie", "bounds", "values", "integer",
    "increasing", "grid", "xtol", "max_iter", "mpor", "min_history", "coverage_on", "target",
    "adv_fraction", "adv_window",
}


def read_toml(path: str | Path, section: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(base config, section)``: the backtest sections merged over the default config, and ``[section]``."""
    from riskmodels.config import SECTIONS, default_config, merge, read_toml, validate_config

    doc = read_toml(path)
    return parse_doc(doc, section, SECTIONS, default_config, merge, validate_config, str(path))


def parse_doc(doc: dict[str, Any], section: str, sections: Sequence[str], default_config: Callable[[], dict],
              merge: Callable[..., dict], validate: Callable[[dict], None], where: str = "config"
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    from riskmodels.config_schema import check_document

    doc = check_document(doc, where, sections=tuple(sections))
    if section not in doc:
        raise ValueError(f"{where}: no [{section}] section")
    sec = doc.pop(section)
    unknown = set(doc) - set(sections)
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {sorted(unknown)}; valid: {[*sections, section]}")
    cfg = merge(default_config(), doc)
    validate(cfg)
    return cfg, sec


def calibrate_from_config(cfg: dict[str, Any], sec: dict[str, Any], panel: PricePanel,
                          progress: Callable[[str, int, int], None] | None = None) -> CalibrationResult:
    """Run the ``[calibrate]`` section ``sec`` on ``panel`` with the base config ``cfg``."""
    from riskmodels.config import liquidation_policy

    unknown = set(sec) - CALIBRATE_KEYS
    if unknown:
        raise ValueError(f"[calibrate] has unknown key(s) {sorted(unknown)}; valid: {sorted(CALIBRATE_KEYS)}")
    for k in ("model", "param"):
        if k not in sec:
            raise ValueError(f"[calibrate] needs `{k}`")
    tgt = dict(sec.get("target", {"kind": "coverage"}))
    bad = set(tgt) - {"kind", "value", "level", "side"}
    if bad:
        raise ValueError(f"[calibrate.target] has unknown key(s) {sorted(bad)}; valid: kind, value, level, side")
    target = Target(**tgt)
    universe = tuple(cfg["data"]["universe"]) or panel.assets
    panel = panel.select(universe)
    per_asset = bool(sec.get("per_asset", True))
    book: Book | str = sec.get("book", "collateral") if per_asset else build_book(cfg, panel.assets)
    bt = cfg["backtest"]
    return calibrate(
        panel, sec["model"], sec["param"], target, per_asset=per_asset, assets=sec.get("assets") or None,
        book=book, fixed=sec.get("params"), tie=sec.get("tie"),
        bounds=tuple(sec["bounds"]) if "bounds" in sec else None, values=sec.get("values"),
        integer=bool(sec.get("integer", False)), increasing=bool(sec.get("increasing", True)),
        grid=int(sec.get("grid", 11)), xtol=float(sec.get("xtol", 1e-4)), max_iter=int(sec.get("max_iter", 60)),
        mpor=int(sec.get("mpor", bt["mpor"])), min_history=int(sec.get("min_history", 0)),
        start=cfg["data"].get("start") or None, end=cfg["data"].get("end") or None,
        policy=liquidation_policy(cfg), coverage_on=sec.get("coverage_on", bt.get("coverage_on", "initial")),
        progress=progress,
        adv_fraction=float(sec["adv_fraction"]) if "adv_fraction" in sec else None,
        adv_window=int(sec.get("adv_window", 30)),
    )


def add_calibrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``riskmodels calibrate`` to an argparse sub-parser collection."""
    c = subparsers.add_parser("calibrate", help="least-capital parameter that meets a coverage/liquidation target",
                              description=EXAMPLE_CALIBRATE_TOML, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--config", required=True, help="TOML file with a [calibrate] section (see the example above)")
    c.add_argument("--data", help="price data directory (else $RISKMODELS_DATA, else the fetch cache)")
    c.add_argument("--out", default="riskmodels-calibrate", help="output directory (default ./riskmodels-calibrate)")
    c.add_argument("--offline", action="store_true", help="never download data")
    c.add_argument("--quiet", action="store_true", help="no progress on stderr")
    c.set_defaults(func=run_calibrate)
    return c


def _stderr_progress(quiet: bool) -> Callable[[str, int, int], None]:
    t0 = time.perf_counter()

    def show(msg: str, i: int, n: int) -> None:
        if not quiet:
            sys.stderr.write(f"[{i}/{n}] {msg}  ({time.perf_counter() - t0:.1f} s)\n")
            sys.stderr.flush()

    return show


def load_config_panel(args: argparse.Namespace, cfg: dict[str, Any], note: Callable[[str], None]) -> PricePanel:
    """The panel a CLI config describes (``--data`` > config > env > cache)."""
    from riskmodels.data.loaders import load_panel
    from riskmodels.data.resolve import resolve_data_dir

    flag = getattr(args, "data", None) or cfg["data"].get("dir") or None
    data_dir = resolve_data_dir(flag, offline=bool(getattr(args, "offline", False)), fetch_if_missing=True,
                                progress=note)
    note(f"loading prices from {data_dir}")
    from riskmodels.data.options import LoaderOptions

    return load_panel(data_dir, assets=cfg["data"]["universe"] or None, policy=cfg["data"].get("policy", "error"),
                      interval=cfg["data"].get("interval", "1d"), end=cfg["data"].get("end") or None,
                      **LoaderOptions.from_config(cfg["data"]).kwargs())


def run_calibrate(args: argparse.Namespace) -> int:
    """``riskmodels calibrate``: print the table, write calibration.csv/json and grid.csv to ``--out``.

    Returns 0, or 1 when the target is not met anywhere in the search range for some asset.
    """
    from riskmodels.outputs import atomic_output, check_target

    check_target(args.out)
    cfg, sec = read_toml(args.config, "calibrate")
    quiet = bool(getattr(args, "quiet", False))
    bar = _stderr_progress(quiet)

    def note(msg: str) -> None:
        if not quiet:
            sys.stderr.write(msg + "\n")

    panel = load_config_panel(args, cfg, note)
    res = calibrate_from_config(cfg, sec, panel, progress=bar)
    print(res)
    out = Path(args.out)
    with atomic_output(out, command=f"riskmodels calibrate --config {args.config}") as stage:
        res.to_frame().to_csv(stage / "calibration.csv", index=False, float_format="%.10g")
        res.grid.to_csv(stage / "grid.csv", index=False, float_format="%.10g")
        params = res.params()
        (stage / "calibration.json").write_text(
            json.dumps({"model": res.model, "param": res.param, "target": str(res.target), "monotone": res.monotone,
                        "values": params, "data_fingerprint": panel.fingerprint(), "settings": res.settings},
                       indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    note(f"wrote {out}/calibration.csv, calibration.json, grid.csv")
    return 0 if all(r.met for r in res.rows) else 1
