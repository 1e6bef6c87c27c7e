"""Sections "Backtests per model" and "Procyclicality": the backtest's statistics tables and margin chart."""

from __future__ import annotations

from typing import Any

from riskmodels.report import charts
from riskmodels.report.document import Block, FigureBlock, Para, TableBlock

__all__ = ["build_backtests", "build_procyclicality"]


def build_backtests(ctx: Any) -> list[Block]:
    from riskmodels.backtest.report_tables import coverage_table

    cov = ctx.cached("coverage", lambda: coverage_table(ctx.result))
    return [Para("Exceptions of the initial margin against the realised loss over the MPOR, per model and side "
                 "(long = net-long accounts); p-values below 0.001 are shown as <0.001."),
            TableBlock("coverage", cov, wide=True)]


def build_procyclicality(ctx: Any) -> list[Block]:
    from riskmodels.backtest.procyclicality import STRESS_WINDOWS
    from riskmodels.backtest.report_tables import netting_table, procyclicality_table

    result = ctx.result
    pro = ctx.cached("procyclicality", lambda: procyclicality_table(result))
    blocks: list[Block] = [
        TableBlock("procyclicality", pro, wide=True),
        FigureBlock("margin_over_time", charts.margin_over_time_png(result.margin_over_time("initial"),
                                                                    STRESS_WINDOWS),
                    "Total initial margin / total gross notional of the accounts priced each day; stress windows "
                    "shaded."),
    ]
    net = netting_table(result)
    if net is not None:
        blocks.append(TableBlock("netting", net, wide=True))
    return blocks
