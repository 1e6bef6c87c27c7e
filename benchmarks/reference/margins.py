"""Reference margin models: one account at a time, pandas and arch, no tricks.

Each class mirrors one riskmodels method with the same conventions (read
from the riskmodels docstrings, not from its code):

* :class:`HaircutRef` -- ``FixedHaircut`` with flat rates: collateral charged
  ``haircut x value``, perps ``IMF / MMF x |notional|``; in a cross account
  spot collateral hedging a short perp on the same asset, ``min(collateral,
  short)``, is charged 0 instead; isolated accounts get no offset.
* :class:`SpanRef` -- ``ScenarioGrid`` without spreads: monthly recalibrated
  price scan range ``PSR = max(floor, expm1(q99 of |2-day log return| over
  365 rows))`` (pandas rolling quantile, linear interpolation), CME's 16
  scenarios (moves 0, +-1/3, +-2/3, +-1 x PSR at weight 1, +-3 x PSR at
  weight 0.33), scan = ``max(max_s loss_s, 0)`` per asset, summed.
* :class:`HistoricalRef` -- plain HS VaR: the ``k``-th largest of the ``W``
  scenario losses ``-sum_a x_a expm1(r_{s,a})`` of the last ``W``
  overlapping ``h``-day log returns, ``k = ceil(W (1 - c))`` (5th worst of
  500 at 99%, Hull's convention); the constant-notional path is
  ``Series.rolling(W).quantile`` of each account's loss series.
* :class:`GarchRef` -- GARCH(1,1)-t VaR per asset fitted with
  ``arch_model(...).fit()`` on the last ``window_length`` percent returns,
  the variance filtered daily with the fixed parameters (a plain Python
  recursion from arch's backcast), the 2-day variance ``f1 + omega +
  (alpha + beta) f1``, the standardised-t quantile, and the uncentred
  pairwise correlation of ``z = r / sigma`` over the last ``window_length``
  days; ``VaR = sqrt(v' R v)``, ``v_a = x_a sigma_{h,a} q``.

Isolated accounts are margined as the sum of each holding's stand-alone
requirement (collateral, long perp and short perp separately).

Every ``requirement`` takes ONE account (``(A,)`` USD collateral and
positions) and returns ``(initial, maintenance)`` floats; NaN when a held
asset cannot be margined at t.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch import arch_model
from scipy import stats

SPAN_MOVES = np.array([0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1, 3, -3])
SPAN_WEIGHTS = np.array([1.0] * 14 + [0.33, 0.33])


def history_count(close: np.ndarray) -> np.ndarray:
    """``(T, A)`` number of finite 1-day returns up to t."""
    df = pd.DataFrame(close)
    r = np.log(df / df.shift(1))
    return r.notna().cumsum().to_numpy()


def _holdings(collateral: np.ndarray, positions: np.ndarray) -> list[tuple[int, float]]:
    """Stand-alone holdings of an isolated account: (asset, signed USD exposure)."""
    out = []
    for a in range(len(collateral)):
        if collateral[a] != 0:
            out.append((a, float(collateral[a])))
        if positions[a] > 0:
            out.append((a, float(positions[a])))
        if positions[a] < 0:
            out.append((a, float(positions[a])))
    return out


# --------------------------------------------------------------- haircut
@dataclass
class HaircutRef:
    haircut: float = 0.10
    imf: float = 0.05
    mmf: float = 0.03
    label: str = "haircut"
    min_history: int = 0

    def fit(self, panel) -> HaircutRef:
        self.ok = np.isfinite(panel.close)
        return self

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: bool) -> tuple[float, float]:
        im = mm = 0.0
        for a in range(len(collateral)):
            c, p = float(collateral[a]), float(positions[a])
            hedged = 0.0 if isolated else min(c, max(-p, 0.0))
            im += self.haircut * (c - hedged) + self.imf * (abs(p) - hedged)
            mm += self.haircut * (c - hedged) + self.mmf * (abs(p) - hedged)
        return im, mm


# ------------------------------------------------------------------ SPAN
@dataclass
class SpanRef:
    quantile: float = 0.99
    horizon: int = 2
    lookback: int = 365
    floor: float = 0.05
    min_obs: int = 90
    im_multiplier: float = 1.1
    label: str = "span"

    @property
    def min_history(self) -> int:
        return self.horizon - 1 + self.min_obs

    def fit(self, panel) -> SpanRef:
        close = pd.DataFrame(panel.close, index=panel.dates)
        absr = np.log(close / close.shift(self.horizon)).abs()
        roll = absr.rolling(self.lookback, min_periods=1)
        q = roll.quantile(self.quantile, interpolation="linear")
        n = roll.count()
        ok = n >= self.min_obs
        first = ok & ~ok.shift(1, fill_value=False)
        month = pd.Series(panel.dates.to_period("M"), index=panel.dates)
        new_month = month != month.shift(1)
        update = (ok & np.asarray(new_month)[:, None]) | first
        psr = np.maximum(np.expm1(q), self.floor).where(update).ffill()
        # an update row sets the range; rows before an asset's first update stay NaN
        seen = update.cumsum() > 0
        psr = psr.where(seen & close.notna())
        self.psr = psr.to_numpy()
        # risk arrays: weighted loss per USD of exposure, (T, A, 16)
        self.ra = -(SPAN_MOVES * self.psr[..., None]) * SPAN_WEIGHTS
        self.ok = np.isfinite(self.psr)
        return self

    def _scan(self, t: int, a: int, e: float) -> float:
        worst = max(e * self.ra[t, a, s] for s in range(16))
        return max(worst, 0.0)

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: bool) -> tuple[float, float]:
        held = [a for a in range(len(collateral)) if collateral[a] != 0 or positions[a] != 0]
        if any(not self.ok[t, a] for a in held):
            return math.nan, math.nan
        if isolated:
            mm = sum(self._scan(t, a, e) for a, e in _holdings(collateral, positions))
        else:
            mm = sum(self._scan(t, a, float(collateral[a] + positions[a])) for a in held)
        return self.im_multiplier * mm, mm


# ------------------------------------------------------------ HS VaR
@dataclass
class HistoricalRef:
    confidence: float = 0.99
    horizon: int = 2
    window: int = 500
    label: str = "hs"

    @property
    def min_history(self) -> int:
        return self.window + self.horizon - 1

    @property
    def k(self) -> int:
        return max(1, math.ceil(self.window * (1.0 - self.confidence) - 1e-9))

    def fit(self, panel) -> HistoricalRef:
        close = pd.DataFrame(panel.close, index=panel.dates)
        self.G = np.expm1(np.log(close / close.shift(self.horizon))).to_numpy()  # scenario simple returns
        self.ok = np.isfinite(panel.close) & (history_count(panel.close) >= self.min_history)
        return self

    def _var(self, t: int, x: np.ndarray) -> float:
        """k-th largest loss of exposure ``x`` over the window ending at t (NaN if incomplete)."""
        if t - self.window + 1 < 0:
            return math.nan
        g = self.G[t - self.window + 1 : t + 1]
        held = np.flatnonzero(x != 0)
        losses = -(g[:, held] @ x[held])
        if np.isnan(losses).any():
            return math.nan
        return max(float(np.sort(losses)[-self.k]), 0.0)

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: bool) -> tuple[float, float]:
        held = [a for a in range(len(collateral)) if collateral[a] != 0 or positions[a] != 0]
        if any(not self.ok[t, a] for a in held):
            return math.nan, math.nan
        A = len(collateral)
        if isolated:
            mm = 0.0
            for a, e in _holdings(collateral, positions):
                unit = np.zeros(A)
                unit[a] = 1.0 if e > 0 else -1.0
                mm += abs(e) * self._var(t, unit)
        else:
            mm = self._var(t, np.asarray(collateral, float) + np.asarray(positions, float))
        return mm, mm

    def path_account(self, x: np.ndarray, isolated_parts: list[tuple[int, float]] | None) -> np.ndarray:
        """Constant-notional maintenance series of one account: pandas rolling quantile.

        ``Series.rolling(W).quantile(q, interpolation="lower")`` with
        ``q = (W - k + 0.5) / (W - 1)`` picks sorted index ``W - k``, the
        ``k``-th largest loss (a window with a missing return gives NaN).
        """
        q = (self.window - self.k + 0.5) / (self.window - 1)
        G = pd.DataFrame(self.G)

        def tail(expo: pd.Series) -> pd.Series:
            held = expo[expo != 0]
            loss = -(G[held.index] * held.to_numpy()).sum(axis=1, skipna=False)
            return loss.rolling(self.window, min_periods=self.window).quantile(q, interpolation="lower").clip(lower=0)

        if isolated_parts is None:
            return tail(pd.Series(x)).to_numpy()
        total = pd.Series(0.0, index=G.index)
        for a, e in isolated_parts:
            unit = pd.Series(0.0, index=G.columns)
            unit[a] = 1.0 if e > 0 else -1.0
            total = total + abs(e) * tail(unit)
        return total.to_numpy()


# ------------------------------------------------------------------ GARCH
@dataclass
class GarchRef:
    """GARCH(1,1)-t; ``refit_every=1`` is the daily refit of the timing mode."""

    confidence: float = 0.99
    horizon: int = 2
    refit_every: int = 20
    window_length: int = 1000
    min_history_: int = 250
    im_multiplier: float = 1.1
    max_param_age: int = 250
    label: str = "garch"

    @property
    def min_history(self) -> int:
        return self.min_history_

    def fit(self, panel) -> GarchRef:
        close = pd.DataFrame(panel.close, index=panel.dates)
        r = (100.0 * np.log(close / close.shift(1))).to_numpy()
        T, A = r.shape
        self.var1 = np.full((T, A), np.nan)
        self.varh = np.full((T, A), np.nan)
        self.q = np.full((T, A), np.nan)
        self.n_fits = 0
        self.fit_seconds = 0.0
        for a in range(A):
            self._fit_asset(r[:, a], a)
        self.sigma_h = np.sqrt(self.varh) / 100.0
        self.ok = np.isfinite(panel.close) & np.isfinite(self.sigma_h) & np.isfinite(self.q)
        prev = np.vstack([np.full((1, A), np.nan), self.var1[:-1]])
        self.z = r / np.sqrt(prev)
        self.corr = self._correlations()
        return self

    def _fit_asset(self, r: np.ndarray, a: int) -> None:
        live = np.flatnonzero(np.isfinite(r))
        if live.size == 0:
            return
        f, last = int(live[0]), int(live[-1])
        dates = list(range(f + self.min_history - 1, last + 1, self.refit_every))
        prev, prev_date = None, -1
        for k, tk in enumerate(dates):
            seg_end = dates[k + 1] if k + 1 < len(dates) else last + 1
            w0 = max(f, tk - self.window_length + 1)
            y = r[w0 : tk + 1]
            t0 = time.perf_counter()
            params = fit_garch_t(y, prev)
            self.fit_seconds += time.perf_counter() - t0
            self.n_fits += 1
            ewma = False
            if params is None:
                if prev is not None and seg_end - 1 - prev_date <= self.max_param_age:
                    params = prev
                else:
                    ewma = True
            else:
                prev, prev_date = params, tk
            if ewma:  # RiskMetrics fallback, normal innovations
                omega, alpha, beta, q = 0.0, 0.06, 0.94, float(stats.norm.ppf(self.confidence))
            else:
                omega, alpha, beta, nu = params
                q = float(stats.t.ppf(self.confidence, nu)) * math.sqrt((nu - 2.0) / nu)
            e = r[w0:seg_end]
            s2 = garch_recursion(e, omega, alpha, beta, arch_backcast(r[w0 : tk + 1]))
            lo = w0 - 1 if k == 0 else tk
            for t in range(lo, seg_end):
                self.var1[t, a] = s2[t - w0 + 1]
            for t in range(tk, seg_end):
                f1 = self.var1[t, a]
                total, fk = f1, f1
                for _ in range(1, self.horizon):
                    fk = omega + (alpha + beta) * fk
                    total += fk
                self.varh[t, a] = total
                self.q[t, a] = q

    def _correlations(self) -> np.ndarray:
        """Uncentred pairwise correlation of z over the last window_length days, repaired to PSD."""
        T, A = self.z.shape
        out = np.full((T, A, A), np.nan)
        for t in range(T):
            w = self.z[max(0, t - self.window_length + 1) : t + 1]
            m = np.isfinite(w)
            wf = np.where(m, w, 0.0)
            sxy = wf.T @ wf
            sxx = (wf**2).T @ m.astype(float)  # sum of z_a^2 on the days b is observed too
            den = np.sqrt(sxx * sxx.T)
            with np.errstate(invalid="ignore", divide="ignore"):
                rho = np.where(den > 0, sxy / den, 0.0)
            rho = np.clip(rho, -1.0, 1.0)
            np.fill_diagonal(rho, 1.0)
            ok = np.flatnonzero(self.ok[t])
            if ok.size > 1:
                sub = rho[np.ix_(ok, ok)]
                vals, vecs = np.linalg.eigh(sub)
                if vals[0] < -1e-12:
                    c = (vecs * np.maximum(vals, 0.0)) @ vecs.T
                    d = np.sqrt(np.clip(np.diag(c), 1e-300, None))
                    c = c / d[:, None] / d[None, :]
                    np.fill_diagonal(c, 1.0)
                    rho[np.ix_(ok, ok)] = c
            out[t] = rho
        return out

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: bool) -> tuple[float, float]:
        held = [a for a in range(len(collateral)) if collateral[a] != 0 or positions[a] != 0]
        if any(not self.ok[t, a] for a in held):
            return math.nan, math.nan
        if isolated:
            mm = sum(abs(e) * self.sigma_h[t, a] * self.q[t, a] for a, e in _holdings(collateral, positions))
        else:
            v = np.zeros(len(collateral))
            for a in held:
                v[a] = (collateral[a] + positions[a]) * self.sigma_h[t, a] * self.q[t, a]
            mm = math.sqrt(max(float(v @ self.corr[t] @ v), 0.0))
        return self.im_multiplier * mm, mm


def arch_backcast(y: np.ndarray) -> float:
    """arch's GARCH backcast of the estimation window (arch's own method)."""
    from arch.univariate import GARCH

    return float(GARCH().backcast(np.ascontiguousarray(y)))


def garch_recursion(e: np.ndarray, omega: float, alpha: float, beta: float, backcast: float) -> np.ndarray:
    """``s2[0]`` from the backcast, ``s2[i] = omega + alpha e[i-1]^2 + beta s2[i-1]``; length n + 1."""
    s2 = np.empty(len(e) + 1)
    prev_e2 = prev_s2 = backcast
    for i in range(len(e) + 1):
        s2[i] = omega + alpha * prev_e2 + beta * prev_s2
        if i < len(e):
            prev_e2 = e[i] * e[i]
        prev_s2 = s2[i]
    return s2


def fit_garch_t(y: np.ndarray, start: tuple[float, ...] | None) -> tuple[float, float, float, float] | None:
    """``(omega, alpha, beta, nu)`` from ``arch_model(y, mean="Zero", dist="t").fit()``; None if unusable.

    Unusable: too few returns (< 100), no convergence, non-finite values or
    ``nu <= 2.1``. An estimate with ``alpha + beta`` above ``1 - 1e-6`` is
    scaled back to it (as riskmodels does, so the forecasts stay finite).
    """
    if len(y) < 100 or not np.var(y) > 0:
        return None
    am = arch_model(y, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = am.fit(disp="off", show_warning=False, starting_values=None if start is None else np.array(start))
    except Exception:
        return None
    omega, alpha, beta, nu = (float(v) for v in res.params)
    if res.convergence_flag != 0 or not np.isfinite([omega, alpha, beta, nu]).all() or nu <= 2.1:
        return None
    pers = alpha + beta
    if pers > 1.0 - 1e-6:
        alpha, beta = alpha * (1.0 - 1e-6) / pers, beta * (1.0 - 1e-6) / pers
    return omega, alpha, beta, nu


def time_daily_refits(panel, n_sample: int = 40, seed: int = 0, window_length: int = 1000,
                      min_history: int = 250) -> tuple[float, int, int]:
    """Mean seconds per arch fit on ``n_sample`` random (asset, day) windows, and the count of daily fits.

    A daily refit of every asset is ``n_daily`` fits (one per asset and day
    from its first fit on); the reference's GARCH fit time in "daily" mode is
    ``mean x n_daily`` (sampled and extrapolated, not run).
    """
    close = pd.DataFrame(panel.close)
    r = (100.0 * np.log(close / close.shift(1))).to_numpy()
    cand = []
    for a in range(r.shape[1]):
        live = np.flatnonzero(np.isfinite(r[:, a]))
        if live.size >= min_history:
            cand += [(a, int(t), int(live[0])) for t in live[min_history - 1 :]]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(cand), size=min(n_sample, len(cand)), replace=False)
    t0 = time.perf_counter()
    for i in pick:
        a, t, f = cand[i]
        fit_garch_t(r[max(f, t - window_length + 1) : t + 1, a], None)
    per_fit = (time.perf_counter() - t0) / max(1, len(pick))
    return per_fit, len(cand), len(pick)
