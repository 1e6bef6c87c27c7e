"""The statistics tables of a BacktestResult: coverage tests and procyclicality."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from riskmodels.backtest._testresult import ComparisonTable, comparison_table, pareto_chart
from riskmodels.backtest.procyclicality import ProcyclicalityReport, netting_summary, procyclicality
from riskmodels.backtest.result import BacktestResult
from riskmodels.backtest.stats import CoverageReport, coverage_report, coverage_rows_for_comparison


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


def comparison_summary(
    result: BacktestResult, coverage: CoverageReport, procyc: ProcyclicalityReport
) -> ComparisonTable:
    """One row per model: capital efficiency, liquidation frequency, coverage verdict, procyclicality.

    Sort it with ``.sort("mean_im_per_notional")``; render with ``str``,
    ``to_html`` or ``to_markdown``.
    """
    metrics = result.metrics_frame()
    cov = {r["model"]: r for r in coverage_rows_for_comparison(coverage)}
    pro = procyc.to_frame()
    rows = []
    for model in result.models:
        m = metrics.loc[model]
        full = pro[(pro["model"] == model) & (pro["period"] == "full")].iloc[0]
        rows.append(
            {
                "model": model,
                "mean_im_per_notional": m["mean_im_per_notional"],
                "implied_max_leverage": m["implied_max_leverage"],
                "liquidations_per_account_year": m["liquidations_per_account_year"],
                "bad_debt_bp_per_year": m["bad_debt_per_notional"],
                "breach_rate": m["breach_rate"],
                "coverage_zone": cov.get(model, {}).get("tl_zone"),
                "coverage_verdict": cov.get(model, {}).get("verdict"),
                "peak_to_trough": full["peak_to_trough"],
                "max_30d_increase_rel": full["inc_30d_rel"],
            }
        )
    table = comparison_table(
        rows,
        title="Comparison: capital efficiency vs liquidation frequency, coverage and procyclicality",
        notes=["bad debt in basis points of perp notional held for a year; procyclicality over the full sample"],
    )
    table.formats = {
        "mean_im_per_notional": "{:.2%}",
        "implied_max_leverage": "{:.1f}",
        "liquidations_per_account_year": "{:.3f}",
        "bad_debt_bp_per_year": "{:.2f}",
        "breach_rate": "{:.2%}",
        "peak_to_trough": "{:.2f}",
        "max_30d_increase_rel": "{:.1%}",
    }
    return table


def pareto_png(table: ComparisonTable, path: str | Path) -> Path:
    """Pareto chart of mean IM / notional vs liquidations per account-year (both minimised)."""
    return pareto_chart(
        table,
        "mean_im_per_notional",
        "liquidations_per_account_year",
        path,
        title="Capital vs liquidations (Pareto front: lower-left is better)",
        xlabel="mean initial margin / gross notional",
        ylabel="liquidations per account-year",
    )


def netting_table(result: BacktestResult) -> ComparisonTable | None:
    """Cross-margining benefit per model: distribution across accounts, full sample and stress windows."""
    frames = []
    sl = slice(result.start, result.end + 1)
    dates = result.panel.dates[sl]
    for name, r in result.results.items():
        b = r.netting_benefit
        if b is None:
            continue
        frames.append(netting_summary(b[sl], dates, name=name).to_frame())
    if not frames:
        return None
    import pandas as pd

    table = ComparisonTable(
        pd.concat(frames, ignore_index=True),
        title="Cross-margining benefit: 1 - cross IM / sum of isolated IMs, across accounts",
        notes=["a benefit that shrinks in a stress window is netting that disappears when it is needed"],
    )
    return table
