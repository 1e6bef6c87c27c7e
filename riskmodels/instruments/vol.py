"""Implied-volatility sources: a user's IV history (or Deribit's DVOL) and a proxy from prices.

Two :class:`~riskmodels.instruments.options.VolSource` implementations:

:class:`FileVol` (``is_proxy = False``, label ``"file: NAME"``)
    A user-supplied history, read strictly by :func:`read_iv_table` or
    :func:`read_dvol` (Deribit's DVOL index). One row per quote.

:class:`ProxyVol` (``is_proxy = True``, label ``"proxy: EWMA(0.94) x 1.10, ..."``)
    Where no IV history is given: EWMA realised volatility times a stated
    risk premium, with a mean-reverting term structure and an optional skew.
    Every output that uses it names it a proxy (the label).

IV table format (CSV)
---------------------
Header (any case, any order)::

    date,asset,tenor_days,iv                  # ATM term structure
    date,asset,expiry,strike,iv               # a surface quoted by expiry and strike
    date,asset,tenor_days,delta,iv            # a surface quoted by call delta

* ``date``: ISO date (the quote is known at that date's close);
* ``asset``: underlying symbol as in the price panel (``BTC``);
* exactly one of ``tenor_days`` (calendar days, > 0) or ``expiry`` (ISO date
  after ``date``);
* at most one of ``strike`` (USD, > 0) or ``delta`` (call delta in (0, 1),
  0.5 = ATM; a put's 25-delta is the call's 0.75); neither = ATM;
* ``iv``: annualised implied vol as a fraction (0.65 = 65 vol points); a value
  above 5 is read as vol points and refused (write 0.65, not 65). NaN, empty
  or ``<= 0`` is an error naming the file, line and value.

Deribit DVOL (:func:`read_dvol`): the index history as Deribit's API
(``public/get_volatility_index_data``) returns it, saved as CSV with columns
``date`` (or ``timestamp`` in ms), ``open, high, low, close`` in vol points:
read as the 30-day ATM implied vol ``close / 100`` of one asset.

Interpolation (:meth:`FileVol.iv`)
----------------------------------
At date index ``t`` the source uses, per asset, the latest quote date ``<= t``
(no look-ahead) that is at most ``max_age_days`` old (default 5; older is
"unknown"). Within that date's quotes: strikes are mapped to log-moneyness
``k = ln(K / S_q)`` at the close ``S_q`` of the quote date (the smile then
moves with the spot: sticky moneyness; a position's ``k = ln(K / S_t)``; a
delta quote through Black-76:
``k = -sigma sqrt(tau) N^{-1}(delta) + sigma^2 tau / 2``); per quoted tenor the
smile is linear in ``k`` with flat extrapolation; across tenors the **total
variance** ``sigma^2 tau`` is linear in ``tau`` (flat vol beyond the first and
last tenor). An ATM-only file gives a flat smile.

Proxy (:class:`ProxyVol`)
-------------------------
* ``sigma_0(t) = sqrt(365 * v_t)`` with the RiskMetrics EWMA
  ``v_t = lambda v_{t-1} + (1 - lambda) r_t^2`` on daily log returns up to
  ``t`` (lambda 0.94, J.P. Morgan RiskMetrics Technical Document 1996, 5.2);
* the long-run level ``sigma_L(t)``: the root mean square daily log return
  of the trailing ``long_run_days`` (730) returns up to ``t``, annualised;
* term structure (the GARCH(1,1) expected average variance, Hull, *Options,
  Futures and Other Derivatives*, 10th ed., sec. 23.4, "Using GARCH(1,1) to
  forecast future volatility")::

      sigma(tau)^2 = sigma_L^2 + (sigma_0^2 - sigma_L^2) (1 - exp(-a tau)) / (a tau),
      a = ln 2 / half_life   (half_life 30 days by default)

* risk premium: ``iv = premium x sigma(tau)``; the default 1.10 is a stated
  assumption, not a measurement: implied vol above realised on average is the
  variance risk premium documented for bitcoin options on Deribit (Alexander
  & Imeraj, "The Bitcoin VIX and its variance risk premium", J. Alternative
  Investments 23(4), 2021, pp. 84-109; Almeida, Grith, Miftachov & Wang,
  "Risk premia in the Bitcoin market", arXiv:2410.15195, 2024: a higher
  variance risk premium than the S&P 500's). No DVOL history ships with
  riskmodels, so the ratio is not measured here: :func:`premium_ratio`
  measures the average DVOL / proxy ratio from a DVOL file to set it from data;
* skew: ``iv(K) = iv_atm x (1 - skew x k + smile x k^2)``, ``k = ln(K/S)``,
  floored at :data:`~riskmodels.instruments.options.MIN_VOL`; default flat
  (``skew = smile = 0``).

``atm()`` is the 30-day ATM vol in both sources (DVOL's tenor): the
reference whose daily changes are the historical implied-vol moves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from riskmodels.data.panel import PricePanel
from riskmodels.errors import UserError
from riskmodels.instruments.options import DAYS_PER_YEAR, MIN_VOL, VolSource

#: tenor of the reference ATM vol (DVOL is a 30-day index)
ATM_TENOR_DAYS = 30.0
#: an IV above this is taken for vol points (65 instead of 0.65) and refused
MAX_IV = 5.0

__all__ = ["ATM_TENOR_DAYS", "FileVol", "ProxyVol", "premium_ratio", "read_dvol", "read_iv_table"]


# ----------------------------------------------------------------- reading
def _read_csv(path: Path) -> pd.DataFrame:
    from riskmodels.book_file import sniff_text

    if not path.exists():
        from riskmodels.errors import UserFileNotFound

        raise UserFileNotFound(f"implied-vol file not found: {path}; check [options] vol_file / dvol")
    sniff_text(path, "implied-vol file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty; an IV file needs a header date,asset,tenor_days,iv") from None
    except pd.errors.ParserError as exc:
        raise UserError(f"{path}: a row has the wrong number of cells ({exc})") from None
    df.columns = [c.strip().lower() for c in df.columns]
    if df.empty:
        raise UserError(f"{path}: the file has a header but no rows")
    return df.apply(lambda s: s.str.strip())


def _fail(path: Path, df: pd.DataFrame, mask: np.ndarray, col: str, problem: str) -> None:
    if np.any(mask):
        i = int(np.argmax(mask))
        raise UserError(f"{path}: line {i + 2}: {col} = {df[col].iloc[i]!r} {problem}")


def _iv_column(path: Path, df: pd.DataFrame, col: str, points: bool = False) -> np.ndarray:
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    v = v / 100.0 if points else v
    _fail(path, df, ~np.isfinite(v), col, "is not a number; every quote needs an implied vol")
    _fail(path, df, v <= 0, col, "is <= 0; an implied vol is a positive fraction (0.65 = 65 vol points)")
    _fail(path, df, v > MAX_IV, col, f"is above {MAX_IV:g}; write implied vol as a fraction (0.65, not 65)")
    return v


def _dates(path: Path, df: pd.DataFrame, col: str) -> np.ndarray:
    d = pd.to_datetime(df[col], errors="coerce", format="ISO8601")
    _fail(path, df, d.isna().to_numpy(), col, "is not an ISO date (YYYY-MM-DD)")
    return d.dt.tz_localize(None).dt.normalize().to_numpy().astype("datetime64[D]") if d.dt.tz is not None \
        else d.dt.normalize().to_numpy().astype("datetime64[D]")


def read_iv_table(path: str | Path) -> pd.DataFrame:
    """A user IV history as a clean frame: date, asset, tenor_days, kind (atm/strike/delta), x, iv.

    See the module docstring for the format; every bad cell raises a
    :class:`~riskmodels.errors.UserError` naming the file, line and value.
    """
    path = Path(path)
    df = _read_csv(path)
    cols = set(df.columns)
    need = {"date", "asset", "iv"}
    if need - cols:
        raise UserError(f"{path}: the header lacks {sorted(need - cols)}; an IV file has columns "
                        "date,asset,tenor_days|expiry[,strike|delta],iv (found {})".format(list(df.columns)))
    known = need | {"tenor_days", "expiry", "strike", "delta"}
    if cols - known:
        raise UserError(f"{path}: unknown column(s) {sorted(cols - known)}; valid: {sorted(known)}")
    if ("tenor_days" in cols) == ("expiry" in cols):
        raise UserError(f"{path}: give exactly one of the columns tenor_days or expiry (found {list(df.columns)})")
    if {"strike", "delta"} <= cols:
        raise UserError(f"{path}: give at most one of the columns strike or delta")
    date = _dates(path, df, "date")
    _fail(path, df, (df["asset"] == "").to_numpy(), "asset", "is empty; every quote names its underlying")
    iv = _iv_column(path, df, "iv")
    if "tenor_days" in cols:
        tenor = pd.to_numeric(df["tenor_days"], errors="coerce").to_numpy(dtype=float)
        _fail(path, df, ~(tenor > 0) | ~np.isfinite(tenor), "tenor_days", "must be a positive number of days")
    else:
        exp = _dates(path, df, "expiry")
        tenor = (exp - date).astype(float)
        _fail(path, df, tenor <= 0, "expiry", "is not after the quote date")
    kind = np.full(len(df), "atm", dtype=object)
    x = np.zeros(len(df))
    for col, lo, hi, what in (("strike", 0.0, np.inf, "a positive USD strike"), ("delta", 0.0, 1.0,
                                                                              "a call delta in (0, 1)")):
        if col in cols:
            x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            _fail(path, df, ~((x > lo) & (x < hi)), col, f"must be {what}")
            kind[:] = col
    out = pd.DataFrame({"date": date, "asset": df["asset"].to_numpy(), "tenor_days": tenor, "kind": kind,
                        "x": x, "iv": iv})
    return out.sort_values(["asset", "date", "tenor_days"], kind="stable").reset_index(drop=True)


def read_dvol(path: str | Path, asset: str) -> pd.DataFrame:
    """Deribit's DVOL history (date or ms timestamp, open, high, low, close in vol points) as 30-day ATM rows."""
    path = Path(path)
    df = _read_csv(path)
    cols = set(df.columns)
    tcol = "date" if "date" in cols else "timestamp" if "timestamp" in cols else None
    if tcol is None or "close" not in cols:
        raise UserError(f"{path}: a DVOL file has columns date (or timestamp in ms),open,high,low,close; "
                        f"found {list(df.columns)}")
    if tcol == "timestamp":
        ms = pd.to_numeric(df["timestamp"], errors="coerce")
        _fail(path, df, ms.isna().to_numpy(), "timestamp", "is not a millisecond timestamp")
        date = pd.to_datetime(ms, unit="ms").dt.normalize().to_numpy().astype("datetime64[D]")
    else:
        date = _dates(path, df, "date")
    iv = _iv_column(path, df, "close", points=True)
    out = pd.DataFrame({"date": date, "asset": asset, "tenor_days": ATM_TENOR_DAYS, "kind": "atm", "x": 0.0,
                        "iv": iv})
    # a DVOL export at a finer interval than a day: the last value of each date (its close)
    return out.drop_duplicates(["date"], keep="last").sort_values("date").reset_index(drop=True)


