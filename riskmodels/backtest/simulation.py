"""Account simulation: open at IM x (1 + cushion), mark daily, liquidate, re-enter.

Rules (each a documented choice; README "Conventions")
------------------------------------------------------
* **Opening** at date t (close): quantities ``q = amount / C[t]`` for the
  book's collateral and perp amounts; perps enter at ``C[t]``; cash is set so
  that equity = ``IM_t x (1 + cushion)`` (cash may be negative: a USD loan
  against collateral). The book's own cash is ignored: the model decides how
  much capital the account must bring, which is what makes models comparable.
* **Equity** ``E = cash + sum q_coll * P + sum q_perp * (P - entry)``.
* **Intraday check** on day t: every asset at its adverse extreme for the
  account - the low where the account's net quantity (collateral + perp) is
  long, the high where it is short. For books long some assets and short
  others this assumes all extremes happen at once: a conservative upper bound
  on the intraday drawdown (the true path is unknown from daily bars). The
  maintenance requirement there uses the model's state of t-1 (margin is set
  at the previous close) on the holdings valued at the adverse prices.
* **Close check** on day t: equity at the close against the maintenance
  margin the model sets at t.
* **Liquidation** closes the whole account at the trigger prices with
  slippage against the trade (sell at ``P(1 - s)``, buy back at ``P(1 + s)``),
  then charges a penalty ``pi x perp notional`` out of what is left. With
  ``closeout = "impact"`` the close-out also pays the price impact of the
  account's net order per asset against the day's volume, so the cost grows
  with the position (:mod:`riskmodels.backtest.closeout`). A positive
  remainder returns to the trader; a negative remainder is **bad debt**.
* **Re-entry**: ``reentry_days = N`` re-opens the account's book N days later
  (at the then prices and requirement); ``None`` keeps it closed.
* An account opens on the first date >= start when every asset it holds is
  eligible (live with ``min_history`` returns); an asset that stops trading
  while held closes the account at its last close with no penalty
  (event ``delisted``).
* **Path-dependent margins** (the APC buffer and speed limit,
  :mod:`riskmodels.margin.apc`): a model with ``carried_requirement`` gets
  each account's rule state from the previous close and returns the new one;
  the state is kept only at the close (the intraday check steps from it
  without committing) and starts fresh when the account opens or re-opens.

The loop runs over dates; every step is vectorised over accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np
import pandas as pd

from riskmodels.backtest.closeout import CLOSEOUT_RULES, IMPACT_LAWS, CloseOut
from riskmodels.backtest.feedback import FEEDBACK_LOG_DTYPE, FeedbackMarket
from riskmodels.margin.base import FittedMargin, Requirement, account_eligibility
from riskmodels.portfolio import Book

TRIGGERS = ("intraday", "close", "delisted")

EVENT_DTYPE = np.dtype(
    [
        ("account", np.int32),
        ("t", np.int32),
        ("trigger", np.int8),  # index into TRIGGERS
        ("equity", np.float64),  # at trigger prices, before slippage
        ("maintenance", np.float64),
        ("notional", np.float64),  # gross perp notional at trigger prices
        ("slippage", np.float64),  # close-out cost: flat slippage + impact
        ("impact", np.float64),  # of which price impact (closeout = "impact")
        ("penalty", np.float64),
        ("bad_debt", np.float64),
        ("returned", np.float64),
    ]
)


@dataclass(frozen=True)
class LiquidationPolicy:
    """How accounts are opened, liquidated and re-opened.

    Parameters
    ----------
    cushion : float
        Opening equity = initial margin x (1 + cushion); >= 0. Default 0.5.
    slippage : float
        Execution slippage against each closing trade, fraction of price, [0, 0.5).
    penalty : float
        Liquidation penalty, fraction of perp notional, [0, 0.5) (dYdX caps
        its fee at 1.5%, Derive charges 5%; METHODOLOGY.md 6.1). Default 1%.
    reentry_days : int or None
        Days after a liquidation before the account re-opens; None = never.
    intraday : bool
        Check the adverse intraday extreme (default) or only the close.
    closeout : {"flat", "impact"}
        ``flat`` (default): every closing trade pays ``slippage``. ``impact``:
        ``slippage`` plus the price impact of the account's net order per
        asset against the day's USD volume (:mod:`riskmodels.backtest.closeout`).
    impact_law : {"sqrt", "linear", "depth"}
        Impact law of ``closeout = "impact"`` (:mod:`riskmodels.cascade.impact`).
    impact_y : float
        Square-root prefactor ``Y`` in ``Y sigma sqrt(Q / V)``, (0, 10]; default 0.7.
    impact_per_volume : float
        Linear law: move caused by an order equal to the day's volume, [0, 10]; default 0.1.
    impact_depth_to_volume : float
        Depth law: USD depth within 1% of the mid / daily USD volume, (0, 1]; default 0.002.
    impact_depth_exponent : float
        Depth law: power ``beta`` of the depth profile, (0, 5]; default 1.
    impact_max_move : float
        Cap on the impact move, (0, 1); default 0.95.
    vol_window : int
        Days of daily log returns in the impact's ``sigma``, [2, 1000]; default 30.
    adv_window : int
        Days of trailing volume used where the day's volume is missing or zero, [1, 1000]; default 30.
    feedback : bool
        Endogenous cascades: each day's forced sales, aggregated per asset and scaled to
        the real market, move that day's execution and marking prices through the impact
        law, in rounds to a fixed point (:mod:`riskmodels.backtest.feedback`). Needs
        ``closeout = "impact"``. Default False.
    feedback_oi_to_volume : float
        Real open interest per USD of trailing daily volume, the scale of the market the
        book stands for (feedback only), (0, 100]; default 0.5 (cascade.population).
    maintenance_ratio : float or None
        The declared liquidation rule of the risk-model rows: maintenance =
        ratio x initial margin, in (0, 1]; default 1/1.1 (CME HRP: IM = 110%
        of MM). Methods whose rules define MM (haircut IMF/MMF) keep theirs.
        None (config ``"model"``) keeps every model's own MM
        (:mod:`riskmodels.backtest.mm_rule`).
    """

    cushion: float = 0.5
    slippage: float = 0.002
    penalty: float = 0.01
    reentry_days: int | None = 5
    intraday: bool = True
    closeout: str = "flat"
    impact_law: str = "sqrt"
    impact_y: float = 0.7
    impact_per_volume: float = 0.1
    impact_depth_to_volume: float = 0.002
    impact_depth_exponent: float = 1.0
    impact_max_move: float = 0.95
    vol_window: int = 30
    adv_window: int = 30
    feedback: bool = False
    feedback_oi_to_volume: float = 0.5
    maintenance_ratio: float | None = 1.0 / 1.1

    def __post_init__(self) -> None:
        if not (self.cushion >= 0 and np.isfinite(self.cushion)):
            raise ValueError(f"cushion={self.cushion} must be >= 0")
        if not 0 <= self.slippage < 0.5:
            raise ValueError(f"slippage={self.slippage} must be in [0, 0.5)")
        if not 0 <= self.penalty < 0.5:
            raise ValueError(f"penalty={self.penalty} must be in [0, 0.5)")
        if self.reentry_days is not None and int(self.reentry_days) < 1:
            raise ValueError(f"reentry_days={self.reentry_days} must be >= 1 or None (never re-open)")
        if self.closeout not in CLOSEOUT_RULES:
            raise ValueError(f"liquidation.closeout={self.closeout!r} must be one of {', '.join(CLOSEOUT_RULES)}")
        if self.impact_law not in IMPACT_LAWS:
            raise ValueError(f"liquidation.impact_law={self.impact_law!r} must be one of {', '.join(IMPACT_LAWS)}")
        for key, lo, hi, lo_open, hi_open in (
            ("impact_y", 0.0, 10.0, True, False),
            ("impact_per_volume", 0.0, 10.0, False, False),
            ("impact_depth_to_volume", 0.0, 1.0, True, False),
            ("impact_depth_exponent", 0.0, 5.0, True, False),
            ("impact_max_move", 0.0, 1.0, True, True),
        ):
            v = float(getattr(self, key))
            if not ((v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)):
                left, right = "(" if lo_open else "[", ")" if hi_open else "]"
                raise ValueError(f"liquidation.{key}={v} must be in {left}{lo}, {hi}{right}")
        if not isinstance(self.feedback, bool):
            raise ValueError(f"liquidation.feedback={self.feedback!r} must be true or false")
        if self.feedback and self.closeout != "impact":
            raise ValueError('liquidation.feedback = true needs liquidation.closeout = "impact" (the impact law '
                             "that turns forced flow into price moves)")
        if not 0 < float(self.feedback_oi_to_volume) <= 100:
            raise ValueError(f"liquidation.feedback_oi_to_volume={self.feedback_oi_to_volume} must be in (0, 100]")
        for key, lo in (("vol_window", 2), ("adv_window", 1)):
            v = getattr(self, key)
            if isinstance(v, bool) or int(v) != v or not lo <= int(v) <= 1000:
                raise ValueError(f"liquidation.{key}={v!r} must be a whole number of days in [{lo}, 1000]")
        r = self.maintenance_ratio
        if r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r <= 1):
            raise ValueError(f"maintenance_ratio={r!r} must be a number in (0, 1] (maintenance = "
                             "ratio x initial margin), or \"model\" to keep each model's own maintenance margin")


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Events and daily state of the account simulation of one model."""

    model: str
    dates: pd.DatetimeIndex
    account_ids: tuple[str, ...]
    events: np.ndarray  # EVENT_DTYPE records; "t" is the panel's date index
    # daily state, rows = the simulated dates start..end (row i = date index start + i):
    is_open: np.ndarray  # (n, P) bool, open at the close
    equity: np.ndarray  # (n, P) float32, NaN when closed
    maintenance: np.ndarray  # (n, P) float32, NaN when closed
    notional_total: np.ndarray  # (n,) float64 gross perp notional of the open accounts
    openings: np.ndarray  # (n_open,) records: account, t, notional
    start: int
    end: int
    policy: LiquidationPolicy = field(default_factory=LiquidationPolicy)
    #: feedback runs: FEEDBACK_LOG_DTYPE records, one per simulated date (rounds, liquidated, max |move|)
    feedback_log: np.ndarray | None = None

    def row(self, t: int) -> int:
        """Row of the daily state arrays for the panel's date index ``t``."""
        if not self.start <= t <= self.end:
            raise IndexError(f"date index {t} is outside the simulated dates {self.start}..{self.end}")
        return t - self.start

    @cached_property
    def liquidations(self) -> np.ndarray:
        """Events that are liquidations (not delistings)."""
        return self.events[self.events["trigger"] < 2]

    @property
    def account_days(self) -> int:
        return int(self.is_open.sum())

    @property
    def account_years(self) -> float:
        return self.account_days / 365.0

    def events_frame(self) -> pd.DataFrame:
        ev = self.events
        return pd.DataFrame(
            {
                "date": self.dates[ev["t"]],
                "account": np.asarray(self.account_ids, dtype=object)[ev["account"]],
                "trigger": np.asarray(TRIGGERS, dtype=object)[ev["trigger"]],
                "equity": ev["equity"],
                "maintenance": ev["maintenance"],
                "notional": ev["notional"],
                "slippage": ev["slippage"],
                "impact": ev["impact"],
                "penalty": ev["penalty"],
                "bad_debt": ev["bad_debt"],
                "returned": ev["returned"],
                "model": self.model,
            }
        )


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


