"""The Book: P accounts over A assets, collateral and perpetual positions.

Conventions (see README "Conventions")
--------------------------------------
* A Book stores **USD amounts** per account and asset: ``collateral[p, a]`` is
  the USD value of spot asset ``a`` posted as collateral (>= 0), and
  ``positions[p, a]`` the signed USD notional of a linear perpetual on ``a``
  (long > 0). ``cash[p]`` is the USD stablecoin balance (the numeraire: no
  price risk, no haircut; negative cash is a USD loan against collateral).
* The coverage backtest holds each account at these USD amounts every day
  (constant notional, the hypothetical-portfolio convention of CCP backtests),
  so margin per unit of notional is comparable across years.
* The account simulation converts the amounts to quantities at each (re)opening
  (``quantity = amount / close``) and then holds quantities fixed until the
  account is liquidated. :meth:`Book.from_quantities` builds a Book from
  quantities at a date's prices.
* ``isolated[p]`` marks accounts margined per position (the requirement is the
  sum of each holding's stand-alone requirement); the default is cross margin.
* ``group[p]`` names the group of related accounts (one participant and its
  affiliates, the unit of PFMI Principle 4's Cover-1 / Cover-2, see
  :mod:`riskmodels.stress.cover`); the default is each account its own group.

The USD value of the account's assets is ``cash + sum(collateral)``; perps
carry no value at opening (their P&L accrues to equity as prices move).

Options (README "Options")
--------------------------
``options`` (optional) is an :class:`~riskmodels.instruments.options.OptionTable`
of European, cash-settled, USD-linear options keyed by account index (signed
contracts of one unit of the underlying, with trade date and expiry). The
linear measures (``exposure``, ``gross_notional``...) stay linear; ``held()``
counts an option's underlying as held (an account is priced only where it
has prices). A book without options behaves exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodels.instruments.options import OptionTable

CASH = "USD"
#: columns of the option rows of a book table (``kind = "option"``; ``id`` optional)
OPTION_COLUMNS = ("type", "strike", "expiry", "quantity", "trade", "hedged", "id")


@dataclass(frozen=True, eq=False)
class Book:
    """P accounts x A assets of collateral and perp positions (USD amounts).

    Parameters
    ----------
    assets : tuple of str
        Asset symbols, the column order of ``collateral`` and ``positions``.
    collateral : numpy.ndarray
        ``(P, A)`` USD value of spot collateral, >= 0.
    positions : numpy.ndarray
        ``(P, A)`` signed USD notional of perpetual positions.
    cash : numpy.ndarray, optional
        ``(P,)`` USD stablecoin balance; default 0.
    isolated : numpy.ndarray, optional
        ``(P,)`` bool, True for isolated-margin accounts; default all cross.
    account_ids : tuple of str, optional
        Names of the accounts; default ``"acct0000"``...
    group : tuple of str, optional
        Group of related accounts per account (stress testing's Cover-N
        unit); default each account its own group (its id).
    options : OptionTable, optional
        Option positions (``account`` indexes these accounts), aligned to
        ``assets``; None or empty = a linear book.
    """

    assets: tuple[str, ...]
    collateral: np.ndarray
    positions: np.ndarray
    cash: np.ndarray | None = None
    isolated: np.ndarray | None = None
    account_ids: tuple[str, ...] | None = None
    group: tuple[str, ...] | None = None
    options: OptionTable | None = None

    def __post_init__(self) -> None:
        assets = tuple(str(a) for a in self.assets)
        object.__setattr__(self, "assets", assets)
        if CASH in assets:
            raise ValueError(f"'{CASH}' is the cash numeraire: hold it in `cash`, not as an asset column")
        coll = np.atleast_2d(np.asarray(self.collateral, dtype=np.float64))
        pos = np.atleast_2d(np.asarray(self.positions, dtype=np.float64))
        if coll.shape != pos.shape or coll.shape[1] != len(assets):
            raise ValueError(
                f"collateral {coll.shape} and positions {pos.shape} must both be (accounts, {len(assets)} assets)"
            )
        n = coll.shape[0]
        for name, arr in (("collateral", coll), ("positions", pos)):
            if not np.isfinite(arr).all():
                p, a = np.argwhere(~np.isfinite(arr))[0]
                raise ValueError(f"Book.{name} is not finite for account {p}, asset {assets[a]}")
        if (coll < 0).any():
            p, a = np.argwhere(coll < 0)[0]
            raise ValueError(
                f"Book.collateral is negative ({coll[p, a]}) for account {p}, asset {assets[a]}: "
                "collateral is spot held; use a short perp position for short exposure"
            )
        cash = np.zeros(n) if self.cash is None else np.asarray(self.cash, dtype=np.float64).reshape(n)
        iso = np.zeros(n, dtype=bool) if self.isolated is None else np.asarray(self.isolated, dtype=bool).reshape(n)
        ids = self.account_ids or tuple(f"acct{p:04d}" for p in range(n))
        if len(ids) != n:
            raise ValueError(f"{len(ids)} account_ids for {n} accounts")
        for name, arr in (("collateral", coll), ("positions", pos), ("cash", cash), ("isolated", iso)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "account_ids", tuple(ids))
        grp = tuple(ids) if self.group is None else tuple(str(g) for g in self.group)
        if len(grp) != n:
            raise ValueError(f"{len(grp)} group labels for {n} accounts")
        object.__setattr__(self, "group", grp)
        if self.options is not None:
            opt = self.options if self.options.assets == assets else _align_options(self.options, assets)
            if len(opt) and (opt.account.min() < 0 or opt.account.max() >= n):
                i = int(np.flatnonzero((opt.account < 0) | (opt.account >= n))[0])
                raise ValueError(f"option {opt.ids[i]}: account index {opt.account[i]} outside the {n} accounts")
            object.__setattr__(self, "options", opt)

    @property
    def has_options(self) -> bool:
        """True when the book holds at least one option position."""
        return self.options is not None and len(self.options) > 0

    # ------------------------------------------------------------- measures
    @property
    def n_accounts(self) -> int:
        return self.collateral.shape[0]

    @property
    def n_assets(self) -> int:
        return len(self.assets)

    @property
    def exposure(self) -> np.ndarray:
        """``(P, A)`` net USD delta per asset: collateral + perp notional."""
        return self.collateral + self.positions

    @property
    def gross_notional(self) -> np.ndarray:
        """``(P,)`` sum of |perp notional| + collateral value (the denominator of margin rates)."""
        return np.abs(self.positions).sum(axis=1) + self.collateral.sum(axis=1)

    @property
    def position_notional(self) -> np.ndarray:
        """``(P,)`` sum of |perp notional|."""
        return np.abs(self.positions).sum(axis=1)

    @property
    def net_notional(self) -> np.ndarray:
        """``(P,)`` net USD delta over all assets."""
        return self.exposure.sum(axis=1)

    @property
    def equity(self) -> np.ndarray:
        """``(P,)`` cash + collateral value (perps carry no value at the reference prices)."""
        return self.cash + self.collateral.sum(axis=1)

    def held(self) -> np.ndarray:
        """``(P, A)`` bool: the account holds collateral, a perp or an option on the asset."""
        out = (self.collateral != 0) | (self.positions != 0)
        if self.has_options:
            out = out.copy()
            out[self.options.account, self.options.asset] = True  # type: ignore[union-attr]
        return out

    # ------------------------------------------------------------- building
    def align(self, assets: Sequence[str]) -> Book:
        """The same accounts with columns in the order of ``assets``.

        Assets the Book does not hold get zero columns; a held asset missing
        from ``assets`` raises (it would silently drop exposure).
        """
        assets = tuple(assets)
        pos = {a: i for i, a in enumerate(assets)}
        opt = None if self.options is None else _align_options(self.options, assets)  # names the position
        held_cols = np.flatnonzero(self.held().any(axis=0))
        missing = [self.assets[j] for j in held_cols if self.assets[j] not in pos]
        if missing:
            raise KeyError(f"the book holds assets the panel lacks: {missing}; load them or remove them")
        coll = np.zeros((self.n_accounts, len(assets)))
        perp = np.zeros_like(coll)
        for j, a in enumerate(self.assets):
            if a in pos:
                coll[:, pos[a]] = self.collateral[:, j]
                perp[:, pos[a]] = self.positions[:, j]
        return Book(assets, coll, perp, self.cash, self.isolated, self.account_ids, self.group, opt)

    def subset(self, accounts: np.ndarray | Sequence[int]) -> Book:
        idx = np.asarray(accounts)
        opt = None
        if self.options is not None:
            rows = np.arange(self.n_accounts)[idx]  # int positions, also for a bool mask
            new = np.full(self.n_accounts, -1, dtype=np.int64)
            new[rows] = np.arange(rows.size)
            keep = new[self.options.account] >= 0
            opt = self.options.subset(keep).with_accounts(new[self.options.account[keep]])
        return Book(
            self.assets,
            self.collateral[idx],
            self.positions[idx],
            self.cash[idx],
            self.isolated[idx],
            tuple(np.asarray(self.account_ids, dtype=object)[idx]),
            tuple(np.asarray(self.group, dtype=object)[idx]),
            opt,
        )

    def scaled(self, factor: float | np.ndarray) -> Book:
        """Every amount multiplied by ``factor`` (scalar or per account)."""
        f = np.asarray(factor, dtype=np.float64)
        fa = f[:, None] if f.ndim == 1 else f
        opt = self.options
        if opt is not None:
            fq = f[opt.account] if f.ndim == 1 else f
            opt = OptionTable(opt.assets, opt.account, opt.asset, opt.is_call, opt.strike, opt.expiry,
                              opt.quantity * fq, opt.ids, opt.trade, opt.hedged)
        return Book(
            self.assets, self.collateral * fa, self.positions * fa, self.cash * f, self.isolated, self.account_ids,
            self.group, opt,
        )

    @classmethod
    def from_quantities(
        cls,
        assets: Sequence[str],
        collateral_qty: np.ndarray,
        position_qty: np.ndarray,
        prices: np.ndarray,
        **kwargs: object,
    ) -> Book:
        """A Book from quantities valued at ``prices`` (one price per asset)."""
        p = np.asarray(prices, dtype=np.float64)
        return cls(tuple(assets), np.asarray(collateral_qty) * p, np.asarray(position_qty) * p, **kwargs)  # type: ignore[arg-type]

    def to_frame(self) -> pd.DataFrame:
        """Long table: account, asset, kind (collateral/position/cash), usd, isolated[, group].

        The ``group`` column is written only when some account's group is not
        its own id (the default), so plain books keep their five columns.
        """
        rows = []
        for p, acct in enumerate(self.account_ids):
            if self.cash[p] != 0:
                rows.append((acct, CASH, "cash", self.cash[p], bool(self.isolated[p])))
            for j, a in enumerate(self.assets):
                if self.collateral[p, j] != 0:
                    rows.append((acct, a, "collateral", self.collateral[p, j], bool(self.isolated[p])))
                if self.positions[p, j] != 0:
                    rows.append((acct, a, "position", self.positions[p, j], bool(self.isolated[p])))
        df = pd.DataFrame(rows, columns=["account", "asset", "kind", "usd", "isolated"])
        if self.has_options:
            df = pd.concat([df, _option_rows(self)], ignore_index=True)
        if self.group != self.account_ids:
            df["group"] = df["account"].map(dict(zip(self.account_ids, self.group, strict=True)))
        return df

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Book:
        """Inverse of :meth:`to_frame` (columns account, asset, kind, usd[, isolated][, group])."""
        need = {"account", "asset", "kind", "usd"}
        cols = {c.lower(): c for c in df.columns}
        missing = need - set(cols)
        if missing:
            raise ValueError(f"book table lacks columns {sorted(missing)}; it needs {sorted(need)}")
        df = df.rename(columns={v: k for k, v in cols.items()})
        kinds = set(df["kind"].str.lower())
        bad = kinds - {"collateral", "position", "cash", "option"}
        if bad:
            raise ValueError(f"book table: unknown kind(s) {sorted(bad)}; use collateral, position, cash or option")
        accounts = tuple(dict.fromkeys(df["account"].astype(str)))
        assets = tuple(sorted(set(df.loc[df["kind"].str.lower() != "cash", "asset"].astype(str))))
        is_opt = (df["kind"].str.lower() == "option").to_numpy()
        opt_df, lin = df[is_opt], df[~is_opt]
        ai = {a: i for i, a in enumerate(accounts)}
        si = {a: i for i, a in enumerate(assets)}
        coll = np.zeros((len(accounts), len(assets)))
        pos = np.zeros_like(coll)
        cash = np.zeros(len(accounts))
        iso = np.zeros(len(accounts), dtype=bool)
        for r in lin.itertuples(index=False):
            p = ai[str(r.account)]
            kind = str(r.kind).lower()
            if kind == "cash":
                cash[p] += float(r.usd)
            elif kind == "collateral":
                coll[p, si[str(r.asset)]] += float(r.usd)
            else:
                pos[p, si[str(r.asset)]] += float(r.usd)
            if "isolated" in df.columns:
                iso[p] = bool(r.isolated)
        group = None
        if "group" in df.columns:
            g = df.groupby(df["account"].astype(str), sort=False)["group"].agg(lambda x: set(x.astype(str)))
            clash = g[g.map(len) > 1]
            if len(clash):
                raise ValueError(
                    f"book table: account {clash.index[0]!r} has several groups {sorted(clash.iloc[0])}; "
                    "give every row of an account the same group"
                )
            group = tuple(next(iter(g[a])) for a in accounts)
        if len(opt_df) and "isolated" in opt_df.columns:
            for a, v in zip(opt_df["account"].astype(str), opt_df["isolated"], strict=True):
                iso[ai[a]] = bool(v)
        options = _options_from_frame(opt_df, assets, ai) if len(opt_df) else None
        return cls(assets, coll, pos, cash, iso, accounts, group, options)

    @classmethod
    def read(cls, path: str | Path) -> Book:
        """Read a book from CSV (long table) or TOML (``[[account]]`` tables).

        TOML layout::

            [[account]]
            id = "alice"
            isolated = false
            group = "fund-a"      # optional: related accounts (default: its own id)
            cash = 10000
            collateral = { BTC = 20000, ETH = 5000 }
            positions = { BTC = -15000, SOL = 8000 }
        """
        from riskmodels.book_file import read_book_csv, read_book_toml
        from riskmodels.errors import UserError, UserFileNotFound

        path = Path(path)
        if not path.exists():
            raise UserFileNotFound(f"book file not found: {path}; check [book] source")
        if path.suffix.lower() == ".csv":
            return cls.from_frame(read_book_csv(path))
        if path.suffix.lower() == ".toml":
            return cls.from_frame(read_book_toml(path))
        raise UserError(f"{path}: a book file must be .csv or .toml")

    def __repr__(self) -> str:
        opt = f", {len(self.options)} options" if self.has_options else ""  # type: ignore[arg-type]
        return (
            f"Book({self.n_accounts} accounts x {self.n_assets} assets, "
            f"{int(self.isolated.sum())} isolated, gross notional {self.gross_notional.sum():,.0f} USD{opt})"
        )


def _align_options(options: OptionTable, assets: Sequence[str]) -> OptionTable:
    """``options.align(assets)``; an option on an asset without prices is a user error naming the position."""
    from riskmodels.errors import UserError

    try:
        return options.align(assets)
    except KeyError as exc:
        raise UserError(exc.args[0]) from None


def _option_rows(book: Book) -> pd.DataFrame:
    """The option rows of :meth:`Book.to_frame` (kind ``option``, ``usd`` empty)."""
    o = book.options
    assert o is not None
    f = o.to_frame(book.account_ids)
    return pd.DataFrame({
        "account": f["account"], "asset": f["asset"], "kind": "option", "usd": np.nan,
        "isolated": book.isolated[o.account], "type": f["type"], "strike": f["strike"],
        "expiry": f["expiry"].dt.strftime("%Y-%m-%d"), "quantity": f["quantity"],
        "trade": f["trade"].dt.strftime("%Y-%m-%d").fillna(""), "hedged": f["hedged"], "id": f["id"],
    })


def _options_from_frame(df: pd.DataFrame, assets: tuple[str, ...], ai: dict[str, int]) -> OptionTable:
    """The option rows of a book table (columns of :data:`OPTION_COLUMNS`; ``trade``, ``hedged``, ``id`` optional)."""
    missing = [c for c in ("type", "strike", "expiry", "quantity") if c not in df.columns]
    if missing:
        raise ValueError(f"book table: option rows need columns {missing}")
    typ = df["type"].astype(str).str.lower()
    if not typ.isin(("call", "put")).all():
        raise ValueError(f"book table: option type {typ[~typ.isin(('call', 'put'))].iloc[0]!r} must be call or put")
    si = {a: i for i, a in enumerate(assets)}
    trade = pd.to_datetime(df["trade"].replace("", None)) if "trade" in df.columns else pd.Series(pd.NaT,
                                                                                                  index=df.index)
    ids = tuple(df["id"].astype(str)) if "id" in df.columns else None
    return OptionTable(
        assets,
        np.array([ai[str(a)] for a in df["account"]], dtype=np.int64),
        np.array([si[str(a)] for a in df["asset"]], dtype=np.int64),
        (typ == "call").to_numpy(),
        df["strike"].astype(float).to_numpy(),
        pd.to_datetime(df["expiry"]).to_numpy().astype("datetime64[D]"),
        df["quantity"].astype(float).to_numpy(),
        ids,
        trade.to_numpy().astype("datetime64[D]"),
        df["hedged"].astype(bool).to_numpy() if "hedged" in df.columns else None,
    )


def generate_book(
    assets: Sequence[str],
    n_accounts: int = 1000,
    *,
    seed: int = 0,
    positions_per_account: tuple[int, int] = (1, 4),
    long_probability: float = 0.6,
    median_notional: float = 50_000.0,
    notional_sigma: float = 1.0,
    collateral_share: tuple[float, float] = (0.0, 0.8),
    collateral_assets: Sequence[str] = ("BTC", "ETH"),
    leverage_median: float = 5.0,
    leverage_sigma: float = 0.6,
    leverage_range: tuple[float, float] = (1.0, 20.0),
    isolated_share: float = 0.1,
    major_weight: float = 3.0,
    majors: Sequence[str] = ("BTC", "ETH"),
    group_size: tuple[int, int] = (1, 1),
) -> Book:
    """A seeded book of realistic cross-margined perp accounts.

    Each account holds ``k ~ U{positions_per_account}`` perps on distinct
    assets (majors drawn ``major_weight`` times as often), long with
    probability ``long_probability``, with log-normal notional (median
    ``median_notional``, log-sd ``notional_sigma``) split at random across its
    positions. Its equity at the reference prices is ``gross perp notional /
    leverage``, leverage log-normal (median ``leverage_median``) clipped to
    ``leverage_range``; a share ``U(collateral_share)`` of that equity is spot
    collateral in ``collateral_assets`` (those in ``assets``), the rest cash.

    The backtest re-sizes cash at each opening so that equity equals initial
    margin x (1 + cushion); the generated cash matters only for a book used
    as-is (e.g. a coverage backtest of a given book).

    ``group_size = (lo, hi)`` groups consecutive accounts into groups of
    related accounts of ``U{lo..hi}`` members (``"grp0000"``...), drawn after
    everything else so the holdings do not depend on it; the default
    ``(1, 1)`` leaves each account its own group.
    """
    if n_accounts < 1:
        raise ValueError(f"n_accounts must be >= 1, got {n_accounts}")
    assets = tuple(assets)
    lo, hi = positions_per_account
    hi = min(hi, len(assets))  # a small universe caps the positions per account
    if not 1 <= lo <= hi:
        raise ValueError(
            f"positions_per_account={positions_per_account} must satisfy 1 <= lo <= hi <= {len(assets)} assets"
        )
    if not 0 <= long_probability <= 1:
        raise ValueError(f"long_probability must be in [0, 1], got {long_probability}")
    if not 0 <= collateral_share[0] <= collateral_share[1] <= 1:
        raise ValueError(f"collateral_share must be 0 <= lo <= hi <= 1, got {collateral_share}")
    rng = np.random.default_rng(seed)
    A = len(assets)
    w = np.array([major_weight if a in set(majors) else 1.0 for a in assets])
    w = w / w.sum()
    k = rng.integers(lo, hi + 1, size=n_accounts)
    total = median_notional * np.exp(notional_sigma * rng.standard_normal(n_accounts))
    pos = np.zeros((n_accounts, A))
    for p in range(n_accounts):  # generation only, not a hot path
        cols = rng.choice(A, size=k[p], replace=False, p=w)
        split = rng.dirichlet(np.ones(k[p]))
        sign = np.where(rng.random(k[p]) < long_probability, 1.0, -1.0)
        pos[p, cols] = sign * split * total[p]
    lev = np.clip(leverage_median * np.exp(leverage_sigma * rng.standard_normal(n_accounts)), *leverage_range)
    equity = np.abs(pos).sum(axis=1) / lev
    share = rng.uniform(*collateral_share, size=n_accounts)
    coll_cols = [assets.index(a) for a in collateral_assets if a in assets]
    coll = np.zeros_like(pos)
    if coll_cols:
        split = rng.dirichlet(np.ones(len(coll_cols)), size=n_accounts)
        coll[:, coll_cols] = (share * equity)[:, None] * split
        cash = equity - coll.sum(axis=1)
    else:
        cash = equity
    iso = rng.random(n_accounts) < isolated_share
    glo, ghi = (int(x) for x in group_size)
    if not 1 <= glo <= ghi:
        raise ValueError(f"group_size={tuple(group_size)} must satisfy 1 <= lo <= hi")
    group = None
    if ghi > 1:
        sizes = rng.integers(glo, ghi + 1, size=n_accounts)  # more than enough groups
        label = np.repeat(np.arange(n_accounts), sizes)[:n_accounts]
        group = tuple(f"grp{g:04d}" for g in label)
    return Book(assets, coll, pos, cash, iso, group=group)
