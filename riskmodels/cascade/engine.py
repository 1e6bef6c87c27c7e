"""The one-window cascade engine: forced flow feeds back into prices.

Accounts and conventions (those of :mod:`riskmodels.backtest.simulation`)
--------------------------------------------------------------------------
An account holds spot collateral quantities ``qc >= 0``, signed perp
quantities ``qp`` entered at ``entry`` and USD ``cash``; its equity at prices
``P`` is ``E = cash + sum qc P + sum qp (P - entry)`` and its maintenance
requirement is ``fitted.account_requirement(t, qc P, qp P, isolated)`` at the
margin state of ``t`` (the previous close: margin is set there). Arrays are
``accounts x assets``; every step is vectorised over accounts.

Window, sub-steps, rounds
-------------------------
The exogenous path ``X`` has nodes ``0..S`` (node 0 = the open). In sub-step
``s`` the reference price is ``R = X_s * perm`` (``perm`` carries the
permanent part of earlier impact) and, with ``Q`` the cumulative net forced
flow of the sub-step (USD, buys > 0), the mark is ``R (1 + I(Q))``. Rounds
repeat until no account is newly liquidated:

1. revalue the open accounts at the mark, liquidate those with ``E < MM``:
   all of it, or a fraction ``close_factor`` when the account is solvent
   (Aave's 50% close factor, Hyperliquid's tranches; METHODOLOGY.md 6.1); a
   partially liquidated account waits for the next sub-step (cool-down, like
   Hyperliquid's 30 s), so every round liquidates at least one new account
   and a sub-step has at most ``N + 1`` rounds (termination);
2. net the forced orders per asset: each account trades ``-f (qc + qp)``
   (its collateral sale and perp close in one asset net inside the account,
   longs and shorts net across accounts), ``Q1 = Q + flow``;
3. fill every order at the VWAP of the move ``R (1 + vwap(Q, Q1))``
   (:meth:`ImpactModel.vwap_move`), less ``slippage`` on the gross traded
   value; charge ``penalty x closed perp notional`` (capped by what is left)
   to the insurance fund; move the mark to ``R (1 + I(Q1))``;
4. a fully liquidated account with negative cash is bad debt: the insurance
   fund pays; beyond the fund, auto-deleveraging (ADL) charges the shortfall to
   accounts with unrealised perp profit, pro rata and capped at that profit
   (a cash haircut standing in for the exchanges' forced closes at the
   bankruptcy price); what even ADL cannot cover is ``unallocated``.

At the end of the sub-step ``perm *= 1 + permanent x I(Q)``.

Ledger (checked in every round)
-------------------------------
``sum E + fund + exec_cost - mark_pnl - unallocated`` is constant, where
``exec_cost`` is the cumulative cost of filling away from the mark (impact +
slippage, paid to the outside market) and ``mark_pnl`` the cumulative P&L of
price moves on the accounts' holdings.

Fixed points
------------
At each sub-step's start the map ``S -> L(P(S))`` (liquidate set ``S`` in
full, price ``P(S) = R (1 + I(Q(S)))``, ``L`` = accounts below maintenance
there) is iterated from below (``S_0`` = nobody, ``S_{k+1} = S_k u L``) and
from above (``S_0`` = every open account, ``S_{k+1} = S_k n L``). When the map
is monotone (more forced selling lowers every account's margin surplus) these
are the least and greatest fixed points (Tarski); the engine's rounds follow
the least. Sub-steps where the two differ are flagged: more than one
equilibrium, a self-fulfilling crash is possible.

Modules: this one holds :func:`run_cascade` and :func:`fixed_points`; the inputs
(:class:`Population`, :class:`CascadeParams`) are in :mod:`riskmodels.cascade.inputs`
and the output (:class:`CascadeResult`, the round records) in
:mod:`riskmodels.cascade.result`, both importable from here too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskmodels.cascade.impact import AssetState, ImpactModel, NoImpact
from riskmodels.cascade.inputs import CascadeParams, Population
from riskmodels.cascade.inputs import with_params as with_params
from riskmodels.cascade.result import FIXED_POINT_DTYPE, ROUND_DTYPE, CascadeResult
from riskmodels.margin.base import FittedMargin

# Re-exported (`x as x`) from riskmodels.cascade.inputs, so every name defined
# here before the split is still importable from riskmodels.cascade.engine.
__all__ = [
    "FIXED_POINT_DTYPE",
    "ROUND_DTYPE",
    "CascadeParams",
    "CascadeResult",
    "Population",
    "fixed_points",
    "run_cascade",
]


def _as_states(states: AssetState | Sequence[AssetState], S: int) -> list[AssetState]:
    if isinstance(states, AssetState):
        return [states] * S
    out = list(states)
    if len(out) != S:
        raise ValueError(f"states: {len(out)} AssetState for {S} sub-steps")
    return out


def _maintenance(fitted: FittedMargin, t: int, qc: np.ndarray, qp: np.ndarray, px: np.ndarray, iso: np.ndarray) -> np.ndarray:
    mm = fitted.account_requirement(t, qc * px, qp * px, iso).maintenance
    return np.where(np.isfinite(mm), mm, np.inf)  # an unpriceable account is not liquidated on a NaN


def fixed_points(
    fitted: FittedMargin,
    t: int,
    qc: np.ndarray,
    qp: np.ndarray,
    entry: np.ndarray,
    cash: np.ndarray,
    iso: np.ndarray,
    ref: np.ndarray,
    impact: ImpactModel,
    state: AssetState,
    max_iter: int = 500,
) -> tuple[np.ndarray, np.ndarray, int, int, bool]:
    """Least and greatest fixed point of ``S -> L(P(S))`` (module docstring).

    Returns the two ``(N,)`` boolean sets, the iterations each took and whether
    both reached a fixed point within ``max_iter`` iterations (else the sets are
    the last iterates and the record says ``converged = False``).
    """
    net = qc + qp

    def below(S: np.ndarray) -> np.ndarray:
        flow = -(net[S] * ref).sum(0)
        px = ref * (1.0 + impact.price_move(flow, state))
        eq = cash + (qc * px).sum(1) + (qp * (px - entry)).sum(1)
        return eq < _maintenance(fitted, t, qc, qp, px, iso)

    n = len(cash)
    has = (net != 0).any(1) | (qp != 0).any(1)
    lo = np.zeros(n, bool)
    it_lo = 0
    conv_lo = conv_hi = False
    for it_lo in range(1, max_iter + 1):  # noqa: B007
        new = lo | (below(lo) & has)
        if (new == lo).all():
            conv_lo = True
            break
        lo = new
    hi = has.copy()
    it_hi = 0
    for it_hi in range(1, max_iter + 1):  # noqa: B007
        new = hi & below(hi)
        if (new == hi).all():
            conv_hi = True
            break
        hi = new
    return lo, hi, it_lo, it_hi, conv_lo and conv_hi


def run_cascade(
    fitted: FittedMargin,
    population: Population,
    path: np.ndarray,
    *,
    t_margin: int,
    impact: ImpactModel | None = None,
    states: AssetState | Sequence[AssetState] | None = None,
    params: CascadeParams | None = None,
) -> CascadeResult:
    """Run the cascade over the exogenous ``path`` (module docstring).

    Parameters
    ----------
    fitted : FittedMargin
        Any fitted margin model; columns of its panel must match
        ``population.assets``.
    population : Population
        The accounts at node 0 (their entry prices are normally ``path[0]``).
    path : numpy.ndarray
        ``(S+1, A)`` exogenous prices, node 0 = the open.
    t_margin : int
        Date index of the margin state used for every requirement.
    impact : ImpactModel, optional
        Default :class:`NoImpact` (price-taker).
    states : AssetState or sequence of S of them
        Volatility and volume per sub-step (needed by impact models that use them).
    params : CascadeParams, optional
    """
    params = params or CascadeParams()
    impact = impact or NoImpact()
    X = np.asarray(path, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(population.assets) or X.shape[0] < 2:
        raise ValueError(f"path must be (S+1 >= 2, {len(population.assets)}) prices, got {X.shape}")
    if not np.isfinite(X).all() or (X <= 0).any():
        raise ValueError("path must hold finite positive prices (use 1.0 for assets nobody holds)")
    if tuple(fitted.panel.assets) != tuple(population.assets):
        raise ValueError("population.assets must equal the fitted model's panel assets (same order)")
    S, A = X.shape[0] - 1, X.shape[1]
    if states is None:
        states = AssetState(population.assets, np.zeros(A), np.ones(A), np.ones(A))
    st_list = _as_states(states, S)

    qc = population.q_coll.copy()
    qp = population.q_perp.copy()
    entry = population.entry
    cash = population.cash.copy()
    iso = population.isolated
    N = len(cash)
    p0 = X[0]
    oi_long, oi_short = population.open_interest(p0)

    is_open = ((qc + qp) != 0).any(1) | (qp != 0).any(1) | (cash < 0)
    liquidated = np.zeros(N, bool)
    full = np.zeros(N, bool)
    first = np.full(N, -1, np.int64)
    closed_long = np.zeros(A)
    closed_short = np.zeros(A)
    transmission = np.zeros((A, A))
    flows = np.zeros((S, A))
    prices = np.empty((S + 1, A))
    prices[0] = p0
    trough = p0.copy()
    peak = p0.copy()

    fund = float(params.insurance_fund)
    fund_min = fund
    exec_cost = 0.0
    mark_pnl = 0.0
    unalloc_cum = 0.0
    perm = np.ones(A)
    mark = p0.copy()
    rounds: list[tuple] = []
    moves: list[np.ndarray] = []
    fps: list[tuple] = []
    f = params.close_factor

    def total_equity(px: np.ndarray) -> float:
        return float(cash.sum() + (qc * px).sum() + (qp * (px - entry)).sum())

    for s in range(1, S + 1):
        st = st_list[s - 1]
        R = X[s] * perm
        mark_pnl += float(((qc + qp) * (R - mark)).sum())
        mark = R.copy()
        trough = np.minimum(trough, mark)
        peak = np.maximum(peak, mark)
        Q = np.zeros(A)
        cool = np.zeros(N, bool)
        exo = np.log(X[s] / X[s - 1])
        if params.fixed_points:
            rows = np.flatnonzero(is_open)
            if len(rows):
                lo, hi, il, ih, conv = fixed_points(
                    fitted, t_margin, qc[rows], qp[rows], entry[rows], cash[rows], iso[rows], R, impact, st,
                    params.max_fp_iter,
                )
                fps.append((s, int(lo.sum()), int(hi.sum()), il, ih, bool((lo != hi).any()), conv))
        prev_notional = np.nan
        for r in range(1, params.max_rounds + 2):
            if r > params.max_rounds:
                raise RuntimeError(f"sub-step {s}: no fixed point after max_rounds={params.max_rounds} rounds")
            rows = np.flatnonzero(is_open & ~cool)
            if not len(rows):
                break
            qcr, qpr = qc[rows], qp[rows]
            eq = cash[rows] + (qcr * mark).sum(1) + (qpr * (mark - entry[rows])).sum(1)
            hit = eq < _maintenance(fitted, t_margin, qcr, qpr, mark, iso[rows])
            if not hit.any():
                break
            L = rows[hit]
            eqL = eq[hit]
            qcL, qpL = qc[L], qp[L]
            gross = ((np.abs(qcL) + np.abs(qpL)) * mark).sum(1)
            frac = np.where((f >= 1.0) | (eqL <= 0) | (gross * (1.0 - f) < params.dust_usd), 1.0, f)
            dqc = -frac[:, None] * qcL
            dqp = -frac[:, None] * qpL
            flow = ((dqc + dqp) * mark).sum(0)
            Q1 = Q + flow
            fill = R * (1.0 + impact.vwap_move(Q, Q1, st))
            new_mark = R * (1.0 + impact.price_move(Q1, st))
            # -- execution at the fill, slippage, penalty
            traded = (np.abs(dqc) + np.abs(dqp)) * fill
            slip = params.slippage * traded.sum(1)
            cost = ((dqc + dqp) * (fill - mark)).sum(1) + slip
            cash[L] += -(dqc * fill).sum(1) - (dqp * (fill - entry[L])).sum(1) - slip
            closed_perp = (np.abs(dqp) * fill).sum(1)
            pen = np.minimum(params.penalty * closed_perp, np.maximum(eqL - cost, 0.0))
            cash[L] -= pen
            fund += float(pen.sum())
            exec_cost += float(cost.sum())
            closed_long += np.where(qpL > 0, -dqp, 0.0).sum(0)
            closed_short += np.where(qpL < 0, dqp, 0.0).sum(0)
            qc[L] = qcL + dqc
            qp[L] = qpL + dqp
            is_full = frac >= 1.0
            qc[L[is_full]] = 0.0
            qp[L[is_full]] = 0.0
            # -- transmission: the asset whose move since the open hurt the account most
            loss = (qcL + qpL) * (mark - p0)
            trig = np.argmin(loss, axis=1)
            np.add.at(transmission, trig, traded)
            # -- bad debt of accounts closed in full
            FL = L[is_full]
            neg = cash[FL] < 0
            bad = float(-cash[FL][neg].sum())
            cash[FL[neg]] = 0.0
            is_open[FL] = False
            full[FL] = True
            cool[L] = True
            newly = ~liquidated[L]
            first[L[newly]] = s
            liquidated[L] = True
            # -- the mark moves; P&L on what is still held
            mark_pnl += float(((qc + qp) * (new_mark - mark)).sum())
            round_move = new_mark / mark - 1.0
            mark = new_mark
            Q = Q1
            trough = np.minimum(trough, mark)
            peak = np.maximum(peak, mark)
            # -- insurance fund, then ADL on unrealised perp profit
            pay = min(bad, fund)
            fund -= pay
            fund_min = min(fund_min, fund)
            short = bad - pay
            adl_charged = 0.0
            adl_events = 0
            if short > 0:
                upnl = np.where(is_open, (qp * (mark - entry)).sum(1), 0.0)
                upnl = np.maximum(upnl, 0.0)
                tot = float(upnl.sum())
                if tot > 0:
                    charge = upnl * min(1.0, short / tot)
                    cash -= charge
                    adl_charged = float(charge.sum())
                    adl_events = int((charge > 0).sum())
            unalloc = short - adl_charged
            unalloc_cum += unalloc
            equity = total_equity(mark)
            notional = float(traded.sum())
            main = int(np.argmax(np.abs(Q)))
            endo = np.log1p(impact.price_move(Q, st)[main])
            amp = (exo[main] + endo) / exo[main] if exo[main] != 0 else np.nan
            rounds.append(
                (
                    s, r, len(L), int((~is_full).sum()), notional, float(np.abs(flow).sum()),
                    float(np.abs(round_move).max()), float(np.abs(impact.price_move(Q, st)).max()),
                    notional / prev_notional if prev_notional > 0 else np.nan, amp,
                    bad, fund, adl_charged, adl_events, unalloc, equity, exec_cost, mark_pnl,
                    equity + fund + exec_cost - mark_pnl - unalloc_cum,
                )
            )
            moves.append(round_move)
            prev_notional = notional
        flows[s - 1] = Q
        prices[s] = mark
        perm = perm * (1.0 + params.permanent * impact.price_move(Q, st))

    rec = np.array(rounds, dtype=ROUND_DTYPE) if rounds else np.empty(0, ROUND_DTYPE)
    return CascadeResult(
        population.assets,
        rec,
        np.array(moves).reshape(len(moves), A),
        X,
        prices,
        trough,
        peak,
        flows,
        liquidated,
        full,
        first,
        closed_long,
        closed_short,
        oi_long,
        oi_short,
        transmission,
        np.array(fps, dtype=FIXED_POINT_DTYPE) if fps else np.empty(0, FIXED_POINT_DTYPE),
        float(params.insurance_fund),
        fund,
        fund_min,
        cash,
        params,
    )
