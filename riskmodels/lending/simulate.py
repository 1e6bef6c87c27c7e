"""Daily simulation of a lending market on real price history.

For each date ``t`` of the window (a Python loop over dates; one numba
kernel per date loops over the accounts, no per-account Python):

1. **Entry.** An account whose entry date is ``t`` opens at the close: it
   is refused when one of its assets is not trading, when it would borrow
   beyond its LTV (``debt > sum(collateral x LTV)``) or when a reserve's
   supply or borrow cap (USD at the close) would be exceeded.
2. **Liquidation** at the day's adverse prices: collateral at the low,
   debt at the high (both as the oracle may have printed them; taking the
   two extremes together is the conservative reading of a daily bar).
   While ``HF < 1`` (at most ``max_rounds`` times) a liquidator repays the
   largest debt reserve against the largest collateral reserve under the
   protocol's rules (:mod:`riskmodels.lending.liquidation`), sells the
   seized collateral and buys the debt asset with price impact from the
   day's cumulative forced flow on each asset (the day's USD volume and the
   EWMA volatility of returns up to ``t - 1``), and does so only when its
   profit after impact exceeds its gas cost. When the collateral is
   exhausted the remaining debt is the **deficit** (Aave v3.3) / the bad
   debt socialised to lenders (Morpho Blue).
3. **Close.** HF at the close is recorded per account; an account past its
   exit date repays and leaves if it is healthy (``HF >= 1``).

The simulated forced flow moves only the liquidators' fills, not the oracle
price (a one-day resilient, temporary impact; feeding it back into prices is
what :mod:`riskmodels.cascade` does). No look-ahead: day ``t`` uses prices
and volume of day ``t`` and volatility estimated from returns before ``t``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import pandas as pd

from riskmodels.cascade.impact import (
    AssetState,
    DepthImpact,
    ImpactModel,
    NoImpact,
    SquareRootImpact,
)
from riskmodels.data.panel import PricePanel
from riskmodels.lending.liquidation import (
    MAX_HALVINGS,
    close_factor_max_repay,
    dust_ok,
    liquidator_profit,
    seize,
)
from riskmodels.lending.market import STABLE, LendingMarket

__all__ = ["DAY_COLUMNS", "EVENT_COLUMNS", "LendingResult", "MarketPrices", "Positions", "impact_power_law",
           "market_prices", "simulate"]

#: per-date, per-asset statistics (``LendingResult.daily[t, a, c]``)
DAY_COLUMNS = ("liquidations", "seized_usd", "repaid_usd", "protocol_fee_usd", "liquidator_profit_usd",
               "deficit_usd", "bad_debt_by_collateral_usd", "supply_usd", "borrow_usd", "unprofitable")
#: per-date scalars (``LendingResult.totals[t, c]``)
TOTAL_COLUMNS = ("insolvent_usd", "underwater_accounts", "toxic_accounts", "toxic_debt_usd", "active_accounts",
                 "refused_accounts")
EVENT_COLUMNS = ("t", "account", "debt_asset", "collateral_asset", "repaid_usd", "seized_usd", "protocol_fee_usd",
                 "liquidator_profit_usd", "hf_before", "deficit_usd")
_D = {c: i for i, c in enumerate(DAY_COLUMNS)}
_T = {c: i for i, c in enumerate(TOTAL_COLUMNS)}

PENDING, ACTIVE, CLOSED, REFUSED = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class Positions:
    """Borrower positions in token quantities over the market's assets.

    ``coll_q``, ``debt_q``: ``(n, A)`` supplied and borrowed quantities;
    ``entry``, ``exit``: ``(n,)`` date indices into the price panel (the
    account opens at the close of ``entry`` and repays at the close of
    ``exit`` if healthy).
    """

    assets: tuple[str, ...]
    coll_q: np.ndarray
    debt_q: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    emode: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.emode is not None and len(self.emode) != self.coll_q.shape[0]:
            raise ValueError("Positions: emode must name one category (or \"\") per account")
        n, a = self.coll_q.shape
        if self.debt_q.shape != (n, a) or a != len(self.assets) or self.entry.shape != (n,) or self.exit.shape != (n,):
            raise ValueError("Positions: coll_q, debt_q must be (n, A) with A = len(assets); entry, exit (n,)")
        if (self.coll_q < 0).any() or (self.debt_q < 0).any() or not np.isfinite(self.coll_q).all() \
                or not np.isfinite(self.debt_q).all():
            raise ValueError("Positions: quantities must be finite and >= 0")

    @property
    def n(self) -> int:
        return int(self.coll_q.shape[0])

    def emode_rows(self, market: LendingMarket) -> np.ndarray:
        """Row of :meth:`LendingMarket.emode_arrays` per account (0 = no e-mode)."""
        if self.emode is None:
            return np.zeros(self.n, dtype=np.int64)
        cats = {c: k + 1 for k, c in enumerate(market.emode)}
        bad = sorted({c for c in self.emode if c and c not in cats})
        if bad:
            raise ValueError(f"positions use e-mode categories {bad} that the market does not define "
                             f"({', '.join(cats) or 'none'})")
        return np.array([cats.get(c, 0) for c in self.emode], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class MarketPrices:
    """``(T, A)`` close, low, high, USD volume and EWMA volatility on the market's assets (USD = 1)."""

    dates: pd.DatetimeIndex
    assets: tuple[str, ...]
    close: np.ndarray
    low: np.ndarray
    high: np.ndarray
    volume: np.ndarray
    sigma: np.ndarray


