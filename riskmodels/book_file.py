"""Reading a book file strictly: every bad cell is an error naming the file, the line and the value.

CSV layout (one row per holding; ``isolated`` optional)::

    account,asset,kind,usd,isolated[,group]
    alice,BTC,collateral,20000,false
    alice,BTC,position,-15000,false
    alice,USD,cash,10000,false

* ``kind`` is ``collateral``, ``position`` or ``cash`` (any case);
* ``usd`` a finite number (collateral >= 0; positions signed);
* ``isolated`` is ``true`` or ``false`` (any case) on every row of an account
  that has the column, and the same on all of an account's rows; a blank,
  ``no``, ``0`` or ``yes`` is an error (they used to flip meaning silently);
* a row of empty cells (``,,,,``) is skipped like a blank line; a file with
  a header only, a ragged row, a binary or compressed file are errors.

TOML layout: ``[[account]]`` tables with ``id``, ``isolated`` (a boolean),
``cash`` (a number), ``collateral`` and ``positions`` (tables of asset ->
number), ``options`` (a list of option tables, below); any other key is an
error that suggests the nearest one.

Options (README "Options")
--------------------------
CSV: rows of ``kind = option`` with the extra columns ``type`` (call/put),
``strike`` (USD > 0), ``expiry`` (ISO date), ``quantity`` (signed contracts of
one unit of the underlying, != 0), optional ``trade`` (ISO date the position
is opened at that close; empty = held from the start; the expiry must be
after it) and ``hedged`` (true/false: delta-hedged with a perp at every
close) and ``id`` (the position's name in messages); ``usd`` is empty on option rows, and the option columns are empty on
the other rows::

    account,asset,kind,usd,type,strike,expiry,quantity
    bob,USD,cash,20000,,,,
    bob,BTC,option,,call,40000,2021-03-26,-1

TOML: ``options = [{ asset = "BTC", type = "call", strike = 40000, expiry =
"2021-03-26", quantity = -1 }, ...]`` in an ``[[account]]`` (``trade`` and
``hedged`` optional; dates as strings or TOML dates). Every bad value is an
error naming the file, the line (CSV) or account and option (TOML).
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.errors import UserError
from riskmodels.schema import check_table

KINDS = ("collateral", "position", "cash", "option")
#: the option columns of a CSV book (see the module docstring); ``id`` optionally names the position
OPTION_COLS = ("type", "strike", "expiry", "quantity", "trade", "hedged", "id")
#: a book file larger than this is refused before it is read (a book of 1M holdings is ~40 MB)
MAX_BOOK_BYTES = 512 * 1024**2


def sniff_text(path: Path, what: str = "book file") -> None:
    """Refuse a file that is compressed, binary or too large, before a parser sees it."""
    size = path.stat().st_size
    if size > MAX_BOOK_BYTES:
        raise UserError(f"{path}: {size / 1024**2:,.0f} MiB is larger than the {MAX_BOOK_BYTES / 1024**2:,.0f} MiB "
                        f"limit of a {what}; is it the right file?")
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if head[:2] == b"\x1f\x8b":
        raise UserError(f"{path}: is gzip-compressed; decompress it (gunzip) and name the .csv")
    if head[:4] == b"PK\x03\x04":
        raise UserError(f"{path}: is a zip archive; extract the .csv and name it")
    if b"\x00" in head:
        raise UserError(f"{path}: is a binary file (NUL bytes), not CSV text; a {what} is plain text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multi-byte character cut at the block end
            raise UserError(f"{path}: byte {exc.start} ({head[exc.start:exc.start + 1]!r}) is not UTF-8 text; "
                            f"save the {what} as UTF-8 CSV") from None


def read_book_csv(path: str | Path) -> pd.DataFrame:
    """The holdings of a CSV book as a clean frame (account, asset, kind, usd, isolated), strictly checked."""
    path = Path(path)
    sniff_text(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: byte {exc.start} is not UTF-8 text; save the book as UTF-8 CSV") from None
    rows = list(csv.reader(io.StringIO(text)))
    if rows:
        width = len(rows[0])
        for i, r in enumerate(rows[1:], 2):
            if r and len(r) != width and any(c.strip() for c in r[width:] or r):
                raise UserError(f"{path}: line {i}: a row has {len(r)} cells, the header {width} "
                                f"({','.join(rows[0])}); every row needs the header's columns")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True,
                         index_col=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty; a book needs a header account,asset,kind,usd[,isolated] "
                        "and one row per holding") from None
    except pd.errors.ParserError as exc:
        raise UserError(f"{path}: a row has the wrong number of cells ({exc}); every row needs the header's "
                        "columns") from None
    cols = {c.strip().lower(): c for c in df.columns}
    need = ("account", "asset", "kind", "usd")
    missing = [c for c in need if c not in cols]
    if missing:
        raise UserError(f"{path}: the header lacks column(s) {missing}; a book CSV has columns "
                        f"account,asset,kind,usd[,isolated] (found {list(df.columns)})")
    extra = [c for c in cols if c not in (*need, "isolated", "group", *OPTION_COLS)]
    if extra:
        raise UserError(f"{path}: unknown column(s) {extra}; valid: account, asset, kind, usd, isolated, group, "
                        f"{', '.join(OPTION_COLS)}")
    df = df.rename(columns={v: k for k, v in cols.items()})
    df = df.apply(lambda s: s.str.strip())
    line = pd.Series(range(2, len(df) + 2), index=df.index)  # header is line 1 (blank lines aside)
    blank = (df == "").all(axis=1)
    df, line = df[~blank], line[~blank]
    if df.empty:
        raise UserError(f"{path}: the file has a header but no holdings; add one row per holding")

    def fail(mask: pd.Series, problem: str, col: str) -> None:
        if mask.any():
            i = mask.to_numpy().argmax()
            raise UserError(f"{path}: line {line.iloc[i]}: {col} = {df[col].iloc[i]!r} {problem}")

    fail(df["account"] == "", "is empty; every row names its account", "account")
    kind = df["kind"].str.lower()
    fail(~kind.isin(KINDS), "must be collateral, position or cash, or option", "kind")
    fail((df["asset"] == "") & (kind != "cash"), "is empty; collateral, positions and options name their asset",
         "asset")
    is_opt = kind == "option"
    if is_opt.any():
        fail(is_opt & (df["usd"] != ""), "must be empty on an option row (its size is `quantity`)", "usd")
    usd = pd.to_numeric(df["usd"].where(~is_opt, "0"), errors="coerce")
    fail(usd.isna() | ~usd.map(lambda v: math.isfinite(v) if v == v else False),
         "is not a finite number (USD amount)", "usd")
    present = [c for c in OPTION_COLS if c in df.columns]
    for c in present:
        fail(~is_opt & (df[c] != ""), "must be empty on a row that is not an option", c)
    if is_opt.any():
        lack = [c for c in ("type", "strike", "expiry", "quantity") if c not in df.columns]
        if lack:
            raise UserError(f"{path}: option rows need the column(s) {lack} (type,strike,expiry,quantity)")
        opt = _check_option_rows(df[is_opt], line[is_opt], path)
    fail((kind == "collateral") & (usd < 0), "is negative; collateral is >= 0 USD (a short is a position)", "usd")
    out = pd.DataFrame({"account": df["account"], "asset": df["asset"], "kind": kind, "usd": usd.astype(float)})
    if is_opt.any():
        out.loc[is_opt, "usd"] = np.nan
        for c in opt.columns:
            out[c] = opt[c].reindex(out.index)
    if "isolated" in df.columns:
        iso = df["isolated"].str.lower()
        fail(~iso.isin(("true", "false")), "must be true or false", "isolated")
        out["isolated"] = iso == "true"
        per = out.groupby("account", sort=False)["isolated"].nunique()
        if (per > 1).any():
            acct = per.index[(per > 1).to_numpy().argmax()]
            raise UserError(f"{path}: account {acct!r} is isolated on some rows and not on others; "
                            "give all its rows the same `isolated` value")
    if "group" in df.columns:  # related accounts (stress Cover-N); blank = the account's own group
        grp = df["group"].where(df["group"] != "", df["account"])
        out["group"] = grp
        per = out.groupby("account", sort=False)["group"].nunique()
        if (per > 1).any():
            acct = per.index[(per > 1).to_numpy().argmax()]
            raise UserError(f"{path}: account {acct!r} has several groups on its rows; "
                            "give all its rows the same group")
    return out.reset_index(drop=True)


def _check_option_rows(df: pd.DataFrame, line: pd.Series, where: Path | str) -> pd.DataFrame:
    """Type, strike, expiry, quantity, trade, hedged of option rows, checked; errors name the line (or entry)."""

    def fail(mask: pd.Series | np.ndarray, col: str, problem: str) -> None:
        m = np.asarray(mask, dtype=bool)
        if m.any():
            i = int(m.argmax())
            v = df[col].iloc[i]
            v = v.item() if hasattr(v, "item") else v  # numpy scalars print as plain numbers
            at = line.iloc[i] if isinstance(line.iloc[i], str) else f"line {line.iloc[i]}"
            raise UserError(f"{where}: {at}: option {col} = {v!r} {problem}")

    typ = df["type"].astype(str).str.strip().str.lower()
    fail(~typ.isin(("call", "put")), "type", "must be call or put")
    strike = pd.to_numeric(df["strike"], errors="coerce")
    fail(~np.isfinite(strike.to_numpy(dtype=float)), "strike", "is not a number")
    fail(strike <= 0, "strike", "must be a positive USD strike")
    q = pd.to_numeric(df["quantity"], errors="coerce")
    fail(~np.isfinite(q.to_numpy(dtype=float)), "quantity", "is not a finite number of contracts")
    fail(q == 0, "quantity", "is zero; give signed contracts (long > 0, short < 0)")
    exp = pd.to_datetime(df["expiry"].astype(str), errors="coerce", format="ISO8601")
    fail(exp.isna(), "expiry", "is not an ISO date (YYYY-MM-DD)")
    out = pd.DataFrame({"type": typ, "strike": strike.astype(float), "expiry": exp.dt.normalize(),
                        "quantity": q.astype(float)}, index=df.index)
    if "trade" in df.columns:
        raw = df["trade"].astype(str).str.strip()
        tr = pd.to_datetime(raw.where(raw != "", None), errors="coerce", format="ISO8601")
        fail(tr.isna() & (raw != ""), "trade", "is not an ISO date (YYYY-MM-DD) or empty")
        fail(tr.notna() & (exp <= tr), "expiry", "is not after the trade date; an option expires after it is "
             "traded")
        out["trade"] = tr.dt.normalize()
    if "hedged" in df.columns:
        h = df["hedged"].astype(str).str.strip().str.lower()
        fail(~h.isin(("true", "false", "")), "hedged", "must be true or false")
        out["hedged"] = h == "true"
    ids = [f"{a} {s} {t} {k:g} {e:%Y-%m-%d}" for a, s, t, k, e in
           zip(df["account"], df["asset"], typ, out["strike"], out["expiry"], strict=True)]
    if "id" in df.columns:  # the file's own position names where given
        ids = [str(g).strip() or d for g, d in zip(df["id"].fillna(""), ids, strict=True)]
    out["id"] = [f"{lab} ({'line ' + str(n) if not isinstance(n, str) else n})" for lab, n in
                 zip(ids, line, strict=True)]
    return out


_OPTION_KEYS: dict[str, Any] = {"asset": str, "type": str, "strike": float, "expiry": Any, "quantity": float,
                                "trade": Any, "hedged": bool}

_ACCOUNT_KEYS: dict[str, Any] = {"id": str, "isolated": bool, "group": str, "cash": float,
                                 "collateral": dict[str, float], "positions": dict[str, float],
                                 "options": list[dict]}


def read_book_toml(path: str | Path) -> pd.DataFrame:
    """The holdings of a TOML book (``[[account]]`` tables) as a frame, strictly checked."""
    from riskmodels.portfolio import CASH

    path = Path(path)
    sniff_text(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; a TOML book is a text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    other = set(doc) - {"account"}
    if other:
        raise UserError(f"{path}: unknown table(s) {sorted(other)}; a TOML book holds [[account]] tables")
    accounts = doc.get("account", [])
    if not isinstance(accounts, list):
        raise UserError(f"{path}: `account` must be [[account]] tables")
    rows = []
    opts: list[dict[str, Any]] = []
    for k, acct in enumerate(accounts):
        a = check_table(acct, _ACCOUNT_KEYS, f"{path}: [[account]] #{k + 1}")
        aid = a.get("id", f"acct{k:04d}")
        iso = a.get("isolated", False)
        grp = a.get("group", aid)
        for name, v in (("cash", a.get("cash", 0.0)), *a.get("collateral", {}).items(), *a.get("positions", {}).items()):
            if not math.isfinite(v):
                raise UserError(f"{path}: [[account]] #{k + 1} ({aid}) {name} = {v} is not a finite USD amount")
        if a.get("cash"):
            rows.append((aid, CASH, "cash", float(a["cash"]), iso, grp))
        for asset, usd in a.get("collateral", {}).items():
            if usd < 0:
                raise UserError(f"{path}: [[account]] #{k + 1} ({aid}) collateral.{asset} = {usd} is negative; "
                                "collateral is >= 0 USD (a short is a position)")
            rows.append((aid, asset, "collateral", float(usd), iso, grp))
        for asset, usd in a.get("positions", {}).items():
            rows.append((aid, asset, "position", float(usd), iso, grp))
        for j, o in enumerate(a.get("options", [])):
            where = f"[[account]] #{k + 1} ({aid}) options[{j}]"
            o = check_table(o, _OPTION_KEYS, f"{path}: {where}")
            lack = [c for c in ("asset", "type", "strike", "expiry", "quantity") if c not in o]
            if lack:
                raise UserError(f"{path}: {where} lacks {lack}; an option has asset, type, strike, expiry, quantity")
            opts.append({"account": aid, "asset": o["asset"], "kind": "option", "usd": np.nan, "isolated": iso,
                         "group": grp, "type": o["type"], "strike": o["strike"], "expiry": str(o["expiry"]),
                         "quantity": o["quantity"], "trade": str(o.get("trade", "")),
                         "hedged": str(o.get("hedged", False)).lower(), "_where": where})
    if not rows and not opts:
        raise UserError(f"{path}: no [[account]] entries with holdings")
    out = pd.DataFrame(rows, columns=["account", "asset", "kind", "usd", "isolated", "group"])
    if opts:
        od = pd.DataFrame(opts)
        checked = _check_option_rows(od, od["_where"], path)
        od = od.drop(columns=[c for c in ("_where", *checked.columns) if c in od.columns]).join(checked)
        out = pd.concat([out, od], ignore_index=True)
    return out


__all__ = ["MAX_BOOK_BYTES", "read_book_csv", "read_book_toml", "sniff_text"]
