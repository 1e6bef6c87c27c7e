"""Backtest results as objects: per model, and the comparison across models."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest import topn as _topn  # noqa: F401  (registers the top-N concentration metrics)
from riskmodels.backtest._testresult import ComparisonTable
from riskmodels.backtest.coverage import CoverageResult
from riskmodels.backtest.metrics import METRICS, Metric, metrics_with
from riskmodels.backtest.simulation import SimulationResult
from riskmodels.data.panel import PricePanel
from riskmodels.margin.base import MarginModel, MarginPath
from riskmodels.portfolio import Book


@dataclass(eq=False)
class ModelResult:
    """Everything one margin model produced on the book: path, coverage, simulation."""

    model: MarginModel
    path: MarginPath
    coverage: CoverageResult
    simulation: SimulationResult
    gross_notional: np.ndarray  # (P,)
    timings: dict[str, float] = field(default_factory=dict)
    #: the same book with every account margined in isolation (for the netting benefit)
    isolated_path: MarginPath | None = None
    #: warnings raised while this model ran: (category, message)
    warnings: list[tuple[type[Warning], str]] = field(default_factory=list)
    #: the fitted model's estimation log when it keeps one (GARCH: one row per asset and refit)
    fit_log: pd.DataFrame | None = None
    #: feedback runs: the same simulation without feedback (price-taker), for the comparison
    baseline_simulation: SimulationResult | None = None

    @cached_property
    def netting_benefit(self) -> np.ndarray | None:
        """``(T, P)``: 1 - cross-margined IM / sum of the isolated per-holding IMs.

        The share of capital cross-margining saves (Issue 11); NaN where not
        priced, and for accounts the book margins in isolation anyway.
        """
        if self.isolated_path is None:
            return None
        from riskmodels.backtest.procyclicality import netting_benefit

        return netting_benefit(self.path.initial, self.isolated_path.initial)

    @property
    def label(self) -> str:
        return self.model.label

    @property
    def mm_rule(self) -> str:
        """The maintenance (liquidation) rule this row ran under, in words (:mod:`~riskmodels.backtest.mm_rule`)."""
        from riskmodels.backtest.mm_rule import maintenance_rule

        return maintenance_rule(self.model, self.simulation.policy.maintenance_ratio)

    @cached_property
    def metrics(self) -> dict[str, float]:
        """All registered metrics, computed once."""
        return {name: m.func(self) for name, m in METRICS.items()}


@dataclass(eq=False)
class BacktestResult:
    """The comparison of several margin models on one book and one panel."""

    panel: PricePanel
    book: Book
    results: dict[str, ModelResult]
    config: dict[str, Any]
    start: int
    end: int
    #: the cells all models price and what each model could not price (:func:`~riskmodels.backtest.windows.restrict_to_common`)
    common: dict[str, Any] = field(default_factory=dict)

    def window_facts(self) -> dict[str, Any]:
        """First priced date, priced account-days, stress-window coverage (:func:`~riskmodels.backtest.windows.window_facts`)."""
        from riskmodels.backtest.windows import window_facts

        return window_facts(self)

    def verdicts(self, level: float = 0.05) -> dict[str, Any]:
        """``{model: CoverageVerdict}``: the book-level exceedance test per side (:mod:`~riskmodels.backtest.verdict`)."""
        from riskmodels.backtest.verdict import coverage_verdict

        cache = self.__dict__.setdefault("_verdicts", {})
        if level in cache:
            return cache[level]
        bt = self.config.get("backtest", {})
        p = 1.0 - float(bt.get("confidence", 0.99))
        h = int(bt.get("mpor", 1))
        out = {}
        for name, r in self.results.items():
            cov = r.coverage
            sl = cov.rows(self.start, self.end)
            out[name] = coverage_verdict(cov.exceptions[sl], cov.valid[sl], cov.side, p, h, level)
        cache[level] = out
        return out

    @property
    def models(self) -> list[str]:
        return list(self.results)

    def metrics_frame(self, tag: str | None = None) -> pd.DataFrame:
        """Models x metrics (raw numbers)."""
        ms = metrics_with(tag)
        data = {m.name: [self.results[k].metrics[m.name] for k in self.results] for m in ms}
        return pd.DataFrame(data, index=pd.Index(self.models, name="model"))

    def summary(self, tag: str | None = None) -> ComparisonTable:
        """The models x metrics table for the terminal, notebooks and reports."""
        ms: list[Metric] = metrics_with(tag)
        df = self.metrics_frame(tag)
        df.columns = [m.label for m in ms]
        df.insert(0, "mm rule", [self.results[k].mm_rule for k in self.results])
        d0, d1 = self.panel.dates[self.start].date(), self.panel.dates[self.end].date()
        title = (
            f"{self.book.n_accounts} accounts, {self.panel.n_assets} assets, {d0}..{d1}, "
            f"MPOR {self.config.get('backtest', {}).get('mpor', '?')} days"
        )
        from riskmodels.backtest.windows import window_header

        return ComparisonTable(df.reset_index(), title + "\n" + window_header(self),
                               formats={m.label: m.fmt for m in ms})

    def _repr_html_(self) -> str:
        return self.summary().to_html()

    def __str__(self) -> str:
        return str(self.summary())

    def margin_over_time(self, which: str = "initial") -> pd.DataFrame:
        """Dates x models: total margin / total gross notional of the accounts priced that day."""
        out = {}
        for name, r in self.results.items():
            sl = r.path.rows(self.start, self.end)
            m, g = _priced_sums(getattr(r.path, which)[sl], r.path.eligible[sl], r.gross_notional)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = np.where(g > 0, m / g, np.nan)
        return pd.DataFrame(out, index=self.panel.dates[self.start : self.end + 1])

    def fit_logs(self) -> pd.DataFrame | None:
        """Every model's estimation log (GARCH refits) with a ``model`` column, or None when none keeps one."""
        logs = [r.fit_log.assign(model=name) for name, r in self.results.items()
                if r.fit_log is not None and len(r.fit_log)]
        return pd.concat(logs, ignore_index=True) if logs else None

    def events(self) -> pd.DataFrame:
        """All liquidation events of all models."""
        frames = [r.simulation.events_frame() for r in self.results.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def margin_paths(self) -> pd.DataFrame:
        """Tidy table of every model's margin path (eligible cells).

        Columns date, account, model, initial, maintenance: the rows of
        :meth:`MarginPath.long_frame` of each model, concatenated, with
        ``account`` and ``model`` as categoricals (categories sorted) and the
        margins in float32. Built from integer codes by
        :func:`~riskmodels.backtest.paths_parquet.margin_paths_table` (the
        table ``margin_paths.parquet`` is written from): the account and model
        names are never materialised per row (18 million rows in the default
        backtest). Results on other accounts than the book's, or with no
        priced cell, take :meth:`_margin_paths_frames` (its reference).
        """
        from riskmodels.backtest.paths_parquet import margin_paths_table

        table = margin_paths_table(self)
        return self._margin_paths_frames() if table is None else table.to_pandas()

    def _margin_paths_frames(self) -> pd.DataFrame:
        """:meth:`margin_paths` from each path's :meth:`~riskmodels.margin.base.MarginPath.long_frame` (reference)."""
        frames = [r.path.long_frame() for r in self.results.values()]
        df = pd.concat(frames, ignore_index=True)
        df["account"] = df["account"].astype("category")
        df["model"] = df["model"].astype("category")
        df["initial"] = df["initial"].astype(np.float32)
        df["maintenance"] = df["maintenance"].astype(np.float32)
        return df


def _priced_sums(arr: np.ndarray, eligible: np.ndarray, gross: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per row: sum of ``arr`` and of ``gross`` over the cells priced (eligible and finite).

    In blocks of ``chunk`` rows, so that 10,000 accounts need no full-size temporaries.
    """
    n = arr.shape[0]
    m, g = np.zeros(n), np.zeros(n)
    for i in range(0, n, chunk):
        a = arr[i : i + chunk].astype(np.float64)  # margins are stored in float32: sum in float64
        ok = eligible[i : i + chunk] & np.isfinite(a)
        m[i : i + chunk] = np.where(ok, a, 0.0).sum(axis=1)
        g[i : i + chunk] = ok @ gross
    return m, g
