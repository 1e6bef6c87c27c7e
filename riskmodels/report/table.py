"""A small table object that renders the same content as text, HTML and Markdown."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def _fmt(value: object, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if fmt and isinstance(value, (int, float, np.integer, np.floating)):
        try:
            return fmt.format(value)
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass
class Table:
    """A titled table with per-column formats.

    ``str(table)`` is a fixed-width text table for the terminal,
    ``table.to_html()`` an HTML table (also shown by Jupyter), and
    ``table.to_markdown()`` a GitHub-flavoured Markdown table.
    """

    frame: pd.DataFrame
    title: str = ""
    formats: Mapping[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def sort(self, by: str, ascending: bool = True) -> Table:
        return Table(self.frame.sort_values(by, ascending=ascending), self.title, self.formats, self.notes)

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        df = self.frame
        head = [str(df.index.name or "")] + [str(c) for c in df.columns]
        rows = []
        for idx, row in df.iterrows():
            rows.append([str(idx)] + [_fmt(row[c], self.formats.get(str(c))) for c in df.columns])
        return head, rows

    def __str__(self) -> str:
        head, rows = self._cells()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        line = lambda r: "  ".join(  # noqa: E731
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        out = []
        if self.title:
            out.append(self.title)
        out.append(line(head))
        out.append("  ".join("-" * w for w in widths))
        out.extend(line(r) for r in rows)
        out.extend(self.notes)
        return "\n".join(out)

    def to_markdown(self) -> str:
        head, rows = self._cells()
        out = []
        if self.title:
            out.append(f"**{self.title}**\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        out.extend("| " + " | ".join(r) + " |" for r in rows)
        if self.notes:
            out.append("")
            out.extend(f"_{n}_" for n in self.notes)
        return "\n".join(out)

    def to_html(self) -> str:
        head, rows = self._cells()
        esc = html.escape
        parts = ['<table class="rm-table">']
        if self.title:
            parts.append(f"<caption>{esc(self.title)}</caption>")
        parts.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
        parts.append("</tbody></table>")
        if self.notes:
            parts.append("".join(f'<p class="note">{esc(n)}</p>' for n in self.notes))
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_csv(self, path: str) -> None:
        self.frame.to_csv(path)
