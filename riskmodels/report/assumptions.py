"""Section "Methodology and assumptions" and the appendix listing every setting.

Each setting is compared with its default -- the embedded default config
(``riskmodels config``) for the backtest sections, the method's constructor
default for model parameters, :data:`~riskmodels.report.settings.REPORT_DEFAULTS`
for ``[report]`` -- and the rows that differ are highlighted. The body shows
the settings grouped by config section and one line per model; the appendix
lists all of them with their default and source.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report.common import flat_items, fmt_setting, spec_of
from riskmodels.report.document import Block, Bullets, Para, TableBlock
from riskmodels.report.sources import cite

__all__ = ["METHOD_NOTES", "SOURCES", "assumptions_frame", "assumptions_table", "build_appendix",
           "build_section"]

SOURCES: dict[str, str] = {
    "backtest.mpor": f"EMIR RTS art. 26: 2 days for non-OTC {cite('EMIR-RTS')}",
    "backtest.confidence": f"EMIR RTS art. 24: 99% for non-OTC; PFMI P6 KC3 {cite('EMIR-RTS', 'PFMI')}",
    "backtest.min_history": f"config; EMIR RTS art. 25 look-back >= 12 months {cite('EMIR-RTS')}",
    "backtest.coverage_on": "config; CCP convention: initial margin covers the MPOR loss",
    "liquidation.cushion": "config; opening equity = IM x (1 + cushion)",
    "liquidation.slippage": "config",
    "liquidation.penalty": f"config; dYdX at most 1.5%, Derive 5% {cite('dYdX-v4', 'Derive')}",
    "liquidation.reentry_days": "config",
    "liquidation.intraday": "config; adverse intraday extreme, a conservative bound",
    "report.recommend.max_step": f"Chaos Labs: +-3% per parameter per proposal {cite('ChaosLabs-Aave')}",
    "report.shocks": f"LlamaRisk: shock = worst 24 h drop or hypothetical {cite('LlamaRisk-shock')}; "
                     "grid from config",
}

AREAS = ("data", "book", "backtest", "liquidation")

METHOD_NOTES = (
    "Each margin method is fitted once on the whole price panel; its requirement at date t uses only data up "
    "to t (no look-ahead, tested).",
    "Coverage: for every priced (date, account) the margin set at t is compared with the account's realised "
    "loss over the margin period of risk (MPOR) at constant USD amounts; an exception is loss > margin.",
    f"Kupiec (1995) proportion-of-failures {cite('Kupiec-1995')}, Christoffersen (1998) independence and "
    f"conditional coverage {cite('Christoffersen-1998')}, Basel traffic light {cite('Basel-TL')}; for MPOR > 1 "
    "day the verdict uses the Bonferroni-adjusted minimum p-value over the non-overlapping sub-samples. "
    "Accounts are pooled, so pooled p-values are anti-conservative.",
    "Simulation: each account opens with equity = IM x (1 + cushion), is marked daily at the adverse intraday "
    "extreme (state of t-1) and at the close, is liquidated below maintenance with slippage and a penalty, "
    "and re-opens after reentry_days; a negative remainder is bad debt, paid by the insurance fund.",
    "Bad debt P95/P99 over 24 h: percentiles across the window's days of the day's total bad debt (Chaos Labs "
    f"VaR/EVaR {cite('ChaosLabs-Aave')}). Liquidations at risk: 95th percentile of the day's liquidated "
    f"notional (Gauntlet LaR {cite('Gauntlet-LaR')}).",
    "Procyclicality: Murphy, Vasios & Vause (2014) peak-to-trough ratio and largest n-day increases of total "
    f"initial margin, full sample and stress windows {cite('MVV-2014')}.",
)


def _constructor_defaults(model: Any) -> dict[str, Any]:
    sig = inspect.signature(type(model).__init__)
    return {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def _same(a: Any, b: Any) -> bool:
    return fmt_setting(a) == fmt_setting(b)


def assumptions_frame(result: BacktestResult, settings: Mapping[str, Any]) -> pd.DataFrame:
    """Every setting: ``area, assumption, value, default, non_default, source`` (one row each)."""
    from riskmodels.backtest.procyclicality import STRESS_WINDOWS
    from riskmodels.config import default_config
    from riskmodels.report.settings import REPORT_DEFAULTS

    cfg, dflt = result.config, default_config()
    rows = []

    def add(area: str, key: str, v: Any, d: Any, source: str, has_default: bool = True) -> None:
        rows.append({"area": area, "assumption": key, "value": fmt_setting(v),
                     "default": fmt_setting(d) if has_default else "-",
                     "non_default": bool(has_default and not _same(v, d)), "source": source})

    for section in AREAS:
        d_sec = dict(flat_items(dflt.get(section, {}) or {}, f"{section}."))
        for key, v in flat_items(cfg.get(section, {}) or {}, f"{section}."):
            if key == "data.dir":
                continue  # a path, listed under reproducibility
            add(section, key, v, d_sec.get(key), SOURCES.get(key, "config"), key in d_sec)
    for label in result.models:
        model = result.results[label].model
        _, spec = spec_of(result, label)
        defaults = _constructor_defaults(model)
        for key, v in sorted(model.params().items()):
            src = "config [[models]]" if key in spec else f"default of {type(model).__name__}"
            add(f"model: {label}", f"{type(model).name}.{key}", v, defaults.get(key), src, key in defaults)
    d_rep = dict(flat_items({k: v for k, v in REPORT_DEFAULTS.items() if k != "title"}, "report."))
    for key, v in flat_items({k: v for k, v in settings.items() if k != "title"}, "report."):
        add("report", key, v, d_rep.get(key), SOURCES.get(key, "config"), key in d_rep)
    for name, (a, b) in sorted(STRESS_WINDOWS.items(), key=lambda kv: kv[1][0]):
        add("stress windows", name, f"{a}..{b}", None, f"procyclicality.STRESS_WINDOWS {cite('crash_days')}",
            False)
    return pd.DataFrame(rows, columns=["area", "assumption", "value", "default", "non_default", "source"])


def assumptions_table(result: BacktestResult, settings: Mapping[str, Any]) -> Table:
    """The appendix table: every setting the numbers depend on, with its default and source."""
    return Table(assumptions_frame(result, settings),
                 title="Assumptions: every setting with its value, default and source (non-default rows in bold)")


def _highlight(frame: pd.DataFrame) -> tuple[int, ...]:
    return tuple(int(i) for i in frame.index[frame["non_default"].to_numpy(dtype=bool)])


def model_lines(frame: pd.DataFrame, result: BacktestResult) -> pd.DataFrame:
    """One row per model: method, the parameters that differ from the method's defaults, the others' count."""
    rows = []
    for label in result.models:
        f = frame[frame["area"] == f"model: {label}"]
        changed = f[f["non_default"]]
        rows.append({"model": label, "method": type(result.results[label].model).name,
                     "non_default_parameters": ", ".join(f"{k.split('.', 1)[1]} = {v}" for k, v in
                                                         zip(changed["assumption"], changed["value"], strict=True))
                     or "-", "parameters_at_default": int(len(f) - len(changed))})
    return pd.DataFrame(rows, columns=["model", "method", "non_default_parameters", "parameters_at_default"])


def build_section(ctx: Any) -> list[Block]:
    """Method notes, then the settings grouped by config section (non-defaults in bold), one line per model."""
    frame = ctx.cached("assumptions", lambda: assumptions_frame(ctx.result, ctx.settings))
    n_changed = int(frame["non_default"].sum())
    blocks: list[Block] = [
        Bullets(METHOD_NOTES),
        Para(f"{n_changed} of {len(frame)} settings differ from their defaults (bold rows); the full list with "
             "defaults and sources is Appendix A. Sources cited in square brackets are listed in Appendix B."),
    ]
    for area in AREAS:
        f = frame[frame["area"] == area].reset_index(drop=True)
        if len(f):
            blocks.append(TableBlock(f"assumptions_{area}",
                                     Table(f[["assumption", "value", "default", "source"]],
                                           title=f"Settings: [{area}]"), highlight=_highlight(f)))
    models = model_lines(frame, ctx.result)
    blocks.append(TableBlock("assumptions_models", Table(models, title="Margin methods and their non-default "
                                                                       "parameters")))
    rep = frame[(frame["area"] == "report") & frame["non_default"]].reset_index(drop=True)
    if len(rep):
        blocks.append(TableBlock("assumptions_report", Table(rep[["assumption", "value", "default", "source"]],
                                                             title="Report settings that differ from the defaults"),
                                 highlight=tuple(range(len(rep)))))
    return blocks


def build_appendix(ctx: Any) -> list[Block]:
    frame = ctx.cached("assumptions", lambda: assumptions_frame(ctx.result, ctx.settings))
    table = Table(frame, title="Assumptions: every setting with its value, default and source "
                               "(non-default rows in bold)")
    return [TableBlock("assumptions", table, highlight=_highlight(frame))]
