"""The account simulation as a per-date loop of numpy calls: the general path and the reference.

:func:`simulate_numpy` implements every rule of :mod:`riskmodels.backtest.simulation`
(feedback rounds, per-account Lipschitz bounds, carried APC state) with one
vectorised numpy step per phase and date. The numba path
(:mod:`riskmodels.backtest.simulation_fast`) runs the common case (no
feedback, per-asset or no bounds) and is tested against this one
(``tests/test_simulation_fast.py``: the same events, states within 1e-9).
"""

from __future__ import annotations

import numpy as np

from riskmodels.backtest.closeout import CloseOut
from riskmodels.backtest.feedback import FEEDBACK_LOG_DTYPE, FeedbackMarket
from riskmodels.backtest.simulation_types import (
    EVENT_DTYPE,
    OPENING_DTYPE,
    AccountMargin,
    LiquidationPolicy,
    SimulationResult,
)
from riskmodels.margin.base import FittedMargin, account_eligibility
from riskmodels.portfolio import Book


def _intraday_safe(
    lip: np.ndarray,
    eq: np.ndarray,
    mm_prev: np.ndarray,
    qc: np.ndarray,
    qp: np.ndarray,
    px: np.ndarray,
    px_prev: np.ndarray,
) -> np.ndarray:
    """``(n,)`` bool: equity is provably >= the intraday maintenance (no need to compute it).

    ``mm_prev`` is the maintenance of the same holdings at the previous close
    (prices ``px_prev``, the same model state); moving the holdings to the
    adverse prices ``px`` changes each USD amount by ``|q| |px - px_prev|``,
    so with the model's per-asset bound ``L`` (``maintenance_lipschitz``)::

        MM(px) <= mm_prev + sum_a L_a (|qc_a| + |qp_a|) |px_a - px_prev_a| = ub

    ``lip`` is ``(A,)``, or ``(n, A)`` per account (``intraday_lipschitz`` of
    size-dependent models, +inf where no bound is known).
    An account with ``eq >= ub`` (plus a 1e-9 relative guard for rounding)
    cannot be liquidated intraday; where ``ub`` is not finite the requirement
    is computed as before.
    """
    lip = np.where(np.isfinite(lip), lip, np.inf)
    gross = np.abs(qc) + np.abs(qp)
    held = gross > 0
    with np.errstate(invalid="ignore"):
        move = np.where(held, gross * np.abs(px - px_prev) * lip, 0.0).sum(axis=1)
        scale = np.where(held, gross * px * lip, 0.0).sum(axis=1)
        ub = mm_prev + move + 1e-9 * (np.abs(mm_prev) + move + scale)
        return np.isfinite(ub) & (eq >= ub)



