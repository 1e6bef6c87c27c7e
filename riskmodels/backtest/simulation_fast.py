"""The account simulation with numba kernels for every per-date step but the model's requirement.

Rules: :mod:`riskmodels.backtest.simulation`. This is the path of the common
case (no feedback rounds, a per-asset intraday bound or none); the numpy loop
:func:`riskmodels.backtest.simulation_numpy.simulate_numpy` runs the others and
is this path's reference (``tests/test_simulation_fast.py``: identical events,
states within 1e-9 relative). Per date the loop makes at most two requirement
calls (the intraday accounts the screen cannot clear, then the close) and five
kernel calls of :mod:`._sim_kernels`, each one pass over the accounts' held assets;
the numpy loop makes about fifty array calls, each with its temporaries
(issue 23: the generic part of the simulation went from ~1.5-2 CPU-s per
default row to the figures in ``benchmarks/README.md``).
"""

from __future__ import annotations

import numpy as np

from riskmodels._numba_cache import frozen
from riskmodels.backtest import _sim_kernels as K
from riskmodels.backtest.closeout import CloseOut
from riskmodels.backtest.simulation_types import (
    EVENT_DTYPE,
    OPENING_DTYPE,
    AccountMargin,
    LiquidationPolicy,
    SimulationResult,
)
from riskmodels.margin.base import FittedMargin
from riskmodels.portfolio import Book


def fast_path_applies(fitted: FittedMargin, policy: LiquidationPolicy) -> bool:
    """True when :func:`simulate_fast` implements the run (no feedback, no per-account intraday bound)."""
    return not policy.feedback and getattr(fitted, "intraday_lipschitz", None) is None