def market_prices(panel: PricePanel, assets: tuple[str, ...], ewma_lambda: float = 0.94) -> MarketPrices:
    """The market's assets from the panel; ``"USD"`` is the stablecoin (price 1, unlimited volume).

    ``sigma[t]`` is the RiskMetrics EWMA volatility of daily log returns up
    to ``t - 1`` (``s2_t = lam s2_{t-1} + (1 - lam) r_{t-1}^2``), so day
    ``t``'s impact never uses day ``t``'s move.
    """
    T = panel.n_dates
    missing = [a for a in assets if a != STABLE and a not in panel.assets]
    if missing:
        raise KeyError(f"lending asset(s) {missing} are not in the price data; valid: {', '.join(panel.assets)} "
                       f"and {STABLE}")
    out = {f: np.ones((T, len(assets))) for f in ("close", "low", "high")}
    vol = np.full((T, len(assets)), np.inf)
    sig = np.zeros((T, len(assets)))
    r = panel.returns(1, "log")
    for j, a in enumerate(assets):
        if a == STABLE:
            continue
        i = panel.assets.index(a)
        for f in ("close", "low", "high"):
            out[f][:, j] = getattr(panel, f)[:, i]
        vol[:, j] = np.where(np.isfinite(panel.volume[:, i]), panel.volume[:, i], 0.0)
        s2 = np.nan
        ri = r[:, i]
        for t in range(T):  # one recursion per asset (T ~ 4,000): negligible next to the kernel
            sig[t, j] = np.sqrt(s2) if np.isfinite(s2) else 0.0
            x = ri[t]
            if np.isfinite(x):
                s2 = x * x if not np.isfinite(s2) else ewma_lambda * s2 + (1 - ewma_lambda) * x * x
    # a bad bar (low > close or high < close) is read as the close
    low = np.minimum(out["low"], out["close"])
    high = np.maximum(out["high"], out["close"])
    return MarketPrices(panel.dates, tuple(assets), out["close"], low, high, vol, sig)


def impact_power_law(model: ImpactModel, state: AssetState) -> tuple[np.ndarray, np.ndarray]:
    """``(k, a)`` with ``model``'s uncapped law ``g(Q) = k Q^a`` per asset.

    Every law of :mod:`riskmodels.cascade.impact` is a power law: ``k =
    g(1)`` and ``a`` = 1/2 (square root), ``1 / exponent`` (depth), 1
    (linear; ``NoImpact`` has ``k = 0``).
    """
    if isinstance(model, SquareRootImpact):
        a = 0.5
    elif isinstance(model, DepthImpact):
        a = 1.0 / model.exponent
    else:
        a = 1.0
    if isinstance(model, NoImpact):
        return np.zeros(len(state.assets)), np.full(len(state.assets), a)
    k = np.asarray(model.magnitude(np.ones(len(state.assets)), state), dtype=np.float64)
    return np.where(np.isnan(k), np.inf, k), np.full(len(state.assets), a)


