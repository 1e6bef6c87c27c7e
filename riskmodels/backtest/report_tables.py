"""The statistics tables of a BacktestResult: coverage tests and procyclicality."""

from __future__ import annotations

import numpy as np

from riskmodels.backtest.procyclicality import ProcyclicalityReport, procyclicality
from riskmodels.backtest.result import BacktestResult
from riskmodels.backtest.stats import CoverageReport, coverage_report


def exception_panels(result: BacktestResult) -> dict[str, dict[str, np.ndarray]]:
    """``{model: {side: (T, P_side) float exceptions, NaN = no observation}}`` in the window."""
    out: dict[str, dict[str, np.ndarray]] = {}
    sl = slice(result.start, result.end + 1)
    for name, r in result.results.items():
        cov = r.coverage
        exc = np.where(cov.valid, cov.exceptions.astype(np.float64), np.nan)[sl]
        out[name] = {s: exc[:, cov.side_mask(s)] for s in ("combined", "long", "short")}
    return out


def coverage_table(result: BacktestResult, level: float = 0.05) -> CoverageReport:
    """Kupiec, Christoffersen, conditional coverage and traffic light per model and side.

    The expected exception rate is ``1 - backtest.confidence`` (default 1%).
    Overlapping MPOR windows are handled by the sub-sample columns.
    """
    bt = result.config.get("backtest", {})
    p = 1.0 - float(bt.get("confidence", 0.99))
    h = int(bt.get("mpor", 1))
    rep = coverage_report(exception_panels(result), p=p, h=h, level=level)
    rep.title = f"Coverage tests (IM vs {h}-day loss, expected exception rate {p:.2%}, level {level:.0%})"
    return rep


def procyclicality_table(result: BacktestResult) -> ProcyclicalityReport:
    """Murphy-Vasios-Vause measures of each model's total initial margin, full sample and stress windows."""
    sl = slice(result.start, result.end + 1)
    dates = result.panel.dates[sl]
    reports = {}
    for name, r in result.results.items():
        im = np.where(r.path.eligible, r.path.initial, np.nan)[sl]
        notional = np.where(np.isfinite(im), r.gross_notional[None, :], np.nan)
        reports[name] = procyclicality(im, dates, notional=notional, name=name)
    rep = ProcyclicalityReport.combine(reports)
    rep.title = "Procyclicality of total initial margin (Murphy, Vasios & Vause 2014)"
    return rep
