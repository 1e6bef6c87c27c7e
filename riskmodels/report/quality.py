"""Section "Data quality": every defect of the price files and what was done about it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report.document import Block, Para, TableBlock

__all__ = ["build_section", "quality_table"]


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


def build_section(ctx: Any) -> list[Block]:
    qt = quality_table(ctx.result)
    if qt is None:
        return [Para("The panel carries no quality report (synthetic or hand-built prices): no file was "
                     "validated.")]
    if len(qt) == 0:
        return [Para(f"{qt.title}: no defect found.")]
    return [TableBlock("data_quality", qt, wide=True)]