@nb.njit(cache=True, nogil=True)
def _day(t, live, close, low, high, k_imp, a_imp, cap, em_lt, em_ltv, em_lb, em_borrow, emode, fee, coll_ok,
         supply_cap, borrow_cap, ceiling, iso_ok, iso_debt, iso_of, coll_q, debt_q, entry, exit_, state, tot_c, tot_d,
         aave, euler, max_disc, cf, cf_hf, full_usd, leftover, gas, max_rounds, hf_out, ev, day, tot):
    n, A = coll_q.shape
    flow = np.zeros(A)
    n_ev = 0
    for i in range(n):
        lt = em_lt[emode[i]]
        ltv = em_ltv[emode[i]]
        lb = em_lb[emode[i]]
        if state[i] == PENDING and entry[i] == t:
            ok = True
            bp = 0.0
            dv = 0.0
            n_coll = 0
            iso = -1
            for a in range(A):
                if coll_q[i, a] > 0:
                    n_coll += 1
                    if ceiling[a] > 0.0:
                        iso = a
                if debt_q[i, a] > 0 and not em_borrow[emode[i], a]:
                    ok = False
            if iso >= 0:  # isolation mode: the only collateral, stablecoin-type debt, within the debt ceiling
                if n_coll > 1:
                    ok = False
                for a in range(A):
                    if debt_q[i, a] > 0:
                        if not iso_ok[a]:
                            ok = False
                        dv += debt_q[i, a] * close[a]
                if iso_debt[iso] + dv > ceiling[iso]:
                    ok = False
                dv = 0.0
            for a in range(A):
                if (coll_q[i, a] > 0 or debt_q[i, a] > 0) and not live[a]:
                    ok = False
                if coll_q[i, a] > 0:
                    if not coll_ok[a] or (tot_c[a] + coll_q[i, a]) * close[a] > supply_cap[a]:
                        ok = False
                    bp += coll_q[i, a] * close[a] * ltv[a]
                if debt_q[i, a] > 0:
                    dv += debt_q[i, a] * close[a]
                    if (tot_d[a] + debt_q[i, a]) * close[a] > borrow_cap[a]:
                        ok = False
            if dv > bp * (1.0 + 1e-9):
                ok = False
            if ok:
                state[i] = ACTIVE
                iso_of[i] = iso
                for a in range(A):
                    tot_c[a] += coll_q[i, a]
                    tot_d[a] += debt_q[i, a]
                    if iso >= 0:
                        iso_debt[iso] += debt_q[i, a] * close[a]
            else:
                state[i] = REFUSED
                tot[_T_REFUSED] += 1.0
                continue
            rounds = max_rounds  # opened at today's close: first exposed to liquidation tomorrow
        elif state[i] != ACTIVE:
            continue
        else:
            rounds = 0
        while rounds < max_rounds:
            cv = 0.0
            C = 0.0
            D = 0.0
            j = -1
            kc = -1
            best_d = 0.0
            best_c = 0.0
            for a in range(A):
                if coll_q[i, a] > 0 and coll_ok[a]:
                    v = coll_q[i, a] * low[a]
                    cv += v * lt[a]
                    C += v
                    if v > best_c:
                        best_c = v
                        kc = a
                if debt_q[i, a] > 0:
                    v = debt_q[i, a] * high[a]
                    D += v
                    if v > best_d:
                        best_d = v
                        j = a
            if D <= 0.0 or cv >= D:
                break
            hf = cv / D
            if kc < 0:  # no collateral left: the whole debt is a deficit
                for a in range(A):
                    if debt_q[i, a] > 0:
                        day[a, _D_DEFICIT] += debt_q[i, a] * high[a]
                        tot_d[a] -= debt_q[i, a]
                        debt_q[i, a] = 0.0
                break
            # Euler v2: the bonus is 1 / discount factor, discount factor = HF floored at 1 - max discount
            lbk = 1.0 / max(hf, 1.0 - max_disc) if euler else lb[kc]
            r_max = close_factor_max_repay(best_d, best_c, D, hf, cf, cf_hf, full_usd, aave)
            rep, sz, fe = seize(r_max, best_c, lbk, fee[kc])
            if aave and not dust_ok(rep, best_d, sz, best_c, leftover):
                r2 = min(best_d - leftover, (best_c - leftover) / lbk)
                if r2 <= 0.0:
                    break
                rep, sz, fe = seize(r2, best_c, lbk, fee[kc])
            done = False
            scale = 1.0
            profit = 0.0
            for _h in range(MAX_HALVINGS + 1):
                rr, s2, f2 = seize(rep * scale, best_c, lbk, fee[kc])
                scale *= 0.5
                if aave and not dust_ok(rr, best_d, s2, best_c, leftover):
                    continue
                profit = liquidator_profit(rr, s2, f2, flow[kc], flow[j], k_imp[kc], a_imp[kc], k_imp[j], a_imp[j],
                                           cap, kc == j) - gas
                if profit > 0.0:
                    rep, sz, fe = rr, s2, f2
                    done = True
                    break
            if not done:
                day[kc, _D_UNPROF] += 1.0
                break
            # execute
            flow[kc] -= sz - fe
            flow[j] += rep
            if sz >= best_c * (1.0 - 1e-12):
                tot_c[kc] -= coll_q[i, kc]
                coll_q[i, kc] = 0.0
            else:
                dq = sz / low[kc]
                coll_q[i, kc] -= dq
                tot_c[kc] -= dq
            if rep >= best_d * (1.0 - 1e-12):
                tot_d[j] -= debt_q[i, j]
                debt_q[i, j] = 0.0
            else:
                dq = rep / high[j]
                debt_q[i, j] -= dq
                tot_d[j] -= dq
            if iso_of[i] >= 0:  # Aave: the isolated debt falls by the repaid amount, not by a deficit
                iso_debt[iso_of[i]] = max(iso_debt[iso_of[i]] - rep, 0.0)
            day[kc, _D_LIQ] += 1.0
            day[kc, _D_SEIZED] += sz
            day[j, _D_REPAID] += rep
            day[kc, _D_FEE] += fe
            day[kc, _D_PROFIT] += profit
            deficit = 0.0
            left = 0.0
            for a in range(A):
                if coll_q[i, a] > 0 and coll_ok[a]:
                    left += coll_q[i, a]
            if left <= 0.0:  # collateral exhausted: v3.3 burns the remaining debt into the reserve deficit
                for a in range(A):
                    if debt_q[i, a] > 0:
                        v = debt_q[i, a] * high[a]
                        day[a, _D_DEFICIT] += v
                        deficit += v
                        tot_d[a] -= debt_q[i, a]
                        debt_q[i, a] = 0.0
                day[kc, _D_BYCOLL] += deficit
            if n_ev < ev.shape[0]:
                ev[n_ev, 0] = t
                ev[n_ev, 1] = i
                ev[n_ev, 2] = j
                ev[n_ev, 3] = kc
                ev[n_ev, 4] = rep
                ev[n_ev, 5] = sz
                ev[n_ev, 6] = fe
                ev[n_ev, 7] = profit
                ev[n_ev, 8] = hf
                ev[n_ev, 9] = deficit
                n_ev += 1
            rounds += 1
        # close
        cv = 0.0
        C = 0.0
        D = 0.0
        best_c = 0.0
        kc = -1
        for a in range(A):
            if coll_q[i, a] > 0:
                v = coll_q[i, a] * close[a]
                C += v
                if coll_ok[a]:
                    cv += v * lt[a]
                day[a, _D_SUPPLY] += v
                if v > best_c:
                    best_c = v
                    kc = a
            if debt_q[i, a] > 0:
                v = debt_q[i, a] * close[a]
                D += v
                day[a, _D_BORROW] += v
        tot[_T_ACTIVE] += 1.0
        if D > 0.0:
            h = cv / D
            hf_out[i] = h
            if h < 1.0:
                tot[_T_UNDER] += 1.0
            if D > C:
                tot[_T_INSOLVENT] += D - C
            if kc >= 0 and D * lb[kc] > C:
                tot[_T_TOXIC] += 1.0
                tot[_T_TOXDEBT] += D
            if t >= exit_[i] and h >= 1.0:
                state[i] = CLOSED
                if iso_of[i] >= 0:
                    iso_debt[iso_of[i]] = max(iso_debt[iso_of[i]] - D, 0.0)
                for a in range(A):
                    tot_c[a] -= coll_q[i, a]
                    tot_d[a] -= debt_q[i, a]
        else:
            hf_out[i] = np.inf
            if t >= exit_[i] or C <= 0.0:
                state[i] = CLOSED
                for a in range(A):
                    tot_c[a] -= coll_q[i, a]
    return n_ev


