"""The lending market's governance report: ``report.html`` / ``report.md`` beside the lending outputs.

Sections (the table risk teams publish first): parameter recommendations
(asset | current LTV, LT, LB, cap | recommended | capped per step | accounts the
capped change makes liquidatable), the market's summary statistics (VaR of bad
debt, liquidations at risk, each with the rule it ran under), the per-reserve
table, and the run's provenance. Rendered with the margin report's document
model (:mod:`riskmodels.report.document`), so HTML and Markdown carry the same
tables.
"""

from __future__ import annotations

from typing import Any

from riskmodels.backtest._testresult import Table
from riskmodels.report.document import Document, Para, Section, TableBlock

__all__ = ["lending_document"]


def lending_document(run: Any, cfg: dict[str, Any], fingerprint: str, dataset: str = "") -> Document:
    """The :class:`~riskmodels.report.document.Document` of one lending run (``LendingRun``)."""
    from riskmodels.lending.metrics import asset_table, summary, var_table

    res = run.result
    sections: list[Section] = []
    n = 1
    if run.recommendations is not None:
        rec = run.recommendations.reset_index()
        sections.append(Section(n, "Parameter recommendations", [
            Para("Per collateral asset: the current parameters, the least-risk values that meet the target "
                 "over the history (monotonicity checked), the change capped per step, and the accounts the "
                 "capped change makes liquidatable at once."),
            TableBlock("recommendations", Table(rec, title="Recommended LTV / LT / LB and supply cap"), wide=True),
        ], key="recommendations"))
        n += 1
    sections.append(Section(n, "Market risk over the backtest", [
        Para(f"Rules: {res.rule}."),
        TableBlock("lending_summary", Table(summary(res), title="Summary statistics")),
        TableBlock("lending_var", Table(var_table(res), title="VaR of bad debt and liquidations at risk")),
    ], key="summary"))
    n += 1
    sections.append(Section(n, "Per reserve", [
        TableBlock("lending_assets", Table(asset_table(res).reset_index(), title="Liquidations and bad debt per reserve"),
                   wide=True),
    ], key="assets"))
    n += 1
    sections.append(Section(n, "Reproducibility", [
        Para(f"Data: {dataset or 'price folder'}; fingerprint {fingerprint}. Run: riskmodels backtest with "
             "[market] kind = \"lending\"; the config is in lending_summary.json."),
    ], key="reproducibility"))
    protocol = str((cfg.get("lending") or {}).get("protocol", "aave_v3.3"))
    return Document(title="Lending market risk review", subtitle=f"{protocol} rules on real daily prices",
                    sections=sections)
