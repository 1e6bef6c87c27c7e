"""The insurance-fund ledger and auto-deleveraging (ADL) over a simulated backtest.

The ledger is computed after the account simulation
(:func:`riskmodels.backtest.simulation.simulate_accounts`) from its result
arrays: liquidation events carry the penalty charged and the bad debt left.
Each day ``t``, in this order::

    inflow_t   = penalty_share x sum of penalties of the day's liquidations
    paid_t     = min(balance_{t-1} + inflow_t, bad_debt_t)
    balance_t  = balance_{t-1} + inflow_t - paid_t
    shortfall_t = bad_debt_t - paid_t = adl_t + socialised_t

so ``balance_t - balance_{t-1} = inflow_t - paid_t`` every day (tested). The
dYdX v4 liquidation fee goes to its insurance fund, which absorbs the losses
of bankrupt accounts, deleveraging follows when it cannot (METHODOLOGY.md
section 2); Binance's fund takes liquidated positions at the bankruptcy
price, with ADL beyond it.

**Auto-deleveraging.** A shortfall is spread over the day's bankrupt accounts
in proportion to their bad debt; each bankrupt account's share is split over
its perp positions in proportion to their notional at the day's close, so
position ``a`` of quantity ``Q_a`` is short ``D_a`` USD, a bankruptcy-price
gap of ``D_a / |Q_a|`` per unit. Per asset and side, all of the day's
bankrupt units are matched at once against the accounts open at the close
that hold the opposite side of ``a`` with a profit on it, ranked by::

    score = (unrealised P&L / |entry notional|) x (gross perp notional / equity)

("PnL percentage x effective leverage" for profitable positions: the
ranking of Binance Futures' "What is Auto-Deleveraging (ADL)" FAQ and of
BitMEX's auto-deleveraging guide; Hyperliquid ranks by unrealised P&L and
leverage, METHODOLOGY.md section 2), and, best score first,
have ``u <= |q|`` units closed at the bankrupt account's bankruptcy price,
which costs them ``u x D_a / |Q_a|`` until every bankrupt unit is matched
(a counterparty's units are used once: it cannot be closed twice).
A counterparty never pays more than its equity (ADL does not leave a balance
negative; WhiteBIT's ADL documentation states the same guarantee); what the
opposing side cannot absorb is ``socialised`` (left uncovered, reported).

Limitations: the hit accounts' later path in the simulation is not altered
(the ledger is ex post), and account holdings are rebuilt from the Book's
templates and the simulation's openings (quantity = USD amount / close at
the opening).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest.simulation import SimulationResult
from riskmodels.data.panel import PricePanel
from riskmodels.portfolio import Book


@dataclass(frozen=True)
class FundPolicy:
    """Insurance-fund parameters (``[stress]`` keys ``fund_initial``, ``fund_initial_share``, ``penalty_share``).

    Parameters
    ----------
    initial : float or None
        Starting balance, USD; None = ``initial_share`` x the open perp
        notional on the first simulated day with open accounts.
    initial_share : float
        Starting balance as a share of open notional, [0, 1]. Default 0.001
        (the cascade's ``insurance_fund_share``).
    penalty_share : float
        Share of liquidation penalties paid into the fund, [0, 1]. Default 1
        (dYdX: the liquidation fee goes to the insurance fund).
    adl : bool
        Run auto-deleveraging when the fund cannot cover (else all of the
        shortfall is socialised).
    """

    initial: float | None = None
    initial_share: float = 0.001
    penalty_share: float = 1.0
    adl: bool = True

    def __post_init__(self) -> None:
        if self.initial is not None and not (np.isfinite(self.initial) and self.initial >= 0):
            raise ValueError(f"stress.fund_initial={self.initial} must be a finite amount >= 0 USD (or omitted)")
        if not 0 <= self.initial_share <= 1:
            raise ValueError(f"stress.fund_initial_share={self.initial_share} must be in [0, 1]")
        if not 0 <= self.penalty_share <= 1:
            raise ValueError(f"stress.penalty_share={self.penalty_share} must be in [0, 1]")


class Holdings:
    """Perp quantities and entry prices of a simulation's accounts, rebuilt from its openings.

    An account opened at date index ``t0`` holds ``positions / close[t0]``
    units at entry price ``close[t0]`` until it is closed (the simulation's
    convention).
    """

    def __init__(self, sim: SimulationResult, book: Book, panel: PricePanel) -> None:
        self.book = book.align(panel.assets)
        self.close = panel.close
        op = sim.openings
        order = np.lexsort((op["t"], op["account"]))
        self.acct = np.asarray(op["account"][order], dtype=np.int64)
        self.t0 = np.asarray(op["t"][order], dtype=np.int64)

    def last_opening(self, accounts: np.ndarray, t: int, strict: bool = False) -> np.ndarray:
        """Date index of each account's last opening at ``<= t`` (``< t`` if ``strict``); -1 if none."""
        accounts = np.asarray(accounts, dtype=np.int64)
        key = self.acct * (1 << 32) + self.t0
        q = accounts * (1 << 32) + (t - 1 if strict else t)
        i = np.searchsorted(key, q, side="right") - 1
        ok = (i >= 0) & (self.acct[np.maximum(i, 0)] == accounts)
        return np.where(ok, self.t0[np.maximum(i, 0)], -1)

    def at(self, accounts: np.ndarray, t: int, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(quantity, entry)`` ``(n, A)`` of ``accounts`` as last opened at or before ``t``."""
        t0 = self.last_opening(accounts, t, strict)
        entry = np.where(t0[:, None] >= 0, self.close[np.maximum(t0, 0)], np.nan)
        pos = self.book.positions[np.asarray(accounts, dtype=np.int64)]
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.where((pos != 0) & np.isfinite(entry), pos / entry, 0.0)
        return q, np.where(np.isfinite(entry), entry, 0.0)


@dataclass(frozen=True, eq=False)
class FundLedger:
    """Daily insurance-fund ledger of one model's simulation, and the ADL hits."""

    model: str
    ledger: pd.DataFrame  # one row per simulated date
    adl: pd.DataFrame  # one row per (bankrupt account, asset, hit account)
    policy: FundPolicy

    def summary(self) -> dict[str, float]:
        lg = self.ledger
        return {
            "initial_balance": float(lg["balance_open"].iloc[0]) if len(lg) else 0.0,
            "final_balance": float(lg["balance_close"].iloc[-1]) if len(lg) else 0.0,
            "min_balance": float(lg["balance_close"].min()) if len(lg) else 0.0,
            "penalties_in": float(lg["inflow"].sum()),
            "bad_debt": float(lg["bad_debt"].sum()),
            "fund_paid": float(lg["fund_paid"].sum()),
            "days_fund_exhausted": int((lg["shortfall"] > 0).sum()),
            "adl_usd": float(lg["adl"].sum()),
            "adl_events": len(self.adl),
            "accounts_hit": int(self.adl["account"].nunique()) if len(self.adl) else 0,
            "socialised": float(lg["socialised"].sum()),
        }


def _deleverage(
    hold: Holdings,
    sim: SimulationResult,
    t: int,
    bankrupt: np.ndarray,
    short_usd: np.ndarray,
    eq_left: np.ndarray,
    rows: list[tuple[Any, ...]],
) -> float:
    """Cover ``short_usd`` of each bankrupt account by ADL at date ``t``; returns the USD absorbed.

    Per asset and side, the bankrupt positions' units are laid end to end
    (in account order), unit ``x`` carrying its account's gap ``g(x)``; the
    ranked counterparties' opposing units are laid end to end the same way,
    and counterparty ``j`` covering units ``[C_{j-1}, C_j)`` pays
    ``G(C_j) - G(C_{j-1})`` with ``G(x) = integral_0^x g`` (piecewise linear:
    one ``np.interp``), capped at its equity left. ``eq_left (P,)`` is each
    account's equity still available to ADL today (decremented in place).
    """
    c = np.where(np.isfinite(hold.close[t]), hold.close[t], 0.0)
    cand = np.flatnonzero(sim.is_open[sim.row(t)])
    qc, ec = hold.at(cand, t)  # (n, A)
    gross = (np.abs(qc) * c).sum(axis=1)
    qb, _ = hold.at(bankrupt, t, strict=True)  # (nb, A)
    notional = np.abs(qb) * c
    tot = notional.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_usd = np.where(tot[:, None] > 0, np.asarray(short_usd)[:, None] * notional / tot[:, None], 0.0)  # (nb, A)
    absorbed = 0.0
    for a in np.flatnonzero((d_usd > 0).any(axis=0)):
        for side in (1.0, -1.0):
            mine = (np.sign(qb[:, a]) == side) & (d_usd[:, a] > 0)
            if not mine.any():
                continue
            units = np.abs(qb[mine, a])
            ucum = np.r_[0.0, np.cumsum(units)]
            gcum = np.r_[0.0, np.cumsum(d_usd[mine, a])]
            q = qc[:, a]
            pnl = q * (c[a] - ec[:, a])
            eq = eq_left[cand]
            opp = (np.sign(q) == -side) & (pnl > 0) & (eq > 0)
            if not opp.any():
                continue
            k = np.flatnonzero(opp)
            score = pnl[k] / np.abs(q[k] * ec[k, a]) * gross[k] / eq[k]
            rank = np.argsort(-score, kind="stable")
            k, score = k[rank], score[rank]
            cap = np.abs(q[k])
            hi = np.cumsum(cap)
            lo = hi - cap
            take = np.clip(ucum[-1] - lo, 0.0, cap)
            hit = take > 0
            k, score, lo, take = k[hit], score[hit], lo[hit], take[hit]
            owed = np.interp(lo + take, ucum, gcum) - np.interp(lo, ucum, gcum)
            before = eq[k]
            cost = np.minimum(owed, before)
            eq_left[cand[k]] = before - cost
            absorbed += float(cost.sum())
            rows.append((t, int(a), side, int(mine.sum()), cand[k], take, cost, score, before, before - cost))
    return absorbed


def _adl_frame(sim: SimulationResult, hold: Holdings | None, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """One row per ADL hit (account, asset, day) from the chunks of :func:`_deleverage`."""
    cols = ["date", "model", "asset", "bankrupt_side", "bankrupt_accounts", "account", "units", "usd", "rank_score",
            "equity_before", "equity_after"]
    if not rows or hold is None:
        return pd.DataFrame(columns=cols)
    n = np.array([len(r[4]) for r in rows])
    ids = np.asarray(sim.account_ids, dtype=object)
    assets = np.asarray(hold.book.assets, dtype=object)
    cat = [np.concatenate([r[k] for r in rows]) for k in range(4, 10)]
    return pd.DataFrame({
        "date": sim.dates[np.repeat([r[0] for r in rows], n)],
        "model": sim.model,
        "asset": assets[np.repeat([r[1] for r in rows], n)],
        "bankrupt_side": np.where(np.repeat([r[2] for r in rows], n) > 0, "long", "short"),
        "bankrupt_accounts": np.repeat([r[3] for r in rows], n),
        "account": ids[cat[0]],
        "units": cat[1], "usd": cat[2], "rank_score": cat[3], "equity_before": cat[4], "equity_after": cat[5],
    })


def fund_ledger(sim: SimulationResult, book: Book, panel: PricePanel, policy: FundPolicy | None = None) -> FundLedger:
    """The insurance-fund ledger of ``sim`` (see the module docstring for the rules)."""
    policy = policy or FundPolicy()
    n = sim.end - sim.start + 1
    liq = sim.liquidations
    rows_t = liq["t"] - sim.start
    pen = np.bincount(rows_t, weights=liq["penalty"], minlength=n)[:n]
    bad = np.bincount(rows_t, weights=liq["bad_debt"], minlength=n)[:n]
    if policy.initial is not None:
        b0 = float(policy.initial)
    else:
        live = np.flatnonzero(sim.notional_total > 0)
        b0 = policy.initial_share * float(sim.notional_total[live[0]]) if len(live) else 0.0
    inflow = policy.penalty_share * pen
    hold = Holdings(sim, book, panel) if policy.adl and (bad > 0).any() else None
    paid = np.zeros(n)
    adl = np.zeros(n)
    bal_close = np.full(n, np.nan)
    bal = b0
    adl_rows: list[tuple[Any, ...]] = []
    for i in np.flatnonzero((inflow > 0) | (bad > 0)) if n else []:
        avail = bal + inflow[i]
        paid[i] = min(avail, bad[i])
        bal = max(avail - paid[i], 0.0)
        bal_close[i] = bal
        short = bad[i] - paid[i]
        if short > 0 and hold is not None:
            t = sim.start + int(i)
            ev = liq[liq["t"] == t]
            ev = ev[ev["bad_debt"] > 0]
            eq_left = np.nan_to_num(sim.equity[i].astype(np.float64), nan=0.0)
            share = ev["bad_debt"] / ev["bad_debt"].sum() * short
            adl[i] = min(_deleverage(hold, sim, t, ev["account"].astype(np.int64), share, eq_left, adl_rows), short)
    # the balance is constant between event days: carry it forward
    bal_close = pd.Series(bal_close).ffill().fillna(b0).to_numpy()
    bal_open = np.concatenate([[b0], bal_close[:-1]])
    shortfall = bad - paid
    ledger = pd.DataFrame(
        {
            "date": sim.dates[sim.start: sim.end + 1],
            "model": sim.model,
            "balance_open": bal_open,
            "penalties": pen,
            "inflow": inflow,
            "bad_debt": bad,
            "fund_paid": paid,
            "balance_close": bal_close,
            "shortfall": shortfall,
            "adl": adl,
            "socialised": np.maximum(shortfall - adl, 0.0),
        }
    )
    frame = _adl_frame(sim, hold, adl_rows)
    return FundLedger(sim.model, ledger, frame, policy)