def simulate_fast(
    fitted: FittedMargin,
    book: Book,
    policy: LiquidationPolicy,
    start: int,
    end: int | None,
    asset_ok: np.ndarray | None,
) -> SimulationResult:
    """The simulation of :func:`~riskmodels.backtest.simulation.simulate_accounts` (see :func:`fast_path_applies`)."""
    if not fast_path_applies(fitted, policy):
        raise ValueError("simulate_fast: feedback runs and per-account intraday bounds take the numpy path")
    panel = fitted.panel
    book = book.align(panel.assets)
    T, A = panel.n_dates, panel.n_assets
    end = T - 1 if end is None else min(end, T - 1)
    if not 0 <= start <= end:
        raise ValueError(f"simulation needs 0 <= start <= end < {T}, got start={start}, end={end}")
    P = book.n_accounts
    C, H, L = panel.close, panel.high, panel.low
    live = panel.live if asset_ok is None else asset_ok
    live_b = frozen(np.ascontiguousarray(live, dtype=np.bool_))  # (T, A); eligible: every held asset is live
    if live_b.shape != (T, A):  # the kernels index it without bounds checks
        raise ValueError(f"simulate_fast: asset_ok has shape {live_b.shape}, the panel is {(T, A)} (dates, assets)")
    # read-only views: one kernel signature whether the book's arrays arrived writable or not (_numba_cache.frozen)
    coll_t = frozen(np.ascontiguousarray(book.collateral, dtype=np.float64))
    pos_t = frozen(np.ascontiguousarray(book.positions, dtype=np.float64))
    held = np.ascontiguousarray(book.held())
    hptr, hidx = K.held_lists(held)  # the kernels loop over each account's held assets only
    iso = book.isolated
    closeout = CloseOut.from_policy(policy, panel)
    closeout.warn_fallbacks(start, end, live, held.any(axis=0))

    q_coll = np.zeros((P, A))
    q_pos = np.zeros((P, A))
    entry = np.zeros((P, A))
    q_net = np.zeros((P, A))
    cash = np.zeros(P)
    pos_cost = np.zeros(P)
    is_open = np.zeros(P, dtype=bool)
    mm_last = np.full(P, np.nan)
    reopen_at = np.full(P, start, dtype=np.int64)
    margin = AccountMargin(fitted, iso, P)  # with the carried state of path-dependent APC rules
    lipschitz = margin.lipschitz
    no_lip = np.zeros(A)

    n_rows = end - start + 1
    out_open = np.zeros((n_rows, P), dtype=bool)
    out_eq = np.full((n_rows, P), np.nan, dtype=np.float32)
    out_mm = np.full((n_rows, P), np.nan, dtype=np.float32)
    out_not = np.zeros(n_rows)
    events: list[np.ndarray] = []
    openings: list[np.ndarray] = []
    reentry = policy.reentry_days

    def close_out(rows: np.ndarray, t: int, px: np.ndarray, trigger: int, mm: np.ndarray) -> None:
        """Liquidate (or delist) ``rows`` at prices ``px`` ``(len(rows), A)``; record the events."""
        qc, qp, en = q_coll[rows], q_pos[rows], entry[rows]
        eq = cash[rows] + (qc * px).sum(1) + (qp * (px - en)).sum(1)
        notional = (np.abs(qp) * px).sum(1)
        if trigger == 2:
            slip = impact = penalty = np.zeros(len(rows))
        else:
            slip, impact = closeout.cost(t, qc, qp, px)
            penalty = np.minimum(policy.penalty * notional, np.maximum(eq - slip, 0.0))
        remainder = eq - slip
        rec = np.empty(len(rows), dtype=EVENT_DTYPE)
        rec["account"], rec["t"], rec["trigger"] = rows, t, trigger
        rec["equity"], rec["maintenance"], rec["notional"] = eq, mm, notional
        rec["slippage"], rec["penalty"], rec["impact"] = slip, penalty, impact
        rec["bad_debt"] = np.maximum(-remainder, 0.0)
        rec["returned"] = np.maximum(remainder - penalty, 0.0)
        events.append(rec)
        is_open[rows] = False
        for arr in (q_coll, q_pos, entry, q_net):
            arr[rows] = 0.0
        cash[rows] = 0.0
        pos_cost[rows] = 0.0
        reopen_at[rows] = -1 if trigger == 2 or reentry is None else t + int(reentry)

    last_close = np.where(np.isfinite(C[start - 1]), C[start - 1], 0.0) if start > 0 else np.zeros(A)
    n_open = 0  # accounts open at the previous close (is_open.any() without a pass)
    for t in range(start, end + 1):
        c = C[t]
        finite = np.isfinite(c)
        cz = np.where(finite, c, 0.0)
        i = t - start
        if n_open and not finite.all():  # a held asset stopped trading: closed at its last close, no penalty
            rows = K.delisted_rows(is_open, hptr, hidx, finite)
            if rows.size:
                last = np.where(np.isfinite(C[t - 1]), C[t - 1], 0.0)
                close_out(rows, t, np.broadcast_to(last, (rows.size, A)), 2, np.full(rows.size, np.nan))
                n_open -= rows.size
        if policy.intraday and t > start and n_open:  # adverse extreme, margin state of t-1
            lo = np.where(np.isfinite(L[t]), L[t], cz)
            hi = np.where(np.isfinite(H[t]), H[t], cz)
            lip = lipschitz(t - 1) if lipschitz is not None else None
            rows, pxr, cx, pp, eq = K.intraday_rows(
                is_open, hptr, hidx, q_coll, q_pos, q_net, cash, pos_cost, cz, lo, hi, last_close,
                no_lip if lip is None else np.ascontiguousarray(lip, dtype=np.float64), lip is not None, mm_last)
            if rows.size:
                mm = margin(t - 1, rows, cx, pp)[0].maintenance
                hit = eq < mm
                if hit.any():
                    close_out(rows[hit], t, pxr[hit], 0, mm[hit])
        rows, new, cx, pp = K.close_rows(is_open, reopen_at, live_b[t], hptr, hidx, t, q_coll, q_pos, cz, coll_t,
                                         pos_t)
        if rows.size:
            req, new_state = margin(t, rows, cx, pp, new)
            maint = np.ascontiguousarray(req.maintenance, dtype=np.float64)
            hit = K.close_hits(rows, new, cash, pos_cost, q_net, cz, maint, hptr, hidx)
            if hit.size:
                close_out(rows[hit], t, np.broadcast_to(cz, (hit.size, A)), 1, maint[hit])
            nr = rows[new]
            if nr.size:
                initial = np.ascontiguousarray(np.asarray(req.initial, dtype=np.float64)[new])
                notional = K.open_accounts(nr, cz, held, coll_t, pos_t, initial, float(policy.cushion),
                                           q_coll, q_pos, entry, q_net, pos_cost, cash, is_open)
                op = np.empty(nr.size, dtype=OPENING_DTYPE)
                op["account"], op["t"], op["notional"] = nr, t, notional
                openings.append(op)
            out_not[i], still = K.record_close(rows, pp, maint, is_open, cash, pos_cost, q_net, cz, mm_last,
                                               out_mm[i], out_eq[i], out_open[i], hptr, hidx)
            margin.commit(rows[still], None if new_state is None else new_state[still])
            n_open = still.size
        else:
            n_open = 0
        last_close = cz

    ev = np.concatenate(events) if events else np.empty(0, dtype=EVENT_DTYPE)
    ev = ev[np.lexsort((ev["account"], ev["t"]))]
    op_all = np.concatenate(openings) if openings else np.empty(0, dtype=OPENING_DTYPE)
    return SimulationResult(fitted.model.label, panel.dates, book.account_ids, ev, out_open, out_eq, out_mm,
                            out_not, op_all, start, end, policy, None)
