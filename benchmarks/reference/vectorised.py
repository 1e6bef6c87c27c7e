"""The reasonable reference: what a competent quant writes with numpy, pandas and arch.

The loop reference (:mod:`.backtest`, :mod:`.margins`) prices one account at
a time; nobody who has to run this comparison would. This module is the
honest yardstick of ``benchmarks/standard.py`` (``reasonable_s``): the same
documented conventions (riskmodels.backtest.coverage / simulation /
mm_rule, the margin modules' docstrings), written the way one would write
them without numba and without riskmodels' tricks:

* **vectorised over accounts**: every requirement takes ``(P, A)`` USD
  collateral and positions and returns ``(P,)`` initial and maintenance; the
  constant-notional P&L is one matrix product per model (``G @ X.T`` for HS
  VaR, ``X+ @ up.T + X- @ dn.T`` for SPAN's scan, the ``(P, A^2) @ (A^2, T)``
  quadratic form for GARCH);
* **pandas rolling quantile** of the ``(T, P)`` loss matrix for the HS VaR
  path (``DataFrame.rolling(W).quantile`` on all accounts at once);
* **arch** ``arch_model(...).fit()`` per asset on riskmodels' 20-day refit
  schedule, warm-started from the previous estimate (the loop reference's
  :class:`~.margins.GarchRef`), the variance filter as a linear filter
  (``scipy.signal.lfilter``), the windowed correlations from cumulative sums;
* **the declared liquidation rule** of the comparison
  (:mod:`riskmodels.backtest.mm_rule`): risk models' ``IM' = min(IM,
  max_loss)`` and ``MM' = ratio x IM'``; the haircut keeps its own MMF;
* **the liquidation simulation** loops over dates, every step vectorised over
  the accounts (as riskmodels does): delisting, intraday adverse prices with
  the t-1 state, re-openings, the close check, slippage, penalty, bad debt,
  re-entry. It computes every open account's intraday requirement (no
  screen).

No numba anywhere. ``tests/test_benchmark_reasonable.py`` checks that it
gives riskmodels' liquidation events and coverage counts on the standard
workload.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from .margins import GarchRef, HaircutRef, HistoricalRef, SpanRef, arch_backcast, fit_garch_t

Req = tuple[np.ndarray, np.ndarray]


def _parts(collateral: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P, A)`` long and short USD exposure of the separate holdings (isolated accounts)."""
    long_ = np.maximum(collateral, 0.0) + np.maximum(positions, 0.0)
    short = np.maximum(-collateral, 0.0) + np.maximum(-positions, 0.0)
    return long_, short


def _not_ok(ok_t: np.ndarray, held: np.ndarray) -> np.ndarray:
    """``(P,)`` True where a held asset cannot be margined (``ok_t`` is ``(A,)``)."""
    return (held & ~ok_t[None, :]).any(axis=1)


