"""The governance report: the document a risk committee votes on.

:func:`build_report` turns a :class:`~riskmodels.backtest.result.BacktestResult`
into a :class:`GovernanceReport` -- an ordered list of sections made of
blocks (headings, paragraphs, tables, figures, code) -- which renders to one
self-contained HTML file (figures embedded as base64 PNG, print CSS) and to
Markdown with the figures as PNG files beside it. Both renderings are walks
over the same blocks, so they carry the same tables.

Sections (issue 10):

1. summary per method: capital (mean and P95 IM / notional), liquidations per
   account-year, bad debt at the 95th and 99th percentile over 24 h (Chaos
   Labs' VaR / EVaR), liquidations at risk (Gauntlet's LaR: the 95th
   percentile of daily liquidated notional), coverage verdicts;
2. recommendations: current -> proposed parameter, each change capped at
   ``max_step`` (Chaos Labs' +-3% per parameter per proposal), with the
   accounts the change would make liquidatable at once (count, notional);
3. methodology and every assumption with its value and source;
4. backtests per model (exceptions, Kupiec, Christoffersen, traffic light);
5. procyclicality and the margin-over-time chart with stress windows shaded;
6. crash days: the backtest's own (price-taker) outcome on each crash day,
   and the cascade engine's replays when ``riskmodels.cascade`` exists;
7. sensitivity: a tornado over the liquidation settings and the method's
   scale, and the instantaneous-shock x leverage heatmap;
8. data quality: every defect and what was done;
9. reproducibility: version, commit, config, data checksums, seeds, command.

Determinism: every table is built in a fixed order (models in config order,
everything else sorted), charts are PNG without dates, and the only line that
changes between two runs on the same config and data is the one starting with
:data:`TIMESTAMP_PREFIX`.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import math
import platform
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import ComparisonTable, Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report import charts

__all__ = [
    "CRASH_DAYS",
    "REPORT_DEFAULTS",
    "RULE_PARAMETERS",
    "TIMESTAMP_PREFIX",
    "Code",
    "FigureBlock",
    "GovernanceReport",
    "Heading",
    "Para",
    "Proposal",
    "Section",
    "TableBlock",
    "build_report",
    "cap_step",
    "crash_day_table",
    "holdings_at",
    "liquidatable_at_once",
    "quality_table",
    "recommendation_table",
    "report_settings",
    "rule_proposals",
    "sensitivity_table",
    "summary_table",
    "tail_24h",
]

#: the one line that differs between two runs (HTML and Markdown)
TIMESTAMP_PREFIX = "Generated: "

#: ``[report]`` settings and their defaults (a config's ``[report]`` table is merged over them)
REPORT_DEFAULTS: dict[str, Any] = {
    "title": "Margin methods compared: risk committee report",
    "as_of": "",  # book snapshot date for recommendations and shocks; "" = last date of the window
    "shocks": [-0.05, -0.10, -0.15, -0.20, -0.30, -0.40, -0.50],
    "leverages": [1, 2, 3, 5, 10, 20, 50],
    "recommend": {
        "source": "auto",  # auto | calibration | explicit | rule | none
        "max_step": 0.03,  # Chaos Labs: +-3% per parameter per proposal
        "step_kind": "absolute",  # absolute (parameter units, e.g. 0.03 = 3 points) | relative
        "target_exception_rate": None,  # None = 1 - backtest.confidence
        "proposals": [],  # [{model = "label", params = {imf = 0.06}}]
        # riskmodels.calibrate searches, one per entry: {model = "label", param = "imf", target = "coverage",
        # value = 0.01, side = "combined", tie = {mmf = 0.6}, bounds = [0.01, 0.5], grid = 11, xtol = 1e-4}
        "calibrate": [],
    },
    "cascade": {  # crash-day replays with price impact (riskmodels.cascade), first model only
        "enabled": True,
        "accounts": 1000,
        "calibration_accounts": 500,
        "calm_days": 8,
        "substeps": 6,
    },
    "sensitivity": {
        "model": "",  # "" = the first model
        "accounts": 200,  # the first N accounts of the book
        "metric": "liquidations_per_account_year",
        "factors": {
            "cushion": [0.25, 1.0],
            "slippage": [0.0005, 0.005],
            "penalty": [0.005, 0.02],
            "reentry_days": [1, 20],
            "scale": [0.8, 1.2],
        },
    },
}

#: scale parameters of each method for the proportional rule (requirement ~ proportional to them)
RULE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "fixed_haircut": ("imf", "mmf"),
    "deribit_pm": ("price_range",),
}

#: crash days inside which the backtest's own outcome is shown (CRASH_DAYS.md, observed figures)
CRASH_DAYS: dict[str, str] = {
    "2020-03-12": "BTC 7,353 -> 3,978; BitMEX longs $1.17B",
    "2020-03-13": "BitMEX longs $485M; Deribit insurance fund exhausted",
    "2021-01-11": "BTC -29% from ATH; $5.55B liquidated",
    "2021-04-18": "BTC ~-15%; ~$10.1B in one day",
    "2021-05-19": "BTC ~43k -> ~30k; > $8B, 804,242 traders",
    "2021-09-07": "BTC -10% intraday; longs > $3.1B",
    "2022-05-10": "BTC -8%, LUNA -50%; > $1B, longs 74%",
    "2022-11-08": "FTX; longs > $700M (8-9 Nov)",
    "2022-11-09": "FTX; BTC+ETH $390M",
    "2024-08-05": "BTC 58,350 -> 49,513 in < 5 h; $1.06-1.08B, longs 85%",
}

SENSITIVITY_METRICS = ("liquidations_per_account_year", "bad_debt_per_notional")


# ---------------------------------------------------------------------------
# document blocks
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 3


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text (escaped in HTML)."""

    text: str
    small: bool = False


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class TableBlock:
    """A table, named for tests and for the CSV written beside the report."""

    name: str
    table: Table


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
    number: int
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"s{self.number}"


CSS = """
:root{color-scheme:light}
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:1120px;margin:1.5em auto;color:#111;
padding:0 1em;line-height:1.35;font-size:14px}
h1{font-size:1.55em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:2px solid #333;padding-bottom:.15em;
margin-top:1.8em} h3{font-size:1.05em;margin-top:1.2em}
nav ol{columns:2;font-size:.9em} .subtitle{color:#333} .timestamp{font-size:.8em;color:#555}
table.riskmodels-table{border-collapse:collapse;font-size:.78em;margin:.5em 0;display:block;overflow-x:auto;
max-width:100%}
table.riskmodels-table th,table.riskmodels-table td{border:1px solid #999;padding:.2em .45em;text-align:right;
white-space:nowrap}
table.riskmodels-table th{background:#e8e8e8}
table.riskmodels-table td:first-child,table.riskmodels-table th:first-child{text-align:left}
table.riskmodels-table caption{text-align:left;font-weight:600;padding:.3em 0;caption-side:top}
p.small,small{font-size:.8em;color:#333}
pre{background:#f3f3f3;border:1px solid #ccc;padding:.6em;font-size:.72em;overflow-x:auto;white-space:pre-wrap}
figure{margin:.8em 0} figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.8em;color:#333}
@media print{
 body{max-width:none;margin:0;font-size:10pt} nav{display:none}
 h2{page-break-before:auto;page-break-after:avoid} h3{page-break-after:avoid}
 figure,table,pre{page-break-inside:avoid} table.riskmodels-table{display:table;font-size:7pt}
 pre{white-space:pre-wrap;word-break:break-all} a{color:inherit;text-decoration:none}
}
"""


