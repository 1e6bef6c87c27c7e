"""Markdown rendering of a :class:`~riskmodels.report.governance.GovernanceReport` (for forum posts).

The same blocks as the HTML page, in the same order: tables through
:meth:`~riskmodels.backtest._testresult.Table.to_markdown` (GitHub-flavoured),
figures as links to ``<figure_dir>/<name>.png`` written beside the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riskmodels.report.governance import Block, GovernanceReport


def _block(b: Block, figure_dir: str) -> str:
    from riskmodels.report.governance import Bullets, Code, FigureBlock, Heading, Para, TableBlock

    if isinstance(b, Heading):
        return "#" * b.level + " " + b.text
    if isinstance(b, Para):
        return f"*{b.text}*" if b.small else b.text
    if isinstance(b, Bullets):
        return "\n".join(f"- {i}" for i in b.items)
    if isinstance(b, TableBlock):
        return b.table.to_markdown()
    if isinstance(b, FigureBlock):
        return f"![{b.caption}]({figure_dir}/{b.name}.png)\n\n*{b.caption}*"
    if isinstance(b, Code):
        fence = "````" if "```" in b.text else "```"
        return f"{fence}{b.lang}\n{b.text}\n{fence}"
    raise TypeError(f"unknown block {type(b).__name__}")


def render_markdown(report: GovernanceReport, figure_dir: str = "figures") -> str:
    """The report as Markdown; figures are referenced as ``figure_dir/<name>.png``."""
    out = [f"# {report.title}", "", report.subtitle, ""]
    if report.generated:
        out += [report.generated, ""]
    out += [f"{s.number}. [{s.title}](#{s.number}-{_slug(s.title)})" for s in report.sections]
    out.append("")
    for s in report.sections:
        out += [f"## {s.number}. {s.title}", ""]
        for b in s.blocks:
            out += [_block(b, figure_dir), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _slug(text: str) -> str:
    """GitHub's heading anchor: lower case, spaces to dashes, punctuation dropped."""
    keep = [c for c in text.lower() if c.isalnum() or c in " -_"]
    return "".join(keep).replace(" ", "-")
