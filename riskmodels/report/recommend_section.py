"""Section "Recommendations": a finding for every model, the capped proposals and what they do to the book."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riskmodels.backtest._testresult import Table
from riskmodels.report.common import exception_rate
from riskmodels.report.document import Block, Para, TableBlock
from riskmodels.report.impact import recommendation_table
from riskmodels.report.recommend import (
    IN_LINE,
    RULE_PARAMETERS,
    Proposal,
    choose_proposals,
    coverage_findings,
)

__all__ = ["Recommendations", "build_section", "recommendations"]


@dataclass
class Recommendations:
    """Findings per model, proposals, where they came from, evidence tables, and the capped table."""

    findings: Table
    proposals: list[Proposal]
    origin: str
    evidence: list[Table]
    table: Table | None


def recommendations(ctx: Any) -> Recommendations:
    """The report's recommendations, computed once per report (shared with the executive summary)."""

    def compute() -> Recommendations:
        result, settings = ctx.result, ctx.settings
        findings = coverage_findings(result, settings)
        if ctx.proposals is not None:
            props, origin, evidence = list(ctx.proposals), "proposals passed to build_report", []
        else:
            props, origin, evidence = choose_proposals(result, settings)
        table = recommendation_table(result, props, settings, ctx.as_of, findings) if props else None
        return Recommendations(findings, props, origin, evidence, table)

    return ctx.cached("recommendations", compute)


def build_section(ctx: Any) -> list[Block]:
    rec = recommendations(ctx)
    st = ctx.settings["recommend"]
    blocks: list[Block] = [
        Para("Every method gets a finding: under-coverage (more exceptions than the target) asks for more margin, "
             "over-coverage (fewer) is capital the method holds without need and asks for less; each proposed "
             "change is capped per step and shown with the accounts it would make liquidatable at once."),
        TableBlock("findings", rec.findings),
        Para(f"Source of the proposals: {rec.origin}. Target exception rate "
             f"{exception_rate(ctx.result, ctx.settings):g} over the MPOR. Each change is limited to "
             f"{st['max_step']:g} ({st['step_kind']}) per proposal."),
    ]
    if rec.table is not None:
        blocks.append(TableBlock("recommendations", rec.table, wide=True))
    else:
        blocks.append(Para("No parameter change is proposed."))
    for i, tab in enumerate(rec.evidence, start=1):
        blocks.append(TableBlock(f"calibration_{i}", tab))
    scale_params = "; ".join(f"{n}: {', '.join(v)}" for n, v in sorted(RULE_PARAMETERS.items()))
    blocks.append(Para(
        "Proportional rule: k = Q(1-p) of (MPOR loss / margin) over the window's priced cells is the uniform "
        "multiplier of the margin that leaves the target exception rate p; the method's scale parameters "
        f"({scale_params}) are multiplied by k (exact when the requirement is proportional to them -- the "
        "initial margin is to im_multiplier, which leaves the maintenance margin and so liquidations unchanged "
        "-- first-order with collateral haircuts or tiers), kept inside their admissible range, then capped. "
        f"A method is in line when |k - 1| < {IN_LINE:g}.", small=True))
    return blocks