def simulate_accounts(
    fitted: FittedMargin,
    book: Book,
    policy: LiquidationPolicy,
    *,
    start: int,
    end: int | None = None,
    asset_ok: np.ndarray | None = None,
) -> SimulationResult:
    """Walk the accounts of ``book`` forward from date index ``start`` to ``end``.

    Parameters
    ----------
    fitted : FittedMargin
        The margin model fitted on the panel (its ``panel`` gives prices).
    book : Book
        Account templates (USD amounts at each opening).
    policy : LiquidationPolicy
    start, end : int
        First and last date index (inclusive) of the simulation.
    asset_ok : numpy.ndarray, optional
        ``(T, A)`` bool of assets a new account may hold (default: live).
    """
    # one requirement per date on at most a few thousand accounts: numba's thread
    # pool only adds overhead there (measured on 2 cores: the HS tail kernel on
    # 1,000 x 500 losses took 8 ms with the parallel kernel, 0.7 ms on one thread)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _simulate(fitted, book, policy, start, end, asset_ok)
    finally:
        numba.set_num_threads(threads)


def _simulate(
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
    lipschitz = getattr(fitted, "maintenance_lipschitz", None)
    row_lipschitz = getattr(fitted, "intraday_lipschitz", None)
    # path-dependent rules (APC buffer, speed limit) carry each account's state from close to close
    carry = getattr(fitted, "carried_requirement", None)
    carry_state = np.full((P, int(fitted.carry_width)), np.nan) if carry is not None else None  # type: ignore[attr-defined]
    if carry is not None:
        lipschitz = getattr(fitted, "carried_lipschitz", None)

    def margin(t: int, rows: np.ndarray, cx: np.ndarray, px_: np.ndarray,
               fresh: np.ndarray | None = None) -> tuple[Requirement, np.ndarray | None]:
        """Requirement of accounts ``rows`` with model state ``t`` (and the carried state, if any)."""
        if carry is None:
            return fitted.account_requirement(t, cx, px_, iso[rows]), None
        st = carry_state[rows]  # type: ignore[index]
        if fresh is not None:
            st[fresh] = np.nan
        return carry(t, cx, px_, iso[rows], st)
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
            if new_state is not None:  # commit the carried state of the accounts open at the close
                carry_state[r_open] = new_state[still]  # type: ignore[index]
            out_not[t - start] = np.abs(px_[still]).sum()
        # -- record the state at the close
        if is_open.any():
            out_eq[t - start, is_open] = equity(cz)[is_open]
            out_open[t - start] = is_open
        last_close = cz

    ev = np.concatenate(events) if events else np.empty(0, dtype=EVENT_DTYPE)
    ev = ev[np.lexsort((ev["account"], ev["t"]))]
    op_dtype = np.dtype([("account", np.int32), ("t", np.int32), ("notional", np.float64)])
    if openings:
        op = np.concatenate([np.rec.fromarrays([r, np.full(len(r), t), n], dtype=op_dtype) for r, t, n in openings])
    else:
        op = np.empty(0, dtype=op_dtype)
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