def simulate_numpy(
    fitted: FittedMargin,
    book: Book,
    policy: LiquidationPolicy,
    start: int,
    end: int | None,
    asset_ok: np.ndarray | None,
) -> SimulationResult:
    panel = fitted.panel
    book = book.align(panel.assets)
    T, A = panel.n_dates, panel.n_assets
    end = T - 1 if end is None else min(end, T - 1)
    if not 0 <= start <= end:
        raise ValueError(f"simulation needs 0 <= start <= end < {T}, got start={start}, end={end}")
    P = book.n_accounts
    C, H, L = panel.close, panel.high, panel.low
    ok = account_eligibility(panel.live if asset_ok is None else asset_ok, book)  # (T, P)
    coll_t, pos_t = book.collateral, book.positions
    held = book.held()
    iso = book.isolated
    pen, k = policy.penalty, policy.cushion
    closeout = CloseOut.from_policy(policy, panel)
    closeout.warn_fallbacks(start, end, panel.live if asset_ok is None else asset_ok, held.any(axis=0))
    fb = FeedbackMarket.build(closeout, panel, policy.feedback_oi_to_volume, policy.adv_window) \
        if policy.feedback else None
    fb_log: list[tuple[int, int, int, float]] = []

    q_coll = np.zeros((P, A))
    q_pos = np.zeros((P, A))
    entry = np.zeros((P, A))
    cash = np.zeros(P)
    # derived state kept in step with the quantities (updated only on events)
    q_net = np.zeros((P, A))  # collateral + perp quantity
    pos_cost = np.zeros(P)  # sum of perp quantity x entry price
    long_m = np.zeros((P, A))  # 1 where the account is net long the asset
    short_m = np.zeros((P, A))  # 1 where net short
    is_open = np.zeros(P, dtype=bool)
    mm_last = np.full(P, np.nan)  # maintenance at the previous close (open accounts), float64
    # models that bound how fast their maintenance moves with the holdings let the
    # intraday check skip accounts whose equity is provably above it (exact)
    # the requirement (with the carried state of path-dependent APC rules) and its intraday bound
    margin = AccountMargin(fitted, iso, P)
    lipschitz = margin.lipschitz
    row_lipschitz = getattr(fitted, "intraday_lipschitz", None)
    reopen_at = np.full(P, start, dtype=np.int64)  # first attempt at start

    nan32 = np.float32(np.nan)
    n_rows = end - start + 1  # the daily state is kept for the simulated dates only
    out_open = np.zeros((n_rows, P), dtype=bool)
    out_eq = np.full((n_rows, P), nan32, dtype=np.float32)
    out_mm = np.full((n_rows, P), nan32, dtype=np.float32)
    out_not = np.zeros(n_rows)
    events: list[np.ndarray] = []
    openings: list[tuple[np.ndarray, int, np.ndarray]] = []

    def set_holdings(rows: np.ndarray, qc: np.ndarray, qp: np.ndarray, en: np.ndarray) -> None:
        q_coll[rows], q_pos[rows], entry[rows] = qc, qp, en
        q_net[rows] = qc + qp
        pos_cost[rows] = (qp * en).sum(1)
        long_m[rows] = q_net[rows] > 0
        short_m[rows] = q_net[rows] < 0

    def equity(px: np.ndarray) -> np.ndarray:
        """``(P,)`` equity of every account at prices ``px`` (A,) or (P, A); 0 when closed."""
        return cash - pos_cost + np.einsum("pa,pa->p", q_net, np.broadcast_to(px, (P, A)))

    def close_out(rows: np.ndarray, t: int, px: np.ndarray, trigger: int, mm: np.ndarray,
                  impact_cost: np.ndarray | None = None) -> None:
        """Liquidate ``rows`` at prices ``px`` (len(rows), A) and record events.

        ``impact_cost`` (feedback runs) replaces the account's own-order impact by its
        share of the round's aggregate fill.
        """
        qc, qp, en = q_coll[rows], q_pos[rows], entry[rows]
        eq = cash[rows] + (qc * px).sum(1) + (qp * (px - en)).sum(1)
        notional = (np.abs(qp) * px).sum(1)
        if trigger == 2:  # delisting: closed at the last close, no costs
            slip = np.zeros(len(rows))
            impact = np.zeros(len(rows))
            penalty = np.zeros(len(rows))
        else:
            if impact_cost is not None:
                impact = impact_cost
                slip = closeout.slippage * ((np.abs(qp) + qc) * px).sum(1) + impact
            else:
                slip, impact = closeout.cost(t, qc, qp, px)
            penalty = np.minimum(pen * notional, np.maximum(eq - slip, 0.0))
        remainder = eq - slip
        bad = np.maximum(-remainder, 0.0)
        returned = np.maximum(remainder - penalty, 0.0)
        rec = np.empty(len(rows), dtype=EVENT_DTYPE)
        rec["account"], rec["t"], rec["trigger"] = rows, t, trigger
        rec["equity"], rec["maintenance"], rec["notional"] = eq, mm, notional
        rec["slippage"], rec["penalty"], rec["bad_debt"], rec["returned"] = slip, penalty, bad, returned
        rec["impact"] = impact
        events.append(rec)
        is_open[rows] = False
        zero = np.zeros((len(rows), A))
        set_holdings(rows, zero, zero, zero)
        cash[rows] = 0.0
        if trigger == 2 or policy.reentry_days is None:
            reopen_at[rows] = -1
        else:
            reopen_at[rows] = t + int(policy.reentry_days)

    last_close = np.where(np.isfinite(C[start - 1]), C[start - 1], 0.0) if start > 0 else np.zeros(A)
    for t in range(start, end + 1):
        c = C[t]
        finite = np.isfinite(c)
        cz = np.where(finite, c, 0.0)
        qd = np.zeros(A)  # feedback: the day's cumulative real-market forced flow per asset (USD, buys > 0)
        kscale: np.ndarray | None = None
        n_rounds = n_liq = 0
        if fb is not None and is_open.any():
            kscale = fb.scale(t, ((np.abs(q_coll) + np.abs(q_pos))[is_open] * last_close).sum(0))
        # -- a held asset stopped trading: close at its last close, no penalty
        if is_open.any() and not finite.all():
            gone = is_open & (held & ~finite).any(axis=1)
            if gone.any():
                rows = np.flatnonzero(gone)
                last = np.where(np.isfinite(C[t - 1]), C[t - 1], 0.0)
                close_out(rows, t, np.broadcast_to(last, (len(rows), A)), 2, np.full(len(rows), np.nan))
        # -- intraday adverse extreme (low where net long, high where net short), margin state of t-1
        if policy.intraday and t > start and is_open.any():
            lo = np.where(np.isfinite(L[t]), L[t], cz)
            hi = np.where(np.isfinite(H[t]), H[t], cz)
            px0 = cz + long_m * (lo - cz) + short_m * (hi - cz)
            prev = last_close  # the close mm_last was computed at
            while True:  # one pass without feedback; rounds to a fixed point with it
                px = px0 if fb is None or not qd.any() else px0 * (1.0 + fb.move(t, qd))
                eq = equity(px)
                rows = np.flatnonzero(is_open)
                if row_lipschitz is not None:  # per-account bounds (n, A) of size-dependent models
                    lip = row_lipschitz(t - 1, q_coll[rows], q_pos[rows], px[rows], prev)
                else:
                    lip = lipschitz(t - 1) if lipschitz is not None else None
                if lip is not None:
                    rows = rows[~_intraday_safe(lip, eq[rows], mm_last[rows], q_coll[rows], q_pos[rows], px[rows],
                                                prev)]
                n_hit = 0
                if len(rows):
                    pxr = px[rows]
                    mm = margin(t - 1, rows, q_coll[rows] * pxr, q_pos[rows] * pxr)[0].maintenance
                    hit = eq[rows] < mm
                    n_hit = int(hit.sum())
                    if n_hit:
                        cost = None
                        if fb is not None:
                            hr = rows[hit]
                            cost, qd = fb.fill(t, qd, -(q_coll[hr] + q_pos[hr]) * pxr[hit], kscale)
                        close_out(rows[hit], t, pxr[hit], 0, mm[hit], cost)
                        n_rounds += 1  # rounds that liquidated somebody
                        n_liq += n_hit
                if fb is None or not n_hit or not is_open.any():
                    break
        # -- feedback: the close marked with the day's forced flow, rounds of the close check
        if fb is not None:
            cz0 = cz
            if qd.any():
                cz = cz0 * (1.0 + fb.move(t, qd))
            while is_open.any():
                rows = np.flatnonzero(is_open)
                mm = margin(t, rows, q_coll[rows] * cz, q_pos[rows] * cz)[0].maintenance
                hit = equity(cz)[rows] < mm
                if not hit.any():
                    break
                hr = rows[hit]
                if kscale is None:
                    kscale = fb.scale(t, ((np.abs(q_coll) + np.abs(q_pos))[is_open] * last_close).sum(0))
                cost, qd = fb.fill(t, qd, -(q_coll[hr] + q_pos[hr]) * cz, kscale)
                close_out(hr, t, np.broadcast_to(cz, (len(hr), A)), 1, mm[hit], cost)
                cz = cz0 * (1.0 + fb.move(t, qd))
                n_rounds += 1
                n_liq += len(hr)
            fb_log.append((t, n_rounds, n_liq, float(np.abs(fb.move(t, qd)).max()) if A else 0.0))
        # -- re-openings at today's close
        want = (~is_open) & (reopen_at >= 0) & (reopen_at <= t) & ok[t]
        # -- close: requirement for open accounts and for those opening today
        rows = np.flatnonzero(is_open | want)
        if len(rows):
            new = want[rows]
            cx = q_coll[rows] * cz
            px_ = q_pos[rows] * cz
            nr = rows[new]
            if len(nr):
                cx[new] = coll_t[nr]
                px_[new] = pos_t[nr]
            req, new_state = margin(t, rows, cx, px_, new)
            # close check for accounts open before today, with the margin set today
            old = rows[~new]
            if len(old):
                hit = equity(cz)[old] < req.maintenance[~new]
                if hit.any():
                    close_out(old[hit], t, np.broadcast_to(cz, (int(hit.sum()), A)), 1, req.maintenance[~new][hit])
            # open the new accounts: equity = IM x (1 + cushion)
            if len(nr):
                safe = np.where(held[nr], cz, 1.0)
                set_holdings(nr, coll_t[nr] / safe, pos_t[nr] / safe, np.where(held[nr], cz, 0.0))
                cash[nr] = (1.0 + k) * req.initial[new] - cx[new].sum(1)
                is_open[nr] = True
                openings.append((nr, t, np.abs(px_[new]).sum(1)))
            still = is_open[rows]
            r_open = rows[still]
            out_mm[t - start, r_open] = req.maintenance[still]
            mm_last[r_open] = req.maintenance[still]
            margin.commit(r_open, None if new_state is None else new_state[still])
            out_not[t - start] = np.abs(px_[still]).sum()
        # -- record the state at the close
        if is_open.any():
            out_eq[t - start, is_open] = equity(cz)[is_open]
            out_open[t - start] = is_open
        last_close = cz

    ev = np.concatenate(events) if events else np.empty(0, dtype=EVENT_DTYPE)
    ev = ev[np.lexsort((ev["account"], ev["t"]))]
    if openings:
        op = np.concatenate([np.rec.fromarrays([r, np.full(len(r), t), n], dtype=OPENING_DTYPE)
                             for r, t, n in openings])
    else:
        op = np.empty(0, dtype=OPENING_DTYPE)
    return SimulationResult(
        fitted.model.label,
        panel.dates,
        book.account_ids,
        ev,
        out_open,
        out_eq,
        out_mm,
        out_not,
        np.asarray(op),
        start,
        end,
        policy,
        np.array(fb_log, dtype=FEEDBACK_LOG_DTYPE) if fb is not None else None,
    )