_D_LIQ, _D_SEIZED, _D_REPAID, _D_FEE, _D_PROFIT, _D_DEFICIT, _D_BYCOLL, _D_SUPPLY, _D_BORROW, _D_UNPROF = range(10)
_T_INSOLVENT, _T_UNDER, _T_TOXIC, _T_TOXDEBT, _T_ACTIVE, _T_REFUSED = range(6)


@dataclass(frozen=True, eq=False)
class LendingResult:
    """Everything the daily simulation produced (see :mod:`riskmodels.lending.metrics`).

    ``hf``: ``(T_w, n)`` float32 health factor at the close (NaN when the
    account is not open, ``inf`` without debt); ``daily``: ``(T_w, A, C)``
    per-asset statistics named by :data:`DAY_COLUMNS`; ``totals``:
    ``(T_w, C)`` by :data:`TOTAL_COLUMNS`; ``events``: one row per
    liquidation (:data:`EVENT_COLUMNS`); ``state``: final account state
    (0 pending, 1 open, 2 closed, 3 refused).
    """

    market: LendingMarket
    dates: pd.DatetimeIndex
    assets: tuple[str, ...]
    hf: np.ndarray
    daily: np.ndarray
    totals: np.ndarray
    events: pd.DataFrame
    state: np.ndarray
    positions: Positions
    final_coll_q: np.ndarray
    final_debt_q: np.ndarray
    rule: str = ""
    meta: dict = field(default_factory=dict)

    def daily_frame(self, column: str) -> pd.DataFrame:
        """Dates x assets frame of one :data:`DAY_COLUMNS` statistic."""
        return pd.DataFrame(self.daily[:, :, DAY_COLUMNS.index(column)], index=self.dates, columns=list(self.assets))

    def totals_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.totals, index=self.dates, columns=list(TOTAL_COLUMNS))

    def health_factors(self) -> pd.DataFrame:
        """Long table ``date, account, health_factor`` of open accounts (the health_factors.parquet)."""
        t, i = np.nonzero(np.isfinite(self.hf) | np.isinf(self.hf))
        return pd.DataFrame({"date": self.dates[t], "account": i.astype(np.int32), "health_factor": self.hf[t, i]})


