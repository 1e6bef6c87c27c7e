"""The document model of the governance report: sections of blocks, rendered by separate writers.

A :class:`Document` is an ordered list of :class:`Section` objects, each a
list of blocks (:class:`Heading`, :class:`Para`, :class:`Bullets`,
:class:`TableBlock`, :class:`FigureBlock`, :class:`Code`). It holds no
rendering code of its own beyond delegating to the writers:

* :mod:`riskmodels.report.render_html` -- one self-contained HTML page with a
  print stylesheet (prints to PDF);
* :mod:`riskmodels.report.markdown` -- GitHub Markdown with ``figures/*.png``;
* :mod:`riskmodels.report.pdf` -- the HTML page printed by headless Chromium.

This module imports neither the backtest nor the renderers at import time,
so every other report module can depend on it without a cycle.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riskmodels.backtest._testresult import Table

__all__ = [
    "TIMESTAMP_PREFIX",
    "Block",
    "Bullets",
    "Code",
    "Document",
    "FigureBlock",
    "Heading",
    "Para",
    "Section",
    "TableBlock",
    "write_atomic",
]

#: the one line that differs between two runs (HTML and Markdown)
TIMESTAMP_PREFIX = "Generated: "


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 3


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text (escaped in HTML); ``small`` for notes, ``strong`` for a finding."""

    text: str
    small: bool = False
    strong: bool = False


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class TableBlock:
    """A table, named for tests and for the CSV written beside the report.

    ``highlight``: row indices rendered emphasised (e.g. non-default
    assumptions); ``wide``: print the table on a landscape page.
    """

    name: str
    table: Table
    highlight: tuple[int, ...] = ()
    wide: bool = False


@dataclass(frozen=True)
class FigureBlock:
    """A PNG figure: embedded in HTML, written as ``figures/<name>.png`` for Markdown."""

    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Code:
    text: str
    lang: str = ""


Block = Heading | Para | Bullets | TableBlock | FigureBlock | Code


@dataclass
class Section:
    """A numbered section; ``key`` is its stable name (tests, anchors, extensions)."""

    number: int
    title: str
    blocks: list[Block] = field(default_factory=list)
    key: str = ""
    appendix: bool = False

    @property
    def anchor(self) -> str:
        return f"s-{self.key}" if self.key else f"s{self.number}"

    @property
    def heading(self) -> str:
        """``"3. Title"``, or ``"Appendix A. Title"`` for appendices (``number`` = 1 for A)."""
        if self.appendix:
            return f"Appendix {chr(ord('A') + self.number - 1)}. {self.title}"
        return f"{self.number}. {self.title}"


@dataclass
class Document:
    """An ordered list of sections; renders to HTML, Markdown and PDF with the same content."""

    title: str
    subtitle: str
    sections: list[Section]
    generated: str = ""

    # ------------------------------------------------------------- access
    def blocks(self) -> Iterable[tuple[Section, Block]]:
        for s in self.sections:
            for b in s.blocks:
                yield s, b

    @property
    def tables(self) -> dict[str, Table]:
        """``{name: Table}`` in document order."""
        return {b.name: b.table for _, b in self.blocks() if isinstance(b, TableBlock)}

    @property
    def figures(self) -> dict[str, FigureBlock]:
        return {b.name: b for _, b in self.blocks() if isinstance(b, FigureBlock)}

    def section(self, key: int | str) -> Section:
        """A section by its key (``"data_quality"``) or its number among the numbered sections."""
        for s in self.sections:
            if (isinstance(key, str) and s.key == key) or (isinstance(key, int) and not s.appendix
                                                           and s.number == key):
                return s
        raise KeyError(f"no section {key!r}; sections are {[s.key or s.number for s in self.sections]}")

    # ------------------------------------------------------------- render
    def to_html(self) -> str:
        """One self-contained HTML page (figures as base64 data URIs, no script, no external resource)."""
        from riskmodels.report.render_html import render_html

        return render_html(self)

    def to_markdown(self, figure_dir: str = "figures") -> str:
        from riskmodels.report.markdown import render_markdown

        return render_markdown(self, figure_dir)

    def write(self, out: str | Path, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.html``, ``<stem>.md``, ``figures/*.png`` and ``tables/*.csv`` into ``out`` (atomically)."""
        out = Path(out)
        fig_dir = out / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        tab_dir = out / "tables"
        tab_dir.mkdir(parents=True, exist_ok=True)
        paths = {"html": out / f"{stem}.html", "markdown": out / f"{stem}.md"}
        write_atomic(paths["html"], self.to_html().encode("utf-8"))
        write_atomic(paths["markdown"], self.to_markdown("figures").encode("utf-8"))
        for name, fb in sorted(self.figures.items()):
            write_atomic(fig_dir / f"{name}.png", fb.png)
        for name, tab in sorted(self.tables.items()):
            text = tab.to_frame().to_csv(index=False, float_format="%.10g", lineterminator="\n")
            write_atomic(tab_dir / f"{name}.csv", text.encode("utf-8"))
        return paths


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
