"""The option table of a book and its full revaluation under scenarios.

An :class:`OptionTable` lists European, cash-settled, USD-linear option
positions (see :mod:`riskmodels.instruments.black76` for the conventions),
one row per position, keyed by the index of its account in the
:class:`~riskmodels.portfolio.Book`. Quantities are signed contracts, one
contract = one unit of the underlying (long > 0).

Full revaluation
----------------
Every margin method that supports options asks the table for the P&L of each
account under ``S`` scenarios of underlying returns and implied-volatility
shifts (:meth:`OptionTable.scenario_pnl`)::

    pnl[p, s] = sum_{i in p} q_i * (V(F_i (1 + r_{s,a_i}), K_i, tau_i - h, sigma_i + dv_{s,a_i}) - V(F_i, K_i, tau_i, sigma_i))

computed for all positions at once and summed per account through one sparse
``(positions x accounts)`` product: no Python loop over positions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from riskmodels.instruments import black76

#: Days per year of option time (crypto trades every day).
DAYS_PER_YEAR = 365.0
#: Floor of a shocked implied volatility (a vol shock never makes sigma <= 0).
MIN_VOL = 0.01


class VolSource(ABC):
    """Where implied volatilities come from (a user file or a proxy).

    Attributes
    ----------
    label : str
        How every output names the source, e.g. ``"proxy: EWMA(0.94) x 1.10"``
        or ``"file: dvol.csv"``.
    is_proxy : bool
        True when the volatilities are a proxy computed from prices (every
        output must say so).
    """

    label: str = "vol source"
    is_proxy: bool = True

    @abstractmethod
    def atm(self) -> np.ndarray:
        """``(T, A)`` reference at-the-money implied vol per date and asset (NaN where unknown).

        Row ``t`` uses only information up to the close of date ``t``; the
        historical scenarios of implied-vol moves are its daily changes.
        """

    @abstractmethod
    def iv(self, t: int, asset: np.ndarray, tau: np.ndarray, strike: np.ndarray, spot: np.ndarray) -> np.ndarray:
        """Implied vol of positions at date index ``t`` (arrays of one value per position)."""


@dataclass(frozen=True, eq=False)
class OptionTable:
    """Option positions of a book, one row per position.

    Parameters
    ----------
    assets : tuple of str
        Underlying symbols; ``asset`` indexes into them (the book's asset order
        after :meth:`align`).
    account : numpy.ndarray
        ``(n,)`` int, index of the position's account in the book.
    asset : numpy.ndarray
        ``(n,)`` int, index of the underlying in ``assets``.
    is_call : numpy.ndarray
        ``(n,)`` bool.
    strike : numpy.ndarray
        ``(n,)`` float, USD per unit, > 0.
    expiry : numpy.ndarray
        ``(n,)`` ``datetime64[D]``; the option settles at intrinsic value at the
        close of its expiry date and leaves the book.
    quantity : numpy.ndarray
        ``(n,)`` float, signed contracts (one contract = one unit of the underlying).
    ids : tuple of str, optional
        Position names used in error messages; default ``"opt00000"``...
    trade : numpy.ndarray, optional
        ``(n,)`` ``datetime64[D]`` trade date: the position enters the book at
        the close of this date (at its mark; NaT = held from the start). An
        expiry on or before the trade date is an error. Default all NaT.
    hedged : numpy.ndarray, optional
        ``(n,)`` bool: the position's delta is hedged with a perp on its
        underlying, re-set at every close (delta-hedged strategies; the
        backtest adds the hedge, :mod:`riskmodels.backtest.options_path`).
        Default all False.
    """

    assets: tuple[str, ...]
    account: np.ndarray
    asset: np.ndarray
    is_call: np.ndarray
    strike: np.ndarray
    expiry: np.ndarray
    quantity: np.ndarray
    ids: tuple[str, ...] | None = None
    trade: np.ndarray | None = None
    hedged: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", tuple(str(a) for a in self.assets))
        n = np.asarray(self.account).shape[0]
        conv = {
            "account": np.asarray(self.account, dtype=np.int64).reshape(n),
            "asset": np.asarray(self.asset, dtype=np.int64).reshape(n),
            "is_call": np.asarray(self.is_call, dtype=bool).reshape(n),
            "strike": np.asarray(self.strike, dtype=np.float64).reshape(n),
            "expiry": np.asarray(self.expiry, dtype="datetime64[D]").reshape(n),
            "quantity": np.asarray(self.quantity, dtype=np.float64).reshape(n),
            "trade": (np.full(n, np.datetime64("NaT"), dtype="datetime64[D]") if self.trade is None
                      else np.asarray(self.trade, dtype="datetime64[D]").reshape(n)),
            "hedged": np.zeros(n, dtype=bool) if self.hedged is None else np.asarray(self.hedged, dtype=bool).reshape(n),
        }
        ids = self.ids or tuple(f"opt{i:05d}" for i in range(n))
        if len(ids) != n:
            raise ValueError(f"{len(ids)} option ids for {n} positions")
        object.__setattr__(self, "ids", tuple(str(i) for i in ids))
        bad = np.flatnonzero(~(conv["strike"] > 0) | ~np.isfinite(conv["strike"]))
        if bad.size:
            i = bad[0]
            raise ValueError(f"option {ids[i]}: strike {conv['strike'][i]} must be a positive finite number")
        bad = np.flatnonzero(~np.isfinite(conv["quantity"]))
        if bad.size:
            raise ValueError(f"option {ids[bad[0]]}: quantity {conv['quantity'][bad[0]]} is not finite")
        bad = np.flatnonzero((conv["asset"] < 0) | (conv["asset"] >= len(self.assets)))
        if bad.size:
            raise ValueError(f"option {ids[bad[0]]}: asset index {conv['asset'][bad[0]]} outside {self.assets}")
        if np.isnat(conv["expiry"]).any():
            raise ValueError(f"option {ids[int(np.flatnonzero(np.isnat(conv['expiry']))[0])]}: expiry is missing")
        traded = ~np.isnat(conv["trade"])
        bad = np.flatnonzero(traded & (conv["expiry"] <= np.where(traded, conv["trade"], conv["expiry"])))
        if bad.size:
            i = bad[0]
            raise ValueError(f"option {ids[i]}: expiry {conv['expiry'][i]} is not after its trade date "
                             f"{conv['trade'][i]}; an option expires after it is traded")
        for k, v in conv.items():
            v.setflags(write=False)
            object.__setattr__(self, k, v)

    # ------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.account.shape[0])

    @classmethod
    def empty(cls, assets: Sequence[str] = ()) -> OptionTable:
        z = np.zeros(0)
        return cls(tuple(assets), z, z, z.astype(bool), z, np.zeros(0, dtype="datetime64[D]"), z, ())

    def align(self, assets: Sequence[str]) -> OptionTable:
        """The same positions with ``asset`` indexing into ``assets`` (an unknown underlying raises)."""
        assets = tuple(assets)
        pos = {a: i for i, a in enumerate(assets)}
        used = sorted(set(self.asset.tolist()))
        missing = [self.assets[j] for j in used if self.assets[j] not in pos]
        if missing:
            i = int(np.flatnonzero(self.asset == self.assets.index(missing[0]))[0])
            raise KeyError(
                f"option {self.ids[i]} is on {missing[0]}, which has no prices; load the asset or remove the option"
            )
        remap = np.array([pos.get(a, -1) for a in self.assets], dtype=np.int64)
        new_asset = remap[self.asset] if len(self) else self.asset
        return OptionTable(assets, self.account, new_asset, self.is_call, self.strike, self.expiry, self.quantity,
                           self.ids, self.trade, self.hedged)

    def subset(self, rows: np.ndarray) -> OptionTable:
        """The positions at ``rows`` (int indices or a bool mask)."""
        r = np.asarray(rows)
        ids = tuple(np.asarray(self.ids, dtype=object)[r])
        return OptionTable(self.assets, self.account[r], self.asset[r], self.is_call[r], self.strike[r],
                           self.expiry[r], self.quantity[r], ids, self.trade[r], self.hedged[r])

    def with_accounts(self, account: np.ndarray) -> OptionTable:
        """The same positions assigned to the accounts ``account`` (``(n,)`` ints)."""
        return OptionTable(self.assets, account, self.asset, self.is_call, self.strike, self.expiry, self.quantity,
                           self.ids, self.trade, self.hedged)

    def tau(self, date: pd.Timestamp | np.datetime64) -> np.ndarray:
        """``(n,)`` years to expiry at ``date`` (365-day years; <= 0 once expired)."""
        d = np.datetime64(pd.Timestamp(date).normalize().to_datetime64(), "D")
        return (self.expiry - d).astype(np.float64) / DAYS_PER_YEAR

    def live(self, date: pd.Timestamp | np.datetime64) -> np.ndarray:
        """``(n,)`` bool: held after the close of ``date``: traded on or before it, not expired by it."""
        d = np.datetime64(pd.Timestamp(date).normalize().to_datetime64(), "D")
        return (self.expiry > d) & (np.isnat(self.trade) | (self.trade <= d))

    def aggregator(self, n_accounts: int, rows: np.ndarray | None = None) -> sparse.csr_matrix:
        """``(n, P)`` 0/1 sparse matrix summing positions (``rows``, default all) into their accounts."""
        acct = self.account if rows is None else self.account[rows]
        n = acct.size
        return sparse.csr_matrix((np.ones(n), (np.arange(n), acct)), shape=(n, n_accounts))

    # ------------------------------------------------------------ valuation
    def value(self, tau: np.ndarray, spot: np.ndarray, iv: np.ndarray) -> np.ndarray:
        """``(n,)`` USD value of each position: ``q * V(spot[asset], K, tau, iv)``."""
        return self.quantity * black76.price(spot[self.asset], self.strike, tau, iv, self.is_call)

    def account_value(self, n_accounts: int, values: np.ndarray) -> np.ndarray:
        """``(P,)`` sum of position values per account."""
        return np.bincount(self.account, weights=values, minlength=n_accounts)

    def scenario_pnl(
        self,
        n_accounts: int,
        tau: np.ndarray,
        spot: np.ndarray,
        iv: np.ndarray,
        returns: np.ndarray,
        vol_shift: np.ndarray | None = None,
        *,
        relative_vol: bool = False,
        horizon_days: float = 0.0,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(P, S)`` P&L per account under ``S`` scenarios (full revaluation).

        Parameters
        ----------
        n_accounts : int
            Number of accounts ``P`` of the book.
        tau, iv : numpy.ndarray
            ``(n,)`` years to expiry and implied vol of each position today.
        spot : numpy.ndarray
            ``(A,)`` underlying prices today.
        returns : numpy.ndarray
            ``(S, A)`` simple returns of the underlyings per scenario.
        vol_shift : numpy.ndarray, optional
            ``(S, A)`` implied-vol shifts per scenario: absolute (``sigma + dv``,
            vol points as fractions, 0.1 = 10 points) or, with
            ``relative_vol``, multiplicative (``sigma * (1 + dv)``). Shocked
            vols are floored at :data:`MIN_VOL`.
        horizon_days : float
            Time that passes in the scenario (the margin period of risk);
            options that expire within it are valued at intrinsic.
        rows : numpy.ndarray, optional
            Positions to include (default all); ``tau`` and ``iv`` are of the
            full table either way.
        """
        idx = np.arange(len(self)) if rows is None else np.asarray(rows)
        P = n_accounts
        S = returns.shape[0]
        if idx.size == 0:
            return np.zeros((P, S))
        a = self.asset[idx]
        F0 = spot[a]
        k = self.strike[idx]
        c = self.is_call[idx]
        q = self.quantity[idx]
        v0 = black76.price(F0, k, tau[idx], iv[idx], c)
        Fs = F0[None, :] * (1.0 + returns[:, a])
        if vol_shift is None:
            sig = np.broadcast_to(iv[idx], Fs.shape)
        elif relative_vol:
            sig = np.maximum(iv[idx][None, :] * (1.0 + vol_shift[:, a]), MIN_VOL)
        else:
            sig = np.maximum(iv[idx][None, :] + vol_shift[:, a], MIN_VOL)
        vs = black76.price(Fs, k[None, :], (tau[idx] - horizon_days / DAYS_PER_YEAR)[None, :], sig, c[None, :])
        pnl = (vs - v0[None, :]) * q[None, :]  # (S, n)
        return np.asarray(self.aggregator(P, idx).T @ pnl.T)

    def to_frame(self, account_ids: Sequence[str]) -> pd.DataFrame:
        """Long table: id, account, asset, type (call/put), strike, expiry, quantity, trade, hedged."""
        return pd.DataFrame({
            "id": list(self.ids),
            "account": np.asarray(account_ids, dtype=object)[self.account] if len(self) else [],
            "asset": np.asarray(self.assets, dtype=object)[self.asset] if len(self) else [],
            "type": np.where(self.is_call, "call", "put"),
            "strike": self.strike,
            "expiry": pd.to_datetime(self.expiry),
            "quantity": self.quantity,
            "trade": pd.to_datetime(self.trade),
            "hedged": self.hedged,
        })


@dataclass(frozen=True, eq=False)
class OptionState:
    """The options of ``N`` accounts at one date, as a margin method receives them.

    ``table.account`` indexes the ``N`` accounts of the call (0..N-1), ``tau``
    and ``iv`` hold one value per position (years to expiry and implied vol at
    the date's close, from ``vol``), ``spot`` the ``(A,)`` underlying closes.
    Expired positions are not in the table.
    """

    table: OptionTable
    tau: np.ndarray
    iv: np.ndarray
    spot: np.ndarray
    vol: VolSource

    def value(self, n_accounts: int) -> np.ndarray:
        """``(N,)`` USD mark of each account's options."""
        return self.table.account_value(n_accounts, self.table.value(self.tau, self.spot, self.iv))

    def scenario_pnl(self, n_accounts: int, returns: np.ndarray, vol_shift: np.ndarray | None = None,
                     **kwargs: object) -> np.ndarray:
        """``(N, S)``: :meth:`OptionTable.scenario_pnl` with this state's tau, spot and iv."""
        return self.table.scenario_pnl(n_accounts, self.tau, self.spot, self.iv, returns, vol_shift, **kwargs)  # type: ignore[arg-type]
