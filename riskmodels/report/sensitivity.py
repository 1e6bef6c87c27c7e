"""Section "Sensitivity": one factor at a time on a small book (tornado)."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report.common import refit_model, spec_of
from riskmodels.report.document import Block, FigureBlock, Para, TableBlock
from riskmodels.report.recommend import RULE_PARAMETERS
from riskmodels.report.settings import SENSITIVITY_METRICS
from riskmodels.report.sources import cite

__all__ = ["build_section", "sensitivity_table"]


def _sim_metrics(sim: Any) -> dict[str, float]:
    from riskmodels.backtest.metrics import bad_debt_bp_per_year, liquidations_per_account_year

    r = SimpleNamespace(simulation=sim)
    return {"liquidations_per_account_year": liquidations_per_account_year(r),  # type: ignore[arg-type]
            "bad_debt_bp_per_year": bad_debt_bp_per_year(r)}  # type: ignore[arg-type]


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
    name, _ = spec_of(result, label)
    for factor in sorted(sen["factors"]):
        lo, hi = sen["factors"][factor]
        vals = {}
        if factor == "scale":
            keys = [k for k in RULE_PARAMETERS.get(name, ()) if isinstance(mr.model.params().get(k), int | float)]
            if not keys:
                continue
            cur = mr.model.params()
            for side, mult in (("low", lo), ("high", hi)):
                vals[side] = run(refit_model(result, label, {k: float(cur[k]) * float(mult) for k in keys}), base_policy)
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


def build_section(ctx: Any) -> list[Block]:
    """The tornado over the liquidation settings and the scale, then the shock x leverage grid."""
    from riskmodels.report import charts

    result, settings, t = ctx.result, ctx.settings, ctx.as_of
    panel, book = result.panel, result.book
    sens, base, metric = sensitivity_table(result, settings)
    tor = sens.to_frame().rename(columns={f"{metric}_low": "metric_low", f"{metric}_high": "metric_high"})
    blocks: list[Block] = [
        TableBlock("sensitivity", sens, wide=True),
        FigureBlock("tornado", charts.tornado_png(tor, base, metric),
                    f"Tornado: {metric} with one factor at its low and high value; the line is the base."),
    ]
    slip = float(getattr(result.results[result.models[0]].simulation.policy, "slippage", 0.0))
    grid = charts.shock_grid(panel, book, t, settings["shocks"], settings["leverages"], slip)
    marks = {m: float(result.metrics_frame().loc[m, "implied_max_leverage"]) for m in result.models}
    grid_tab = Table(grid.reset_index().rename(columns={c: f"shock {float(c):+.0%}" for c in grid.columns}),
                     title=f"Bad debt as a share of perp notional, book of {panel.dates[t].date()}",
                     formats={f"shock {float(c):+.0%}": "{:.2%}" for c in grid.columns})
    blocks += [
        Para(f"Instantaneous shocks: every price moves by the same shock at once (a gap, no time to liquidate), "
             f"applied to the accounts of the book priced on {panel.dates[t].date()} at their USD amounts, "
             f"each account's equity set to perp notional / leverage for each leverage of the grid, closed at the "
             f"shocked prices with slippage {slip:g}; bad debt = what equity does not cover, as a share of the "
             "book's perp notional. Lines: each method's implied maximum leverage (1 / mean IM per notional); "
             f"shock sizes follow the worst-24-hour convention {cite('LlamaRisk-shock')}."),
        TableBlock("shock_grid", grid_tab),
        FigureBlock("shock_heatmap", charts.shock_heatmap_png(grid, marks),
                    "Bad debt (% of perp notional) by shock and leverage."),
    ]
    return blocks