def max_loss(collateral: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The most a book can lose: its net long value without a net short, else inf (mm_rule)."""
    x = collateral + positions
    return np.where((x < 0).any(axis=1), np.inf, np.maximum(x, 0.0).sum(axis=1))


# ----------------------------------------------------------------- models
class VHaircut(HaircutRef):
    """Flat haircut / IMF / MMF, ``(P, A)`` at once; cross accounts net spot against a short perp."""

    declared = False

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray) -> Req:
        hedged = np.where(isolated[:, None], 0.0, np.minimum(collateral, np.maximum(-positions, 0.0)))
        base = self.haircut * (collateral - hedged)
        gross = np.abs(positions) - hedged
        return (base + self.imf * gross).sum(axis=1), (base + self.mmf * gross).sum(axis=1)

    def path(self, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray, eligible: np.ndarray) -> Req:
        im, mm = self.requirement(0, collateral, positions, isolated)
        return np.where(eligible, im[None, :], np.nan), np.where(eligible, mm[None, :], np.nan)


class VSpan(SpanRef):
    """Scan per asset: ``max_s(e ra_s) = e+ max_s ra_s + e- max_s(-ra_s)``: two matrix products."""

    declared = True

    def fit(self, panel) -> VSpan:
        super().fit(panel)
        self.up = np.nan_to_num(self.ra.max(axis=2), nan=0.0)  # (T, A) loss per USD long
        self.dn = np.nan_to_num((-self.ra).max(axis=2), nan=0.0)  # per USD short
        return self

    def _mm(self, rows: Any, xl: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return xl @ self.up[rows].T + xs @ self.dn[rows].T

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray) -> Req:
        x = collateral + positions
        xl, xs = np.maximum(x, 0.0), np.maximum(-x, 0.0)
        il, is_ = _parts(collateral, positions)
        xl, xs = np.where(isolated[:, None], il, xl), np.where(isolated[:, None], is_, xs)
        mm = xl @ self.up[t] + xs @ self.dn[t]
        mm = np.where(_not_ok(self.ok[t], (collateral != 0) | (positions != 0)), np.nan, mm)
        return self.im_multiplier * mm, mm

    def path(self, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray, eligible: np.ndarray) -> Req:
        x = collateral + positions
        il, is_ = _parts(collateral, positions)
        xl = np.where(isolated[:, None], il, np.maximum(x, 0.0))
        xs = np.where(isolated[:, None], is_, np.maximum(-x, 0.0))
        mm = (self.up @ xl.T) + (self.dn @ xs.T)  # (T, P)
        mm = np.where(eligible & _held_ok(self.ok, collateral, positions), mm, np.nan)
        return self.im_multiplier * mm, mm


def _held_ok(ok: np.ndarray, collateral: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``(T, P)``: every held asset is ok (one boolean matrix product)."""
    held = ((collateral != 0) | (positions != 0)).astype(np.float64)
    return ((~ok).astype(np.float64) @ held.T) == 0


class VHistorical(HistoricalRef):
    """HS VaR: the ``k``-th largest of the window's losses, ``np.partition`` / pandas rolling quantile."""

    declared = True

    def fit(self, panel) -> VHistorical:
        super().fit(panel)
        self.G0 = np.nan_to_num(self.G, nan=0.0)
        self.Gnan = np.isnan(self.G)
        w = self.window
        q = (w - self.k + 0.5) / (w - 1)  # sorted index W - k: the k-th largest (see HistoricalRef)
        g = pd.DataFrame(self.G)
        roll = {"min_periods": w}
        self.unit_long = (-g).rolling(w, **roll).quantile(q, interpolation="lower").clip(lower=0).to_numpy()
        self.unit_short = g.rolling(w, **roll).quantile(q, interpolation="lower").clip(lower=0).to_numpy()
        return self

    def _tail(self, t: int, x: np.ndarray) -> np.ndarray:
        lo = t - self.window + 1
        if lo < 0:
            return np.full(x.shape[0], np.nan)
        losses = -(x @ self.G0[lo : t + 1].T)  # (P, W)
        kth = np.partition(losses, self.window - self.k, axis=1)[:, self.window - self.k]
        bad = (self.Gnan[lo : t + 1].any(axis=0)[None, :] & (x != 0)).any(axis=1)
        return np.where(bad, np.nan, np.maximum(kth, 0.0))

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray) -> Req:
        mm = np.empty(collateral.shape[0])
        cross = ~isolated
        mm[cross] = self._tail(t, collateral[cross] + positions[cross])
        if isolated.any():
            il, is_ = _parts(collateral[isolated], positions[isolated])
            mm[isolated] = il @ np.nan_to_num(self.unit_long[t]) + is_ @ np.nan_to_num(self.unit_short[t])
        mm = np.where(_not_ok(self.ok[t], (collateral != 0) | (positions != 0)), np.nan, mm)
        return mm, mm

    def path(self, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray, eligible: np.ndarray) -> Req:
        x = collateral + positions
        loss = -(self.G0 @ x.T)  # (T, P): one matrix product
        loss[(self.Gnan.astype(np.float64) @ (x != 0).T.astype(np.float64)) > 0] = np.nan
        w = self.window
        q = (w - self.k + 0.5) / (w - 1)
        mm = pd.DataFrame(loss).rolling(w, min_periods=w).quantile(q, interpolation="lower").clip(lower=0).to_numpy(copy=True)
        if isolated.any():
            il, is_ = _parts(collateral[isolated], positions[isolated])
            # an ok asset has a complete window, so its unit VaR is finite where the mask keeps it
            ul, us = np.nan_to_num(self.unit_long, nan=0.0), np.nan_to_num(self.unit_short, nan=0.0)
            mm[:, isolated] = ul @ il.T + us @ is_.T
        mm = np.where(eligible & _held_ok(self.ok, collateral, positions), mm, np.nan)
        return mm, mm


