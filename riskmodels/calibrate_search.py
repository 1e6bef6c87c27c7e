"""The calibration search: books, one problem's evaluations, bisection, the result.

:func:`single_asset_book` (the per-asset books), :class:`_Problem` (one
calibration problem: a model factory, a book and a target, evaluated value by
value), :func:`_search` (bisection on the least-capital side for a monotone
metric, the least-capital feasible grid point otherwise; see
:mod:`riskmodels.calibrate` for the method) and :class:`CalibrationResult`
(one :class:`CalibrationRow` per asset, or one for a joint calibration).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.coverage import coverage_backtest
from riskmodels.backtest.engine import run_models
from riskmodels.backtest.metrics import METRICS
from riskmodels.backtest.result import ModelResult
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.calibrate_targets import Target, _Eval, _kupiec_ok, _side_rate
from riskmodels.data.panel import PricePanel
from riskmodels.margin.base import MarginModel, account_eligibility
from riskmodels.portfolio import Book

BOOK_KINDS = ("collateral", "long", "short", "long_short")


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
