"""Markdown writer of a :class:`~riskmodels.report.document.Document` (for forum posts).

The same blocks as the HTML page, in the same order: tables through
:meth:`~riskmodels.backtest._testresult.Table.to_markdown` (GitHub-flavoured),
highlighted rows with their first cell in bold,
figures as links to ``<figure_dir>/<name>.png`` written beside the file.
"""

from __future__ import annotations

from riskmodels.report.document import (
    Block,
    Bullets,
    Code,
    Document,
    FigureBlock,
    Heading,
    Para,
    TableBlock,
)

__all__ = ["render_markdown"]


def _table(b: TableBlock) -> str:
    text = b.table.to_markdown()
    if not b.highlight:
        return text
    lines = text.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("|"))  # header row; body starts 2 below
    for i in b.highlight:
        j = first + 2 + i
        if j < len(lines) and lines[j].startswith("| "):
            cell, bar, rest = lines[j][2:].partition(" |")
            lines[j] = f"| **{cell}**{bar}{rest}"
    return "\n".join(lines)


def _block(b: Block, figure_dir: str) -> str:
    if isinstance(b, Heading):
        return "#" * b.level + " " + b.text
    if isinstance(b, Para):
        return f"*{b.text}*" if b.small else (f"**{b.text}**" if b.strong else b.text)
    if isinstance(b, Bullets):
        return "\n".join(f"- {i}" for i in b.items)
    if isinstance(b, TableBlock):
        return _table(b)
    if isinstance(b, FigureBlock):
        return f"![{b.caption}]({figure_dir}/{b.name}.png)\n\n*{b.caption}*"
    if isinstance(b, Code):
        fence = "````" if "```" in b.text else "```"
        return f"{fence}{b.lang}\n{b.text}\n{fence}"
    raise TypeError(f"unknown block {type(b).__name__}")


def render_markdown(doc: Document, figure_dir: str = "figures") -> str:
    """The document as Markdown; figures are referenced as ``figure_dir/<name>.png``."""
    out = [f"# {doc.title}", "", doc.subtitle, ""]
    if doc.generated:
        out += [doc.generated, ""]
    out += [f"- [{s.heading}](#{_slug(s.heading)})" for s in doc.sections]
    out.append("")
    for s in doc.sections:
        out += [f"## {s.heading}", ""]
        for b in s.blocks:
            out += [_block(b, figure_dir), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _slug(text: str) -> str:
    """GitHub's heading anchor: lower case, spaces to dashes, punctuation dropped."""
    keep = [c for c in text.lower() if c.isalnum() or c in " -_"]
    return "".join(keep).replace(" ", "-")
