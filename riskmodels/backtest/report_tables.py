"""The statistics tables of a BacktestResult: coverage tests and procyclicality."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from riskmodels.backtest._testresult import ComparisonTable, comparison_table, pareto_chart
from riskmodels.backtest.coverage import CoverageResult
from riskmodels.backtest.procyclicality import ProcyclicalityReport, netting_summary, procyclicality
from riskmodels.backtest.result import BacktestResult, ModelResult
from riskmodels.backtest.stats import CoverageReport, coverage_report, coverage_rows_for_comparison
from riskmodels.backtest.windows import window_header
from riskmodels.csv_fast import csv_body, csv_header, csv_text
from riskmodels.data.panel import PricePanel

#: the per-row parts of the netting and procyclicality tables, kept per row (see :func:`precompute_row`):
#: ``{row: {(kind, name, start, end): (inputs, value)}}``, reused while the row holds the same input arrays
_ROW_TABLES: weakref.WeakKeyDictionary[ModelResult, dict[tuple[str, str, int, int], tuple[tuple[Any, ...], Any]]] = (
    weakref.WeakKeyDictionary())


def _row_value(r: ModelResult, kind: str, name: str, panel: PricePanel, start: int, end: int,
               compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (row, table, window) while the row keeps its arrays and the panel its dates."""
    iso = r.isolated_path
    inputs = (panel.dates, r.path.initial, r.path.eligible, None if iso is None else iso.initial, r.simulation,
              r.simulation.events)
    slot = _ROW_TABLES.setdefault(r, {})
    key = (kind, name, start, end)
    hit = slot.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], inputs, strict=True)):
        return hit[1]
    value = compute()
    slot[key] = (inputs, value)
    return value


def _row_procyclicality(r: ModelResult, name: str, panel: PricePanel, start: int, end: int) -> Any:
    def compute() -> Any:
        sl = r.path.rows(start, end)
        im = np.where(r.path.eligible[sl], r.path.initial[sl], np.nan)
        # only cells where the margin is present count, so the constant gross notional
        # of each account serves as the (T, P) notional without a copy
        notional = np.broadcast_to(r.gross_notional[None, :], im.shape)
        return procyclicality(im, panel.dates[start : end + 1], notional=notional, name=name)

    return _row_value(r, "procyclicality", name, panel, start, end, compute)


def _row_netting(r: ModelResult, name: str, panel: PricePanel, start: int, end: int) -> Any:
    def compute() -> Any:
        b = r.netting_benefit
        if b is None:
            return None
        return netting_summary(b[r.path.rows(start, end)], panel.dates[start : end + 1], name=name).to_frame()

    return _row_value(r, "netting", name, panel, start, end, compute)


#: the float format of liquidations.csv (as every CSV the CLI writes)
EVENTS_FLOAT_FORMAT = "%.10g"


def _row_events_csv(r: ModelResult, name: str, panel: PricePanel, start: int, end: int) -> Any:
    def compute() -> Any:
        f = r.simulation.events_frame()
        return list(f.columns), list(f.dtypes), csv_body(f, EVENTS_FLOAT_FORMAT)

    return _row_value(r, "events_csv", name, panel, start, end, compute)


def events_csv_text(result: BacktestResult) -> str:
    """``csv_text(result.events(), "%.10g")``: the text of ``liquidations.csv``, from the rows' kept parts.

    The table is the rows' event frames stacked, and a CSV body is made line
    by line (:func:`riskmodels.csv_fast.csv_body`): where every row's frame
    has the same columns and dtypes (so the stacked table has them too) and
    some row has events, the text is the header and the rows' bodies joined
    without building the stacked table; otherwise (an empty row of other
    dtypes, a column pandas formats) the stacked table is formatted as a whole.
    """
    parts = [_row_events_csv(r, name, result.panel, result.start, result.end) for name, r in result.results.items()]
    if parts:
        columns, dtypes, _ = parts[0]
        if any(b for _, _, b in parts) and all(c == columns and d == dtypes and b is not None for c, d, b in parts):
            return csv_header(columns) + "".join(b for _, _, b in parts)
    return csv_text(result.events(), EVENTS_FLOAT_FORMAT)