class VGarch(GarchRef):
    """GARCH(1,1)-t with arch on the 20-day warm refit schedule; filter and correlations vectorised."""

    declared = True

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
            t0 = time.perf_counter()
            params = fit_garch_t(r[w0 : tk + 1], prev)
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
                omega, alpha, beta, q = 0.0, 0.06, 0.94, _norm_q(self.confidence)
            else:
                omega, alpha, beta, nu = params
                q = _t_q(self.confidence, nu)
            bc = arch_backcast(r[w0 : tk + 1])
            e2 = np.concatenate([[bc], r[w0:seg_end] ** 2])  # e_{i-1}^2, the backcast first
            s2 = lfilter([1.0], [1.0, -beta], omega + alpha * e2, zi=[beta * bc])[0]
            lo = w0 - 1 if k == 0 else tk
            self.var1[lo:seg_end, a] = s2[lo - w0 + 1 : seg_end - w0 + 1]
            f1 = self.var1[tk:seg_end, a]
            total, fk = f1.copy(), f1
            for _ in range(1, self.horizon):
                fk = omega + (alpha + beta) * fk
                total = total + fk
            self.varh[tk:seg_end, a] = total
            self.q[tk:seg_end, a] = q

    def fit(self, panel) -> VGarch:
        super().fit(panel)
        self.sq = np.nan_to_num(self.sigma_h * self.q, nan=0.0)  # (T, A) loss per USD, one sigma-q
        return self

    def _correlations(self) -> np.ndarray:
        """Windowed uncentred correlation from cumulative sums; PSD repair only where needed."""
        T, A = self.z.shape
        m = np.isfinite(self.z)
        wf = np.where(m, self.z, 0.0)
        cxy = np.cumsum(wf[:, :, None] * wf[:, None, :], axis=0)
        cxx = np.cumsum((wf**2)[:, :, None] * m[:, None, :], axis=0)
        n = self.window_length
        sxy, sxx = cxy.copy(), cxx.copy()
        sxy[n:] -= cxy[:-n]
        sxx[n:] -= cxx[:-n]
        den = np.sqrt(sxx * np.swapaxes(sxx, 1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where(den > 0, sxy / den, 0.0)
        rho = np.clip(rho, -1.0, 1.0)
        rho[:, np.arange(A), np.arange(A)] = 1.0
        for t in range(T):  # eigh of a <= 18 x 18 matrix per date (a batch would need one ok-set)
            ok = np.flatnonzero(self.ok[t])
            if ok.size > 1:
                sub = rho[t][np.ix_(ok, ok)]
                vals, vecs = np.linalg.eigh(sub)
                if vals[0] < -1e-12:
                    c = (vecs * np.maximum(vals, 0.0)) @ vecs.T
                    d = np.sqrt(np.clip(np.diag(c), 1e-300, None))
                    c = c / d[:, None] / d[None, :]
                    np.fill_diagonal(c, 1.0)
                    rho[t][np.ix_(ok, ok)] = c
        return rho

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray) -> Req:
        x = collateral + positions
        v = x * self.sq[t]
        mm = np.sqrt(np.maximum(((v @ self.corr[t]) * v).sum(axis=1), 0.0))
        iso = (np.abs(collateral) + np.abs(positions)) @ self.sq[t]
        mm = np.where(isolated, iso, mm)
        mm = np.where(_not_ok(self.ok[t], (collateral != 0) | (positions != 0)), np.nan, mm)
        return self.im_multiplier * mm, mm

    def path(self, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray, eligible: np.ndarray) -> Req:
        x = collateral + positions
        P, A = x.shape
        xx = (x[:, :, None] * x[:, None, :]).reshape(P, A * A)  # (P, A^2)
        m = (self.sq[:, :, None] * self.sq[:, None, :] * self.corr).reshape(-1, A * A)  # (T, A^2)
        mm = np.sqrt(np.maximum(m @ xx.T, 0.0))  # (T, P): one matrix product
        if isolated.any():
            mm[:, isolated] = self.sq @ (np.abs(collateral[isolated]) + np.abs(positions[isolated])).T
        mm = np.where(eligible & _held_ok(self.ok, collateral, positions), mm, np.nan)
        return self.im_multiplier * mm, mm


def _t_q(confidence: float, nu: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(confidence, nu)) * math.sqrt((nu - 2.0) / nu)


def _norm_q(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(confidence))


def with_rule(model: Any, req: Req, collateral: np.ndarray, positions: np.ndarray, ratio: float | None) -> Req:
    """The comparison's declared rule (mm_rule): risk models bounded by max_loss, ``MM = ratio x IM``."""
    if not model.declared:
        return req
    im, mm = req
    bound = max_loss(collateral, positions)
    if im.ndim == 2:
        bound = bound[None, :]
    im = np.minimum(im, bound)
    return im, (np.minimum(mm, bound) if ratio is None else ratio * im)


# ------------------------------------------------------------- coverage
def coverage_counts(close: np.ndarray, collateral: np.ndarray, positions: np.ndarray, margin: np.ndarray,
                    h: int) -> tuple[int, int]:
    """Observations and exceptions of ``margin`` (``(T, P)``) against the h-day loss: one matrix product."""
    x = collateral + positions
    fwd = close[h:] / close[:-h] - 1.0
    fwd = np.vstack([fwd, np.full((h, close.shape[1]), np.nan)])
    loss = -(np.nan_to_num(fwd, nan=0.0) @ x.T)
    loss[(np.isnan(fwd).astype(np.float64) @ (x != 0).T.astype(np.float64)) > 0] = np.nan
    valid = np.isfinite(loss) & np.isfinite(margin)
    return int(valid.sum()), int((loss > margin)[valid].sum())
