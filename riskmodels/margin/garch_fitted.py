"""The fitted GARCH margin: volatility forecasts, correlations, requirements and paths.

:class:`FittedGarch` is what :meth:`GarchMargin.fit
<riskmodels.margin.garch.GarchMargin.fit>` returns: every asset estimated on
the refit schedule and filtered daily (:mod:`riskmodels.margin.garch_fit`),
the standardised returns and their correlation
(:mod:`riskmodels.margin.garch_correlation`), the fit log and its warnings,
and the parametric / FHS requirement and margin path whose formulas are in
:mod:`riskmodels.margin.garch`.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.margin._garch_path import cross_path
from riskmodels.margin.base import (
    FittedMargin,
    MarginPath,
    Requirement,
    account_eligibility,
    combine_units,
)
from riskmodels.margin.garch_correlation import (
    constant_correlation,
    ewma_correlation,
    nearest_psd_corr,
)
from riskmodels.margin.garch_fit import (
    SCALE,
    AssetResult,
    GarchEstimationWarning,
    first_gap,
    run_all,
)
from riskmodels.portfolio import Book

if TYPE_CHECKING:
    from riskmodels.margin.garch import GarchMargin

LOG_COLUMNS = (
    "asset", "date", "n_obs", "vol", "dist", "params", "persistence", "loglik",
    "converged", "at_bound", "bound", "failure", "fallback",
)



class FittedGarch(FittedMargin):
    """GARCH margin fitted to a panel.

    Attributes
    ----------
    sigma1, sigma_h : (T, A) decimal one-day and h-day volatility forecasts made at t.
    quantiles : (T, A, 4) loss multipliers ``qL, qS, esL, esS`` of the fitted innovation.
    z : (T, A) standardised returns ``r_t / sigma_t`` (sigma_t known at t - 1).
    corr : (T, A, A) correlation of ``z`` up to t (parametric method).
    asset_ok : (T, A) bool, the asset can be margined at t.
    fit_log : DataFrame, one row per (asset, refit date): params (as used),
        persistence, loglik, converged, at_bound (accepted with a parameter at
        its bound), bound, failure, fallback.
    fit_seconds : wall time of the estimation.
    """

    homogeneous: ClassVar[bool] = True
    supports_options: ClassVar[bool] = True

    def option_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, options: object) -> Requirement:
        """Spot, perps and options under GARCH-filtered joint price / implied-vol moves (:mod:`.options_hs`)."""
        from riskmodels.margin import options_hs

        return options_hs.garch_requirement(self, t, collateral, positions, options)  # type: ignore[arg-type]

    def __init__(self, model: GarchMargin, panel: PricePanel) -> None:
        super().__init__(model, panel)
        m = model
        r_pct = panel.returns(1, "log") * SCALE
        self._check_gaps(panel, r_pct)
        t0 = time.perf_counter()
        results: list[AssetResult] = run_all(panel.assets, r_pct, m.spec(), m.n_jobs)
        self.fit_seconds = time.perf_counter() - t0
        T, A = panel.n_dates, panel.n_assets
        var1 = np.column_stack([r.var1 for r in results]) if A else np.empty((T, 0))
        varh = np.column_stack([r.varh for r in results]) if A else np.empty((T, 0))
        self.sigma1 = np.sqrt(var1) / SCALE
        self.sigma_h = np.sqrt(varh) / SCALE
        self.quantiles = np.stack([r.q for r in results], axis=1) if A else np.empty((T, 0, 4))
        self.asset_ok = panel.live & np.isfinite(self.sigma_h) & np.isfinite(self.quantiles).all(axis=2)
        prev = np.vstack([np.full((1, A), np.nan), var1[:-1]])
        with np.errstate(invalid="ignore", divide="ignore"):
            self.z = r_pct / np.sqrt(prev)
        self.fit_log = self._log_frame(results)
        self._warn(self.fit_log)
        self.corr: np.ndarray | None = None
        if m.portfolio == "parametric":
            if m.correlation == "constant":
                win = None if m.window == "expanding" else m.window_length
                raw = constant_correlation(self.z, win)
            else:
                raw = ewma_correlation(self.z, m.corr_lambda)
            self.corr = self._repair(raw)
        col = 2 if m.measure == "es" else 0
        self._qpos = self.quantiles[:, :, col]
        self._qneg = self.quantiles[:, :, col + 1]

    @staticmethod
    def _check_gaps(panel: PricePanel, r_pct: np.ndarray) -> None:
        """Refuse a panel with a missing return inside an asset's live range (names asset and date)."""
        for j, asset in enumerate(panel.assets):
            hole = first_gap(r_pct[:, j])
            if hole >= 0:
                raise ValueError(
                    f"GARCH margin: {asset} has no return on {panel.dates[hole].date()} (date index {hole}), "
                    "inside its live range; the variance recursion needs a gap-free series. Load the "
                    "panel with load_panel(..., policy='truncate') to keep each asset's clean tail, or "
                    "max_fill=k to forward-fill gaps of at most k bars (flagged in the quality report)."
                )

    def _log_frame(self, results: list[AssetResult]) -> pd.DataFrame:
        rows = [rec for r in results for rec in r.log]
        cols = list(LOG_COLUMNS)
        if not rows:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(rows)
        df["date"] = self.panel.dates[df.pop("date_index").to_numpy()]
        return df[cols]

    @staticmethod
    def _warn(log: pd.DataFrame) -> None:
        """At most one :class:`GarchEstimationWarning` per asset, summarising its refits."""
        for asset, g in log.groupby("asset", sort=False):
            n = len(g)
            nb, failed = int(g["at_bound"].sum()), g[g["failure"] != ""]
            if nb == 0 and failed.empty:
                continue
            parts = []
            if nb:
                d = g.loc[g["at_bound"], "date"]
                parts.append(
                    f"{nb} of {n} refits ({pd.Timestamp(d.iloc[0]).date()} .. {pd.Timestamp(d.iloc[-1]).date()}) "
                    "hit a parameter bound (persistence >= 0.9999 or omega ~0: integrated-GARCH-like) "
                    "and were accepted as estimated (fit_log.at_bound, fit_log.bound)"
                )
            if not failed.empty:
                first = failed.iloc[0]
                fb = failed["fallback"].str.startswith("EWMA")
                parts.append(
                    f"{len(failed)} of {n} refits failed (first on {pd.Timestamp(first.date).date()}: "
                    f"{first.failure}; fallback: {first.fallback}); fallbacks used: previous parameters "
                    f"{int((~fb).sum())}x, EWMA {int(fb.sum())}x"
                )
            warnings.warn(
                f"GARCH estimation for {asset}: " + "; ".join(parts) + ". Details: one row per refit in "
                "garch_fit_log.csv in the output folder of `riskmodels backtest` or `riskmodels report`, or "
                "FittedGarch.fit_log "
                "(model.fit(panel).fit_log) in Python.",
                GarchEstimationWarning,
                stacklevel=4,
            )

    def _repair(self, raw: np.ndarray) -> np.ndarray:
        out = raw.copy()
        for t in range(raw.shape[0]):
            ok = np.flatnonzero(self.asset_ok[t])
            if ok.size > 1:
                sub = raw[t][np.ix_(ok, ok)]
                out[t][np.ix_(ok, ok)] = nearest_psd_corr(sub)
        return out

    # ------------------------------------------------------------ requirement
    def _unit_loss(self, t: int | np.ndarray, x: np.ndarray) -> np.ndarray:
        """``x_a sigma_{h,a} q_a`` with the side-dependent multiplier; 0 where ``x_a = 0``."""
        sig = self.sigma_h[t]
        q = np.where(x > 0, self._qpos[t], self._qneg[t])
        v = x * sig * q
        return np.where(x != 0, v, 0.0)

    def risk(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """``(N,)`` h-day VaR/ES (USD, loss positive) of the accounts' net exposures at t."""
        x = np.atleast_2d(np.asarray(collateral, dtype=np.float64) + np.asarray(positions, dtype=np.float64))
        if self.model.portfolio == "parametric":  # type: ignore[attr-defined]
            v = self._unit_loss(t, x)
            # v' R v per account as a GEMM then a row dot: the three-operand einsum took
            # 3.7 s of the 9.4 s account simulation at 1,000 accounts (profiled), now ~0.5 s
            quad = np.einsum("na,na->n", v @ self.corr[t], v)  # type: ignore[index]
            return np.sqrt(np.maximum(quad, 0.0))
        return self._fhs(t, x)

    def _fhs(self, t: int, x: np.ndarray) -> np.ndarray:
        m: GarchMargin = self.model  # type: ignore[assignment]
        lo = max(0, t - m.fhs_window + 1)
        ret = np.expm1(self.z[lo : t + 1] * self.sigma_h[t])  # (W, A)
        bad = ~np.isfinite(ret).all(axis=0) | ~self.asset_ok[t]
        loss = -(x @ np.nan_to_num(ret).T)  # (N, W)
        n = loss.shape[1]
        k = max(1, math.ceil(n * (1.0 - m.confidence) - 1e-9))  # guard 100 x (1 - 0.95) = 5.000000000000004
        top = -np.partition(-loss, k - 1, axis=1)[:, :k]  # k largest losses
        out = np.min(top, axis=1) if m.measure == "var" else top.mean(axis=1)
        out = np.maximum(out, 0.0)
        held_bad = (x[:, bad] != 0).any(axis=1)
        return np.where(held_bad, np.nan, out)

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        mm = self.risk(t, collateral, positions)
        return Requirement(self.model.im_multiplier * mm, mm)  # type: ignore[attr-defined]

    def maintenance_lipschitz(self, t: int) -> np.ndarray | None:
        """Per-asset bound ``L_a`` on how fast the parametric maintenance margin at t can change.

        With ``v_a = x_a sigma_{h,a} q_a(sign x_a)`` and the (PSD) correlation
        ``C = R'R``, the margin ``sqrt(v'Cv) = |R v|`` is a norm of ``v``, so
        ``| |Rv'| - |Rv| | <= |R(v' - v)| <= sum_a |v'_a - v_a| sqrt(C_aa)``;
        and ``|v'_a - v_a| <= |x'_a - x_a| sigma_{h,a} max(|q_L|, |q_S|)`` (a
        sign change of ``x_a`` included: then ``|x_a| + |x'_a| = |x'_a - x_a|``).
        Hence::

            L_a = sigma_{h,a} max(|q_L,a|, |q_S,a|) sqrt(C_aa)

        which also bounds the isolated margin (a sum of unit requirements
        ``sigma_{h,a} q sqrt(C_aa)`` per USD). The account simulation uses it
        to skip the intraday requirement of accounts whose equity is provably
        above it (exact; :func:`riskmodels.backtest.simulation_numpy._intraday_safe`).
        NaN where an asset has no forecast; ``None`` for the FHS portfolio
        method and for subclasses that override the requirement.
        """
        cls = type(self)
        if (
            self.model.portfolio != "parametric"  # type: ignore[attr-defined]
            or cls.requirement is not FittedGarch.requirement
            or cls.risk is not FittedGarch.risk
            or cls.isolated_requirement is not FittedMargin.isolated_requirement
            or cls.account_requirement is not FittedMargin.account_requirement
        ):
            return None
        q = np.maximum(np.abs(self._qpos[t]), np.abs(self._qneg[t]))
        diag = np.sqrt(np.maximum(np.diagonal(self.corr[t]), 0.0))  # type: ignore[index]
        return self.sigma_h[t] * q * diag

    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        """Constant-notional margin path; NaN where an account holds an ineligible asset.

        Parametric: cross accounts by :func:`~riskmodels.margin._garch_path.cross_path`
        (``sqrt(v' R v)`` over held assets, all dates in one pass), isolated
        ones as sums of unit requirements (:func:`~riskmodels.margin.base.combine_units`,
        the same products with every account isolated or not); FHS: the base
        loop over dates, vectorised over accounts.
        """
        book = book.align(self.panel.assets)
        if eligible is None:
            eligible = account_eligibility(self.asset_ok, book)
        if self.model.portfolio != "parametric":  # type: ignore[attr-defined]
            return super().path(book, eligible)
        T, P = eligible.shape
        mm = np.empty((T, P))
        iso = np.asarray(book.isolated, dtype=bool)
        cross = ~iso
        if cross.any():  # v' R v over each account's held assets, every date in one numba pass (_garch_path)
            out = np.empty((T, int(cross.sum())))
            cross_path(np.ascontiguousarray(book.exposure[cross]), self.sigma_h[:T], self._qpos[:T],
                       self._qneg[:T], self.corr[:T], out)  # type: ignore[index]
            mm[:, cross] = out
        if iso.any():  # each holding stand-alone: units sigma_h q per USD (collateral and long q+, short q-)
            up = self.sigma_h[:T] * self._qpos[:T]
            un = self.sigma_h[:T] * self._qneg[:T]
            mm[:, iso] = combine_units(book.collateral[iso], book.positions[iso], up, un)
        mm = np.where(eligible, mm, np.nan)
        im = self.model.im_multiplier * mm  # type: ignore[attr-defined]
        return MarginPath(self.model.label, self.panel.dates, book.account_ids, im, mm, eligible)
