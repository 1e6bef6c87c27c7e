"""Reference coverage backtest, account simulation and statistics: plain loops.

Conventions (riskmodels.backtest.coverage / simulation docstrings):

* **Coverage**: an account held at its book's constant USD amounts; its
  realised loss from close t to close t+h is ``-sum_a x_a (C[t+h]/C[t] - 1)``;
  an exception is a loss above the initial margin set at t.
* **Simulation**, one day at a time, one account at a time:

  - a held asset without a close: the account is closed at the previous
    close, no costs (``delisted``);
  - intraday (from the second day): every asset at its adverse extreme (the
    low where the account's collateral + perp quantity is long, the high
    where short), the maintenance of the model state of t-1 on the holdings
    at those prices; equity below it: liquidation at those prices;
  - accounts due to (re)open (first date all held assets are eligible, or
    ``reentry_days`` after a liquidation) open at the close with equity
    ``IM x (1 + cushion)``;
  - close check of accounts open before today: equity at the close below
    today's maintenance: liquidation at the close;
  - a liquidation sells at ``P(1 - s)`` / buys back at ``P(1 + s)``, then
    charges ``penalty x perp notional`` out of what is left; a negative
    remainder is bad debt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

TRIGGERS = ("intraday", "close", "delisted")


def account_eligible(asset_ok: np.ndarray, collateral: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``(T, P)``: every asset the account holds is ok that day (loop over accounts)."""
    T, P = asset_ok.shape[0], collateral.shape[0]
    out = np.zeros((T, P), dtype=bool)
    for p in range(P):
        held = (collateral[p] != 0) | (positions[p] != 0)
        out[:, p] = asset_ok[:, held].all(axis=1)
    return out


