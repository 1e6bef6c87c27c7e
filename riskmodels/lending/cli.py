"""``riskmodels backtest --config lending.toml``: run a lending market and write its files.

Outputs (written to a temporary folder beside ``--out``, manifest last, renamed into place):

``lending_summary.csv``      one row per statistic (accounts, liquidations, deficit, VaR, LaR...)
``lending_assets.csv``       per reserve: liquidations, amounts, bad debt, supply
``lending_var.csv``          VaR of bad debt and liquidations at risk at 95% / 99%
``lending_daily.csv``        per date: insolvent USD, underwater / toxic / open accounts, deficit
``health_factors.parquet``   date, account, health_factor (close) of every open account-day
``liquidations.csv``         one row per liquidation (repaid, seized, fee, liquidator profit, HF before)
``recommendations.csv``      the recommender table (when ``[lending.recommend] enabled``)
``recommendation_grid.csv``  every evaluation behind it
``lending_summary.json``     config, data fingerprint and the summary
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.lending.config import LendingConfig
from riskmodels.lending.generate import read_positions_csv
from riskmodels.lending.metrics import asset_table, daily_insolvent, summary, var_table
from riskmodels.lending.recommend import recommend
from riskmodels.lending.simulate import LendingResult, market_prices, simulate

__all__ = ["LendingRun", "run_lending", "write_lending"]


class LendingRun:
    """A lending backtest's result, its tables and (optionally) the recommendations."""

    def __init__(self, result: LendingResult, recommendations: pd.DataFrame | None, grid: pd.DataFrame | None,
                 seconds: float) -> None:
        self.result, self.recommendations, self.grid, self.seconds = result, recommendations, grid, seconds

    def daily(self) -> pd.DataFrame:
        res = self.result
        out = res.totals_frame()
        out["deficit_usd"] = res.daily_frame("deficit_usd").sum(axis=1)
        out["insolvent_with_deficit_usd"] = daily_insolvent(res)
        out["collateral_liquidated_usd"] = res.daily_frame("seized_usd").sum(axis=1)
        return out


def _window(panel: PricePanel, cfg: dict[str, Any]) -> tuple[int, int]:
    start = panel.date_index(cfg["data"]["start"]) if cfg["data"].get("start") else 0
    end = panel.date_index(cfg["data"]["end"], side="right") - 1 if cfg["data"].get("end") else panel.n_dates - 1
    if end <= start:
        raise ValueError(f"data.start={cfg['data'].get('start')!r} / data.end={cfg['data'].get('end')!r} leave no dates")
    return start, end


def run_lending(cfg: dict[str, Any], panel: PricePanel,
                progress: Callable[[str, int, int], None] | None = None) -> LendingRun:
    """Simulate the configured market (and run the recommender when enabled)."""
    t0 = time.perf_counter()
    lc = LendingConfig.from_dict(cfg.get("lending", {}))
    start, end = _window(panel, cfg)
    mp = market_prices(panel, lc.market.names, lc.ewma_lambda)
    if lc.positions:
        pos = read_positions_csv(lc.positions, lc.market, panel.dates, start, end)
    else:
        pos = lc.generator.generate(lc.market, mp, start, end)
    impact = lc.impact()
    res = simulate(lc.market, panel, pos, impact, start=start, end=end, max_rounds=lc.max_rounds, prices=mp,
                   progress=progress)
    rec = grid = None
    if lc.recommend is not None:
        rec, grid = recommend(lc.market, panel, lc.generator, lc.recommend, start=start, end=end, impact=impact,
                              current=res)
    return LendingRun(res, rec, grid, time.perf_counter() - t0)


def write_lending(run: LendingRun, out: Path, cfg: dict[str, Any], panel: PricePanel,
                  command: str = "riskmodels backtest") -> list[str]:
    """Write every output file (see the module docstring) atomically, with ``manifest.json`` last
    (:func:`riskmodels.outputs.atomic_output`); returns their names."""
    from riskmodels.outputs import atomic_output

    res = run.result
    with atomic_output(out, command=command) as d:
        summ = summary(res)
        summ.to_csv(d / "lending_summary.csv", index=False, float_format="%.10g")
        asset_table(res).to_csv(d / "lending_assets.csv", float_format="%.10g")
        var_table(res).to_csv(d / "lending_var.csv", index=False, float_format="%.10g")
        run.daily().to_csv(d / "lending_daily.csv", index_label="date", float_format="%.10g")
        res.health_factors().to_parquet(d / "health_factors.parquet", compression="zstd", index=False)
        res.events.to_csv(d / "liquidations.csv", index=False, float_format="%.10g")
        if run.recommendations is not None:
            run.recommendations.to_csv(d / "recommendations.csv", float_format="%.10g")
            run.grid.to_csv(d / "recommendation_grid.csv", index=False, float_format="%.10g")
        (d / "lending_summary.json").write_text(json.dumps({
            "config": cfg,
            "data_fingerprint": panel.fingerprint(),
            "rule": res.rule,
            "summary": {r.statistic: (float(r.value) if np.isfinite(r.value) else None) for r in summ.itertuples()},
        }, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        from riskmodels.lending.report import lending_document

        lending_document(run, cfg, panel.fingerprint()).write(d)  # report.html, report.md, tables/
        names = sorted(p.name for p in d.iterdir())
    return names


def backtest_lending(args: Any, cfg: dict[str, Any], bar: Any, data_dir: Callable[..., Path]) -> int:
    """The ``backtest`` command for ``[market] kind = "lending"`` (called from :mod:`riskmodels.cli`)."""
    from riskmodels.data.loaders import load_panel

    if getattr(args, "accounts", None):  # --accounts sets the lending generator's population
        cfg.setdefault("lending", {}).setdefault("generator", {})["accounts"] = int(args.accounts)
    LendingConfig.from_dict(cfg.get("lending", {}))  # a bad parameter fails before any data is read
    d = data_dir(args, cfg, bar)
    bar.note("lending market")
    from riskmodels.data.options import LoaderOptions

    panel = load_panel(d, assets=cfg["data"]["universe"] or None, policy=cfg["data"].get("policy", "error"),
                       interval=cfg["data"].get("interval", "1d"), end=cfg["data"].get("end") or None,
                       **LoaderOptions.from_config(cfg["data"]).kwargs())
    run = run_lending(cfg, panel, progress=bar)
    names = write_lending(run, Path(args.out), cfg, panel)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary(run.result).drop(columns="rule").to_string(index=False))
        print()
        print(asset_table(run.result).drop(columns="rule").to_string())
        if run.recommendations is not None:
            print()
            cols = ["current_ltv", "current_lt", "current_lb", "recommended_ltv", "recommended_lt", "recommended_lb",
                    "recommended_supply_cap", "capped_ltv", "capped_lt", "capped_lb", "accounts_made_liquidatable"]
            print(run.recommendations[cols].to_string())
    bar.note(f"rule: {run.result.rule}")
    bar.note(f"wrote {args.out}/{', '.join(names)} ({run.seconds:.1f} s)")
    return 0
