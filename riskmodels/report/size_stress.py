"""Sections "Concentration of risk" and "Stress tests, Cover-2 and the insurance fund".

Concentration: the share of notional, initial margin, liquidations and bad debt
carried by the largest 1% / 10 / 30 accounts per model
(:func:`riskmodels.backtest.topn.top_concentration`), the top-borrower view of
public risk reports. Stress: with ``[stress] enabled = true`` the Cover-1 /
Cover-2 path (PFMI Principle 4, CPMI-IOSCO 2012) and the insurance-fund ledger
with auto-deleveraging of :mod:`riskmodels.stress`; otherwise a line saying how
to turn it on.
"""

from __future__ import annotations

from typing import Any

from riskmodels.backtest._testresult import Table
from riskmodels.report.document import Block, FigureBlock, Para, TableBlock
from riskmodels.report.sections import register_section

__all__ = ["build_concentration", "build_stress"]


def build_concentration(ctx: Any) -> list[Block]:
    from riskmodels.backtest.topn import top_concentration

    frame = ctx.cached("top_concentration", lambda: top_concentration(ctx.result))
    return [
        Para("Accounts ranked by gross notional (the same accounts for every model). A method that "
             "concentrates bad debt in a few large accounts needs a size term (a concentration add-on or "
             "an impact close-out, see the README's size terms)."),
        TableBlock("concentration", Table(frame, title="Share carried by the largest accounts"), wide=True),
    ]


def build_stress(ctx: Any) -> list[Block]:
    from riskmodels.stress import StressConfig, backtest_stress
    from riskmodels.stress.charts import cover_fund_png

    sec = dict(ctx.result.config.get("stress") or {})
    if not sec.get("enabled"):
        return [Para("Stress testing was not run for this report: set enabled = true in the config's stress "
                     "section for the Cover-1 / Cover-2 path and the insurance-fund ledger, or run "
                     "`riskmodels stress --date D` for one date's scenario table.", small=True)]
    st = ctx.cached("backtest_stress", lambda: backtest_stress(ctx.result, StressConfig.from_dict(sec)))
    return [
        Para("Stressed loss beyond margin of the largest one and two groups of related accounts (Cover-1, "
             "Cover-2; PFMI Principle 4) over the scenario library, and the insurance fund fed by liquidation "
             "penalties and drawn by bad debt, with auto-deleveraging when it cannot cover."),
        TableBlock("stress_summary", Table(st.summary(), title="Peak Cover-N and the insurance fund per model"),
                   wide=True),
        FigureBlock("cover_fund", cover_fund_png(st.cover, st.fund_frame()),
                    "Cover-2 per model over the backtest (left) and the insurance-fund balance (right)"),
    ]


register_section("concentration", "Concentration of risk", build_concentration, order=35)
register_section("stress", "Stress tests, Cover-2 and the insurance fund", build_stress, order=65)