# --------------------------------------------------------------- path
def margin_path(model: Any, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray,
                eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(T, P)`` initial and maintenance of the constant-notional book.

    HS VaR: one pandas rolling quantile per account; the other models: a
    loop over dates and accounts calling the one-account requirement.
    """
    T, P = eligible.shape
    im = np.full((T, P), np.nan)
    mm = np.full((T, P), np.nan)
    for p in range(P):
        if hasattr(model, "path_account"):
            from .margins import _holdings

            parts = _holdings(collateral[p], positions[p]) if isolated[p] else None
            series = model.path_account(collateral[p] + positions[p], parts)
            bad = np.zeros(T, dtype=bool)
            for a in np.flatnonzero((collateral[p] != 0) | (positions[p] != 0)):
                bad |= ~model.ok[:, a]
            series = np.where(bad, np.nan, series)
            mm[:, p] = series
            im[:, p] = series
        else:
            for t in np.flatnonzero(eligible[:, p]):
                im[t, p], mm[t, p] = model.requirement(int(t), collateral[p], positions[p], bool(isolated[p]))
    ok = eligible & np.isfinite(mm)
    return np.where(ok, im, np.nan), np.where(ok, mm, np.nan)


# ----------------------------------------------------------- coverage
def coverage(close: np.ndarray, collateral: np.ndarray, positions: np.ndarray, margin: np.ndarray,
             h: int) -> tuple[int, int]:
    """Observations and exceptions of ``margin`` against the realised h-day loss."""
    df = pd.DataFrame(close)
    fwd = (df.shift(-h) / df - 1.0).to_numpy()
    n_obs = n_exc = 0
    for p in range(collateral.shape[0]):
        x = collateral[p] + positions[p]
        held = np.flatnonzero(x != 0)
        loss = -(pd.DataFrame(fwd[:, held]) * x[held]).sum(axis=1, skipna=False).to_numpy()
        valid = np.isfinite(loss) & np.isfinite(margin[:, p])
        n_obs += int(valid.sum())
        n_exc += int((loss[valid] > margin[valid, p]).sum())
    return n_obs, n_exc


def kupiec(n_obs: int, n_exc: int, p: float) -> tuple[float, float]:
    """Kupiec (1995) POF likelihood ratio and its chi2(1) p-value."""
    x, n = n_exc, n_obs
    phat = x / n if n else 0.0
    ll0 = (n - x) * math.log(1 - p) + (x * math.log(p) if x else 0.0)
    ll1 = ((n - x) * math.log(1 - phat) if x < n else 0.0) + (x * math.log(phat) if x else 0.0)
    lr = -2.0 * (ll0 - ll1)
    return lr, float(stats.chi2.sf(lr, 1))


def peak_to_trough(total_im: np.ndarray) -> float:
    """Largest total IM over its smallest (procyclicality, Murphy, Vasios & Vause 2014)."""
    v = total_im[np.isfinite(total_im) & (total_im > 0)]
    return float(v.max() / v.min()) if v.size else math.nan


# --------------------------------------------------------- simulation
@dataclass
class Account:
    qc: np.ndarray
    qp: np.ndarray
    entry: np.ndarray
    cash: float = 0.0
    is_open: bool = False
    reopen_at: int = 0


@dataclass
class SimResult:
    events: list[dict[str, float]] = field(default_factory=list)
    maintenance: np.ndarray | None = None  # (T, P), NaN when closed
    equity: np.ndarray | None = None


def simulate(model: Any, close: np.ndarray, high: np.ndarray, low: np.ndarray, collateral: np.ndarray,
             positions: np.ndarray, isolated: np.ndarray, ok: np.ndarray, start: int, end: int,
             cushion: float = 0.5, slippage: float = 0.002, penalty: float = 0.01,
             reentry_days: int | None = 5) -> SimResult:
    """The account simulation: Python loop over dates and, inside, over accounts."""
    T, A = close.shape
    P = collateral.shape[0]
    accts = [Account(np.zeros(A), np.zeros(A), np.zeros(A), reopen_at=start) for _ in range(P)]
    res = SimResult(maintenance=np.full((T, P), np.nan), equity=np.full((T, P), np.nan))

    def value(ac: Account, px: np.ndarray) -> float:
        return ac.cash + float(np.sum(ac.qc * px)) + float(np.sum(ac.qp * (px - ac.entry)))

    def liquidate(p: int, t: int, px: np.ndarray, trigger: int, mm: float) -> None:
        ac = accts[p]
        eq = value(ac, px)
        notional = float(np.sum(np.abs(ac.qp) * px))
        if trigger == 2:
            slip = pen = 0.0
        else:
            slip = slippage * float(np.sum((np.abs(ac.qp) + ac.qc) * px))
            pen = min(penalty * notional, max(eq - slip, 0.0))
        rem = eq - slip
        res.events.append({"account": p, "t": t, "trigger": trigger, "equity": eq, "maintenance": mm,
                           "notional": notional, "slippage": slip, "penalty": pen,
                           "bad_debt": max(-rem, 0.0), "returned": max(rem - pen, 0.0)})
        ac.qc, ac.qp, ac.entry, ac.cash, ac.is_open = np.zeros(A), np.zeros(A), np.zeros(A), 0.0, False
        ac.reopen_at = -1 if (trigger == 2 or reentry_days is None) else t + reentry_days

    for t in range(start, end + 1):
        c = np.where(np.isfinite(close[t]), close[t], 0.0)
        prev_c = np.where(np.isfinite(close[t - 1]), close[t - 1], 0.0) if t > 0 else c
        for p in range(P):
            ac = accts[p]
            held = (collateral[p] != 0) | (positions[p] != 0)
            if ac.is_open and (held & ~np.isfinite(close[t])).any():
                liquidate(p, t, prev_c, 2, math.nan)
            if ac.is_open and t > start:
                net = ac.qc + ac.qp
                px = c.copy()
                for a in range(A):
                    if net[a] > 0 and np.isfinite(low[t, a]):
                        px[a] = low[t, a]
                    elif net[a] < 0 and np.isfinite(high[t, a]):
                        px[a] = high[t, a]
                _, mm = model.requirement(t - 1, ac.qc * px, ac.qp * px, bool(isolated[p]))
                if value(ac, px) < mm:
                    liquidate(p, t, px, 0, mm)
            opening = (not ac.is_open) and 0 <= ac.reopen_at <= t and ok[t, p]
            if not (ac.is_open or opening):
                continue
            if opening:
                coll, pos = collateral[p], positions[p]
            else:
                coll, pos = ac.qc * c, ac.qp * c
            im, mm = model.requirement(t, coll, pos, bool(isolated[p]))
            if ac.is_open and value(ac, c) < mm:
                liquidate(p, t, c, 1, mm)
                continue
            if opening:
                safe = np.where(held, c, 1.0)
                ac.qc, ac.qp = collateral[p] / safe, positions[p] / safe
                ac.entry = np.where(held, c, 0.0)
                ac.cash = (1.0 + cushion) * im - float(np.sum(collateral[p]))
                ac.is_open = True
            res.maintenance[t, p] = mm
            res.equity[t, p] = value(ac, c)
    return res


# --------------------------------------------------------------- run
def run_model(model: Any, panel: Any, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray,
              start: int, end: int, *, min_history: int = 365, mpor: int = 2, confidence: float = 0.99,
              policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit, path, coverage, simulation and statistics of one reference model, with timings."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model.fit(panel)
    timings["fit"] = time.perf_counter() - t0
    need = max(min_history, model.min_history)
    from .margins import history_count

    asset_ok = np.isfinite(panel.close) & (history_count(panel.close) >= need)
    elig = account_eligible(asset_ok, collateral, positions)
    elig[:start] = False
    elig[end + 1 :] = False
    t0 = time.perf_counter()
    im, mm = margin_path(model, collateral, positions, isolated, elig)
    timings["path"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_obs, n_exc = coverage(panel.close, collateral, positions, im, mpor)
    timings["coverage"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim = simulate(model, panel.close, panel.high, panel.low, collateral, positions, isolated,
                   account_eligible(asset_ok, collateral, positions), start, end, **(policy or {}))
    timings["simulation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lr, pval = kupiec(n_obs, n_exc, 1.0 - confidence)
    ptt = peak_to_trough(np.nansum(np.where(np.isfinite(im), im, 0.0)[start : end + 1], axis=1))
    timings["statistics"] = time.perf_counter() - t0
    return {"initial": im, "maintenance": mm, "n_obs": n_obs, "n_exceptions": n_exc, "kupiec_lr": lr,
            "kupiec_p": pval, "peak_to_trough": ptt, "simulation": sim, "timings": timings}
