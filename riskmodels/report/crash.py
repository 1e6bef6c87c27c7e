"""Section "Crash-day replays": the backtest's own outcome on observed crash days, and cascade replays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report.document import Block, Heading, Para, TableBlock

__all__ = ["CRASH_DAYS", "build_section", "cascade_blocks", "cascade_suite", "crash_day_table"]

#: crash days inside which the backtest's own outcome is shown (observed figures, sources in
#: riskmodels/docs/crash_days.md)
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

def crash_day_table(result: BacktestResult) -> Table | None:
    """The backtest's own outcome on each crash day inside the window (prices taken as given).

    Per day and model: liquidations, their notional and bad debt, and the
    share of accounts open at the previous close that were liquidated; the
    observed figures are from riskmodels/docs/crash_days.md.
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
                 notes=["observed: market-wide figures from riskmodels/docs/crash_days.md [crash_days] (lower bounds); the simulated book is a "
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
    out: list[Block] = [Heading("Cascade replays (forced flow feeds back into prices)"),
                        Para("Observed liquidations and open interest: public aggregator figures summarised in "
                             "riskmodels/docs/crash_days.md [crash_days]; they are lower bounds.", small=True)]
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


def build_section(ctx: Any) -> list[Block]:
    crash = crash_day_table(ctx.result)
    blocks: list[Block] = [TableBlock("crash_days", crash) if crash is not None else
                           Para("No crash day of riskmodels/docs/crash_days.md falls inside the backtest window.")]
    return blocks + cascade_blocks(ctx.result, ctx.cascade_tables, ctx.settings)
