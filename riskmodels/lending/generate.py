"""Seeded borrower positions, and real positions from a CSV file.

Generated population (:class:`BorrowerGenerator`; every draw from
``numpy.random.default_rng(seed)``):

* **Entry date** uniform over the window's dates; **holding period**
  exponential with mean ``mean_holding_days`` (at least 1 day); the account
  repays at the close of its exit date if healthy.
* **Kind**: with probability ``short_share`` the account supplies the
  stablecoin ``USD`` and borrows a volatile asset (a short); otherwise it
  supplies one volatile asset (a second one with probability
  ``second_collateral_prob``, taking a uniform share of the value) and
  borrows ``USD``. Volatile assets are drawn among the market's reserves
  trading at the entry date, weighted by ``weights`` (default: equal).
* **Size**: collateral value lognormal, median ``size_median_usd``, log
  standard deviation ``size_sigma``.
* **E-mode**: a long account whose collateral all lies in an e-mode
  category that may borrow ``USD`` enters it with probability
  ``emode_share`` (default 0) and borrows against the category's LTV.
  Isolated collateral (``debt_ceiling > 0``) is never paired with a second
  collateral.
* **Borrow usage** ``u ~ Beta(usage_a, usage_b)`` of the borrowing power:
  ``debt = u x sum(collateral x LTV)``, so an account opens at or below its
  LTV and its **HF at entry** is ``LT_eff / (u LTV_eff)`` (at least
  ``LT / LTV``; with Beta(4, 2), mean usage 2/3, the median HF at entry of a
  LTV 0.80 / LT 0.83 reserve is about 1.5).

Real positions (:func:`read_positions_csv`): columns ``account, asset,
side`` (``supply`` or ``borrow``), ``amount`` (tokens) and optionally
``entry_date``, ``exit_date`` (default: the window's first and last date).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodels.lending.market import STABLE, LendingMarket
from riskmodels.lending.simulate import MarketPrices, Positions

__all__ = ["BorrowerGenerator", "read_positions_csv"]


@dataclass(frozen=True)
class BorrowerGenerator:
    """Seeded generator of borrower positions (distributions in the module docstring)."""

    accounts: int = 1000
    seed: int = 7
    short_share: float = 0.15
    second_collateral_prob: float = 0.3
    size_median_usd: float = 25_000.0
    size_sigma: float = 1.5
    usage_a: float = 4.0
    usage_b: float = 2.0
    mean_holding_days: float = 180.0
    emode_share: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "accounts": (self.accounts >= 1, ">= 1"),
            "short_share": (0.0 <= self.short_share <= 1.0, "in [0, 1]"),
            "second_collateral_prob": (0.0 <= self.second_collateral_prob <= 1.0, "in [0, 1]"),
            "size_median_usd": (self.size_median_usd > 0, "> 0"),
            "size_sigma": (0.0 <= self.size_sigma <= 5.0, "in [0, 5]"),
            "usage_a": (self.usage_a > 0, "> 0"),
            "usage_b": (self.usage_b > 0, "> 0"),
            "mean_holding_days": (self.mean_holding_days >= 1, ">= 1"),
            "emode_share": (0.0 <= self.emode_share <= 1.0, "in [0, 1]"),
        }
        for k, (ok, rule) in checks.items():
            if not ok:
                raise ValueError(f"lending.generator.{k}={getattr(self, k)!r} must be {rule}")

    def generate(self, market: LendingMarket, prices: MarketPrices, start: int, end: int,
                 weights: dict[str, float] | None = None) -> Positions:
        """Positions on ``market.names`` entering between panel dates ``start`` and ``end``."""
        rng = np.random.default_rng(self.seed)
        n = int(self.accounts)
        names = market.names
        A = len(names)
        p = market.arrays()
        vol_idx = np.array([i for i, a in enumerate(names) if a != STABLE])
        stable = names.index(STABLE) if STABLE in names else -1
        w = np.array([float((weights or {}).get(names[i], 1.0)) for i in vol_idx])
        entry = rng.integers(start, end + 1, size=n)
        hold = np.maximum(1, np.round(rng.exponential(self.mean_holding_days, size=n))).astype(np.int64)
        exit_ = entry + hold
        short = rng.random(n) < self.short_share if stable >= 0 else np.zeros(n, dtype=bool)
        second = rng.random(n) < self.second_collateral_prob
        share = rng.random(n)
        size = self.size_median_usd * np.exp(self.size_sigma * rng.standard_normal(n))
        usage = rng.beta(self.usage_a, self.usage_b, size=n)
        u1, u2 = rng.random(n), rng.random(n)
        px = prices.close[entry][:, vol_idx]  # (n, V) entry-day closes
        live = np.isfinite(px) & (px > 0)

        def pick(u: np.ndarray, ok: np.ndarray) -> np.ndarray:
            cw = np.cumsum(np.where(ok, w, 0.0), axis=1)
            tot = cw[:, -1:]
            k = (cw < u[:, None] * tot).sum(axis=1)
            return np.where(tot[:, 0] > 0, np.minimum(k, ok.shape[1] - 1), -1)

        first = pick(u1, live & p["collateral"][vol_idx] & ~short[:, None]
                     | (live & p["borrowable"][vol_idx] & short[:, None]))
        other = live & p["collateral"][vol_idx]
        other[np.arange(n), np.maximum(first, 0)] = False
        sec = np.where(second & ~short, pick(u2, other), -1)
        coll_usd = np.zeros((n, A))
        debt_usd = np.zeros((n, A))
        rows = np.arange(n)
        ok = first >= 0
        a1 = vol_idx[np.maximum(first, 0)]
        lt_share = np.where((sec >= 0) & (p["debt_ceiling"][a1] == 0)
                            & (p["debt_ceiling"][vol_idx[np.maximum(sec, 0)]] == 0), share, 1.0)
        long_ = ok & ~short
        coll_usd[rows[long_], a1[long_]] = size[long_] * lt_share[long_]
        a2 = vol_idx[np.maximum(sec, 0)]
        has2 = long_ & (sec >= 0) & (p["debt_ceiling"][a1] == 0) & (p["debt_ceiling"][a2] == 0)
        coll_usd[rows[has2], a2[has2]] += size[has2] * (1.0 - lt_share[has2])
        sh = ok & short
        if stable >= 0:
            coll_usd[rows[sh], stable] = size[sh]
        # e-mode: a long account whose collateral all lies in a category that lets it borrow USD enters it
        # with probability emode_share and borrows against the category's LTV
        cat = np.zeros(n, dtype=np.int64)
        u_em = rng.random(n)
        em = market.emode_arrays()
        for r, c in enumerate(market.emode.values(), start=1):
            inside = np.array([a in c.collateral for a in names])
            fits = long_ & ~((coll_usd > 0) & ~inside).any(axis=1) & (STABLE in c.borrowable) & (cat == 0)
            cat[fits & (u_em < self.emode_share)] = r
        power = np.einsum("na,na->n", coll_usd, em["ltv"][cat])
        debt = usage * power
        if stable >= 0:
            debt_usd[rows[long_], stable] = debt[long_]
        debt_usd[rows[sh], a1[sh]] = debt[sh]
        pxa = np.ones((n, A))
        pxa[:, vol_idx] = np.where(live, px, 1.0)
        coll_q = coll_usd / pxa
        debt_q = debt_usd / pxa
        entry = np.where(ok, entry, -1)  # no asset trading: never opens
        cats = ("", *market.emode)
        emode = tuple(cats[c] for c in cat) if market.emode else None
        return Positions(names, coll_q, debt_q, entry.astype(np.int64), exit_.astype(np.int64), emode)


def read_positions_csv(path: str | Path, market: LendingMarket, dates: pd.DatetimeIndex, start: int,
                       end: int) -> Positions:
    """Real positions from ``path`` (columns in the module docstring); bad rows raise naming row and value."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"positions file not found: {p}")
    df = pd.read_csv(p)
    need = {"account", "asset", "side", "amount"}
    if need - set(df.columns):
        raise ValueError(f"{p}: missing column(s) {sorted(need - set(df.columns))}; need {sorted(need)} "
                         "(+ optional entry_date, exit_date)")
    names = market.names
    accounts = {a: i for i, a in enumerate(dict.fromkeys(df["account"].astype(str)))}
    n = len(accounts)
    coll = np.zeros((n, len(names)))
    debt = np.zeros((n, len(names)))
    entry = np.full(n, start, dtype=np.int64)
    exit_ = np.full(n, end + 1, dtype=np.int64)
    for r, row in enumerate(df.itertuples(index=False), start=2):
        where = f"{p}, row {r}"
        if row.asset not in names:
            raise ValueError(f"{where}: asset {row.asset!r} is not a reserve of the market ({', '.join(names)})")
        if row.side not in ("supply", "borrow"):
            raise ValueError(f"{where}: side {row.side!r} must be 'supply' or 'borrow'")
        amt = pd.to_numeric(row.amount, errors="coerce")
        if not np.isfinite(amt) or amt < 0:
            raise ValueError(f"{where}: amount {row.amount!r} must be a number >= 0 (tokens)")
        i = accounts[str(row.account)]
        (coll if row.side == "supply" else debt)[i, names.index(row.asset)] += float(amt)
        for col, arr, default in (("entry_date", entry, start), ("exit_date", exit_, end + 1)):
            v = getattr(row, col, None)
            if v is not None and isinstance(v, str) and v:
                try:
                    arr[i] = int(dates.searchsorted(pd.Timestamp(v)))
                except ValueError:
                    raise ValueError(f"{where}: {col} {v!r} is not a date (YYYY-MM-DD)") from None
            elif arr[i] != default:
                pass
    return Positions(names, coll, debt, entry, exit_)
