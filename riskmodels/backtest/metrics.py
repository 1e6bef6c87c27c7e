"""Metrics registry: one small function per number, tagged.

Each metric takes a :class:`~riskmodels.backtest.result.ModelResult` and
returns a float. Tags group them in tables: ``capital`` (capital efficiency),
``liquidation`` (liquidation frequency and losses), ``coverage`` (breaches).

Definitions (all amounts USD, years of 365 days):

* ``mean_im_per_notional`` - mean over valid (date, account) cells of
  ``IM[t, p] / G[p]`` with ``G`` the gross notional (sum |perp| + collateral);
* ``p95_im_per_notional`` - the 95th percentile of the same ratio;
* ``implied_max_leverage`` - ``1 / mean_im_per_notional``: the gross exposure
  one dollar of initial margin supports on average;
* ``liquidations_per_account_year`` - liquidations / (open account-days / 365);
* ``share_ever_liquidated`` - accounts liquidated at least once / accounts opened;
* ``breach_rate`` (and ``_long``, ``_short``) - coverage exceptions / observations;
* ``bad_debt_bp_per_year`` - total bad debt / notional-years, where
  notional-years = sum over open account-days of perp notional / 365
  (reported in basis points: bad debt per 10,000 USD of notional held a year);
* ``penalty_bp_per_year`` - liquidation penalties paid, same denominator.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from riskmodels.backtest.result import ModelResult


@dataclass(frozen=True)
class Metric:
    """A named, tagged metric with its display format."""

    name: str
    label: str
    func: Callable[[ModelResult], float]
    tags: tuple[str, ...]
    fmt: str
    better: str  # "lower", "higher" or "" (no direction)
    description: str
    unit: str = ""  # what the number is measured in, in words (written to summary.schema.json)


METRICS: dict[str, Metric] = {}


def metric(
    name: str, label: str, *, tags: tuple[str, ...], fmt: str = "{:.4f}", better: str = "", description: str = "",
    unit: str = "",
) -> Callable[[Callable[[ModelResult], float]], Callable[[ModelResult], float]]:
    """Register ``func`` as a metric (decorator); ``unit`` says in words what the number is measured in."""

    def deco(func: Callable[[ModelResult], float]) -> Callable[[ModelResult], float]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, label, func, tags, fmt, better, description or (func.__doc__ or "").strip(),
                               unit)
        return func

    return deco


def metrics_schema() -> dict[str, dict[str, str]]:
    """``{metric: {label, unit, better, tags, description}}`` for every registered metric (summary.schema.json)."""
    return {m.name: {"label": m.label, "unit": m.unit, "better": m.better, "tags": ",".join(m.tags),
                     "description": m.description} for m in METRICS.values()}


def metrics_with(tag: str | None = None) -> list[Metric]:
    """Registered metrics, optionally only those carrying ``tag``."""
    return [m for m in METRICS.values() if tag is None or tag in m.tags]


#: (mean, P95) of IM / gross notional per result, computed once (three metrics use it)
_IM_RATIO: weakref.WeakKeyDictionary[ModelResult, tuple[float, float]] = weakref.WeakKeyDictionary()


def _im_ratio(r: ModelResult) -> tuple[float, float]:
    """Mean and 95th percentile of IM / gross notional over the coverage cells."""
    if r not in _IM_RATIO:
        g = r.gross_notional
        cells = r.coverage.valid & (g > 0)[None, :]
        x = r.path.initial[cells] / np.broadcast_to(g, cells.shape)[cells]
        # the mean first: the percentile partitions x in place (x is this function's own copy)
        _IM_RATIO[r] = (float(x.mean()), float(np.percentile(x, 95, overwrite_input=True))) if x.size else (float("nan"), float("nan"))
    return _IM_RATIO[r]


@metric("mean_im_per_notional", "IM / notional (mean)", tags=("capital",), fmt="{:.2%}", better="lower",
        unit="fraction of gross notional")
def mean_im_per_notional(r: ModelResult) -> float:
    """Mean initial margin per unit of gross notional."""
    return _im_ratio(r)[0]


@metric("p95_im_per_notional", "IM / notional (P95)", tags=("capital",), fmt="{:.2%}", better="lower",
        unit="fraction of gross notional")
def p95_im_per_notional(r: ModelResult) -> float:
    """95th percentile of initial margin per unit of gross notional."""
    return _im_ratio(r)[1]


@metric("implied_max_leverage", "max leverage (x)", tags=("capital",), fmt="{:.1f}", better="higher",
        unit="multiple (gross notional per unit of initial margin)")
def implied_max_leverage(r: ModelResult) -> float:
    """Gross notional supported per unit of initial margin: 1 / mean(IM / notional)."""
    m = mean_im_per_notional(r)
    return 1.0 / m if m > 0 else float("inf")


@metric("liquidations_per_account_year", "liq. / acct-year", tags=("liquidation",), fmt="{:.3f}", better="lower",
        unit="liquidations per open account-year")
def liquidations_per_account_year(r: ModelResult) -> float:
    """Liquidations divided by open account-years."""
    sim = r.simulation
    return len(sim.liquidations) / sim.account_years if sim.account_days else float("nan")


@metric("share_ever_liquidated", "accts ever liq.", tags=("liquidation",), fmt="{:.1%}", better="lower",
        unit="fraction of accounts opened")
def share_ever_liquidated(r: ModelResult) -> float:
    """Share of opened accounts liquidated at least once."""
    sim = r.simulation
    opened = np.unique(sim.openings["account"]).size
    return np.unique(sim.liquidations["account"]).size / opened if opened else float("nan")


@metric("breach_rate", "breach rate", tags=("coverage",), fmt="{:.2%}", better="lower",
        unit="fraction of priced (date, account) cells")
def breach_rate(r: ModelResult) -> float:
    """Share of (date, account) cells where the MPOR loss exceeded the margin."""
    return r.coverage.breach_rate


def _side_rate(r: ModelResult, side: str) -> float:
    n, x = r.coverage.by_side()[side]
    return x / n if n else float("nan")


@metric("breach_rate_long", "breach (long)", tags=("coverage",), fmt="{:.2%}", better="lower",
        unit="fraction of priced (date, account) cells of net-long accounts")
def breach_rate_long(r: ModelResult) -> float:
    """Breach rate of net-long accounts (losses from falling prices)."""
    return _side_rate(r, "long")


@metric("breach_rate_short", "breach (short)", tags=("coverage",), fmt="{:.2%}", better="lower",
        unit="fraction of priced (date, account) cells of net-short accounts")
def breach_rate_short(r: ModelResult) -> float:
    """Breach rate of net-short accounts (losses from rising prices)."""
    return _side_rate(r, "short")


def _notional_years(r: ModelResult) -> float:
    return float(r.simulation.notional_total.sum()) / 365.0


@metric("bad_debt_bp_per_year", "bad debt (bp/yr)", tags=("liquidation",), fmt="{:.3f}", better="lower",
        unit="basis points of perp notional held for a year")
def bad_debt_bp_per_year(r: ModelResult) -> float:
    """Bad debt in basis points of perp notional held for a year."""
    ny = _notional_years(r)
    return 1e4 * float(r.simulation.liquidations["bad_debt"].sum()) / ny if ny else float("nan")


@metric("penalty_bp_per_year", "penalty (bp/yr)", tags=("liquidation",), fmt="{:.2f}", better="",
        unit="basis points of perp notional held for a year")
def penalty_bp_per_year(r: ModelResult) -> float:
    """Liquidation penalties paid, basis points of perp notional held for a year."""
    ny = _notional_years(r)
    return 1e4 * float(r.simulation.liquidations["penalty"].sum()) / ny if ny else float("nan")


@metric("bad_debt_usd", "bad debt (USD)", tags=("liquidation",), fmt="{:,.0f}", better="lower",
        unit="USD")
def bad_debt_usd(r: ModelResult) -> float:
    """Total bad debt over the simulation."""
    return float(r.simulation.liquidations["bad_debt"].sum())
