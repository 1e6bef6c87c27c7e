"""Seeded option books: the strategies crypto option traders run, on a listed expiry schedule.

:func:`generate_option_book` gives a share of a book's accounts one option
strategy each, drawn from a documented mix, on one underlying (BTC or ETH by
default), sized to a log-normal USD notional. Strategies (legs per unit of
``q = notional / S``, ``S`` the underlying's close at the trade date)::

    covered_call            spot collateral q, short call  K = S (1 + otm)
    short_strangle          short put K = S (1 - otm), short call K = S (1 + otm)
    delta_hedged_straddle   short call + short put at K = S, delta hedged with a perp at every close
    calendar_spread         short call at K = S on the near expiry, long call at K on the next monthly
    put_protection          spot collateral q, long put K = S (1 - otm)

Default mix (``DEFAULT_MIX``): covered calls 25%, short strangles 25%, put
protection 20%, delta-hedged straddles 15%, calendar spreads 15% - an
assumption in the spirit of the flows Deribit reports (overwriting and
put buying by holders, premium selling by funds), not a measured split.

Strikes: ``strike_by = "moneyness"`` puts OTM legs at ``S (1 +- otm)``
(default 10%); ``"delta"`` at the call delta ``1 - otm_delta`` (puts) and
``otm_delta`` (calls) through Black-76 with the vol source's ATM vol at the
trade date (default 25-delta). ATM legs are at ``S``. Strikes are rounded to
a listed grid: ``10^(floor(log10 S) - 1) / 2`` (BTC at 45,000: 500; ETH at
3,000: 50).

Expiries: ``schedule = "monthly"`` lists the last Friday of each month
(Deribit's monthly expiries), ``"weekly"`` every Friday; a leg takes the
listed expiry nearest to ``tenor_days`` after its trade date among those at
least 7 days away (monthly, 30 days: 16 to ~45 days); a calendar's far leg
the next monthly expiry after its near leg.

Rolling (``roll = True``): when a strategy's legs expire (a calendar: when
its far leg does) it is traded again at that close with strikes from that
close's spot, at the same USD notional, until ``end``; ``roll = False``
trades it once. At the close of its expiry date an option settles at
intrinsic value in cash and leaves the book (the backtest does this).

The trades at date ``d`` use prices (and vols) up to ``d`` only, so the
book up to any date is the same whatever happens after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

from riskmodels.data.panel import PricePanel
from riskmodels.instruments.options import DAYS_PER_YEAR, OptionTable, VolSource
from riskmodels.portfolio import Book

STRATEGIES = ("covered_call", "short_strangle", "delta_hedged_straddle", "calendar_spread", "put_protection")
DEFAULT_MIX: dict[str, float] = {"covered_call": 0.25, "short_strangle": 0.25, "put_protection": 0.20,
                                 "delta_hedged_straddle": 0.15, "calendar_spread": 0.15}
SCHEDULES = ("monthly", "weekly")

__all__ = ["DEFAULT_MIX", "SCHEDULES", "STRATEGIES", "generate_option_book", "listed_expiries", "strike_grid"]


def listed_expiries(first: pd.Timestamp, last: pd.Timestamp, schedule: str) -> np.ndarray:
    """``datetime64[D]`` listed expiries from ``first`` to beyond ``last``: last Fridays (monthly) or Fridays."""
    if schedule not in SCHEDULES:
        raise ValueError(f"options schedule = {schedule!r} must be one of {', '.join(SCHEDULES)}")
    days = pd.date_range(pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize() + pd.Timedelta(days=130),
                         freq="D")
    fri = days[days.day_of_week == 4]
    if schedule == "weekly":
        return fri.values.astype("datetime64[D]")
    s = pd.Series(fri, index=fri)
    return s.groupby([fri.year, fri.month]).max().to_numpy().astype("datetime64[D]")


def strike_grid(spot: np.ndarray) -> np.ndarray:
    """Listed strike step ``10^(floor(log10 S) - 1) / 2`` per spot (module docstring)."""
    return 10.0 ** (np.floor(np.log10(spot)) - 1.0) / 2.0


def _round_strike(k: np.ndarray, spot: np.ndarray) -> np.ndarray:
    step = strike_grid(spot)
    return np.maximum(np.round(k / step) * step, step)


#: a leg is never listed on an expiry nearer than this many days to its trade date
MIN_TENOR_DAYS = 7


def _next_expiry(listed: np.ndarray, after: np.datetime64, tenor_days: float) -> np.datetime64:
    """The listed expiry nearest to ``after + tenor_days`` among those at least :data:`MIN_TENOR_DAYS` away."""
    ok = listed[listed >= after + np.timedelta64(MIN_TENOR_DAYS, "D")]
    target = after + np.timedelta64(round(tenor_days), "D")
    return ok[int(np.argmin(np.abs((ok - target).astype(np.int64))))]


def generate_option_book(
    panel: PricePanel,
    base: Book,
    vol: VolSource,
    *,
    seed: int = 0,
    start: int = 0,
    end: int | None = None,
    mix: Mapping[str, float] | None = None,
    underlyings: Sequence[str] = ("BTC", "ETH"),
    share: float = 1.0,
    median_notional: float = 50_000.0,
    notional_sigma: float = 1.0,
    strike_by: str = "moneyness",
    otm: float = 0.10,
    otm_delta: float = 0.25,
    schedule: str = "monthly",
    tenor_days: float = 30.0,
    roll: bool = True,
    keep_linear: bool = False,
    strategies_per_account: Sequence[int] = (1, 1),
) -> Book:
    """``base`` with option strategies for a seeded share of its accounts (module docstring).

    Parameters
    ----------
    panel : PricePanel
        Closes at the trade dates (strikes, sizes) and the dates.
    base : Book
        The accounts (e.g. :func:`~riskmodels.portfolio.generate_book`).
    vol : VolSource
        ATM vol at the trade date for ``strike_by = "delta"``.
    start, end : int
        Date indices of the first trade and of the last possible roll.
    share : float
        Share of accounts given a strategy, [0, 1].
    keep_linear : bool
        Option accounts keep the base book's perps and collateral (True) or
        hold only their strategies' spot legs and cash (False, default).
    strategies_per_account : (int, int)
        Each option account runs ``U{lo..hi}`` strategies, each drawn from
        the mix with its own underlying and notional; default ``(1, 1)``
        (five strategies of up to two legs: ``(5, 5)`` holds up to 10 options).
    """
    mix = dict(DEFAULT_MIX if mix is None else mix)
    bad = sorted(set(mix) - set(STRATEGIES))
    if bad:
        raise ValueError(f"options strategies {bad} are unknown; valid: {', '.join(STRATEGIES)}")
    w = np.array([max(float(mix.get(s, 0.0)), 0.0) for s in STRATEGIES])
    if not w.sum() > 0:
        raise ValueError(f"options strategies {mix} give no strategy a positive weight")
    if strike_by not in ("moneyness", "delta"):
        raise ValueError(f"options strike_by = {strike_by!r} must be moneyness or delta")
    if not 0 <= share <= 1 or not 0 < otm < 1 or not 0 < otm_delta < 0.5 or not tenor_days >= 1:
        raise ValueError(f"options share={share} must be in [0, 1], otm={otm} in (0, 1), otm_delta={otm_delta} "
                         f"in (0, 0.5), tenor_days={tenor_days} >= 1")
    base = base.align(panel.assets)
    unders = [a for a in underlyings if a in panel.assets]
    if not unders:
        raise ValueError(f"options underlyings {list(underlyings)} are not among the panel's assets {panel.assets}")
    end = panel.n_dates - 1 if end is None else end
    rng = np.random.default_rng(seed)
    P = base.n_accounts
    lo, hi = (int(x) for x in strategies_per_account)
    if not 1 <= lo <= hi <= 20:
        raise ValueError(f"options strategies_per_account = {list(strategies_per_account)} must be [lo, hi] with "
                         "1 <= lo <= hi <= 20")
    has = rng.random(P) < share
    n_strat = rng.integers(lo, hi + 1, size=P)
    und_ix = np.array([panel.assets.index(a) for a in unders])
    slots = [(has & (n_strat > j), rng.choice(len(STRATEGIES), size=P, p=w / w.sum()),
              und_ix[rng.integers(0, len(unders), size=P)],
              median_notional * np.exp(notional_sigma * rng.standard_normal(P))) for j in range(hi)]
    notional = slots[0][3]
    dates = panel.dates.values.astype("datetime64[D]")
    listed = listed_expiries(panel.dates[start], panel.dates[end], schedule)
    monthly = listed if schedule == "monthly" else listed_expiries(panel.dates[start], panel.dates[end], "monthly")
    C = panel.close

    legs: list[tuple[np.ndarray, ...]] = []  # (account, asset, is_call, strike, expiry, qty, trade, hedged)
    coll, pos, cash = base.collateral.copy(), base.positions.copy(), base.cash.copy()
    if not keep_linear:  # option accounts hold their strategy only (cash is re-sized by the simulation)
        coll[has], pos[has], cash[has] = 0.0, 0.0, 0.2 * notional[has]
    for (active, strat, und, notional), s_idx in ((slot, i) for slot in slots for i in range(len(STRATEGIES))):
        name = STRATEGIES[s_idx]
        acc = np.flatnonzero(active & (strat == s_idx))
        if acc.size == 0:
            continue
        for a in np.unique(und[acc]):
            rows = acc[und[acc] == a]
            if name in ("covered_call", "put_protection"):
                coll[rows, a] += notional[rows]  # the spot leg: constant USD, as every collateral
            t = start
            while t <= end:  # one trade per roll cycle, vectorised over the strategy's accounts
                S = C[t, a]
                if not np.isfinite(S):
                    t += 1
                    continue
                d = dates[t]
                near = _next_expiry(listed, d, tenor_days)
                far = monthly[np.searchsorted(monthly, near, side="right")] if name == "calendar_spread" else near
                q = notional[rows] / S
                tau = float((near - d).astype(float)) / DAYS_PER_YEAR
                sig = float(vol.atm()[t, a]) if strike_by == "delta" else np.nan
                if strike_by == "delta" and not np.isfinite(sig):
                    raise ValueError(f"options strike_by = \"delta\" needs an ATM vol for {panel.assets[a]} on "
                                     f"{d}; use strike_by = \"moneyness\" or start later")

                def k_at(call_delta: float, m: float, S: float = S, sig: float = sig, tau: float = tau) -> float:
                    if strike_by == "moneyness":
                        return S * m
                    return S * float(np.exp(-sig * np.sqrt(tau) * ndtri(call_delta) + 0.5 * sig * sig * tau))

                spec: list[tuple[bool, float, float, np.datetime64, bool]] = []  # call, K, sign, expiry, hedged
                if name == "covered_call":
                    spec = [(True, k_at(otm_delta, 1 + otm), -1.0, near, False)]
                elif name == "short_strangle":
                    spec = [(False, k_at(1 - otm_delta, 1 - otm), -1.0, near, False),
                            (True, k_at(otm_delta, 1 + otm), -1.0, near, False)]
                elif name == "delta_hedged_straddle":
                    spec = [(True, S, -1.0, near, True), (False, S, -1.0, near, True)]
                elif name == "calendar_spread":
                    spec = [(True, S, -1.0, near, False), (True, S, 1.0, far, False)]
                else:  # put_protection
                    spec = [(False, k_at(1 - otm_delta, 1 - otm), 1.0, near, False)]
                for call, k, sign, exp, hedged in spec:
                    n = rows.size
                    legs.append((rows, np.full(n, a), np.full(n, call), np.full(n, float(_round_strike(
                        np.array([k]), np.array([S]))[0])), np.full(n, exp), sign * q, np.full(n, d),
                        np.full(n, hedged)))
                if not roll:
                    break
                roll_at = far  # rolls when the last leg expires
                nxt = int(np.searchsorted(dates, roll_at, side="left"))
                if nxt >= len(dates) or dates[nxt] != roll_at or nxt > end:
                    break
                t = nxt
    if legs:
        cols = [np.concatenate([leg[i] for leg in legs]) for i in range(8)]
        order = np.lexsort((cols[4], cols[6], cols[0]))  # by account, trade date, expiry
        cols = [c[order] for c in cols]
        ids = tuple(f"{base.account_ids[p]} {panel.assets[a]} {'call' if c else 'put'} {k:g} {e}"
                    for p, a, c, k, e in zip(cols[0], cols[1], cols[2], cols[3], cols[4], strict=True))
        opt = OptionTable(panel.assets, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], ids, cols[6], cols[7])
    else:
        opt = OptionTable.empty(panel.assets)
    return Book(panel.assets, coll, pos, cash, base.isolated, base.account_ids, base.group, opt)
