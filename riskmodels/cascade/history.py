"""The price history a cascade replay loads: enough for every margin model.

A replay of day ``t`` needs, for each asset it trades,

* the margin state of ``t - 1`` of every model compared: ``model.required_history``
  daily rows before ``t`` (:attr:`riskmodels.margin.base.MarginModel.required_history`,
  ``min_history + 1`` by default: 502 rows for a 500-day 2-day HS VaR on
  overlapping returns, 522 for FHS with its 20-day EWMA warm-up, 92 for the
  SPAN grid's 90 observations of 2-day moves);
* ``lookback + 1`` closes and ``lookback`` volumes before ``t`` for the market
  state and the open interest (:func:`riskmodels.cascade.replay.market_state`).

:func:`history_start` turns the largest of these into a first date to load
(calendar days: crypto trades every day; a margin of ``slack`` covers the
rare missing day), and :func:`check_history` verifies after loading that the
reference asset is priced by every model on every day replayed, with an
error that names the model, the day and the remedy instead of the
``no tradable asset`` of an empty population.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.margin.base import FittedMargin, MarginModel

__all__ = ["check_history", "first_priced_day", "history_start", "rows_needed"]


def rows_needed(models: Sequence[MarginModel], lookback: int) -> int:
    """Daily rows needed before a replayed day: ``max(max_m required_history_m, lookback + 1)``."""
    req = max((int(m.required_history) for m in models), default=0)
    return max(req, int(lookback) + 1)


def history_start(
    models: Sequence[MarginModel], days: Sequence[str | pd.Timestamp], lookback: int, slack: float = 0.05
) -> pd.Timestamp:
    """First calendar date to load so that every day of ``days`` has the history every model needs.

    ``min(days) - ceil(rows_needed x (1 + slack)) - 7`` calendar days.
    """
    if not len(days):
        raise ValueError("history_start: no day to replay")
    first = min(pd.Timestamp(d) for d in days)
    n = rows_needed(models, lookback)
    return first - pd.Timedelta(days=int(-(-n * (1.0 + slack) // 1)) + 7)


def check_history(fitted: Sequence[FittedMargin], t: int, lookback: int) -> None:
    """Raise if some model cannot price any asset at ``t - 1`` or the window lacks ``lookback`` days."""
    if not fitted:
        return
    panel: PricePanel = fitted[0].panel
    day = panel.dates[t].date()
    if t < lookback + 1:
        raise ValueError(
            f"{day}: only {t} days of data before it, the replay needs lookback + 1 = {lookback + 1}; "
            f"load earlier data ([cascade].start) or lower [cascade].lookback"
        )
    for f in fitted:
        ok = panel.eligible(f.model.min_history)[t - 1]
        if not ok.any():
            raise ValueError(
                f"{day}: model {f.model.label!r} prices no asset at the previous close (it needs "
                f"{f.model.required_history} daily rows before the day, the data has {t}); set "
                f"[cascade].start earlier or leave it at \"auto\""
            )


def first_priced_day(fitted: Sequence[FittedMargin], lookback: int) -> int:
    """First day index ``t >= lookback + 1`` at whose previous close every model prices some asset."""
    if not fitted:
        return int(lookback) + 1
    panel: PricePanel = fitted[0].panel
    ok = np.ones(panel.n_dates, bool)
    for f in fitted:
        ok &= panel.eligible(f.model.min_history).any(1)
    if not ok.any():
        raise ValueError("no date at which every model prices an asset: load more history ([cascade].start)")
    return max(int(np.argmax(ok)) + 1, int(lookback) + 1)
