"""Top-N concentration: how much margin, liquidation and bad debt the largest accounts carry.

Public risk reports of lending protocols list their top borrowers because the
losses come from them. For each model this module ranks the accounts by size
(the book's gross notional ``G_p = sum_a |collateral| + |perp|``, the same
ranking for every model so rows compare) and reports, for the largest 1%, 10
and 30 accounts (``TOP_GROUPS``; a group is capped at the book's size):

* ``share_notional`` -- their share of the book's gross notional (the baseline:
  a share of margin or losses above it means size costs more than proportionally);
* ``share_margin`` -- share of initial margin summed over the priced
  (date, account) cells of the evaluation window;
* ``share_liquidations`` -- share of liquidation events (count);
* ``share_liquidated_notional`` -- share of the perp notional liquidated;
* ``share_bad_debt`` -- share of bad debt USD (NaN when the model has none).

Ties in size are broken by account order (stable sort). :func:`top_concentration`
returns one row per (model, group); :func:`write_top_concentration` writes it
as CSV atomically. Three summary metrics (tag ``concentration``) carry the top-10
shares of margin, liquidated notional and bad debt.
"""

from __future__ import annotations

import math
import os
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from riskmodels.backtest.metrics import metric

if TYPE_CHECKING:
    from riskmodels.backtest.result import BacktestResult, ModelResult

__all__ = ["TOP_GROUPS", "margin_per_account", "top_accounts", "top_concentration", "top_shares",
           "write_top_concentration"]

#: (label, size): a float < 1 is a fraction of the accounts (rounded up, at least 1), an int a count
TOP_GROUPS: tuple[tuple[str, float | int], ...] = (("top 1%", 0.01), ("top 10", 10), ("top 30", 30))
COLUMNS = ["model", "group", "accounts", "share_notional", "share_margin", "share_liquidations",
           "share_liquidated_notional", "share_bad_debt"]


def top_accounts(gross_notional: np.ndarray, size: float | int) -> np.ndarray:
    """Indices of the ``size`` largest accounts by gross notional (a fraction if ``0 < size < 1``)."""
    g = np.asarray(gross_notional, dtype=np.float64)
    P = len(g)
    if isinstance(size, float) and 0 < size < 1:
        n = max(1, math.ceil(size * P))
    else:
        n = int(size)
        if n < 1:
            raise ValueError(f"top group size must be a count >= 1 or a fraction in (0, 1), got {size!r}")
    order = np.argsort(-g, kind="stable")
    return order[: min(n, P)]


def _share(part: float, total: float) -> float:
    return part / total if total > 0 else float("nan")


def top_shares(r: ModelResult, members: np.ndarray) -> dict[str, float]:
    """Shares of one model's margin, liquidations and bad debt carried by the accounts ``members``."""
    return shares_of(r.gross_notional, margin_per_account(r), r.simulation.liquidations, members)


#: margin_per_account per result: (the initial-margin array, the eligibility array, the sums), reused while
#: the result still holds those two arrays (the three top-10 metrics and the concentration table ask for it)
_PER_ACCOUNT: weakref.WeakKeyDictionary[ModelResult, tuple[np.ndarray, np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary())


def margin_per_account(r: ModelResult) -> np.ndarray:
    """``(P,)`` float64: each account's initial margin summed over its priced dates, ``sum_t IM[t, a]``.

    Cells that are not priced or not finite count 0. Computed once per
    result (read-only; recomputed if the result's path arrays are replaced).
    """
    im, eligible = r.path.initial, r.path.eligible
    hit = _PER_ACCOUNT.get(r)
    if hit is not None and hit[0] is im and hit[1] is eligible:
        return hit[2]
    ok = eligible & np.isfinite(im)
    sums = np.where(ok, im, 0.0).astype(np.float64).sum(axis=0)  # (P,) summed over dates
    sums.flags.writeable = False
    _PER_ACCOUNT[r] = (im, eligible, sums)
    return sums


def shares_of(g: np.ndarray, per_acct: np.ndarray, liq: np.ndarray, members: np.ndarray) -> dict[str, float]:
    """:func:`top_shares` from the gross notional, the per-account margin sums and the liquidation records."""
    mask = np.zeros(len(g), dtype=bool)
    mask[members] = True
    top = mask[liq["account"]]
    return {
        "accounts": int(mask.sum()),
        "share_notional": _share(float(g[mask].sum()), float(g.sum())),
        "share_margin": _share(float(per_acct[mask].sum()), float(per_acct.sum())),
        "share_liquidations": _share(float(top.sum()), float(len(liq))),
        "share_liquidated_notional": _share(float(liq["notional"][top].sum()), float(liq["notional"].sum())),
        "share_bad_debt": _share(float(liq["bad_debt"][top].sum()), float(liq["bad_debt"].sum())),
    }


def top_concentration(result: BacktestResult, groups: Sequence[tuple[str, float | int]] = TOP_GROUPS) -> pd.DataFrame:
    """One row per (model, group) with the shares of the module docstring."""
    rows = []
    for name, r in result.results.items():
        per_acct = margin_per_account(r)  # the (T, P) pass once per model, not once per group
        for label, size in groups:
            members = top_accounts(r.gross_notional, size)
            rows.append({"model": name, "group": label,
                         **shares_of(r.gross_notional, per_acct, r.simulation.liquidations, members)})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_top_concentration(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV atomically (temporary file in the same folder, then rename)."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=p.name, suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False, float_format="%.10g")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def _top10(r: ModelResult) -> dict[str, float]:
    return top_shares(r, top_accounts(r.gross_notional, 10))


@metric("top10_margin_share", "top-10 margin", tags=("concentration",), fmt="{:.1%}", better="",
        unit="fraction of the model's total initial margin")
def top10_margin_share(r: ModelResult) -> float:
    """Share of initial margin carried by the 10 largest accounts (by gross notional)."""
    return _top10(r)["share_margin"]


@metric("top10_liquidated_share", "top-10 liq. notional", tags=("concentration",), fmt="{:.1%}", better="",
        unit="fraction of the model's liquidated notional")
def top10_liquidated_share(r: ModelResult) -> float:
    """Share of liquidated perp notional from the 10 largest accounts."""
    return _top10(r)["share_liquidated_notional"]


@metric("top10_bad_debt_share", "top-10 bad debt", tags=("concentration",), fmt="{:.1%}", better="",
        unit="fraction of the model's bad debt")
def top10_bad_debt_share(r: ModelResult) -> float:
    """Share of bad debt from the 10 largest accounts (NaN without bad debt)."""
    return _top10(r)["share_bad_debt"]
