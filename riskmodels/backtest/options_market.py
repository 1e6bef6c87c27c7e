"""The option positions of a book on a panel, date by date: marks, hedges, the realised MPOR loss.

:class:`OptionMarket` answers, for a date index ``t``, which positions are
held after its close, their years to expiry and implied vols (from the vol
source, data up to ``t``), their Black-76 marks and the delta hedge of the
hedged ones; all vectorised over positions (no Python loop over positions
or accounts).

Conventions (README "Options")
------------------------------
* A position is **held** after the close of ``t`` when its trade date is
  ``<= t`` and its expiry ``> t``; it **settles** at the close of its expiry
  date at intrinsic value ``max(+-(S - K), 0)`` (the Black-76 price at
  ``tau = 0``) and leaves the book.
* **Marks** ``V = black76.price(S_t, K, tau_t, iv_t)``, ``tau`` in 365-day
  years, ``iv_t = vol.iv(t, ...)``; an IV that is NaN or ``<= 0`` for a held
  position is a :class:`~riskmodels.errors.UserError` naming the position and
  the date (a file without a quote for it, or a proxy without enough history).
* **Delta hedge** of a hedged position: a perp of ``-q delta`` units on its
  underlying, re-set at every close from that close's delta.
* **Realised MPOR loss** of the coverage backtest, account ``p`` held at date
  ``t``::

      L[t, p] = L_linear[t, p] - sum_{i held at t} q_i (V_i(u_i) - V_i(t)) - hedge P&L,
      u_i = min(t + h, expiry_i)

  the linear part at constant USD notional (:func:`~riskmodels.backtest.coverage.realised_loss`),
  the options at fixed contracts valued at ``t + h`` with that date's spot
  and IV (an option expiring inside the MPOR at its settlement value), the
  hedge fixed at ``t``'s units over the MPOR. NaN where a price is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.errors import UserError
from riskmodels.instruments import black76
from riskmodels.instruments.options import (
    DAYS_PER_YEAR,
    MIN_VOL,
    OptionState,
    OptionTable,
    VolSource,
)

__all__ = ["OptionMarket"]


class OptionMarket:
    """A book's option table on a panel with a vol source (module docstring)."""

    def __init__(self, panel: PricePanel, table: OptionTable, vol: VolSource) -> None:
        self.panel = panel
        self.table = table.align(panel.assets)
        self.vol = vol
        dates = panel.dates.values.astype("datetime64[D]")
        self.dates = dates
        tab = self.table
        # index of the first panel date >= trade (NaT: 0) and of the expiry date (T if after the data)
        self.trade_idx = np.where(np.isnat(tab.trade), 0, np.searchsorted(dates, tab.trade, side="left"))
        self.expiry_idx = np.searchsorted(dates, tab.expiry, side="left")
        self.close = np.where(np.isfinite(panel.close), panel.close, np.nan)

    def __len__(self) -> int:
        return len(self.table)

    # ------------------------------------------------------------ per date
    def held(self, t: int) -> np.ndarray:
        """``(n,)`` bool: held after the close of ``t``."""
        return (self.trade_idx <= t) & (self.expiry_idx > t)

    def tau(self, t: int, idx: np.ndarray) -> np.ndarray:
        return (self.table.expiry[idx] - self.dates[t]).astype(np.float64) / DAYS_PER_YEAR

    def iv(self, t: int, idx: np.ndarray, tau: np.ndarray | None = None, spot: np.ndarray | None = None) -> np.ndarray:
        """``(len(idx),)`` IVs at ``t`` (checked for positions with ``tau > 0``)."""
        tab = self.table
        tau = self.tau(t, idx) if tau is None else tau
        spot = self.close[t] if spot is None else spot
        if idx.size == 0:
            return np.zeros(0)
        iv = np.asarray(self.vol.iv(t, tab.asset[idx], tau, tab.strike[idx], spot), dtype=np.float64)
        bad = (tau > 0) & ~(iv > 0)
        if bad.any():
            i = int(idx[np.flatnonzero(bad)[0]])
            raise UserError(
                f"option {tab.ids[i]}: implied vol {iv[np.flatnonzero(bad)[0]]} on {self.dates[t]} is NaN or <= 0 "
                f"({self.vol.label}); give the IV file a quote for {tab.assets[tab.asset[i]]} on that date, set "
                "[options] vol_fallback = \"proxy\", or start the backtest later (the proxy needs history)")
        # an option in its expiry day (tau <= 0, priced at intrinsic) keeps a positive vol for the margin methods
        return np.where(tau > 0, iv, np.where(iv > 0, iv, MIN_VOL))

    def unit_marks(self, t: int, idx: np.ndarray, spot: np.ndarray | None = None,
                   iv: np.ndarray | None = None) -> np.ndarray:
        """``(len(idx),)`` Black-76 price per contract at ``t`` (spot ``(A,)``, default the close)."""
        tab = self.table
        spot = self.close[t] if spot is None else spot
        tau = self.tau(t, idx)
        iv = self.iv(t, idx, tau) if iv is None else iv
        return black76.price(spot[tab.asset[idx]], tab.strike[idx], tau, np.where(tau > 0, iv, 1.0),
                             tab.is_call[idx])

    def state(self, t: int, idx: np.ndarray, account_map: np.ndarray, spot: np.ndarray,
              iv: np.ndarray | None = None) -> OptionState:
        """The :class:`OptionState` of positions ``idx`` at ``t`` with accounts renumbered by ``account_map``."""
        sub = self.table.subset(idx).with_accounts(account_map[self.table.account[idx]])
        tau = self.tau(t, idx)
        return OptionState(sub, tau, self.iv(t, idx, tau) if iv is None else iv, spot, self.vol)

    def hedge_units(self, t: int, idx: np.ndarray, n_accounts: int, spot: np.ndarray, iv: np.ndarray,
                    account_map: np.ndarray | None = None) -> np.ndarray:
        """``(N, A)`` perp units hedging the deltas of the hedged positions among ``idx`` at ``t``."""
        tab = self.table
        A = len(tab.assets)
        out = np.zeros((n_accounts, A))
        h = idx[tab.hedged[idx]]
        if h.size == 0:
            return out
        sel = tab.hedged[idx]
        tau = self.tau(t, h)
        d = black76.greeks(spot[tab.asset[h]], tab.strike[h], tau, np.where(tau > 0, iv[sel], 1.0),
                           tab.is_call[h]).delta
        acc = tab.account[h] if account_map is None else account_map[tab.account[h]]
        np.add.at(out, (acc, tab.asset[h]), -tab.quantity[h] * d)
        return out

    # ------------------------------------------------------------ coverage loss
    def loss_parts(self, book_linear: np.ndarray, h: int, start: int, end: int,
                   eligible: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``{"option", "hedge"}``: ``(end - start + 1, P)`` MPOR losses of the options and their hedges.

        ``book_linear`` is unused but for its shape ``(P, A)``. Loss positive;
        NaN where a price at ``t`` or ``t + h`` is missing or ``t + h`` is after the data.
        ``eligible`` (rows ``start..end`` x accounts, optional) limits the
        revaluation to the accounts priced on each date. Also sets ``mean_notional``: ``(P,)`` the mean over the window's dates
        (where any is held) of the held options' underlying notional ``sum |q| S``.
        """
        P = book_linear.shape[0]
        T = self.panel.n_dates
        tab = self.table
        n_rows = end - start + 1
        opt = np.zeros((n_rows, P))
        hed = np.zeros((n_rows, P))
        notional = np.zeros(P)  # sum over dates of the held options' underlying notional |q| S
        days = np.zeros(P)
        C = self.close
        for t in range(start, end + 1):  # dates, vectorised over positions
            r = t - start
            held = self.held(t) if eligible is None else self.held(t) & eligible[r][tab.account]
            idx = np.flatnonzero(held)
            if t + h > T - 1:
                opt[r] = np.nan
                hed[r] = np.nan
                continue
            if idx.size == 0:
                continue
            nt = np.bincount(tab.account[idx], weights=np.abs(tab.quantity[idx]) * C[t, tab.asset[idx]], minlength=P)
            notional += np.where(np.isfinite(nt), nt, 0.0)
            days += nt > 0
            iv0 = self.iv(t, idx)
            v0 = self.unit_marks(t, idx, iv=iv0)
            u = np.minimum(t + h, self.expiry_idx[idx])
            v1 = np.empty(idx.size)
            for uu in np.unique(u):  # at most h distinct dates
                m = u == uu
                v1[m] = self.unit_marks(int(uu), idx[m])
            pnl = tab.quantity[idx] * (v1 - v0)
            acc = tab.account[idx]
            opt[r] = -np.bincount(acc, weights=np.where(np.isfinite(pnl), pnl, 0.0), minlength=P)
            bad = np.bincount(acc, weights=(~np.isfinite(pnl)).astype(float), minlength=P) > 0
            hu = self.hedge_units(t, idx, P, C[t], iv0)
            move = C[t + h] - C[t]
            hp = np.where(hu != 0, hu * np.where(np.isfinite(move), move, np.nan), 0.0)
            hed[r] = -hp.sum(axis=1)
            opt[r, bad] = np.nan
        with np.errstate(invalid="ignore"):
            self.mean_notional = np.where(days > 0, notional / np.maximum(days, 1), 0.0)
        return {"option": opt, "hedge": hed}

    def delta_side(self, collateral: np.ndarray, positions: np.ndarray, eligible: np.ndarray,
                   offset: int = 0) -> np.ndarray:
        """``(P,)`` sign of each account's total USD delta (linear + options + hedge) at its first priced date.

        ``eligible`` holds the rows of panel dates ``offset, offset + 1, ...``.
        """
        P = collateral.shape[0]
        first = np.where(eligible.any(axis=0), eligible.argmax(axis=0) + offset, -1)
        delta = (collateral + positions).sum(axis=1)
        tab = self.table
        for t in np.unique(first[first >= 0]):  # distinct first dates (a handful)
            idx = np.flatnonzero(self.held(int(t)) & (first[tab.account] == t))
            if idx.size == 0:
                continue
            S = self.close[int(t)]
            iv = self.iv(int(t), idx)
            tau = self.tau(int(t), idx)
            g = black76.greeks(S[tab.asset[idx]], tab.strike[idx], tau, np.where(tau > 0, iv, 1.0), tab.is_call[idx])
            usd = tab.quantity[idx] * g.delta * S[tab.asset[idx]]
            usd = np.where(tab.hedged[idx], 0.0, usd)  # a hedged position's delta is offset by its perp
            delta += np.bincount(tab.account[idx], weights=usd, minlength=P)
        return np.sign(delta).astype(np.int8)


def instrument_rows(parts: dict[str, np.ndarray], valid: np.ndarray, exceptions: np.ndarray) -> pd.DataFrame:
    """Per instrument type: mean |MPOR P&L| on valid cells and its share of the loss on exception cells.

    ``parts`` maps ``spot`` (collateral), ``perp`` (perps and the options'
    delta hedges) and ``option`` to ``(T, P)`` MPOR losses that add up to the
    coverage loss; ``loss_on_exceptions`` sums each over the exception cells
    (a hedge or a long leg can contribute a gain, i.e. a negative share).
    """
    rows = []
    tot_exc = sum(np.nansum(np.where(exceptions, v, 0.0)) for v in parts.values())
    for name, v in parts.items():
        vv = np.where(valid, v, np.nan)
        rows.append({"instrument": name, "mean_abs_mpor_pnl": float(np.nanmean(np.abs(vv))) if valid.any() else np.nan,
                     "loss_on_exceptions": float(np.nansum(np.where(exceptions, v, 0.0))),
                     "share_of_exception_loss": float(np.nansum(np.where(exceptions, v, 0.0)) / tot_exc)
                     if tot_exc else np.nan})
    return pd.DataFrame(rows)
