"""The reasonable reference's account simulation and run: a loop over dates, numpy over accounts.

The rules are the loop reference's (:mod:`.backtest`, from the
riskmodels.backtest.simulation docstring), each step applied to every account
at once with boolean masks: on each date (1) accounts holding an asset
without a close are closed at the previous close (``delisted``, no costs);
(2) from the second date the open accounts are valued at their adverse
extremes (low where the net quantity is long, high where short) against the
maintenance of the t-1 state on the holdings at those prices (``intraday``);
(3) accounts due to open (all held assets eligible, ``reopen_at <= t``)
open at the close with equity ``IM x (1 + cushion)``; (4) accounts open
before today are checked at the close against today's maintenance
(``close``). A liquidation sells at ``P(1 - s)`` / buys back at ``P(1 + s)``,
then charges ``penalty x perp notional`` out of what is left; a negative
remainder is bad debt; the account re-opens ``reentry_days`` later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .margins import history_count
from .vectorised import coverage_counts, with_rule


@dataclass
class VSimResult:
    """Events as a dict of arrays (sorted by date, account) and the ``(T, P)`` daily records."""

    events: dict[str, np.ndarray] = field(default_factory=dict)
    maintenance: np.ndarray | None = None
    equity: np.ndarray | None = None


def simulate(model: Any, close: np.ndarray, high: np.ndarray, low: np.ndarray, collateral: np.ndarray,
             positions: np.ndarray, isolated: np.ndarray, ok: np.ndarray, start: int, end: int, *,
             ratio: float | None = None, cushion: float = 0.5, slippage: float = 0.002, penalty: float = 0.01,
             reentry_days: int | None = 5) -> VSimResult:
    """Walk every account from ``start`` to ``end``: Python loop over dates only."""
    T, A = close.shape
    P = collateral.shape[0]
    qc, qp, entry = np.zeros((P, A)), np.zeros((P, A)), np.zeros((P, A))
    cash = np.zeros(P)
    is_open = np.zeros(P, dtype=bool)
    reopen_at = np.full(P, start, dtype=np.int64)
    held = (collateral != 0) | (positions != 0)
    rec_mm, rec_eq = np.full((T, P), np.nan), np.full((T, P), np.nan)
    log: list[dict[str, np.ndarray]] = []

    def req(t: int, idx: np.ndarray, coll: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return with_rule(model, model.requirement(t, coll, pos, isolated[idx]), coll, pos, ratio)

    def value(idx: np.ndarray, px: np.ndarray) -> np.ndarray:
        return cash[idx] + (qc[idx] * px).sum(axis=1) + (qp[idx] * (px - entry[idx])).sum(axis=1)

    def liquidate(idx: np.ndarray, t: int, px: np.ndarray, trigger: int, mm: np.ndarray) -> None:
        if idx.size == 0:
            return
        eq = value(idx, px)
        notional = (np.abs(qp[idx]) * px).sum(axis=1)
        if trigger == 2:
            slip = pen = np.zeros(idx.size)
        else:
            slip = slippage * ((np.abs(qp[idx]) + qc[idx]) * px).sum(axis=1)
            pen = np.minimum(penalty * notional, np.maximum(eq - slip, 0.0))
        rem = eq - slip
        log.append({"account": idx, "t": np.full(idx.size, t), "trigger": np.full(idx.size, trigger),
                    "equity": eq, "maintenance": mm, "notional": notional, "slippage": slip, "penalty": pen,
                    "bad_debt": np.maximum(-rem, 0.0), "returned": np.maximum(rem - pen, 0.0)})
        qc[idx], qp[idx], entry[idx], cash[idx] = 0.0, 0.0, 0.0, 0.0
        is_open[idx] = False
        reopen_at[idx] = -1 if (trigger == 2 or reentry_days is None) else t + reentry_days

    for t in range(start, end + 1):
        live = np.isfinite(close[t])
        c = np.where(live, close[t], 0.0)
        prev_c = np.where(np.isfinite(close[t - 1]), close[t - 1], 0.0) if t > 0 else c
        gone = np.flatnonzero(is_open & (held & ~live).any(axis=1))
        liquidate(gone, t, np.broadcast_to(prev_c, (gone.size, A)), 2, np.full(gone.size, np.nan))
        if t > start:
            idx = np.flatnonzero(is_open)
            net = qc[idx] + qp[idx]
            px = np.where((net > 0) & np.isfinite(low[t]), low[t], np.where((net < 0) & np.isfinite(high[t]),
                                                                              high[t], c))
            _, mm = req(t - 1, idx, qc[idx] * px, qp[idx] * px)
            hit = value(idx, px) < mm
            liquidate(idx[hit], t, px[hit], 0, mm[hit])
        opening = ~is_open & (reopen_at >= 0) & (reopen_at <= t) & ok[t]
        idx = np.flatnonzero(is_open | opening)
        op = opening[idx]
        coll = np.where(op[:, None], collateral[idx], qc[idx] * c)
        pos = np.where(op[:, None], positions[idx], qp[idx] * c)
        im, mm = req(t, idx, coll, pos)
        was_open = ~op
        hit = np.zeros(idx.size, dtype=bool)
        hit[was_open] = value(idx[was_open], np.broadcast_to(c, (int(was_open.sum()), A))) < mm[was_open]
        liquidate(idx[hit], t, np.broadcast_to(c, (int(hit.sum()), A)), 1, mm[hit])
        new = idx[op]
        safe = np.where(held[new], c, 1.0)
        qc[new], qp[new] = collateral[new] / safe, positions[new] / safe
        entry[new] = np.where(held[new], c, 0.0)
        cash[new] = (1.0 + cushion) * im[op] - collateral[new].sum(axis=1)
        is_open[new] = True
        keep = idx[~hit]
        rec_mm[t, keep] = mm[~hit]
        rec_eq[t, keep] = value(keep, c)
    events = {k: np.concatenate([e[k] for e in log]) if log else np.empty(0) for k in
              ("account", "t", "trigger", "equity", "maintenance", "notional", "slippage", "penalty", "bad_debt",
               "returned")}
    order = np.lexsort((events["account"], events["t"])) if log else np.empty(0, dtype=np.int64)
    return VSimResult({k: v[order] for k, v in events.items()}, rec_mm, rec_eq)


def run_model(model: Any, panel: Any, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray,
              start: int, end: int, *, need: int, mpor: int = 2, ratio: float | None = None,
              policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit, path, coverage and simulation of one reasonable-reference model, with wall and CPU timings.

    ``need``: the returns an asset needs before accounts holding it are priced
    (riskmodels' ``max(min_history, every model's min_history)``, one value
    for all models of a run). ``ratio``: the declared MM / IM of risk models
    (``None``: every model's own MM).
    """
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def clock(stage: str, t0: float, c0: float) -> None:
        wall[stage], cpu[stage] = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(panel)
    clock("fit", t0, c0)
    asset_ok = np.isfinite(panel.close) & (history_count(panel.close) >= need)
    held = ((collateral != 0) | (positions != 0)).astype(np.float64)
    elig = ((~asset_ok).astype(np.float64) @ held.T) == 0
    elig[:start] = False
    elig[end + 1 :] = False
    t0, c0 = time.perf_counter(), time.process_time()
    im, mm = with_rule(model, model.path(collateral, positions, isolated, elig), collateral, positions, ratio)
    clock("path", t0, c0)
    t0, c0 = time.perf_counter(), time.process_time()
    n_obs, n_exc = coverage_counts(panel.close, collateral, positions, im, mpor)
    clock("coverage", t0, c0)
    t0, c0 = time.perf_counter(), time.process_time()
    ok = ((~asset_ok).astype(np.float64) @ held.T) == 0
    sim = simulate(model, panel.close, panel.high, panel.low, collateral, positions, isolated, ok, start, end,
                   ratio=ratio, **(policy or {}))
    clock("simulation", t0, c0)
    return {"initial": im, "maintenance": mm, "n_obs": n_obs, "n_exceptions": n_exc, "simulation": sim,
            "timings": wall, "cpu": cpu}
