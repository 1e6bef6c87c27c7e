"""The section registry of the governance report, and the context every section builder reads.

A section is a function ``build(ctx) -> list[Block] | None`` registered
under a key with a title and an order (``None``: the section is left out).
:func:`riskmodels.report.governance.build_report` calls the registered
builders in order and numbers the sections; appendices come last, lettered.
Adding a section is one module with a builder and one call::

    from riskmodels.report.sections import register_section
    register_section("stress", "Stress tests and Cover-2", build_stress, order=65)

(the built-in sections are registered in :mod:`riskmodels.report.builtin`;
orders are multiples of 10, so a new section slots in between). Builders
share expensive intermediate results through :meth:`ReportContext.cached`
(e.g. the coverage table, the proposals), so a section placed first -- the
executive summary -- can use what a later section shows in detail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from riskmodels.backtest.result import BacktestResult
    from riskmodels.report.document import Block

__all__ = ["ReportContext", "SectionSpec", "register_section", "registered_sections", "unregister_section"]


@dataclass
class ReportContext:
    """What a section builder may read: the result, the ``[report]`` settings, the caller's inputs.

    Attributes
    ----------
    result : BacktestResult
    settings : dict
        :func:`~riskmodels.report.settings.report_settings` of the result's config.
    as_of : int
        Date index of the book snapshot used by recommendations and shocks.
    config_text, command, data_dir, commit
        Provenance given by the caller (the CLI).
    proposals, cascade_tables
        Inputs passed to ``build_report`` (None: the sections compute them).
    """

    result: BacktestResult
    settings: dict[str, Any]
    as_of: int
    config_text: str = ""
    command: str = ""
    data_dir: str | Path | None = None
    commit: str | None = None
    proposals: Sequence[Any] | None = None
    cascade_tables: Sequence[Any] | None = None
    say: Callable[[str], None] = field(default=lambda _msg: None)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per report, under ``key``."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


SectionBuilder = Callable[[ReportContext], "list[Block] | None"]


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    build: SectionBuilder
    order: float
    appendix: bool = False


_SECTIONS: dict[str, SectionSpec] = {}


def register_section(key: str, title: str, build: SectionBuilder, *, order: float, appendix: bool = False,
                     replace: bool = False) -> SectionSpec:
    """Register a section builder under ``key`` (an error if the key is taken, unless ``replace``)."""
    if not key or not key.replace("_", "").isalnum():
        raise ValueError(f"section key {key!r} must be a non-empty identifier (letters, digits, _)")
    if key in _SECTIONS and not replace:
        raise ValueError(f"section {key!r} is already registered (pass replace=True to override it)")
    spec = SectionSpec(key, title, build, float(order), appendix)
    _SECTIONS[key] = spec
    return spec


def unregister_section(key: str) -> None:
    """Remove a registered section (e.g. in a test); unknown keys raise ``KeyError``."""
    del _SECTIONS[key]


def registered_sections() -> list[SectionSpec]:
    """Sections in document order: numbered sections by order, then appendices by order."""
    return sorted(_SECTIONS.values(), key=lambda s: (s.appendix, s.order, s.key))
