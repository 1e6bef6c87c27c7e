"""HTML writer of a :class:`~riskmodels.report.document.Document`: one self-contained page that prints.

Screen: tables scroll sideways inside their box. Print (``@media print``, A4):
a table wider than a portrait page (:func:`print_width`, estimated from its
longest header and cell per column at 7 pt) is printed on landscape pages, as
column groups that each repeat the first (key) column when it is wider than
a landscape page too, so no column is cut off at the page edge; headers
never wrap (a PDF's text then holds every column name whole). Non-default assumptions and other highlighted
rows are bold with a left rule (visible without colour).
"""

from __future__ import annotations

import base64
import html

from riskmodels.backtest._testresult import Table
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

__all__ = ["CSS", "LANDSCAPE_PT", "PORTRAIT_PT", "column_groups", "print_width", "render_html"]

#: usable width of an A4 page at the stylesheet's margins (points), portrait and landscape
PORTRAIT_PT = 530.0
LANDSCAPE_PT = 790.0
#: average glyph width of DejaVu Sans at 7 pt (bold headers are wider), cell padding + border
_CHAR_PT, _HEAD_CHAR_PT, _PAD_PT = 3.9, 4.4, 7.0
#: text cells wrap in print, so a text column needs at most this many characters of width
_WRAP_CHARS = 36

CSS = """
:root{color-scheme:light}
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:1120px;margin:1.5em auto;color:#111;
padding:0 1em;line-height:1.35;font-size:14px}
h1{font-size:1.55em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:2px solid #333;padding-bottom:.15em;
margin-top:1.8em} h3{font-size:1.05em;margin-top:1.2em}
nav ul{columns:2;font-size:.9em;list-style:none;padding-left:1em} .subtitle{color:#333} .timestamp{font-size:.8em;color:#555}
div.table{overflow-x:auto;max-width:100%}
table.riskmodels-table{border-collapse:collapse;font-size:.78em;margin:.5em 0}
table.riskmodels-table th,table.riskmodels-table td{border:1px solid #999;padding:.2em .45em;text-align:right;
white-space:nowrap}
table.riskmodels-table td{white-space:normal;max-width:30em}
table.riskmodels-table th{background:#e8e8e8}
table.riskmodels-table td:first-child,table.riskmodels-table th:first-child{text-align:left}
table.riskmodels-table caption{text-align:left;font-weight:600;padding:.3em 0;caption-side:top}
table.riskmodels-table tr.hl td{font-weight:700;border-left:3px solid #000}
p.small,small{font-size:.8em;color:#333} p.finding{font-weight:600}
pre{background:#f3f3f3;border:1px solid #ccc;padding:.6em;font-size:.72em;overflow-x:auto;white-space:pre-wrap}
figure{margin:.8em 0} figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.8em;color:#333}
div.print-parts{display:none}
@page{size:A4 portrait;margin:14mm 12mm}
@page wide{size:A4 landscape;margin:12mm}
@media print{
 body{max-width:none;margin:0;padding:0;font-size:9.5pt} nav{display:none}
 h2{break-before:auto;break-after:avoid} h3{break-after:avoid}
 figure,pre{break-inside:avoid} figure img{max-height:17cm;border:none}
 div.table{overflow:visible} div.screen-only{display:none} div.print-parts{display:block;page:wide}
 table.riskmodels-table{font-size:7pt;break-inside:auto} table.riskmodels-table tr{break-inside:avoid}
 table.riskmodels-table td{white-space:normal;overflow-wrap:anywhere}
 table.riskmodels-table th{white-space:nowrap}
 table.riskmodels-table thead{display:table-header-group}
 table.riskmodels-table th{background:#e8e8e8;-webkit-print-color-adjust:exact;print-color-adjust:exact}
 pre{white-space:pre-wrap;word-break:break-all} a{color:inherit;text-decoration:none}
}
"""


def _column_widths(cells: dict[str, list[str]], numeric: dict[str, bool]) -> dict[str, float]:
    out = {}
    for c, vals in cells.items():
        longest = max([len(v) for v in vals], default=0)
        if not numeric[c]:
            longest = min(longest, _WRAP_CHARS)
        out[c] = max(len(c) * _HEAD_CHAR_PT, longest * _CHAR_PT) + _PAD_PT
    return out