def precompute_row(name: str, r: ModelResult, panel: PricePanel, start: int, end: int) -> None:
    """The row's parts of :func:`netting_table`, :func:`procyclicality_table` and :func:`events_csv_text`, kept.

    For :func:`riskmodels.backtest.engine.run_models`' ``on_result``: the
    engine calls it as each row arrives from the pool, so these parts (they
    depend on the row's margin paths alone, not on the other rows) are
    computed while the other rows still run. The tables then take the kept
    parts; the numbers are the same calls on the same arrays.
    """
    _row_netting(r, name, panel, start, end)
    _row_procyclicality(r, name, panel, start, end)
    _row_events_csv(r, name, panel, start, end)


class _SidePanels(Mapping[str, np.ma.MaskedArray]):
    """``{side: (T, P_side) bool exceptions masked where not observed}``, built when asked for.

    Lazy so that the coverage table holds one (model, side) panel at a time:
    at 10,000 accounts a float panel per model and side took ~0.2 GB each.
    """

    SIDES = ("combined", "long", "short")

    def __init__(self, cov: CoverageResult, rows: slice) -> None:
        self.cov, self.sl = cov, rows

    def __getitem__(self, side: str) -> np.ma.MaskedArray:
        if side not in self.SIDES:
            raise KeyError(side)
        cov, m = self.cov, self.cov.side_mask(side)
        if side == "combined":
            return np.ma.MaskedArray(cov.exceptions[self.sl], mask=~cov.valid[self.sl])
        return np.ma.MaskedArray(cov.exceptions[self.sl][:, m], mask=~cov.valid[self.sl][:, m])

    def __iter__(self) -> Iterator[str]:
        return iter(self.SIDES)

    def __len__(self) -> int:
        return len(self.SIDES)


def exception_panels(result: BacktestResult) -> dict[str, Mapping[str, np.ma.MaskedArray]]:
    """``{model: {side: (T, P_side) bool exceptions, masked = no observation}}`` in the window."""
    return {name: _SidePanels(r.coverage, r.coverage.rows(result.start, result.end))
            for name, r in result.results.items()}


def coverage_table(result: BacktestResult, level: float = 0.05) -> CoverageReport:
    """Kupiec, Christoffersen, conditional coverage and traffic light per model and side.

    The expected exception rate is ``1 - backtest.confidence`` (default 1%).
    Overlapping MPOR windows are handled by the sub-sample columns.
    """
    bt = result.config.get("backtest", {})
    p = 1.0 - float(bt.get("confidence", 0.99))
    h = int(bt.get("mpor", 1))
    rep = coverage_report(exception_panels(result), p=p, h=h, level=level)
    rep.title = f"Coverage tests (IM vs {h}-day loss, expected exception rate {p:.2%}, level {level:.0%})"
    rep.notes = [*rep.notes, "Diagnostics per model and side; the comparison's coverage_verdict is the "
                 "dependence-aware book-level test (riskmodels.backtest.verdict).", window_header(result)]
    return rep


def procyclicality_table(result: BacktestResult) -> ProcyclicalityReport:
    """Murphy-Vasios-Vause measures of each model's total initial margin, full sample and stress windows."""
    reports = {name: _row_procyclicality(r, name, result.panel, result.start, result.end)
               for name, r in result.results.items()}
    rep = ProcyclicalityReport.combine(reports)
    rep.title = "Procyclicality of total initial margin (Murphy, Vasios & Vause 2014)"
    rep.notes = (*tuple(getattr(rep, "notes", ())), window_header(result))
    return rep


