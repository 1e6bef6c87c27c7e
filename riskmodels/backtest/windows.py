"""Honest windows: what a comparison actually priced, and on which cells it compares models.

The stated window (``[data] start..end``) is not the priced window: an
account is priced only from the first date every asset it holds has
``min_history`` returns, so the first priced date can be a year or more after
the start and early stress windows can cover only part of the book. This
module states it:

* :func:`restrict_to_common` makes every model's coverage statistics use the
  **cells all models price** (a cell that one model cannot price is dropped
  from every row, and the model's row says how many and why);
* :func:`window_facts` gives the first and last priced dates, the number of
  priced account-days, and per stress window
  (:data:`~riskmodels.backtest.procyclicality.STRESS_WINDOWS`) the share of
  the book's accounts and of its gross notional the window covers;
* :func:`window_header` is that as one line for the console and the tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from riskmodels.backtest.result import BacktestResult, ModelResult


def restrict_to_common(results: dict[str, ModelResult], held: np.ndarray, assets: tuple[str, ...]) -> dict[str, Any]:
    """Restrict every model's coverage cells to those all models price; return what was dropped.

    ``valid`` of each coverage result becomes the intersection (one shared
    array) and ``exceptions`` is masked to it. The realised loss and the
    eligibility are the same for every model, so a cell differs between
    models only where a model's margin is not finite. Returns
    ``{"cells": common count, "unpriced": {model: {"cells": n, "reason": text}}}``.
    """
    if not results:
        return {"cells": 0, "unpriced": {}}
    rs = list(results.values())
    common = rs[0].coverage.valid.copy()
    for r in rs[1:]:
        common &= r.coverage.valid
    n_common = int(common.sum())
    union = np.zeros_like(common)
    for r in rs:
        union |= r.coverage.valid
    unpriced: dict[str, dict[str, Any]] = {}
    for name, r in results.items():
        cov = r.coverage
        own = cov.valid & ~common
        mine = union & ~cov.valid  # cells the model could not price (eligible, loss known, margin NaN)
        n_own_missing = int(mine.sum())
        reason = ""
        if n_own_missing:
            accts = mine.sum(axis=0)  # (P,) cells per account
            by_asset = accts @ held  # cells per held asset
            top = [assets[j] for j in np.argsort(-by_asset)[:3] if by_asset[j] > 0]
            first = np.flatnonzero(mine.any(axis=1))
            reason = (f"margin not finite on {n_own_missing:,} cells the other models price (accounts holding "
                      f"{', '.join(top)}; rows {int(first[0])}..{int(first[-1])} of the window)")
        unpriced[name] = {"cells": n_own_missing, "dropped_from_row": int(own.sum()), "reason": reason}
        object.__setattr__(cov, "exceptions", cov.exceptions & common)
        object.__setattr__(cov, "valid", common)
    return {"cells": n_common, "unpriced": unpriced}


def priced_span(dates: pd.DatetimeIndex, any_day: np.ndarray) -> dict[str, str | None]:
    """Stated start/end of the window and its first/last date on which any account was priced."""
    hit = np.flatnonzero(any_day)
    return {
        "stated_start": str(dates[0].date()),
        "stated_end": str(dates[-1].date()),
        "first_priced_date": str(dates[hit[0]].date()) if hit.size else None,
        "last_priced_date": str(dates[hit[-1]].date()) if hit.size else None,
    }


def window_facts(result: BacktestResult) -> dict[str, Any]:
    """First/last priced date, priced account-days, and each stress window's share of the book.

    ``priced_account_days`` counts (date, account) cells in the window that
    every model priced and whose MPOR loss is known (the coverage cells);
    ``account_days_eligible`` counts the eligible cells (the last MPOR days
    of the window have no realised loss yet). A stress window's
    ``account_share`` is the mean over its dates of the share of the book's
    accounts priced; ``notional_share`` the same weighted by gross notional.
    """
    from riskmodels.backtest.procyclicality import STRESS_WINDOWS

    dates = result.panel.dates[result.start : result.end + 1]
    first_r = next(iter(result.results.values()))
    ok = first_r.path.eligible[first_r.path.rows(result.start, result.end)]
    cells = first_r.coverage.valid[first_r.coverage.rows(result.start, result.end)]
    gross = np.asarray(first_r.gross_notional, dtype=np.float64)
    P = ok.shape[1]
    any_day = ok.any(axis=1)
    facts: dict[str, Any] = {
        **priced_span(dates, any_day),
        "accounts": P,
        "accounts_ever_priced": int(ok.any(axis=0).sum()),
        "account_days_eligible": int(ok.sum()),
        "priced_account_days": int(cells.sum()),
        "common_cells": getattr(result, "common", {}).get("cells", int(cells.sum())),
        "unpriced": getattr(result, "common", {}).get("unpriced", {}),
        "stress_windows": {},
    }
    total_g = float(gross.sum()) or 1.0
    for name, (a, b) in STRESS_WINDOWS.items():
        m = (dates >= pd.Timestamp(a)) & (dates <= pd.Timestamp(b))
        if not m.any():
            continue
        sub = ok[m]
        facts["stress_windows"][name] = {
            "start": a,
            "end": b,
            "dates_in_window": int(m.sum()),
            "account_share": float(sub.sum(axis=1).mean() / P) if P else float("nan"),
            "notional_share": float((sub @ gross).mean() / total_g),
        }
    return facts


def window_header(result: BacktestResult) -> str:
    """One line: first priced date, priced account-days, stress-window coverage of the book."""
    return header_of(window_facts(result))


def header_of(f: dict[str, Any]) -> str:
    """:func:`window_header` from the facts of :func:`window_facts` (a streamed run computes them itself)."""
    sw = ", ".join(f"{k} {v['account_share']:.0%}" for k, v in f["stress_windows"].items())
    line = (f"priced {f['first_priced_date']}..{f['last_priced_date']} (stated {f['stated_start']}..{f['stated_end']}): "
            f"{f['priced_account_days']:,} account-days priced by every model, "
            f"{f['accounts_ever_priced']}/{f['accounts']} accounts")
    if sw:
        line += f"; book covered in stress windows: {sw}"
    return line