# ----------------------------------------------------------------- file source
class FileVol(VolSource):
    """Implied vols from a user history (:func:`read_iv_table` / :func:`read_dvol` rows) on a panel's dates.

    Parameters
    ----------
    quotes : pandas.DataFrame
        Rows of date, asset, tenor_days, kind, x, iv.
    panel : PricePanel
        Dates, assets and the spots that turn strikes into moneyness.
    label : str
        How outputs name the source (``"file: dvol.csv"``).
    max_age_days : int
        A quote older than this many days at ``t`` is not used (the IV is then unknown).
    fallback : VolSource, optional
        Used where the file has no usable quote (a proxy); None = unknown is an error.
    """

    is_proxy = False

    def __init__(self, quotes: pd.DataFrame, panel: PricePanel, label: str, *, max_age_days: int = 5,
                 fallback: VolSource | None = None) -> None:
        self.label = label if fallback is None else f"{label}, else {fallback.label}"
        self.panel = panel
        self.fallback = fallback
        self.max_age = int(max_age_days)
        dates = panel.dates.values.astype("datetime64[D]")
        T, A = len(dates), panel.n_assets
        q = quotes[quotes["asset"].isin(panel.assets)]
        # per asset and quote date: [(tenor in years, sorted log-moneyness, IVs)], strikes taken to moneyness
        # at the spot of the quote date (the smile then moves with the spot: sticky moneyness)
        self._smiles: dict[int, list[list[tuple[float, np.ndarray, np.ndarray]]]] = {}
        self._qdate = np.full((T, A), -1, dtype=np.int64)  # index of the quote date used at t (-1 none)
        self._atm = np.full((T, A), np.nan)
        tau30 = np.array([ATM_TENOR_DAYS / DAYS_PER_YEAR])
        for a, name in enumerate(panel.assets):
            qa = q[q["asset"] == name]
            if qa.empty:
                continue
            qd = np.unique(qa["date"].to_numpy().astype("datetime64[D]"))
            at = np.searchsorted(dates, qd, side="right") - 1  # the panel date of each quote date (or before)
            close = panel.close[:, a]
            smiles = []
            for i, (_, g) in enumerate(qa.groupby("date", sort=True)):
                spot = close[at[i]] if at[i] >= 0 else np.nan
                smiles.append(self._smile(g, spot))
            self._smiles[a] = smiles
            pos = np.searchsorted(qd, dates, side="right") - 1  # latest quote date <= t
            age = np.where(pos >= 0, (dates - qd[np.maximum(pos, 0)]).astype(np.int64), 10**9)
            self._qdate[:, a] = np.where((pos >= 0) & (age <= self.max_age), pos, -1)
            atm_q = np.array([self._interp(sm, tau30, np.zeros(1))[0] for sm in smiles])  # once per quote date
            ok = self._qdate[:, a] >= 0
            self._atm[ok, a] = atm_q[self._qdate[ok, a]]
        if fallback is not None:
            fb = fallback.atm()
            self._atm = np.where(np.isfinite(self._atm), self._atm, fb)

    def atm(self) -> np.ndarray:
        return self._atm

    @staticmethod
    def _smile(g: pd.DataFrame, spot: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """One quote date's quotes as ``[(tau, k sorted, iv)]`` per tenor (strike quotes need a finite spot)."""
        out = []
        tenor = g["tenor_days"].to_numpy(dtype=float)
        for T_d in np.unique(tenor):
            s = g[np.isclose(tenor, T_d)]
            T_ = T_d / DAYS_PER_YEAR
            iv = s["iv"].to_numpy(dtype=float)
            kind = s["kind"].to_numpy()
            x = s["x"].to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                km = np.where(kind == "strike", np.log(np.where(kind == "strike", x, 1.0) / spot), 0.0)
            dl = kind == "delta"
            km = np.where(dl, -iv * math.sqrt(T_) * ndtri(np.where(dl, x, 0.5)) + 0.5 * iv * iv * T_, km)
            keep = np.isfinite(km)
            order = np.argsort(km[keep], kind="stable")
            if order.size:
                out.append((T_, km[keep][order], iv[keep][order]))
        return out

    @staticmethod
    def _interp(smile: list[tuple[float, np.ndarray, np.ndarray]], tau: np.ndarray, k: np.ndarray) -> np.ndarray:
        """IV at years ``tau`` and log-moneyness ``k``: linear in k per tenor, total variance linear in tau."""
        if not smile:
            return np.full(k.shape, np.nan)
        tenors = np.array([s[0] for s in smile])
        var = np.stack([np.interp(k, km, iv) ** 2 * T_ for T_, km, iv in smile])  # flat beyond the quotes
        if tenors.size == 1:
            return np.sqrt(var[0] / tenors[0])
        t_c = np.clip(tau, tenors[0], tenors[-1])  # flat vol beyond the first and last tenor
        j = np.clip(np.searchsorted(tenors, t_c, side="right") - 1, 0, tenors.size - 2)
        w = (t_c - tenors[j]) / (tenors[j + 1] - tenors[j])
        cols = np.arange(k.size)
        return np.sqrt(((1.0 - w) * var[j, cols] + w * var[j + 1, cols]) / t_c)

    def _surface(self, t: int, a: int, tau: np.ndarray, k: np.ndarray) -> np.ndarray:
        """IV at years ``tau`` and log-moneyness ``k`` from the quotes of asset ``a`` used at ``t``."""
        return self._interp(self._smiles[a][int(self._qdate[t, a])], tau, k)

    def iv(self, t: int, asset: np.ndarray, tau: np.ndarray, strike: np.ndarray, spot: np.ndarray) -> np.ndarray:
        asset = np.asarray(asset, dtype=np.int64)
        tau = np.maximum(np.asarray(tau, dtype=float), 1.0 / DAYS_PER_YEAR)
        strike = np.asarray(strike, dtype=float)
        out = np.full(asset.shape, np.nan)
        k = np.log(strike / spot[asset])
        for a in np.unique(asset):  # over underlyings (a handful), vectorised over positions
            if a in self._smiles and self._qdate[t, a] >= 0:
                m = asset == a
                out[m] = self._surface(t, int(a), tau[m], k[m])
        miss = ~np.isfinite(out)
        if miss.any() and self.fallback is not None:
            out[miss] = self.fallback.iv(t, asset[miss], tau[miss], strike[miss], spot)
        return out



# ----------------------------------------------------------------- proxy
def ewma_variance(log_returns: np.ndarray, lam: float) -> np.ndarray:
    """``(T, A)`` RiskMetrics EWMA variance of daily log returns up to each row (NaN before the first return).

    ``v_t = lam v_{t-1} + (1 - lam) r_t^2``, seeded with the first return's
    square; a missing return keeps the previous variance.
    """
    r = np.asarray(log_returns, dtype=float)
    T, A = r.shape
    v = np.full((T, A), np.nan)
    cur = np.full(A, np.nan)
    for t in range(T):  # a recursion over dates, vectorised over assets
        x = r[t]
        ok = np.isfinite(x)
        seed = ok & ~np.isfinite(cur)
        cur = np.where(seed, x * x, cur)
        upd = ok & ~seed
        cur = np.where(upd, lam * cur + (1.0 - lam) * x * x, cur)
        v[t] = cur
    return v


class ProxyVol(VolSource):
    """EWMA realised vol x premium, mean-reverting term structure, optional skew (module docstring).

    Parameters
    ----------
    panel : PricePanel
    ewma_lambda : float
        RiskMetrics decay, (0, 1); default 0.94.
    premium : float
        Implied / realised multiplier, [0.5, 3]; default 1.10.
    long_run_days : int
        Trailing returns in the long-run level, >= 30; default 730.
    half_life_days : float
        Half-life of the reversion to the long-run level, > 0; default 30.
    skew, smile : float
        ``iv(K) = iv_atm (1 - skew k + smile k^2)``, ``k = ln(K / S)``; default 0 (flat).
    min_obs : int
        Returns needed before the proxy is defined; default 30.
    """

    is_proxy = True

    def __init__(self, panel: PricePanel, *, ewma_lambda: float = 0.94, premium: float = 1.10,
                 long_run_days: int = 730, half_life_days: float = 30.0, skew: float = 0.0, smile: float = 0.0,
                 min_obs: int = 30) -> None:
        for name, v, lo, hi in (("ewma_lambda", ewma_lambda, 0.0, 1.0), ("premium", premium, 0.5, 3.0),
                                ("half_life_days", half_life_days, 0.0, 3650.0), ("skew", skew, -5.0, 5.0),
                                ("smile", smile, -5.0, 5.0)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi or (
                    name in ("ewma_lambda", "half_life_days") and not lo < float(v) < hi):
                raise ValueError(f"vol proxy {name} = {v!r} must be a number in [{lo}, {hi}]")
        if int(long_run_days) < 30 or int(min_obs) < 2:
            raise ValueError(f"vol proxy long_run_days = {long_run_days} must be >= 30 and min_obs >= 2")
        self.panel = panel
        self.lam, self.premium = float(ewma_lambda), float(premium)
        self.half_life, self.skew, self.smile = float(half_life_days), float(skew), float(smile)
        self.label = (f"proxy: EWMA({self.lam:g}) x {self.premium:g}, long-run {int(long_run_days)}d, "
                      f"half-life {self.half_life:g}d" + (f", skew {self.skew:g}" if self.skew else "")
                      + (f", smile {self.smile:g}" if self.smile else ""))
        r = panel.returns(1, kind="log")
        var = ewma_variance(r, self.lam)
        count = np.cumsum(np.isfinite(r), axis=0)
        sq = np.where(np.isfinite(r), r * r, 0.0)
        cs = np.cumsum(sq, axis=0)
        n = int(long_run_days)
        cs_lag = np.vstack([np.zeros((n, cs.shape[1])), cs[:-n]]) if cs.shape[0] > n else np.zeros_like(cs)
        cn_lag = np.vstack([np.zeros((n, cs.shape[1])), count[:-n]]) if cs.shape[0] > n else np.zeros_like(cs)
        with np.errstate(invalid="ignore", divide="ignore"):
            lr = (cs - cs_lag) / (count - cn_lag)
        ok = count >= int(min_obs)
        self._v0 = np.where(ok, var * DAYS_PER_YEAR, np.nan)  # annualised spot variance
        self._vl = np.where(ok, lr * DAYS_PER_YEAR, np.nan)  # annualised long-run variance
        self._a = math.log(2.0) / (self.half_life / DAYS_PER_YEAR)
        self._atm = self._term(self._v0, self._vl, np.float64(ATM_TENOR_DAYS / DAYS_PER_YEAR))

    def _term(self, v0: np.ndarray, vl: np.ndarray, tau: np.ndarray | np.float64) -> np.ndarray:
        x = self._a * np.maximum(tau, 1e-9)
        w = -np.expm1(-x) / x  # (1 - exp(-a tau)) / (a tau)
        return self.premium * np.sqrt(np.maximum(vl + (v0 - vl) * w, 0.0))

    def atm(self) -> np.ndarray:
        return self._atm

    def iv(self, t: int, asset: np.ndarray, tau: np.ndarray, strike: np.ndarray, spot: np.ndarray) -> np.ndarray:
        asset = np.asarray(asset, dtype=np.int64)
        tau = np.maximum(np.asarray(tau, dtype=float), 1.0 / DAYS_PER_YEAR)
        atm = self._term(self._v0[t, asset], self._vl[t, asset], tau)
        if not (self.skew or self.smile):
            return atm
        k = np.log(np.asarray(strike, dtype=float) / spot[asset])
        return np.maximum(atm * (1.0 - self.skew * k + self.smile * k * k), MIN_VOL)


def premium_ratio(dvol: pd.DataFrame, panel: PricePanel, asset: str, **proxy: float) -> float:
    """Mean of DVOL / the unit-premium proxy's 30-day ATM vol over the dates both exist.

    The measured implied / realised ratio to use as ``premium`` (see the
    module docstring); ``proxy`` passes the other :class:`ProxyVol` settings.
    """
    p = ProxyVol(panel, premium=1.0, **proxy)  # type: ignore[arg-type]
    a = panel.assets.index(asset)
    s = pd.Series(p.atm()[:, a], index=panel.dates.values.astype("datetime64[D]"))
    d = dvol.set_index(dvol["date"].to_numpy().astype("datetime64[D]"))["iv"]
    both = pd.concat([d, s], axis=1, join="inner").dropna()
    if both.empty:
        raise UserError(f"no date has both a DVOL value and a proxy vol for {asset}")
    return float((both.iloc[:, 0] / both.iloc[:, 1]).mean())


def vol_source(panel: PricePanel, spec: Mapping[str, object] | None) -> VolSource:
    """The source an ``[options]`` config describes: ``vol_file`` / ``dvol`` files, else the proxy."""
    spec = dict(spec or {})
    proxy_kw = dict(spec.get("proxy", {}) or {})  # type: ignore[call-overload]
    proxy = ProxyVol(panel, **proxy_kw)
    frames, names = [], []
    vf = str(spec.get("vol_file", "") or "")
    if vf:
        frames.append(read_iv_table(vf))
        names.append(Path(vf).name)
    for asset, f in dict(spec.get("dvol", {}) or {}).items():  # type: ignore[call-overload]
        frames.append(read_dvol(str(f), str(asset)))
        names.append(Path(str(f)).name)
    if not frames:
        return proxy
    fallback = proxy if str(spec.get("vol_fallback", "error")) == "proxy" else None
    return FileVol(pd.concat(frames, ignore_index=True), panel, "file: " + ", ".join(names),
                   max_age_days=int(spec.get("max_age_days", 5)), fallback=fallback)  # type: ignore[call-overload]
