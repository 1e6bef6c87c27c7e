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
from riskmodels.lending._kernel import DAY_COLUMNS, EVENT_COLUMNS, REFUSED, TOTAL_COLUMNS, _day
from riskmodels.lending.market import STABLE, LendingMarket

__all__ = ["DAY_COLUMNS", "EVENT_COLUMNS", "TOTAL_COLUMNS", "LendingResult", "MarketPrices", "Positions", "impact_power_law",
           "market_prices", "simulate"]



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


@dataclass(frozen=True, eq=False)
class LendingResult:
    """Everything the daily simulation produced (see :mod:`riskmodels.lending.metrics`).

    ``hf``: ``(T_w, n)`` float32 health factor at the close (NaN when the
    account is not open, ``inf`` without debt); ``toxic``: ``(T_w, n)`` bool
    toxic flag at the close; ``daily``: ``(T_w, A, C)``
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
    toxic: np.ndarray | None = None

    def daily_frame(self, column: str) -> pd.DataFrame:
        """Dates x assets frame of one :data:`DAY_COLUMNS` statistic."""
        return pd.DataFrame(self.daily[:, :, DAY_COLUMNS.index(column)], index=self.dates, columns=list(self.assets))

    def totals_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.totals, index=self.dates, columns=list(TOTAL_COLUMNS))

    def health_factors(self) -> pd.DataFrame:
        """Long table ``date, account, health_factor, toxic`` of open account-days (health_factors.parquet).

        ``toxic``: ``D / C > 1 / LB`` of the account's largest collateral at the close (no liquidation
        can bring it back to health, :func:`riskmodels.lending.health.toxic`).
        """
        t, i = np.nonzero(~np.isnan(self.hf))
        tox = self.toxic[t, i] if self.toxic is not None else np.zeros(len(t), dtype=bool)
        return pd.DataFrame({"date": self.dates[t], "account": i.astype(np.int32), "health_factor": self.hf[t, i],
                             "toxic": tox})


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
    toxic = np.zeros((Tw, n), dtype=np.bool_)
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
                 int(max_rounds), hf_row, toxic[w], ev, daily[w], totals[w])
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
                         coll_q, debt_q, rule, {"last_close": np.nan_to_num(mp.close[end], nan=0.0)}, toxic)