def _cells(table: Table) -> tuple[dict[str, list[str]], dict[str, bool]]:
    import pandas as pd

    rows = table._formatted()
    frame = table.to_frame()
    cols = table.columns
    cells = {c: [r[j] for r in rows] for j, c in enumerate(cols)}
    numeric = {c: bool(pd.api.types.is_numeric_dtype(frame[c])) for c in cols}
    return cells, numeric


def print_width(table: Table) -> float:
    """Estimated printed width of ``table`` in points (7 pt text, headers on one line)."""
    cells, numeric = _cells(table)
    return float(sum(_column_widths(cells, numeric).values()))


def column_groups(table: Table, page_pt: float = LANDSCAPE_PT) -> list[list[str]]:
    """Columns split greedily into groups no wider than ``page_pt``, each starting with the first column."""
    cells, numeric = _cells(table)
    w = _column_widths(cells, numeric)
    cols = table.columns
    key, groups, cur, used = cols[0], [], [cols[0]], w[cols[0]]
    for c in cols[1:]:
        if len(cur) > 1 and used + w[c] > page_pt:
            groups.append(cur)
            cur, used = [key], w[key]
        cur.append(c)
        used += w[c]
    groups.append(cur)
    return groups


def _table_html(b: TableBlock) -> str:
    tab = b.table.to_html()
    if not b.highlight:
        return tab
    hl = set(b.highlight)
    head, sep, body = tab.partition("<tbody>")
    rows = body.split("<tr>")
    body = rows[0] + "".join(("<tr class='hl'>" if i in hl else "<tr>") + r for i, r in enumerate(rows[1:]))
    return head + sep + body


def _print_parts(b: TableBlock) -> str:
    """For print only: the table on landscape pages, in column groups if needed ("" if it fits portrait)."""
    t = b.table
    if len(t.columns) < 2 or print_width(t) <= PORTRAIT_PT:
        return ""
    groups = column_groups(t)
    frame = t.to_frame()
    parts = []
    for i, cols in enumerate(groups, start=1):
        title = t.title if len(groups) == 1 else f"{t.title} (columns {i}/{len(groups)})"
        part = Table(frame[cols], title=title, notes=t.notes if i == len(groups) else (), formats=t.formats)
        parts.append(_table_html(TableBlock(b.name, part, b.highlight)))
    return "<div class='print-parts' aria-hidden='true'>\n" + "\n".join(parts) + "\n</div>"


def _block(b: Block) -> str:
    esc = html.escape
    if isinstance(b, Heading):
        return f"<h{b.level}>{esc(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = "small" if b.small else ("finding" if b.strong else "")
        return f"<p class='{cls}'>{esc(b.text)}</p>" if cls else f"<p>{esc(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, TableBlock):
        parts = _print_parts(b)
        screen = " screen-only" if parts else ""
        return f"<div class='table{screen}' id='t-{esc(b.name)}'>\n{_table_html(b)}\n</div>" + (
            "\n" + parts if parts else "")
    if isinstance(b, FigureBlock):
        data = base64.b64encode(b.png).decode("ascii")
        return (f"<figure id='f-{esc(b.name)}'><img alt='{esc(b.caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{esc(b.caption)}</figcaption></figure>")
    if isinstance(b, Code):
        return f"<pre><code>{esc(b.text)}</code></pre>"
    raise TypeError(f"unknown block {type(b).__name__}")


def render_html(doc: Document) -> str:
    """One self-contained HTML page (figures as base64 data URIs, no script, no external resource)."""
    esc = html.escape
    out = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(doc.title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        f"<h1>{esc(doc.title)}</h1>",
        f"<p class='subtitle'>{esc(doc.subtitle)}</p>",
        f"<p class='timestamp'>{esc(doc.generated)}</p>" if doc.generated else "",
        "<nav><ul>",
    ]
    out += [f"<li><a href='#{s.anchor}'>{esc(s.heading)}</a></li>" for s in doc.sections]
    out.append("</ul></nav>")
    for s in doc.sections:
        out.append(f"<section id='{s.anchor}'><h2>{esc(s.heading)}</h2>")
        out += [_block(b) for b in s.blocks]
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(x for x in out if x) + "\n"
