"""The governance report: the document a risk committee votes on.

:func:`build_report` turns a :class:`~riskmodels.backtest.result.BacktestResult`
into a :class:`~riskmodels.report.document.Document` by calling the
registered section builders in order (:mod:`riskmodels.report.sections`,
built-ins in :mod:`riskmodels.report.builtin`); the document renders to one
self-contained HTML file with a print stylesheet
(:mod:`~riskmodels.report.render_html`), to Markdown with the figures as PNG
files beside it (:mod:`~riskmodels.report.markdown`) and to PDF through
headless Chromium (:mod:`~riskmodels.report.pdf`). All renderings walk the
same blocks, so they carry the same tables.

Sections: executive summary (the recommended method and the parameter
changes), summary per method, recommendations (a finding for every model,
capped proposals, accounts made liquidatable), methodology and assumptions
(grouped, non-defaults highlighted), backtests, procyclicality, crash days,
sensitivity, data quality, reproducibility; appendices: every assumption,
references (public documents or notes shipped in ``riskmodels/docs``).

Determinism: every table is built in a fixed order (models in config order,
everything else sorted), charts are PNG without dates, and the only line that
changes between two runs on the same config and data is the one starting with
:data:`TIMESTAMP_PREFIX`.

This module re-exports the public names of the section modules, so
``from riskmodels.report.governance import cap_step`` keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riskmodels.backtest.result import BacktestResult
from riskmodels.report.assumptions import METHOD_NOTES, SOURCES, assumptions_table
from riskmodels.report.crash import CRASH_DAYS, cascade_blocks, cascade_suite, crash_day_table
from riskmodels.report.document import (
    TIMESTAMP_PREFIX,
    Block,
    Bullets,
    Code,
    Document,
    FigureBlock,
    Heading,
    Para,
    Section,
    TableBlock,
)
from riskmodels.report.impact import holdings_at, liquidatable_at_once, recommendation_table
from riskmodels.report.quality import quality_table
from riskmodels.report.recommend import (
    RULE_PARAMETERS,
    Proposal,
    calibration_proposals,
    cap_step,
    choose_proposals,
    coverage_findings,
    rule_proposals,
    scale_factor,
)
from riskmodels.report.sections import ReportContext, registered_sections
from riskmodels.report.sensitivity import sensitivity_table
from riskmodels.report.settings import REPORT_DEFAULTS, as_of_index, report_settings
from riskmodels.report.summary import SUMMARY_FORMATS, summary_table, tail_24h

#: the report object (kept under its former name)
GovernanceReport = Document

__all__ = [
    "CRASH_DAYS",
    "METHOD_NOTES",
    "REPORT_DEFAULTS",
    "RULE_PARAMETERS",
    "SOURCES",
    "SUMMARY_FORMATS",
    "TIMESTAMP_PREFIX",
    "Block",
    "Bullets",
    "Code",
    "Document",
    "FigureBlock",
    "GovernanceReport",
    "Heading",
    "Para",
    "Proposal",
    "Section",
    "TableBlock",
    "assumptions_table",
    "build_report",
    "calibration_proposals",
    "cap_step",
    "cascade_blocks",
    "cascade_suite",
    "choose_proposals",
    "coverage_findings",
    "crash_day_table",
    "holdings_at",
    "liquidatable_at_once",
    "quality_table",
    "recommendation_table",
    "report_settings",
    "rule_proposals",
    "scale_factor",
    "sensitivity_table",
    "summary_table",
    "tail_24h",
]


def build_report(
    result: BacktestResult,
    *,
    config_text: str = "",
    command: str = "",
    data_dir: str | Path | None = None,
    proposals: Sequence[Proposal] | None = None,
    cascade_tables: Sequence[Any] | None = None,
    timestamp: str | None = None,
    commit: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Document:
    """Assemble the registered sections from a backtest result.

    Parameters
    ----------
    result
        The backtest (its ``config`` may carry a ``report`` table, see :data:`REPORT_DEFAULTS`).
    config_text
        The config file as written, embedded verbatim.
    command
        The one command that regenerates the report.
    data_dir
        Where the prices were read from.
    proposals
        Parameter proposals (e.g. from a calibration run); default: per ``report.recommend.source``.
    cascade_tables
        Tables of cascade replays; default: :func:`cascade_suite` when the cascade engine exists.
    timestamp
        The generation line's time text (default: now, UTC, to the minute).
    commit
        Source commit (default: from git).
    progress
        Called with each section's title as it is built.
    """
    from riskmodels.report.builtin import ensure_registered

    ensure_registered()
    settings = report_settings(result.config)
    ctx = ReportContext(result, settings, as_of_index(result, settings), config_text=config_text, command=command,
                        data_dir=data_dir, commit=commit, proposals=proposals, cascade_tables=cascade_tables,
                        say=progress or (lambda _msg: None))
    panel, book = result.panel, result.book
    d0, d1 = panel.dates[result.start].date(), panel.dates[result.end].date()
    bt = result.config.get("backtest", {})
    subtitle = (f"{book.n_accounts} accounts, {panel.n_assets} assets ({', '.join(panel.assets)}), "
                f"{d0}..{d1}, MPOR {bt.get('mpor', '?')} days, {len(result.models)} margin methods.")
    sections: list[Section] = []
    numbers = {False: 0, True: 0}
    for spec in registered_sections():
        ctx.say(spec.title.lower())
        blocks = spec.build(ctx)
        if blocks is None:
            continue
        numbers[spec.appendix] += 1
        sections.append(Section(numbers[spec.appendix], spec.title, list(blocks), key=spec.key,
                                appendix=spec.appendix))
    stamp = timestamp if timestamp is not None else datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Document(settings["title"], subtitle, sections, f"{TIMESTAMP_PREFIX}{stamp}")
