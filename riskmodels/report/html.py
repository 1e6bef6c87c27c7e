"""One-page HTML summary of a backtest: tables, a margin-over-time chart, provenance.

Figures are embedded as base64 PNG so the page is a single self-contained
file, readable offline. Apart from the generation timestamp in the footer the
page is a pure function of the result and the config.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riskmodels.backtest.procyclicality import STRESS_WINDOWS
from riskmodels.backtest.result import BacktestResult
from riskmodels.report.charts import margin_over_time_png

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#111;padding:0 1em}
h1{font-size:1.6em} h2{font-size:1.2em;border-bottom:1px solid #999;padding-bottom:.2em;margin-top:1.6em}
table.riskmodels-table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
table.riskmodels-table th,table.riskmodels-table td{border:1px solid #bbb;padding:.25em .5em;text-align:right}
table.riskmodels-table td:first-child,table.riskmodels-table th:first-child{text-align:left}
table.riskmodels-table caption{text-align:left;font-weight:600;padding:.3em 0}
p.note{font-size:.8em;color:#444;margin:.2em 0} pre{background:#f4f4f4;padding:.6em;font-size:.75em;overflow-x:auto}
img{max-width:100%} footer{font-size:.75em;color:#555;margin-top:2em}
@media print{body{max-width:none}}
"""


def margin_chart_png(result: BacktestResult) -> bytes:
    """Margin over time (IM / gross notional) per model, the stress windows of the statistics shaded."""
    return margin_over_time_png(result.margin_over_time("initial"), STRESS_WINDOWS)


def render_summary_html(
    result: BacktestResult,
    *,
    extra_tables: list[Any] | None = None,
    images: dict[str, str | Path] | None = None,
    provenance: dict[str, Any] | None = None,
    config_text: str = "",
    timestamp: bool = True,
) -> str:
    """The one-page HTML summary as a string."""
    esc = html.escape
    png = base64.b64encode(margin_chart_png(result)).decode()
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>riskmodels backtest</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>riskmodels: margin methods compared</h1>",
        f"<p>{esc(result.summary().title)}. Capital efficiency (margin per unit of exposure, "
        "leverage allowed) against liquidation frequency and bad debt, on the same accounts and prices.</p>",
        *([f"<p class='dataset'>Data: {esc(str(provenance['dataset']))}</p>"] if (provenance or {}).get("dataset") else []),
        "<h2>Comparison</h2>",
        result.summary().to_html(),
        f"<img alt='margin over time' src='data:image/png;base64,{png}'>",
    ]
    for tab in extra_tables or []:
        parts.append(f"<h2>{esc(getattr(tab, 'title', ''))}</h2>")
        parts.append(tab.to_html())
    for title, img in (images or {}).items():
        data = base64.b64encode(Path(img).read_bytes()).decode()
        parts.append(f"<h2>{esc(title)}</h2><img alt='{esc(title)}' src='data:image/png;base64,{data}'>")
    quality = getattr(result.panel, "quality", None)
    if quality is not None:
        parts.append("<h2>Data quality</h2>")
        to_html = getattr(quality, "_repr_html_", None)
        parts.append(to_html() if callable(to_html) else f"<pre>{esc(str(quality))}</pre>")
    parts.append("<h2>Reproducibility</h2>")
    prov = dict(provenance or {})
    parts.append(f"<pre>{esc(json.dumps(prov, indent=2, sort_keys=True, default=str))}</pre>")
    if config_text:
        parts.append("<h3>Config</h3>")
        parts.append(f"<pre>{esc(config_text)}</pre>")
    if timestamp:
        parts.append(f"<footer>generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_summary_html(result: BacktestResult, path: str | Path, **kwargs: Any) -> Path:
    path = Path(path)
    path.write_text(render_summary_html(result, **kwargs), encoding="utf-8")
    return path
