"""Section "Summary per margin method": capital, liquidations, 24 h tails, coverage verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import ComparisonTable, Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report import charts
from riskmodels.report.document import Block, FigureBlock, Para, TableBlock

__all__ = ["SUMMARY_FORMATS", "build_section", "summary_of", "summary_table", "tail_24h"]


def tail_24h(result: BacktestResult, label: str) -> dict[str, float]:
    """Daily tail measures of one model over the window (USD).

    * ``bad_debt_p95_24h_usd`` / ``bad_debt_p99_24h_usd``: 95th / 99th
      percentile, across the window's days, of the day's total bad debt (0 on
      days without any); Chaos Labs' VaR / EVaR over 24 h [ChaosLabs-Aave].
    * ``liquidations_at_risk_usd``: 95th percentile across days of the day's
      liquidated notional; Gauntlet's LaR [Gauntlet-LaR].
    * ``worst_day_bad_debt_usd``: the largest daily bad debt.

    Percentiles use numpy's default (linear interpolation between order
    statistics).
    """
    sim = result.results[label].simulation
    bad = charts.daily_totals(sim, "bad_debt", result.start, result.end)
    liq = charts.daily_totals(sim, "notional", result.start, result.end)
    return {
        "bad_debt_p95_24h_usd": float(np.percentile(bad, 95)),
        "bad_debt_p99_24h_usd": float(np.percentile(bad, 99)),
        "liquidations_at_risk_usd": float(np.percentile(liq, 95)),
        "worst_day_bad_debt_usd": float(bad.max()),
    }


#: explicit display formats; every other column is formatted by the unit its name declares (riskmodels.units)
SUMMARY_FORMATS = {
    "mean_im_per_notional": "{:.2%}",
    "p95_im_per_notional": "{:.2%}",
    "implied_max_leverage": "{:.1f}",
    "liquidations_per_account_year": "{:.3f}",
    "bad_debt_bp_per_year": "{:.2f}",
    "breach_rate": "{:.2%}",
}


def summary_table(result: BacktestResult, coverage: Table, procyclicality: Table | None = None) -> ComparisonTable:
    """One row per model: the backtest's comparison table plus P95 IM and the 24 h tails (:func:`tail_24h`).

    Built on :func:`riskmodels.backtest.report_tables.comparison_summary`, so
    a column added there appears here too (formatted by its unit).
    """
    from riskmodels.backtest.report_tables import comparison_summary, procyclicality_table

    pro = procyclicality if procyclicality is not None else procyclicality_table(result)
    comp = comparison_summary(result, coverage, pro)  # type: ignore[arg-type]
    frame = comp.to_frame()
    m = result.metrics_frame()
    frame.insert(list(frame.columns).index("mean_im_per_notional") + 1, "p95_im_per_notional",
                 [float(m.loc[label, "p95_im_per_notional"]) for label in frame["model"]])
    tails = pd.DataFrame([tail_24h(result, label) for label in frame["model"]])
    at = list(frame.columns).index("liquidations_per_account_year") + 1
    for j, col in enumerate(tails.columns):
        frame.insert(at + j, col, tails[col].to_numpy())
    for col in ("coverage_zone", "coverage_verdict"):
        if col in frame.columns:
            frame[col] = [str(v) if isinstance(v, str) else "n/a" for v in frame[col]]
    formats: dict[str, Any] = {**comp.formats, **SUMMARY_FORMATS}
    return ComparisonTable(
        frame,
        title="Summary per margin method",
        notes=[
            "IM / notional: initial margin per unit of gross notional over priced (date, account) cells; "
            "bad debt P95/P99 24h: percentile across days of the day's bad debt, USD (Chaos Labs VaR/EVaR); "
            "liquidations at risk: P95 of daily liquidated notional, USD (Gauntlet LaR); "
            "bad_debt_bp_per_year: bad debt in bp of perp notional held a year; procyclicality over the full "
            "sample.",
        ],
        formats=formats,
    )


def build_section(ctx: Any) -> list[Block]:
    """The summary table, the Pareto chart, the insurance fund and the distance to liquidation."""
    result = ctx.result
    summ = summary_of(ctx)
    blocks: list[Block] = [
        Para("Capital efficiency (margin per unit of exposure) against liquidation frequency and losses to the "
             "insurance fund, on the same accounts and prices. Lower is better in every numeric column except "
             "implied_max_leverage."),
        TableBlock("summary", summ, wide=True),
        FigureBlock("pareto", charts.pareto_png(summ.to_frame()),
                    "Mean IM / notional against liquidations per account-year; the Pareto front joins the methods "
                    "no other method beats on both."),
    ]
    paths = {m: charts.insurance_fund_path(result.results[m].simulation, result.start, result.end)
             for m in result.models}
    blocks.append(FigureBlock("insurance_fund", charts.insurance_fund_png(paths),
                              "Cumulative liquidation penalties collected and bad debt paid, per method (USD)."))
    dist = {m: charts.distance_to_liquidation(result.results[m].simulation, result.start, result.end)
            for m in result.models}
    blocks.append(FigureBlock("distance_to_liquidation", charts.distance_to_liquidation_png(dist),
                              "Equity / maintenance margin - 1 at every close of every open account."))
    return blocks


def summary_of(ctx: Any) -> ComparisonTable:
    """The report's summary table, computed once per report (the executive summary shares it)."""
    result = ctx.result
    return ctx.cached("summary", lambda: summary_table(result, ctx.cached("coverage", lambda: _coverage(result)),
                                                       ctx.cached("procyclicality", lambda: _procyc(result))))


def _coverage(result: BacktestResult) -> Table:
    from riskmodels.backtest.report_tables import coverage_table

    return coverage_table(result)


def _procyc(result: BacktestResult) -> Table:
    from riskmodels.backtest.report_tables import procyclicality_table

    return procyclicality_table(result)