def comparison_summary(
    result: BacktestResult, coverage: CoverageReport, procyc: ProcyclicalityReport
) -> ComparisonTable:
    """One row per model: capital efficiency, liquidation frequency, coverage verdict, procyclicality.

    Sort it with ``.sort("mean_im_per_notional")``; render with ``str``,
    ``to_html`` or ``to_markdown``.
    """
    zones = {r["model"]: r.get("tl_zone") for r in coverage_rows_for_comparison(coverage)}
    rules = {m: r.mm_rule for m, r in result.results.items()}
    return comparison_of(result.models, result.metrics_frame(), zones, result.verdicts(), procyc.to_frame(),
                         rules, window_header(result))


def comparison_of(models: list[str], metrics: Any, zones: Mapping[str, Any], verdicts: Mapping[str, Any],
                  pro: Any, rules: Mapping[str, str], header: str) -> ComparisonTable:
    """:func:`comparison_summary` from its parts: metrics frame, traffic-light zone, verdicts, procyclicality frame."""
    rows = []
    for model in models:
        m = metrics.loc[model]
        full = pro[(pro["model"] == model) & (pro["period"] == "full")].iloc[0]
        v = verdicts[model]
        rows.append(
            {
                "model": model,
                "mm_rule": rules[model],
                "mean_im_per_notional": m["mean_im_per_notional"],
                "implied_max_leverage": m["implied_max_leverage"],
                "liquidations_per_account_year": m["liquidations_per_account_year"],
                "bad_debt_bp_per_year": m["bad_debt_bp_per_year"],
                "breach_rate": m["breach_rate"],
                "coverage_zone": zones.get(model),
                "coverage_verdict": v.verdict,
                "verdict_p": v.pvalue,
                "peak_to_trough": full["peak_to_trough"],
                "max_30d_increase_rel": full["inc_30d_rel"],
            }
        )
    table = comparison_table(
        rows,
        title="Comparison: capital efficiency vs liquidation frequency, coverage and procyclicality",
        notes=[
            "bad debt in basis points of perp notional held for a year; procyclicality over the full sample",
            "mm_rule: the liquidation rule of the row (risk models on one declared MM = ratio x IM, "
            "[liquidation] maintenance_ratio; haircut rows keep their own MMF/IMF)",
            "coverage_verdict: book-level exceedance test per side (daily excess exceptions, Hansen-Hodrick "
            "variance, studentised block bootstrap over dates; Bonferroni over long/short), valid under "
            "cross-sectional dependence and overlapping MPOR windows; coverage_zone is the pooled traffic "
            "light (diagnostic only)",
            header,
        ],
    )
    table.formats = {
        "mean_im_per_notional": "{:.2%}",
        "implied_max_leverage": "{:.1f}",
        "liquidations_per_account_year": "{:.3f}",
        "bad_debt_bp_per_year": "{:.2f}",
        "breach_rate": "{:.2%}",
        "verdict_p": "{:.3f}",
        "peak_to_trough": "{:.2f}",
        "max_30d_increase_rel": "{:.1%}",
    }
    return table


def pareto_png(table: ComparisonTable, path: str | Path) -> Path:
    """Pareto chart of mean IM / notional vs liquidations per account-year (both minimised)."""
    return pareto_chart(
        table,
        "mean_im_per_notional",
        "liquidations_per_account_year",
        path,
        title="Capital vs liquidations (Pareto front: lower-left is better)",
        xlabel="mean initial margin / gross notional",
        ylabel="liquidations per account-year",
    )


def netting_table(result: BacktestResult) -> ComparisonTable | None:
    """Cross-margining benefit per model: distribution across accounts, full sample and stress windows."""
    frames = [f for f in (_row_netting(r, name, result.panel, result.start, result.end)
                          for name, r in result.results.items()) if f is not None]
    if not frames:
        return None
    import pandas as pd

    table = ComparisonTable(
        pd.concat(frames, ignore_index=True),
        title="Cross-margining benefit: 1 - cross IM / sum of isolated IMs, across accounts",
        notes=["a benefit that shrinks in a stress window is netting that disappears when it is needed",
               window_header(result)],
    )
    return table