def simulate(
    market: LendingMarket,
    panel: PricePanel,
    positions: Positions,
    impact: ImpactModel | None = None,
    *,
    start: int = 0,
    end: int | None = None,
    max_rounds: int = 20,
    ewma_lambda: float = 0.94,
    prices: MarketPrices | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> LendingResult:
    """Run the market over panel dates ``start..end`` (inclusive indices).

    Parameters
    ----------
    market : LendingMarket
    panel : PricePanel
    positions : Positions
        On ``market.names`` in that order.
    impact : ImpactModel, optional
        Price impact of the liquidators' fills (default square root, Y = 0.7).
    max_rounds : int
        Liquidations of one account per day at most (>= 1).
    prices : MarketPrices, optional
        Precomputed :func:`market_prices` (reused by the recommender).
    """
    if positions.assets != market.names:
        raise ValueError(f"positions are on {positions.assets}, the market on {market.names}: they must match")
    if int(max_rounds) < 1:
        raise ValueError(f"lending.max_rounds={max_rounds!r} must be >= 1")
    impact = impact if impact is not None else SquareRootImpact()
    mp = prices if prices is not None else market_prices(panel, market.names, ewma_lambda)
    end = mp.close.shape[0] - 1 if end is None else int(end)
    p = market.arrays()
    A = len(market.names)
    n = positions.n
    coll_q = positions.coll_q.astype(np.float64).copy()
    debt_q = positions.debt_q.astype(np.float64).copy()
    state = np.zeros(n, dtype=np.int8)
    state[positions.entry < start] = REFUSED  # an account must open inside the window
    tot_c = np.zeros(A)
    tot_d = np.zeros(A)
    Tw = end - start + 1
    hf = np.full((Tw, n), np.nan, dtype=np.float32)
    daily = np.zeros((Tw, A, len(DAY_COLUMNS)))
    totals = np.zeros((Tw, len(TOTAL_COLUMNS)))
    ev = np.zeros((max(n * min(int(max_rounds), 4), 64), len(EVENT_COLUMNS)))
    chunks = []
    aave = market.protocol == "aave_v3.3"
    euler = market.protocol == "euler_v2"
    hf_row = np.full(n, np.nan, dtype=np.float32)
    em = market.emode_arrays()
    emode = positions.emode_rows(market)
    iso_debt = np.zeros(A)
    iso_of = np.full(n, -1, dtype=np.int64)
    for w, t in enumerate(range(start, end + 1)):
        live = np.isfinite(mp.close[t]) & (mp.close[t] > 0)
        state_t = AssetState(market.names, mp.sigma[t], np.where(live, mp.volume[t], 0.0), mp.volume[t])
        k_imp, a_imp = impact_power_law(impact, state_t)
        k_imp = np.where([a == STABLE for a in market.names], 0.0, k_imp)
        hf_row.fill(np.nan)
        m = _day(t, live, np.nan_to_num(mp.close[t], nan=1.0), np.nan_to_num(mp.low[t], nan=1.0),
                 np.nan_to_num(mp.high[t], nan=1.0), k_imp, a_imp, impact.max_move, em["lt"], em["ltv"], em["lb"],
                 em["borrowable"], emode, p["protocol_fee"], p["collateral"], p["supply_cap"], p["borrow_cap"],
                 p["debt_ceiling"], p["borrowable_in_isolation"], iso_debt, iso_of, coll_q, debt_q,
                 positions.entry, positions.exit, state, tot_c, tot_d, aave, euler, market.max_discount,
                 market.close_factor,
                 market.close_factor_hf, market.full_close_usd, market.min_leftover_usd, market.gas_usd,
                 int(max_rounds), hf_row, ev, daily[w], totals[w])
        hf[w] = hf_row
        if m:
            chunks.append(ev[:m].copy())
            if m == ev.shape[0]:
                ev = np.zeros((2 * ev.shape[0], len(EVENT_COLUMNS)))  # grown for the next days
        if progress is not None and (w % 250 == 0 or t == end):
            progress("lending", w + 1, Tw)
    evs = np.concatenate(chunks) if chunks else np.zeros((0, len(EVENT_COLUMNS)))
    events = pd.DataFrame(evs, columns=list(EVENT_COLUMNS))
    names = np.array(market.names, dtype=object)
    events = events.assign(
        date=mp.dates[events["t"].to_numpy(dtype=np.int64)] if len(events) else pd.DatetimeIndex([]),
        account=events["account"].astype(np.int64),
        debt_asset=names[events["debt_asset"].to_numpy(dtype=np.int64)],
        collateral_asset=names[events["collateral_asset"].to_numpy(dtype=np.int64)],
    ).drop(columns="t")
    rule = (f"{market.protocol}: close factor {market.close_factor:g} (1 at HF <= {market.close_factor_hf:g} "
            f"or reserve < ${market.full_close_usd:,.0f})" if aave else
            f"{market.protocol}: no close factor, bonus 1 / max(HF, {1 - market.max_discount:g})" if euler else
            f"{market.protocol}: no close factor, LIF") + \
        f"; impact {impact!r}; gas ${market.gas_usd:g}; adverse prices (low/high)"
    return LendingResult(market, mp.dates[start : end + 1], market.names, hf, daily, totals, events, state, positions,
                         coll_q, debt_q, rule, {"last_close": np.nan_to_num(mp.close[end], nan=0.0)})