@dataclass
class GovernanceReport:
    """An ordered list of sections; renders to HTML and Markdown with the same content."""

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

    def section(self, number: int) -> Section:
        for s in self.sections:
            if s.number == number:
                return s
        raise KeyError(f"no section {number}; sections are {[s.number for s in self.sections]}")

    # ------------------------------------------------------------- render
    def to_html(self) -> str:
        """One self-contained HTML page (figures as base64 data URIs, no script, no external resource)."""
        esc = html.escape
        out = [
            "<!doctype html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{esc(self.title)}</title>",
            f"<style>{CSS}</style>",
            "</head><body>",
            f"<h1>{esc(self.title)}</h1>",
            f"<p class='subtitle'>{esc(self.subtitle)}</p>",
            f"<p class='timestamp'>{esc(self.generated)}</p>" if self.generated else "",
            "<nav><ol>",
        ]
        out += [f"<li><a href='#{s.anchor}'>{esc(s.title)}</a></li>" for s in self.sections]
        out.append("</ol></nav>")
        for s in self.sections:
            out.append(f"<section id='{s.anchor}'><h2>{s.number}. {esc(s.title)}</h2>")
            for b in s.blocks:
                out.append(_html_block(b))
            out.append("</section>")
        out.append("</body></html>")
        return "\n".join(x for x in out if x) + "\n"

    def to_markdown(self, figure_dir: str = "figures") -> str:
        from riskmodels.report.markdown import render_markdown

        return render_markdown(self, figure_dir)

    def write(self, out: str | Path, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.html``, ``<stem>.md``, ``figures/*.png`` and ``tables/*.csv`` into ``out``."""
        out = Path(out)
        fig_dir = out / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        tab_dir = out / "tables"
        tab_dir.mkdir(parents=True, exist_ok=True)
        paths = {"html": out / f"{stem}.html", "markdown": out / f"{stem}.md"}
        paths["html"].write_text(self.to_html(), encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown("figures"), encoding="utf-8")
        for name, fb in sorted(self.figures.items()):
            (fig_dir / f"{name}.png").write_bytes(fb.png)
        for name, tab in sorted(self.tables.items()):
            tab.to_frame().to_csv(tab_dir / f"{name}.csv", index=False, float_format="%.10g", lineterminator="\n")
        return paths


def _html_block(b: Block) -> str:
    esc = html.escape
    if isinstance(b, Heading):
        return f"<h{b.level}>{esc(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f"<p class='small'>{esc(b.text)}</p>" if b.small else f"<p>{esc(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, TableBlock):
        return f"<div class='table' id='t-{esc(b.name)}'>\n{b.table.to_html()}\n</div>"
    if isinstance(b, FigureBlock):
        data = base64.b64encode(b.png).decode("ascii")
        return (f"<figure id='f-{esc(b.name)}'><img alt='{esc(b.caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{esc(b.caption)}</figcaption></figure>")
    if isinstance(b, Code):
        return f"<pre><code>{esc(b.text)}</code></pre>"
    raise TypeError(f"unknown block {type(b).__name__}")


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict) and k != "factors":
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def report_settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``REPORT_DEFAULTS`` merged with ``cfg["report"]``, validated (errors name the key and valid range)."""
    user = dict((cfg or {}).get("report", {}) or {})
    unknown = sorted(set(user) - set(REPORT_DEFAULTS))
    if unknown:
        raise ValueError(f"[report] has unknown key(s) {unknown}; valid: {sorted(REPORT_DEFAULTS)}")
    s = _merge(REPORT_DEFAULTS, user)
    rec = s["recommend"]
    unknown = sorted(set(rec) - set(REPORT_DEFAULTS["recommend"]))
    if unknown:
        raise ValueError(f"[report.recommend] has unknown key(s) {unknown}; valid: "
                         f"{sorted(REPORT_DEFAULTS['recommend'])}")
    if rec["source"] not in ("auto", "calibration", "explicit", "rule", "none"):
        raise ValueError(f"report.recommend.source={rec['source']!r} must be one of auto, calibration, "
                         "explicit, rule, none")
    if not (isinstance(rec["max_step"], int | float) and 0 < float(rec["max_step"]) <= 1):
        raise ValueError(f"report.recommend.max_step={rec['max_step']!r} must be in (0, 1]")
    if rec["step_kind"] not in ("absolute", "relative"):
        raise ValueError(f"report.recommend.step_kind={rec['step_kind']!r} must be 'absolute' or 'relative'")
    p = rec["target_exception_rate"]
    if p is not None and not 0 < float(p) < 1:
        raise ValueError(f"report.recommend.target_exception_rate={p!r} must be in (0, 1)")
    for i, prop in enumerate(rec["proposals"]):
        if not isinstance(prop, Mapping) or "model" not in prop or not isinstance(prop.get("params"), Mapping):
            raise ValueError(f"report.recommend.proposals[{i}] must be {{model = \"label\", params = {{...}}}}")
    for i, spec in enumerate(rec["calibrate"]):
        if not isinstance(spec, Mapping) or "model" not in spec or "param" not in spec:
            raise ValueError(f"report.recommend.calibrate[{i}] must have model = \"label\" and param = \"name\"")
    unknown = sorted(set(s["cascade"]) - set(REPORT_DEFAULTS["cascade"]))
    if unknown:
        raise ValueError(f"[report.cascade] has unknown key(s) {unknown}; valid: {sorted(REPORT_DEFAULTS['cascade'])}")
    sen = s["sensitivity"]
    if int(sen["accounts"]) < 1:
        raise ValueError(f"report.sensitivity.accounts={sen['accounts']} must be >= 1")
    if sen["metric"] not in SENSITIVITY_METRICS:
        raise ValueError(f"report.sensitivity.metric={sen['metric']!r} must be one of {SENSITIVITY_METRICS}")
    known = set(REPORT_DEFAULTS["sensitivity"]["factors"])
    for k, v in sen["factors"].items():
        if k not in known:
            raise ValueError(f"report.sensitivity.factors.{k}: unknown factor; valid: {sorted(known)}")
        if not (isinstance(v, Sequence) and len(v) == 2):
            raise ValueError(f"report.sensitivity.factors.{k}={v!r} must be [low, high]")
    shocks = np.asarray(s["shocks"], dtype=float)
    if shocks.size == 0 or not ((shocks > -1) & (shocks < 0)).all():
        raise ValueError(f"report.shocks={s['shocks']} must be non-empty and each in (-1, 0)")
    lev = np.asarray(s["leverages"], dtype=float)
    if lev.size == 0 or not (lev > 0).all() or not (np.diff(lev) > 0).all():
        raise ValueError(f"report.leverages={s['leverages']} must be increasing and > 0")
    return s


def _as_of(result: BacktestResult, settings: Mapping[str, Any]) -> int:
    a = settings.get("as_of") or ""
    if not a:
        return result.end
    t = result.panel.date_index(a, side="right") - 1  # last date <= as_of
    if not result.start <= t <= result.end:
        d0, d1 = result.panel.dates[result.start].date(), result.panel.dates[result.end].date()
        raise ValueError(f"report.as_of={a!r} must be inside the backtest window {d0}..{d1}")
    return t


# ---------------------------------------------------------------------------
# 1. summary
# ---------------------------------------------------------------------------


def tail_24h(result: BacktestResult, label: str) -> dict[str, float]:
    """Daily tail measures of one model over the window (USD).

    * ``bad_debt_p95_24h`` / ``bad_debt_p99_24h``: 95th / 99th percentile,
      across the window's days, of the day's total bad debt (0 on days
      without any); Chaos Labs' VaR / EVaR over 24 h (METHODOLOGY 2.6).
    * ``liquidations_at_risk``: 95th percentile across days of the day's
      liquidated notional; Gauntlet's LaR (METHODOLOGY 2.6).
    * ``worst_day_bad_debt``: the largest daily bad debt.

    Percentiles use numpy's default (linear interpolation between order
    statistics).
    """
    sim = result.results[label].simulation
    bad = charts.daily_totals(sim, "bad_debt", result.start, result.end)
    liq = charts.daily_totals(sim, "notional", result.start, result.end)
    return {
        "bad_debt_p95_24h": float(np.percentile(bad, 95)),
        "bad_debt_p99_24h": float(np.percentile(bad, 99)),
        "liquidations_at_risk": float(np.percentile(liq, 95)),
        "worst_day_bad_debt": float(bad.max()),
    }


SUMMARY_FORMATS = {
    "mean_im_per_notional": "{:.2%}",
    "p95_im_per_notional": "{:.2%}",
    "implied_max_leverage": "{:.1f}",
    "liquidations_per_account_year": "{:.3f}",
    "bad_debt_p95_24h": "{:,.0f}",
    "bad_debt_p99_24h": "{:,.0f}",
    "liquidations_at_risk": "{:,.0f}",
    "worst_day_bad_debt": "{:,.0f}",
    "bad_debt_per_notional": "{:.2f}",
    "breach_rate": "{:.2%}",
}


def summary_table(result: BacktestResult, coverage: Table) -> ComparisonTable:
    """One row per model: capital, liquidations, 24 h tails, coverage verdict (see :func:`tail_24h`)."""
    m = result.metrics_frame()
    cov = coverage.to_frame()
    cov = cov[cov["side"] == "combined"].set_index("model")
    rows = []
    for label in result.models:
        r = m.loc[label]
        row: dict[str, Any] = {"model": label}
        for k in ("mean_im_per_notional", "p95_im_per_notional", "implied_max_leverage",
                  "liquidations_per_account_year"):
            row[k] = float(r[k])
        row.update(tail_24h(result, label))
        row["bad_debt_per_notional"] = float(r["bad_debt_per_notional"])
        row["breach_rate"] = float(r["breach_rate"])
        row["coverage_zone"] = str(cov.loc[label, "tl_zone"]) if label in cov.index else "n/a"
        row["coverage_verdict"] = str(cov.loc[label, "verdict"]) if label in cov.index else "n/a"
        rows.append(row)
    t = ComparisonTable(
        pd.DataFrame(rows),
        title="Summary per margin method",
        notes=[
            "IM / notional: initial margin per unit of gross notional over priced (date, account) cells; "
            "bad debt P95/P99 24h: percentile across days of the day's bad debt, USD (Chaos Labs VaR/EVaR); "
            "liquidations_at_risk: P95 of daily liquidated notional, USD (Gauntlet LaR); "
            "bad_debt_per_notional: bp of perp notional held a year.",
        ],
        formats=SUMMARY_FORMATS,
    )
    return t


# ---------------------------------------------------------------------------
# 2. recommendations
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A parameter change for one model (``params``: the target values before the step cap)."""

    model: str
    params: Mapping[str, float]
    source: str
    rationale: str = ""


def cap_step(current: float, target: float, max_step: float, kind: str = "absolute") -> float:
    """``target`` limited to ``current +- max_step`` (absolute) or ``current x (1 +- max_step)`` (relative).

    Chaos Labs caps each parameter change at +-3% per proposal (METHODOLOGY
    2.6); applied to margin fractions that is 3 percentage points by default.
    """
    if not max_step > 0:
        raise ValueError(f"max_step={max_step} must be > 0")
    if kind == "absolute":
        lo, hi = current - max_step, current + max_step
    elif kind == "relative":
        lo, hi = current * (1 - max_step), current * (1 + max_step)
        lo, hi = min(lo, hi), max(lo, hi)
    else:
        raise ValueError(f"kind={kind!r} must be 'absolute' or 'relative'")
    return float(min(max(target, lo), hi))


def _spec_of(result: BacktestResult, label: str) -> tuple[str, dict[str, Any]]:
    """Registry name and constructor parameters of a model (from the config when it has them)."""
    model = result.results[label].model
    for spec in result.config.get("models", []) or []:
        if (spec.get("label") or spec["name"]) == label:
            return str(spec["name"]), dict(spec.get("params", {}))
    return str(type(model).name), {}


def _exception_rate(result: BacktestResult, settings: Mapping[str, Any]) -> float:
    p = settings["recommend"].get("target_exception_rate")
    if p is None:
        p = 1.0 - float(result.config.get("backtest", {}).get("confidence", 0.99))
    return float(p)


def scale_factor(result: BacktestResult, label: str, p: float) -> float:
    """``k = Q_{1-p}(L / M)``: the uniform multiplier of the margin that leaves an exception rate p.

    Over the window's valid (date, account) cells with margin M > 0 and MPOR
    loss L (the coverage backtest's arrays), the share of cells with
    ``L > k M`` is p (up to interpolation). k > 1: the margin is too low for
    the target; k < 1: it can come down.
    """
    cov = result.results[label].coverage
    sl = cov.rows(result.start, result.end)
    L, M, ok = cov.loss[sl], cov.margin[sl], cov.valid[sl]
    ok = ok & (M > 0)
    if not ok.any():
        return float("nan")
    return float(np.quantile(L[ok] / M[ok], 1.0 - p, method="higher"))


def rule_proposals(result: BacktestResult, settings: Mapping[str, Any]) -> list[Proposal]:
    """The documented proportional rule, for methods with scale parameters (:data:`RULE_PARAMETERS`).

    Each scale parameter is multiplied by :func:`scale_factor` (exact when the
    requirement is proportional to it; first-order otherwise, e.g. with
    collateral haircuts or position tiers). Methods without a scale parameter
    get no proposal.
    """
    p = _exception_rate(result, settings)
    out = []
    for label in result.models:
        name, _ = _spec_of(result, label)
        keys = RULE_PARAMETERS.get(name, ())
        current = result.results[label].model.params()
        keys = tuple(k for k in keys if isinstance(current.get(k), int | float) and current.get(k) is not None)
        if not keys:
            continue
        k = scale_factor(result, label, p)
        if not np.isfinite(k):
            continue
        out.append(Proposal(label, {key: float(current[key]) * k for key in keys}, "rule",
                            f"k = Q(1-{p:g}) of MPOR loss / margin = {k:.3f}"))
    return out


def calibration_proposals(result: BacktestResult, settings: Mapping[str, Any]
                          ) -> tuple[list[Proposal] | None, str, list[Table]]:
    """Proposals from :func:`riskmodels.calibrate.calibrate`, one per ``report.recommend.calibrate`` entry.

    Each entry searches one parameter of one model jointly on the backtest's
    book, window, MPOR, liquidation policy and the model's other config
    parameters (held fixed), for the least capital that meets its target.
    Returns ``(None, why, [])`` when there is no entry or no calibration
    module, else the proposals, a sentence, and the calibration tables.
    """
    specs = list(settings["recommend"]["calibrate"])
    if not specs:
        return None, "no [report.recommend] calibrate entries", []
    try:
        from riskmodels.calibrate import Target, calibrate  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None, "the calibration module (riskmodels.calibrate) is not available in this version", []
    bt = result.config.get("backtest", {})
    d0, d1 = result.panel.dates[result.start], result.panel.dates[result.end]
    props, tables = [], []
    for spec in specs:
        label = str(spec["model"])
        if label not in result.results:
            raise ValueError(f"report.recommend.calibrate: model {label!r} is not one of {result.models}")
        name, params = _spec_of(result, label)
        param = str(spec["param"])
        tie = {str(k): float(v) for k, v in dict(spec.get("tie", {})).items()}
        fixed = {k: v for k, v in params.items() if k != param and k not in tie}
        target = Target(str(spec.get("target", "coverage")), float(spec.get("value", 0.01)),
                        side=str(spec.get("side", "combined")))
        kw: dict[str, Any] = {k: spec[k] for k in ("grid", "xtol", "max_iter") if k in spec}
        if "bounds" in spec:
            kw["bounds"] = tuple(float(b) for b in spec["bounds"])
        cres = calibrate(result.panel, name, param, target, per_asset=False, book=result.book, fixed=fixed,
                         tie=tie, mpor=int(bt.get("mpor", 2)), min_history=int(bt.get("min_history", 0)),
                         start=d0, end=d1, policy=result.results[label].simulation.policy,
                         coverage_on=str(bt.get("coverage_on", "initial")), **kw)
        row = cres.rows[0]
        ties = dict(cres.settings.get("tie", tie))
        new = {param: float(row.value), **{k: float(r) * float(row.value) for k, r in sorted(ties.items())}}
        props.append(Proposal(label, new, "calibration",
                              f"calibrate: {target}; achieved {row.achieved:.4g}; met {row.met}; "
                              f"monotone {row.monotone}"))
        t = cres.table()
        t.title = f"{label}: {t.title}"
        tables.append(t)
    return props, "riskmodels.calibrate (least capital meeting each target)", tables


def choose_proposals(result: BacktestResult, settings: Mapping[str, Any]
                     ) -> tuple[list[Proposal], str, list[Table]]:
    """Proposals per ``report.recommend.source``, a sentence saying where they came from, and evidence tables.

    ``auto``: the config's explicit proposals if any, else the calibration
    entries when :mod:`riskmodels.calibrate` exists, else the proportional rule.
    """
    rec = settings["recommend"]
    src = rec["source"]
    explicit = [Proposal(str(pr["model"]), {str(k): float(v) for k, v in dict(pr["params"]).items()}, "config",
                         str(pr.get("rationale", "explicit proposal in [report.recommend]")))
                for pr in rec["proposals"]]
    for pr in explicit:
        if pr.model not in result.results:
            raise ValueError(f"report.recommend.proposals: model {pr.model!r} is not one of {result.models}")
    if src == "none":
        return [], "no recommendation requested (report.recommend.source = 'none')", []
    if src == "explicit" or (src == "auto" and explicit):
        return explicit, "proposals listed in the config ([report.recommend] proposals)", []
    if src in ("calibration", "auto"):
        props, why, tables = calibration_proposals(result, settings)
        if props is not None:
            return props, f"calibration: {why}", tables
        if src == "calibration":
            raise ValueError(f"report.recommend.source = 'calibration' but {why}")
        return rule_proposals(result, settings), f"proportional rule ({why})", []
    return rule_proposals(result, settings), "proportional rule (report.recommend.source = 'rule')", []


def holdings_at(result: BacktestResult, label: str, t: int) -> dict[str, np.ndarray]:
    """The simulated accounts open at the close of date ``t`` and their holdings there.

    The simulation opens an account at date ``t0`` with quantities
    ``amount / C[t0]`` of the book's USD amounts and keeps them until it is
    closed, so the holdings at ``t`` are ``amount x C[t] / C[t0]`` with
    ``t0`` the account's last opening on or before ``t``. Returns ``rows``
    (account indices), ``collateral`` and ``positions`` (USD at ``t``),
    ``isolated``, and the simulation's ``equity``, ``maintenance`` and
    ``notional`` at ``t``.
    """
    sim = result.results[label].simulation
    book = result.book.align(result.panel.assets)
    r = sim.row(t)
    rows = np.flatnonzero(sim.is_open[r])
    op = sim.openings
    op = op[op["t"] <= t]
    last = np.full(book.n_accounts, -1, dtype=np.int64)
    np.maximum.at(last, op["account"].astype(np.int64), op["t"].astype(np.int64))
    t0 = last[rows]
    if (t0 < 0).any():
        raise RuntimeError("an open account has no opening record")  # invariant of simulate_accounts
    C = result.panel.close
    held = book.held()[rows]
    ratio = np.where(held, C[t][None, :] / np.where(held, C[t0], 1.0), 0.0)
    return {
        "rows": rows,
        "collateral": book.collateral[rows] * ratio,
        "positions": book.positions[rows] * ratio,
        "isolated": book.isolated[rows],
        "equity": sim.equity[r, rows].astype(np.float64),
        "maintenance": sim.maintenance[r, rows].astype(np.float64),
        "notional": np.abs(book.positions[rows] * ratio).sum(axis=1),
    }


def _refit(result: BacktestResult, label: str, params: Mapping[str, Any]) -> Any:
    """The model of ``label`` rebuilt with ``params`` overriding its config parameters, fitted on the panel."""
    import riskmodels.margin  # noqa: F401  (registers the built-in models)
    from riskmodels.margin import base as margin_base

    name, spec = _spec_of(result, label)
    spec.update(params)
    model = margin_base.get(name, label=label, **spec)
    return model.fit(result.panel)


def liquidatable_at_once(result: BacktestResult, label: str, params: Mapping[str, Any], t: int
                         ) -> dict[str, float]:
    """Accounts a parameter change would make liquidatable at once at date ``t``.

    From :func:`holdings_at`: an open account with equity ``E`` (at or above
    today's maintenance, since it survived the close) is made liquidatable
    when ``E`` is below the maintenance the proposed parameters give on the
    same holdings. Also counts the accounts that would fall below the
    proposed *initial* margin (they could not open today). Notional is the
    accounts' gross perp notional at ``t`` (USD).
    """
    h = holdings_at(result, label, t)
    if not h["rows"].size:
        return {"open_accounts": 0, "newly_liquidatable": 0, "newly_liquidatable_notional": 0.0,
                "below_new_im": 0}
    fitted = _refit(result, label, params)
    req = fitted.account_requirement(t, h["collateral"], h["positions"], h["isolated"])
    E = h["equity"]
    now_ok = E >= h["maintenance"] * (1 - 1e-6)  # float32 storage of the simulation's state
    hit = now_ok & (E < req.maintenance)
    return {
        "open_accounts": int(h["rows"].size),
        "newly_liquidatable": int(hit.sum()),
        "newly_liquidatable_notional": float(h["notional"][hit].sum()),
        "below_new_im": int((E < req.initial).sum()),
    }


def recommendation_table(result: BacktestResult, proposals: Sequence[Proposal], settings: Mapping[str, Any],
                         t: int) -> Table:
    """One row per (proposal, parameter): current, target, proposed (capped), change, liquidatable at once.

    The liquidatable columns refer to the whole proposal (all its parameters
    changed together) and repeat on its rows.
    """
    rec = settings["recommend"]
    rows = []
    for i, prop in enumerate(proposals, start=1):
        if prop.model not in result.results:
            raise ValueError(f"proposal for unknown model {prop.model!r}; models: {result.models}")
        current = result.results[prop.model].model.params()
        new: dict[str, float] = {}
        parts = []
        for key in sorted(prop.params):
            cur = current.get(key)
            if not isinstance(cur, int | float) or isinstance(cur, bool):
                raise ValueError(f"proposal {i} ({prop.model}): parameter {key!r} is not a scalar number "
                                 f"(current value {cur!r})")
            target = float(prop.params[key])
            proposed = cap_step(float(cur), target, float(rec["max_step"]), rec["step_kind"])
            new[key] = proposed
            parts.append({"proposal": i, "model": prop.model, "parameter": key, "current": float(cur),
                          "target": target, "proposed": proposed, "change": proposed - float(cur),
                          "capped": bool(not math.isclose(proposed, target, rel_tol=0, abs_tol=1e-12)),
                          "source": prop.source})
        try:
            liq = liquidatable_at_once(result, prop.model, new, t)
            note = prop.rationale
        except (ValueError, KeyError) as exc:  # e.g. mmf above imf: the model refuses the parameters
            liq = {"open_accounts": np.nan, "newly_liquidatable": np.nan,
                   "newly_liquidatable_notional": np.nan, "below_new_im": np.nan}
            note = f"invalid parameters: {exc}"
        for r in parts:
            r.update({"open_accounts": liq["open_accounts"], "newly_liquidatable": liq["newly_liquidatable"],
                      "newly_liquidatable_notional": liq["newly_liquidatable_notional"],
                      "below_new_im": liq["below_new_im"], "rationale": note})
            rows.append(r)
    cols = ["proposal", "model", "parameter", "current", "target", "proposed", "change", "capped", "source",
            "open_accounts", "newly_liquidatable", "newly_liquidatable_notional", "below_new_im", "rationale"]
    frame = pd.DataFrame(rows, columns=cols)
    date = result.panel.dates[t].date()
    step = (f"+-{rec['max_step']:g}" if rec["step_kind"] == "absolute" else f"+-{rec['max_step']:.0%} (relative)")
    return Table(
        frame,
        title=f"Recommendations (book at the close of {date}; change per parameter capped at {step})",
        notes=["newly_liquidatable: accounts open at that close whose equity is at or above today's maintenance "
               "margin but below the maintenance margin the proposed parameters give on the same holdings; "
               "notional in USD of gross perp notional; below_new_im: accounts whose equity is below the "
               "proposed initial margin."],
        formats={"current": "{:.4g}", "target": "{:.4g}", "proposed": "{:.4g}", "change": "{:+.4g}",
                 "newly_liquidatable_notional": "{:,.0f}", "open_accounts": "{:.0f}",
                 "newly_liquidatable": "{:.0f}", "below_new_im": "{:.0f}"},
    )


# ---------------------------------------------------------------------------
# 3. methodology and assumptions
# ---------------------------------------------------------------------------

SOURCES: dict[str, str] = {
    "backtest.mpor": "EMIR RTS 153/2013 art. 26: 2 days for non-OTC (METHODOLOGY 3)",
    "backtest.confidence": "EMIR RTS 153/2013 art. 24: 99% for non-OTC; PFMI P6 KC3 (METHODOLOGY 3)",
    "backtest.min_history": "config; EMIR RTS art. 25 look-back >= 12 months (METHODOLOGY 3)",
    "backtest.coverage_on": "config; CCP convention: IM covers the MPOR loss (coverage.py)",
    "liquidation.cushion": "config; simulation.py: opening equity = IM x (1 + cushion)",
    "liquidation.slippage": "config; simulation.py",
    "liquidation.penalty": "config; dYdX max 1.5%, Derive 5% (METHODOLOGY 2.1, 2.3)",
    "liquidation.reentry_days": "config; simulation.py",
    "liquidation.intraday": "config; adverse intraday extreme, a conservative bound (simulation.py)",
    "report.recommend.max_step": "Chaos Labs: +-3% per parameter per proposal (METHODOLOGY 2.6)",
    "report.shocks": "LlamaRisk: shock = worst 24 h drop or hypothetical (METHODOLOGY 2.6); grid from config",
}


def _flat(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k in sorted(d):
        v = d[k]
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out += _flat(v, key + ".")
        else:
            out.append((key, v))
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {_fmt(v[k])}" for k in sorted(v)) + "}"
    return str(v)


def assumptions_table(result: BacktestResult, settings: Mapping[str, Any]) -> Table:
    """Every setting the numbers depend on: the config sections, each model's parameters, report settings."""
    cfg = result.config
    rows = []
    for section in ("data", "book", "backtest", "liquidation"):
        for key, v in _flat(cfg.get(section, {}) or {}, f"{section}."):
            if key == "data.dir":
                continue  # a path, listed under reproducibility
            rows.append({"area": section, "assumption": key, "value": _fmt(v),
                         "source": SOURCES.get(key, "config")})
    for label in result.models:
        model = result.results[label].model
        _, spec = _spec_of(result, label)
        for key, v in sorted(model.params().items()):
            src = "config [[models]]" if key in spec else f"default of {type(model).__name__}"
            rows.append({"area": f"model: {label}", "assumption": f"{type(model).name}.{key}", "value": _fmt(v),
                         "source": src})
    for key, v in _flat({k: v for k, v in settings.items() if k != "title"}, "report."):
        rows.append({"area": "report", "assumption": key, "value": _fmt(v), "source": SOURCES.get(key, "config")})
    from riskmodels.backtest.procyclicality import STRESS_WINDOWS

    for name, (a, b) in sorted(STRESS_WINDOWS.items(), key=lambda kv: kv[1][0]):
        rows.append({"area": "stress windows", "assumption": name, "value": f"{a}..{b}",
                     "source": "procyclicality.STRESS_WINDOWS (CRASH_DAYS.md)"})
    return Table(pd.DataFrame(rows, columns=["area", "assumption", "value", "source"]),
                 title="Assumptions: every setting with its value and source")


METHOD_NOTES = (
    "Each margin method is fitted once on the whole price panel; its requirement at date t uses only data up "
    "to t (no look-ahead, tested).",
    "Coverage: for every priced (date, account) the margin set at t is compared with the account's realised "
    "loss over the margin period of risk (MPOR) at constant USD amounts; an exception is loss > margin.",
    "Kupiec (1995) proportion-of-failures, Christoffersen (1998) independence and conditional coverage, Basel "
    "traffic light; for MPOR > 1 day the verdict uses the Bonferroni-adjusted minimum p-value over the "
    "non-overlapping sub-samples. Accounts are pooled, so pooled p-values are anti-conservative.",
    "Simulation: each account opens with equity = IM x (1 + cushion), is marked daily at the adverse intraday "
    "extreme (state of t-1) and at the close, is liquidated below maintenance with slippage and a penalty, "
    "and re-opens after reentry_days; a negative remainder is bad debt, paid by the insurance fund.",
    "Bad debt P95/P99 over 24 h: percentiles across the window's days of the day's total bad debt (Chaos Labs "
    "VaR/EVaR, METHODOLOGY 2.6). Liquidations at risk: 95th percentile of the day's liquidated notional "
    "(Gauntlet LaR, METHODOLOGY 2.6).",
    "Procyclicality: Murphy, Vasios & Vause (2014) peak-to-trough ratio and largest n-day increases of total "
    "initial margin, full sample and stress windows (METHODOLOGY 4).",
)


# ---------------------------------------------------------------------------
# 6. crash days
# ---------------------------------------------------------------------------


def crash_day_table(result: BacktestResult) -> Table | None:
    """The backtest's own outcome on each crash day inside the window (prices taken as given).

    Per day and model: liquidations, their notional and bad debt, and the
    share of accounts open at the previous close that were liquidated; the
    observed figures are from CRASH_DAYS.md.
    """
    rows = []
    dates = result.panel.dates
    for day in sorted(CRASH_DAYS):
        ts = pd.Timestamp(day)
        t = int(dates.searchsorted(ts))
        if t >= len(dates) or dates[t] != ts or not result.start < t <= result.end:
            continue
        for label in result.models:
            sim = result.results[label].simulation
            ev = sim.liquidations[sim.liquidations["t"] == t]
            n_open = int(sim.is_open[sim.row(t - 1)].sum())
            rows.append({"date": day, "model": label, "liquidations": len(ev),
                         "share_of_open": len(ev) / n_open if n_open else float("nan"),
                         "notional_liquidated": float(ev["notional"].sum()),
                         "bad_debt": float(ev["bad_debt"].sum()), "observed": CRASH_DAYS[day]})
    if not rows:
        return None
    return Table(pd.DataFrame(rows), title="Crash days: the backtest's accounts on the observed path (price-taker)",
                 notes=["observed: market-wide figures from CRASH_DAYS.md (lower bounds); the simulated book is a "
                        "sample, compare shares, not levels."],
                 formats={"share_of_open": "{:.1%}", "notional_liquidated": "{:,.0f}", "bad_debt": "{:,.0f}"})


def cascade_blocks(result: BacktestResult, provided: Sequence[Any] | None, settings: Mapping[str, Any]
                   ) -> list[Block]:
    """Cascade replays: ``provided`` tables, else :func:`cascade_suite` when the cascade engine exists."""
    tables: list[Any] | None = list(provided) if provided is not None else None
    if tables is None:
        if not settings["cascade"]["enabled"]:
            return [Para("Cascade replays with price impact: not run (report.cascade.enabled = false).")]
        try:
            import riskmodels.cascade.replay  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
        except ImportError:
            return [Para("Cascade replays with price impact: not available in this version "
                         "(riskmodels.cascade is absent).")]
        try:
            tables = cascade_suite(result, settings)
        except Exception as exc:  # a sibling engine's failure is reported, not hidden, and not fatal
            return [Para(f"Cascade replays with price impact: the cascade engine failed: "
                         f"{type(exc).__name__}: {exc}")]
        if not tables:
            return [Para("Cascade replays with price impact: no crash day with enough history in the data.")]
    out: list[Block] = [Heading("Cascade replays (forced flow feeds back into prices)")]
    for i, tab in enumerate(tables, start=1):
        if not isinstance(tab, Table):
            tab = Table(tab.to_frame() if hasattr(tab, "to_frame") else pd.DataFrame(tab),
                        title=str(getattr(tab, "title", f"Cascade replay {i}")))
        out.append(TableBlock(f"cascade_{i}", tab))
    return out


def cascade_suite(result: BacktestResult, settings: Mapping[str, Any]) -> list[Table]:
    """Run :func:`riskmodels.cascade.replay.crash_suite` for the first model, small and seeded.

    The leverage mixture is calibrated once on ``calm_days`` ordinary days
    (base liquidation rates), then every crash day in the data is replayed
    with ``accounts`` seeded accounts and ``substeps`` sub-steps; other
    settings are the cascade module's defaults (``CASCADE_DEFAULTS``).
    """
    from riskmodels.cascade.cli import CASCADE_DEFAULTS  # type: ignore[import-not-found, unused-ignore]
    from riskmodels.cascade.engine import CascadeParams  # type: ignore[import-not-found, unused-ignore]
    from riskmodels.cascade.impact import build_impact  # type: ignore[import-not-found, unused-ignore]
    from riskmodels.cascade.replay import (  # type: ignore[import-not-found, unused-ignore]
        calibrate_mixture,
        calm_days,
        crash_suite,
    )

    c = {**CASCADE_DEFAULTS, **{k: v for k, v in settings["cascade"].items() if k != "enabled"}}
    label = result.models[0]
    mr = result.results[label]
    fitted = mr.model.fit(result.panel)
    look = int(c["lookback"])
    seed_kw = {"oi_to_volume": float(c["oi_to_volume"]), "lookback": look}
    first = max(look + 1, int(mr.model.min_history) + 1, result.start)
    days = calm_days(result.panel.dates, first, int(c["calm_days"]), seed=int(c["seed"]))
    cal = calibrate_mixture(fitted, days, n_accounts=int(c["calibration_accounts"]), seed=int(c["seed"]), **seed_kw)
    panel = result.panel
    t = panel.n_dates - 1
    vol = np.nanmean(panel.volume[t - look: t], axis=0)
    oi = float(c["oi_to_volume"]) * float(np.nansum(vol))
    params = CascadeParams.from_policy(mr.simulation.policy, close_factor=float(c["close_factor"]),
                                       permanent=float(c["permanent"]),
                                       insurance_fund=float(c["insurance_fund_share"]) * 2 * oi)
    tab, _ = crash_suite(fitted, cal.mixture, impact=build_impact(c["impact"], **c["impact_params"]),
                         params=params, n_accounts=int(c["accounts"]), n_substeps=int(c["substeps"]),
                         path=str(c["path"]), seed=int(c["seed"]), **seed_kw)
    tab.title = f"{label}: {tab.title}"
    return [tab] if len(tab) else []


# ---------------------------------------------------------------------------
# 7. sensitivity
# ---------------------------------------------------------------------------


def _sim_metrics(sim: Any) -> dict[str, float]:
    from riskmodels.backtest.metrics import bad_debt_per_notional, liquidations_per_account_year

    r = SimpleNamespace(simulation=sim)
    return {"liquidations_per_account_year": liquidations_per_account_year(r),  # type: ignore[arg-type]
            "bad_debt_per_notional": bad_debt_per_notional(r)}  # type: ignore[arg-type]


def sensitivity_table(result: BacktestResult, settings: Mapping[str, Any]) -> tuple[Table, float, str]:
    """Rerun the account simulation of one model on a small book, one factor at a time at its low and high value.

    Factors: the liquidation settings (cushion, slippage, penalty,
    reentry_days; the model is fitted once) and ``scale`` -- the model's
    rule scale parameters (:data:`RULE_PARAMETERS`) multiplied by low/high,
    which refits the model (skipped for methods without one). The book is the
    first ``accounts`` accounts; the window is the backtest's. Rows are sorted
    by swing (largest first), ties by factor name.

    Returns the table, the base value of the metric and the metric name.
    """
    import dataclasses

    from riskmodels.backtest.simulation import simulate_accounts

    sen = settings["sensitivity"]
    label = sen["model"] or result.models[0]
    if label not in result.results:
        raise ValueError(f"report.sensitivity.model={label!r} is not one of {result.models}")
    metric = sen["metric"]
    mr = result.results[label]
    book = result.book.subset(np.arange(min(int(sen["accounts"]), result.book.n_accounts)))
    base_policy = mr.simulation.policy
    need = max(int(result.config.get("backtest", {}).get("min_history", 0)), mr.model.min_history)
    asset_ok = result.panel.eligible(need)
    fitted = mr.model.fit(result.panel)

    def run(fit: Any, policy: Any) -> dict[str, float]:
        sim = simulate_accounts(fit, book, policy, start=result.start, end=result.end, asset_ok=asset_ok)
        return _sim_metrics(sim)

    base = run(fitted, base_policy)
    rows = []
    name, _ = _spec_of(result, label)
    for factor in sorted(sen["factors"]):
        lo, hi = sen["factors"][factor]
        vals = {}
        if factor == "scale":
            keys = [k for k in RULE_PARAMETERS.get(name, ()) if isinstance(mr.model.params().get(k), int | float)]
            if not keys:
                continue
            cur = mr.model.params()
            for side, mult in (("low", lo), ("high", hi)):
                vals[side] = run(_refit(result, label, {k: float(cur[k]) * float(mult) for k in keys}), base_policy)
            desc = f"scale x ({', '.join(keys)})"
        else:
            for side, v in (("low", lo), ("high", hi)):
                value = int(v) if factor == "reentry_days" else float(v)
                vals[side] = run(fitted, dataclasses.replace(base_policy, **{factor: value}))
            desc = factor
        cur_v = getattr(base_policy, factor, 1.0) if factor != "scale" else 1.0
        rows.append({"factor": desc, "base": cur_v, "low": lo, "high": hi,
                     "metric_low": vals["low"][metric], "metric_high": vals["high"][metric],
                     "other_low": vals["low"][_other(metric)], "other_high": vals["high"][_other(metric)]})
    frame = pd.DataFrame(rows, columns=["factor", "base", "low", "high", "metric_low", "metric_high",
                                        "other_low", "other_high"])
    if len(frame):
        swing = (frame["metric_high"] - frame["metric_low"]).abs().fillna(-1.0)
        frame = frame.assign(_s=-swing).sort_values(["_s", "factor"], kind="mergesort").drop(columns="_s")
    other = _other(metric)
    frame = frame.rename(columns={"metric_low": f"{metric}_low", "metric_high": f"{metric}_high",
                                  "other_low": f"{other}_low", "other_high": f"{other}_high"})
    tab = Table(frame, title=f"Sensitivity of {label} on the first {book.n_accounts} accounts "
                             f"(base {metric} = {base[metric]:.4g}, {other} = {base[other]:.4g})",
                notes=["one factor at a time; the other settings at their config values"])
    return tab, float(base[metric]), metric


def _other(metric: str) -> str:
    return next(m for m in SENSITIVITY_METRICS if m != metric)


# ---------------------------------------------------------------------------
# 8. data quality
# ---------------------------------------------------------------------------


def quality_table(result: BacktestResult) -> Table | None:
    """Every defect of the panel's quality report and what was done about it (None without a report)."""
    q = getattr(result.panel, "quality", None)
    if q is None:
        return None
    f = q.to_frame()
    policy = str(result.config.get("data", {}).get("policy", "error"))
    first_live = {}
    for j, a in enumerate(result.panel.assets):
        live = np.flatnonzero(np.isfinite(result.panel.close[:, j]))
        first_live[a] = str(result.panel.dates[live[0]].date()) if live.size else "-"
    actions = []
    for r in f.itertuples(index=False):
        if r.asset not in first_live:
            actions.append(f"asset not in the panel (policy {policy})" if r.severity == "error"
                           else "asset not in the universe")
        elif r.kind == "gap_filled":
            actions.append("forward-filled (max_fill)")
        elif r.severity == "error":
            actions.append(f"history cut: asset used from {first_live[r.asset]} (policy {policy})")
        else:
            actions.append("kept: warning only")
    f = f.assign(action=actions)
    for c in ("first", "last"):
        f[c] = [str(pd.Timestamp(v).date()) if v is not None and not pd.isna(v) else "-" for v in f[c]]
    f = f.sort_values(["asset", "first", "kind"], kind="mergesort").reset_index(drop=True)
    return Table(f, title=f"Data quality: {q.summary()}")


# ---------------------------------------------------------------------------
# 9. reproducibility
# ---------------------------------------------------------------------------


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                             check=False)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit() -> str:
    """``HEAD`` of the source tree, with ``+uncommitted`` when tracked files differ from it; else ``unknown``."""
    head = _git("rev-parse", "HEAD")
    if not head:
        return "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + (" +uncommitted changes" if dirty else "")


def _seeds(cfg: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for key, v in _flat({k: v for k, v in cfg.items() if k != "models"}):
        if key.split(".")[-1] == "seed":
            out.append((key, v))
    for spec in cfg.get("models", []) or []:
        for k, v in sorted(dict(spec.get("params", {})).items()):
            if k == "seed":
                out.append((f"models[{spec.get('label') or spec['name']}].{k}", v))
    return out


def _versions() -> list[tuple[str, str]]:
    import matplotlib
    import scipy

    from riskmodels import __version__

    return [("riskmodels", __version__), ("python", platform.python_version()), ("numpy", np.__version__),
            ("pandas", pd.__version__), ("scipy", scipy.__version__), ("matplotlib", matplotlib.__version__)]


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------


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
) -> GovernanceReport:
    """Assemble the nine sections from a backtest result.

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
    """
    from riskmodels.backtest.procyclicality import STRESS_WINDOWS
    from riskmodels.backtest.report_tables import (
        coverage_table,
        netting_table,
        procyclicality_table,
    )

    say = progress or (lambda _msg: None)
    settings = report_settings(result.config)
    t_as_of = _as_of(result, settings)
    panel, book = result.panel, result.book
    d0, d1 = panel.dates[result.start].date(), panel.dates[result.end].date()
    bt = result.config.get("backtest", {})
    subtitle = (f"{book.n_accounts} accounts, {panel.n_assets} assets ({', '.join(panel.assets)}), "
                f"{d0}..{d1}, MPOR {bt.get('mpor', '?')} days, {len(result.models)} margin methods.")
    sections: list[Section] = []

    say("summary")
    cov = coverage_table(result)
    summ = summary_table(result, cov)
    s1 = Section(1, "Summary per margin method")
    s1.blocks += [
        Para("Capital efficiency (margin per unit of exposure) against liquidation frequency and losses to the "
             "insurance fund, on the same accounts and prices. Lower is better in every numeric column except "
             "implied_max_leverage."),
        TableBlock("summary", summ),
        FigureBlock("pareto", charts.pareto_png(summ.to_frame()),
                    "Mean IM / notional against liquidations per account-year; the Pareto front joins the methods "
                    "no other method beats on both."),
    ]
    paths = {m: charts.insurance_fund_path(result.results[m].simulation, result.start, result.end)
             for m in result.models}
    s1.blocks.append(FigureBlock("insurance_fund", charts.insurance_fund_png(paths),
                                 "Cumulative liquidation penalties collected and bad debt paid, per method (USD)."))
    dist = {m: charts.distance_to_liquidation(result.results[m].simulation, result.start, result.end)
            for m in result.models}
    s1.blocks.append(FigureBlock("distance_to_liquidation", charts.distance_to_liquidation_png(dist),
                                 "Equity / maintenance margin - 1 at every close of every open account."))
    sections.append(s1)

    say("recommendations")
    s2 = Section(2, "Recommendations")
    props, origin, evidence = (list(proposals), "proposals passed to build_report", []) \
        if proposals is not None else choose_proposals(result, settings)
    rec = settings["recommend"]
    s2.blocks.append(Para(f"Source of the proposals: {origin}. Target exception rate "
                          f"{_exception_rate(result, settings):g} over the MPOR. Each change is limited to "
                          f"{rec['max_step']:g} ({rec['step_kind']}) per proposal."))
    if props:
        s2.blocks.append(TableBlock("recommendations", recommendation_table(result, props, settings, t_as_of)))
    else:
        s2.blocks.append(Para("No parameter change is proposed."))
    for i, tab in enumerate(evidence, start=1):
        s2.blocks.append(TableBlock(f"calibration_{i}", tab))
    scale_params = "; ".join(f"{n}: {', '.join(v)}" for n, v in sorted(RULE_PARAMETERS.items()))
    s2.blocks.append(Para(
        "Proportional rule: k = Q(1-p) of (MPOR loss / margin) over the window's priced cells is the uniform "
        "multiplier of the margin that leaves the target exception rate p; the method's scale parameters "
        f"({scale_params}) are multiplied by "
        "k (exact when the requirement is proportional to them, first-order with collateral haircuts or "
        "tiers), then capped.", small=True))
    sections.append(s2)

    say("methodology")
    s3 = Section(3, "Methodology and assumptions")
    s3.blocks += [Bullets(METHOD_NOTES), TableBlock("assumptions", assumptions_table(result, settings))]
    sections.append(s3)

    s4 = Section(4, "Backtests per model")
    s4.blocks += [Para("Exceptions of the initial margin against the realised loss over the MPOR, per model and "
                       "side (long = net-long accounts)."), TableBlock("coverage", cov)]
    sections.append(s4)

    say("procyclicality")
    s5 = Section(5, "Procyclicality")
    pro = procyclicality_table(result)
    s5.blocks += [TableBlock("procyclicality", pro),
                  FigureBlock("margin_over_time", charts.margin_over_time_png(result.margin_over_time("initial"),
                                                                              STRESS_WINDOWS),
                              "Total initial margin / total gross notional of the accounts priced each day; stress "
                              "windows shaded.")]
    net = netting_table(result)
    if net is not None:
        s5.blocks.append(TableBlock("netting", net))
    sections.append(s5)

    say("crash days")
    s6 = Section(6, "Crash-day replays")
    crash = crash_day_table(result)
    s6.blocks.append(TableBlock("crash_days", crash) if crash is not None else
                     Para("No crash day of CRASH_DAYS.md falls inside the backtest window."))
    s6.blocks += cascade_blocks(result, cascade_tables, settings)
    sections.append(s6)

    say("sensitivity")
    s7 = Section(7, "Sensitivity")
    sens, base, metric = sensitivity_table(result, settings)
    tor = sens.to_frame().rename(columns={f"{metric}_low": "metric_low", f"{metric}_high": "metric_high"})
    s7.blocks += [TableBlock("sensitivity", sens),
                  FigureBlock("tornado", charts.tornado_png(tor, base, metric),
                              f"Tornado: {metric} with one factor at its low and high value; the line is the base.")]
    slip = float(getattr(result.results[result.models[0]].simulation.policy, "slippage", 0.0))
    grid = charts.shock_grid(panel, book, t_as_of, settings["shocks"], settings["leverages"], slip)
    marks = {m: float(result.metrics_frame().loc[m, "implied_max_leverage"]) for m in result.models}
    grid_tab = Table(grid.reset_index().rename(columns={c: f"shock {float(c):+.0%}" for c in grid.columns}),
                     title=f"Bad debt as a share of perp notional, book of {panel.dates[t_as_of].date()}",
                     formats={f"shock {float(c):+.0%}": "{:.2%}" for c in grid.columns})
    s7.blocks += [
        Para(f"Instantaneous shocks: every price moves by the same shock at once (a gap, no time to liquidate), "
             f"applied to the accounts of the book priced on {panel.dates[t_as_of].date()} at their USD amounts, "
             f"each account's equity set to perp notional / leverage for each leverage of the grid, closed at the "
             f"shocked prices with slippage {slip:g}; bad debt = what equity does not cover, as a share of the "
             "book's perp notional. Lines: each method's implied maximum leverage (1 / mean IM per notional)."),
        TableBlock("shock_grid", grid_tab),
        FigureBlock("shock_heatmap", charts.shock_heatmap_png(grid, marks),
                    "Bad debt (% of perp notional) by shock and leverage."),
    ]
    sections.append(s7)

    say("data quality")
    s8 = Section(8, "Data quality")
    qt = quality_table(result)
    if qt is None:
        s8.blocks.append(Para("The panel carries no quality report (synthetic or hand-built prices): no file was "
                              "validated."))
    elif len(qt) == 0:
        s8.blocks.append(Para(f"{qt.title}: no defect found."))
    else:
        s8.blocks.append(TableBlock("data_quality", qt))
    sections.append(s8)

    say("reproducibility")
    s9 = Section(9, "Reproducibility")
    prov = [("commit", commit if commit is not None else git_commit()), *_versions(),
            ("data directory", str(data_dir) if data_dir is not None else "-"),
            ("data fingerprint (sha256 of the panel)", panel.fingerprint()),
            *[(f"seed {k}", _fmt(v)) for k, v in _seeds(result.config)],
            ("command", command or "-")]
    s9.blocks.append(TableBlock("provenance", Table(pd.DataFrame(prov, columns=["item", "value"]),
                                                    title="Provenance")))
    if panel.sources:
        src = pd.DataFrame(sorted(panel.sources.items()), columns=["asset", "sha256"])
        s9.blocks.append(TableBlock("data_files", Table(src, title="Data files (sha256 of each source file)")))
    if command:
        s9.blocks += [Heading("Regenerate this report"), Code(command, "sh")]
    if config_text:
        s9.blocks += [Heading("Config as written"), Code(config_text.rstrip("\n"), "toml")]
    s9.blocks += [Heading("Config as resolved (defaults merged)"),
                  Code(json.dumps(_jsonable(result.config), indent=2, sort_keys=True), "json")]
    sections.append(s9)

    stamp = timestamp if timestamp is not None else datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return GovernanceReport(settings["title"], subtitle, sections, f"{TIMESTAMP_PREFIX}{stamp}")


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, np.generic):
        return v.item()
    return v
