"""Section "Endogenous cascades: with and without feedback" of the governance report (issue 17).

With ``[liquidation] feedback = true`` the section runs the same config without
feedback (:func:`riskmodels.backtest.feedback_report.feedback_pair`, cached per
report) and shows, per margin model, liquidations and bad debt with and without
feedback and the cascade amplification, then the market scale the run assumed
(the book's holdings against the real open interest they stand for, and the
model's open interest beside the figures on record). Without feedback a line
says how to turn it on.
"""

from __future__ import annotations

from typing import Any

from riskmodels.backtest._testresult import Table
from riskmodels.report.document import Block, Para, TableBlock
from riskmodels.report.sections import register_section

__all__ = ["build_feedback"]


def build_feedback(ctx: Any) -> list[Block]:
    from riskmodels.backtest.feedback_report import comparison_table, feedback_on, feedback_pair

    if not feedback_on(ctx.result):
        return [Para("Accounts were simulated as price-takers: a method's forced sales did not move the prices "
                     "other accounts were marked at. Set feedback = true (with closeout = \"impact\") in the "
                     "config's liquidation section to charge each method for the cascades it causes.", small=True)]
    rep = ctx.cached("feedback_pair", lambda: feedback_pair(ctx.result))
    amp = rep.comparison["amplification"]
    worst = rep.comparison.loc[amp.idxmax()] if amp.notna().any() else None
    blocks: list[Block] = [
        Para("Each day's forced sales, netted per asset across accounts and scaled to the real market, move "
             "that day's execution and marking prices through the impact law, in rounds to a fixed point; the "
             "same config without feedback is the baseline."
             + (f" Largest amplification: {worst['model']} ({worst['amplification']:.2f}x the liquidated "
                "notional without feedback)." if worst is not None else "")),
        TableBlock("feedback_comparison", comparison_table(rep), wide=True),
        TableBlock("feedback_scale", Table(rep.scale, title="Market scale: book holdings vs the real open "
                                           "interest they stand for (USD)")),
    ]
    if len(rep.check):
        blocks.append(TableBlock("feedback_scale_check", Table(rep.check, title="Model open interest vs the "
                                                              "figures on record (CRASH_DAYS.md)")))
    return blocks


register_section("feedback", "Endogenous cascades: with and without feedback", build_feedback, order=75)
