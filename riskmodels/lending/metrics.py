"""Risk metrics of a lending simulation, as governance reports define them.

* **Bad debt** per asset: the deficit booked when an account's collateral is
  exhausted (Aave v3.3 ``DeficitCreated``; Morpho Blue socialises it to
  lenders), by debt reserve and by the collateral that ran out.
* **Insolvent amount** of a day: ``sum over accounts of max(D_i - C_i, 0)``
  at the close plus the deficit booked that day (Gauntlet's definition of
  the net insolvent amount, https://risk.gauntlet.network/faq).
* **VaR of bad debt**: the 95th percentile of the daily insolvent amount
  over the backtest days (Gauntlet's VaR is the 95th percentile of the net
  insolvent amount, risk.gauntlet.network/faq; Chaos Labs quotes the 95th
  percentile of 24 h bad-debt losses as VaR and the 99th as "extreme VaR",
  governance.aave.com, ARFC Chaos Labs risk parameter updates 2023-05-18).
* **Liquidations at risk (LaR)**: the 95th percentile of the daily USD
  value of collateral liquidated (Gauntlet, "VaR Deepdive", Jan 2022).
* **Liquidator profit after impact**: proceeds of the sale of the seized
  collateral (net of the protocol fee) minus the debt bought back, both at
  impacted prices, minus gas; liquidations that would not pay are skipped
  (``unprofitable`` counts them).
* **Toxic accounts**: ``D / C > 1 / LB`` at the close (no liquidation can
  bring them back to health; Warmuz et al. 2022).

Percentiles use ``numpy.quantile`` (linear interpolation) over the window's
days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodels.lending.simulate import DAY_COLUMNS, TOTAL_COLUMNS, LendingResult

__all__ = ["asset_table", "daily_insolvent", "summary", "var_table"]


def _col(res: LendingResult, name: str) -> np.ndarray:
    return res.daily[:, :, DAY_COLUMNS.index(name)]


def daily_insolvent(res: LendingResult) -> np.ndarray:
    """``(T_w,)`` net insolvent USD at the close plus the deficit booked that day."""
    return res.totals[:, TOTAL_COLUMNS.index("insolvent_usd")] + _col(res, "deficit_usd").sum(axis=1)


def asset_table(res: LendingResult) -> pd.DataFrame:
    """One row per reserve: liquidations, amounts, bad debt, supply; the run's rule in ``rule``."""
    supply = _col(res, "supply_usd")
    borrow = _col(res, "borrow_usd")
    deficit = _col(res, "deficit_usd").sum(axis=0)
    by_coll = _col(res, "bad_debt_by_collateral_usd").sum(axis=0)
    peak_supply = supply.max(axis=0) if len(supply) else np.zeros(len(res.assets))
    with np.errstate(divide="ignore", invalid="ignore"):
        frame = pd.DataFrame({
            "liquidations": _col(res, "liquidations").sum(axis=0).astype(np.int64),
            "unprofitable_skipped": _col(res, "unprofitable").sum(axis=0).astype(np.int64),
            "collateral_liquidated_usd": _col(res, "seized_usd").sum(axis=0),
            "debt_repaid_usd": _col(res, "repaid_usd").sum(axis=0),
            "protocol_fee_usd": _col(res, "protocol_fee_usd").sum(axis=0),
            "liquidator_profit_usd": _col(res, "liquidator_profit_usd").sum(axis=0),
            "deficit_usd": deficit,
            "bad_debt_by_collateral_usd": by_coll,
            "mean_supply_usd": supply.mean(axis=0) if len(supply) else 0.0,
            "peak_supply_usd": peak_supply,
            "mean_borrow_usd": borrow.mean(axis=0) if len(borrow) else 0.0,
            "bad_debt_per_peak_supply": np.where(peak_supply > 0, by_coll / peak_supply, 0.0),
        }, index=pd.Index(res.assets, name="asset"))
    frame["rule"] = res.rule
    return frame


def var_table(res: LendingResult, levels: tuple[float, ...] = (0.95, 0.99)) -> pd.DataFrame:
    """VaR of bad debt and liquidations at risk over the window's days, per level."""
    ins = daily_insolvent(res)
    liq = _col(res, "seized_usd").sum(axis=1)
    rows = []
    for q in levels:
        rows.append({
            "level": q,
            "var_bad_debt_usd": float(np.quantile(ins, q)) if len(ins) else float("nan"),
            "liquidations_at_risk_usd": float(np.quantile(liq, q)) if len(liq) else float("nan"),
            "days": len(ins),
            "rule": res.rule,
        })
    return pd.DataFrame(rows)


def summary(res: LendingResult) -> pd.DataFrame:
    """The run in one row per statistic (``lending_summary.csv``): name, value, unit."""
    tab = asset_table(res)
    v = var_table(res)
    tot = res.totals
    hf = res.hf
    open_hf = hf[np.isfinite(hf)]
    events = res.events
    rows = [
        ("accounts", float(res.positions.n), "accounts"),
        ("accounts_opened", float(((res.state == 1) | (res.state == 2)).sum()), "accounts"),
        ("accounts_refused", float((res.state == 3).sum()), "accounts"),
        ("days", float(len(res.dates)), "days"),
        ("liquidations", float(len(events)), "events"),
        ("accounts_liquidated", float(events["account"].nunique()) if len(events) else 0.0, "accounts"),
        ("unprofitable_skipped", float(tab["unprofitable_skipped"].sum()), "account-days"),
        ("collateral_liquidated_usd", float(tab["collateral_liquidated_usd"].sum()), "USD"),
        ("protocol_fee_usd", float(tab["protocol_fee_usd"].sum()), "USD"),
        ("liquidator_profit_usd", float(tab["liquidator_profit_usd"].sum()), "USD"),
        ("deficit_usd", float(tab["deficit_usd"].sum()), "USD"),
        ("insolvent_usd_last_day", float(tot[-1, TOTAL_COLUMNS.index("insolvent_usd")]) if len(tot) else 0.0, "USD"),
        ("max_toxic_accounts", float(tot[:, TOTAL_COLUMNS.index("toxic_accounts")].max()) if len(tot) else 0.0,
         "accounts"),
        ("median_health_factor", float(np.median(open_hf)) if open_hf.size else float("nan"), "HF"),
    ]
    for _, r in v.iterrows():
        rows.append((f"var{round(r['level'] * 100)}_bad_debt_usd", r["var_bad_debt_usd"], "USD"))
        rows.append((f"lar{round(r['level'] * 100)}_usd", r["liquidations_at_risk_usd"], "USD"))
    out = pd.DataFrame(rows, columns=["statistic", "value", "unit"])
    out["rule"] = res.rule
    return out
