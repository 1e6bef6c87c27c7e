"""Registration of the built-in sections of the governance report (order: multiples of 10).

======  =====================  =====================================================
order   key                    module
======  =====================  =====================================================
10      executive              :mod:`riskmodels.report.executive`
20      summary                :mod:`riskmodels.report.summary`
30      recommendations        :mod:`riskmodels.report.recommend_section`
40      methodology            :mod:`riskmodels.report.assumptions`
50      backtests              :mod:`riskmodels.report.statistics`
60      procyclicality         :mod:`riskmodels.report.statistics`
70      crash_days             :mod:`riskmodels.report.crash`
80      sensitivity            :mod:`riskmodels.report.sensitivity`
90      data_quality           :mod:`riskmodels.report.quality`
100     reproducibility        :mod:`riskmodels.report.provenance`
A       assumptions            :mod:`riskmodels.report.assumptions` (appendix)
B       references             :mod:`riskmodels.report.sources` (appendix)
======  =====================  =====================================================

A new section (stress tests, lending recommendations, concentration, the
cascade suite) is a module with ``build(ctx) -> list[Block] | None`` and
one line in :data:`EXTRA_SECTION_MODULES` below, or a call of
:func:`~riskmodels.report.sections.register_section` at its import.
"""

from __future__ import annotations

import importlib
from typing import Any

from riskmodels.report import (
    assumptions,
    crash,
    executive,
    provenance,
    quality,
    recommend_section,
    sensitivity,
    statistics,
    summary,
)
from riskmodels.report.document import Block, TableBlock
from riskmodels.report.sections import register_section, registered_sections

__all__ = ["EXTRA_SECTION_MODULES", "ensure_registered"]

#: modules that register further sections when imported (each calls register_section)
EXTRA_SECTION_MODULES: tuple[str, ...] = ("riskmodels.report.size_stress", "riskmodels.report.feedback_section")


def _references(ctx: Any) -> list[Block]:
    from riskmodels.report.sources import references_table

    return [TableBlock("references", references_table())]


_BUILTIN = (
    ("executive", "Executive summary", executive.build_section, 10, False),
    ("summary", "Summary per margin method", summary.build_section, 20, False),
    ("recommendations", "Recommendations", recommend_section.build_section, 30, False),
    ("methodology", "Methodology and assumptions", assumptions.build_section, 40, False),
    ("backtests", "Backtests per model", statistics.build_backtests, 50, False),
    ("procyclicality", "Procyclicality", statistics.build_procyclicality, 60, False),
    ("crash_days", "Crash-day replays", crash.build_section, 70, False),
    ("sensitivity", "Sensitivity", sensitivity.build_section, 80, False),
    ("data_quality", "Data quality", quality.build_section, 90, False),
    ("reproducibility", "Reproducibility", provenance.build_section, 100, False),
    ("assumptions", "All assumptions", assumptions.build_appendix, 10, True),
    ("references", "References", _references, 20, True),
)


def ensure_registered() -> None:
    """Register the built-in sections (once) and import the extra section modules."""
    have = {s.key for s in registered_sections()}
    for key, title, build, order, appendix in _BUILTIN:
        if key not in have:
            register_section(key, title, build, order=order, appendix=appendix)
    for name in EXTRA_SECTION_MODULES:
        importlib.import_module(name)


ensure_registered()
