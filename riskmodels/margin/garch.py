"""GARCH margin: conditional volatility, fat tails, portfolio correlation.

The requirement follows each asset's conditional volatility forecast (as OCC
STANS and dynamic-margin exchanges do): low in calm markets, rising fast in
turbulent ones. Maintenance margin is the account's h-day VaR or ES at
``confidence`` on its net USD exposure ``x = collateral + positions``;
initial margin is ``im_multiplier x maintenance`` (default 1.1, CME's
initial/maintenance ratio for HRP accounts, METHODOLOGY.md 1.2).

Per asset (estimation in :mod:`riskmodels.margin.garch_fit`, recursions in
:mod:`riskmodels.margin._garch_filter`): GARCH(1,1), GJR-GARCH(1,1,1) or
EGARCH(1,1,1) with normal, Student-t or Hansen skew-t innovations fitted with
``arch`` on percent log returns (x 100, converted back) with a zero mean,
refitted every ``refit_every`` days and filtered daily in between; or
EWMA/RiskMetrics (no variance parameters). The h-day variance ``sigma_h^2``
is the sum of the model's 1..h-step variance forecasts: closed form for
GARCH/GJR/EWMA, seeded simulation for EGARCH.

Portfolio aggregation
---------------------
``portfolio="parametric"``::

    v_a = x_a sigma_{h,a} q_a,   q_a = qL_a if x_a > 0 else qS_a
    VaR = sqrt(v' R v)

with ``qL = -F^{-1}(1 - c)`` and ``qS = F^{-1}(c)`` the loss quantiles of the
asset's fitted unit-variance innovation (``ES``: the ES multipliers), and
``R`` the correlation of the standardised returns ``z = r / sigma`` up to t.
For normal innovations (any ``R``) and for Student-t with a common ``nu``
this is exactly ``q sqrt(x' D R D x)``, ``D = diag(sigma_h)``, the
elliptical-distribution VaR/ES. It is an approximation when the assets'
distributions differ or are skewed, and for ``h > 1`` because the sum of h
t-distributed daily innovations is not t (it is closer to normal); the
one-day innovation quantile is used for the h-day sum, which is
conservative. Returns are log returns and the P&L linear in them (delta
approximation). ``R`` is pairwise: ``constant`` uses the estimation window
(the last ``window_length`` days, or all history for ``window="expanding"``),
``ewma`` the recursion ``Q_t = lambda Q_{t-1} + (1 - lambda) z_t z_t'``
(RiskMetrics-style dynamic correlation, lambda ``corr_lambda``); both are
uncentred (``z`` has mean ~0 by construction) and repaired to the nearest
PSD matrix (eigenvalues clipped at 0, unit diagonal) when pairwise samples
make it indefinite.

``portfolio="fhs"`` (filtered historical simulation, Barone-Adesi et al.
1999; LCH PAIRS, Eurex Prisma): the standardised residual vectors of the last
``fhs_window`` days are rescaled to today's h-day volatility, ``r_{s,a} =
z_{s,a} sigma_{h,a}(t)``; the scenario P&L of an account is ``sum_a x_a
(exp(r_{s,a}) - 1)`` (full revaluation of the simple return), the joint
empirical tail replaces the correlation model. VaR is the ``k``-th largest
of the ``n`` scenario losses with ``k = ceil(n (1 - c))`` and ES the mean of
the ``k`` largest; both floored at 0.

Look-ahead: every quantity at date t uses returns up to t only; refit dates
depend only on each asset's listing date. An asset is eligible from its
first fit (``min_history`` returns) while it is live; an account holding an
asset that is not eligible gets NaN.

Estimation outcomes (details in :mod:`riskmodels.margin.garch_fit`): an
estimate with persistence at its bound (integrated-GARCH-like, common on
crypto) is accepted and flagged ``at_bound`` in ``fit_log``; a real failure
(non-convergence, too little history, ``nu <= 2.1``, non-finite likelihood)
falls back to the previous accepted parameters if at most ``max_param_age``
days old, else to EWMA(0.94) with normal innovations. One
:class:`GarchEstimationWarning` per asset summarises both.

Modules: this one holds the model classes (:class:`GarchMargin`,
:class:`EwmaMargin`) and their parameter checks; the fitted model
(:class:`FittedGarch`: forecasts, fit log, requirements, margin paths) is in
:mod:`riskmodels.margin.garch_fitted`, the correlation of the standardised
returns in :mod:`riskmodels.margin.garch_correlation`. Every name defined here
before the split, and the helpers other modules imported from here, are still
importable from this module.
"""

from __future__ import annotations

import math
from typing import ClassVar

from riskmodels.data.panel import PricePanel
from riskmodels.margin._garch_path import cross_path as cross_path
from riskmodels.margin.base import FittedMargin as FittedMargin
from riskmodels.margin.base import MarginModel, check_range, register
from riskmodels.margin.base import MarginPath as MarginPath
from riskmodels.margin.base import Requirement as Requirement
from riskmodels.margin.base import account_eligibility as account_eligibility
from riskmodels.margin.base import combine_units as combine_units
from riskmodels.margin.garch_correlation import _pairwise_corr as _pairwise_corr
from riskmodels.margin.garch_correlation import constant_correlation as constant_correlation
from riskmodels.margin.garch_correlation import ewma_correlation as ewma_correlation
from riskmodels.margin.garch_correlation import nearest_psd_corr as nearest_psd_corr
from riskmodels.margin.garch_fit import SCALE as SCALE
from riskmodels.margin.garch_fit import AssetResult as AssetResult
from riskmodels.margin.garch_fit import FitSpec, GarchEstimationWarning
from riskmodels.margin.garch_fit import first_gap as first_gap
from riskmodels.margin.garch_fit import run_all as run_all
from riskmodels.margin.garch_fitted import LOG_COLUMNS as LOG_COLUMNS
from riskmodels.margin.garch_fitted import FittedGarch
from riskmodels.portfolio import Book as Book

# FittedGarch, LOG_COLUMNS and the correlation functions (and the helpers they read,
# imported `x as x`) are re-exported so that every name importable from
# riskmodels.margin.garch before the split still is.

__all__ = ["EwmaMargin", "FittedGarch", "GarchEstimationWarning", "GarchMargin"]

VOLS = ("garch", "gjr", "egarch", "ewma")
DISTS = ("normal", "t", "skewt")


def _choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")
    return value


def _whole(name: str, value: int, lo: int, hi: float = math.inf) -> int:
    if int(value) != value or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r} must be a whole number in [{lo}, {hi}]")
    return int(value)


@register
class GarchMargin(MarginModel):
    """Conditional-volatility (GARCH-family) VaR/ES margin.

    Parameters
    ----------
    vol : {"garch", "gjr", "egarch", "ewma"}
        Per-asset volatility process (default "garch").
    dist : {"normal", "t", "skewt"}
        Innovation distribution (default "t").
    confidence : float
        VaR/ES level in (0.5, 1) (default 0.99).
    horizon : int
        Margin period of risk h in days, 1..10 (default 1).
    measure : {"var", "es"}
        Risk measure (default "var").
    portfolio : {"parametric", "fhs"}
        Aggregation: correlation-based parametric, or filtered historical
        simulation on standardised residuals (default "parametric").
    correlation : {"constant", "ewma"}
        Correlation model of the parametric method (default "constant").
    corr_lambda : float
        EWMA decay of the dynamic correlation, in (0, 1) (default 0.94).
    refit_every : int
        Days between re-estimations, >= 1 (default 20, as issue 5 asks: the
        default 18-asset universe over 2,661 days is 1,925 fits, about 24 s
        of CPU in all, ~13 s wall on 2 idle cores; see
        :mod:`riskmodels.margin.garch_fit`).
    window : {"rolling", "expanding"}
        Estimation window (default "rolling").
    window_length : int
        Rolling window in days, >= min_history (default 1000).
    min_history : int
        Daily returns an asset needs before its first margin, >= 2 (default
        250): the first fit is on the date the asset has ``min_history``
        returns, so ``asset_ok`` equals ``PricePanel.eligible(min_history)``,
        the rule the backtest engine applies. Fewer than 100 returns in a fit
        window gives the EWMA fallback with a warning.
    fhs_window : int, optional
        Scenario days of FHS, 20..min_history (default ``min(250, min_history)``).
    im_multiplier : float
        Initial / maintenance ratio, >= 1 (default 1.1).
    ewma_lambda : float
        RiskMetrics decay when ``vol="ewma"``, in (0, 1) (default 0.94).
    n_sim : int
        Simulated paths for the EGARCH h-day variance, >= 100 (default 2000).
    seed : int
        Seed of the EGARCH simulation (default 0).
    n_jobs : int or None
        Processes for the per-asset fits; None = all cores (serial inside a
        worker of the backtest's, a sweep's or a Dask pool, whose cores are
        taken), 1 = serial. Results do not depend on it.
    max_param_age : int
        After a failed fit the asset keeps its previous accepted parameters
        only while they are at most this many rows (days for a daily panel)
        old on every date they are used; otherwise it falls back to EWMA
        (lambda 0.94, normal), >= 0 (default 250, about one trading year;
        0 = always EWMA after a failure).
    """

    relative_cost: ClassVar[float] = 20.0
    #: the fit (hundreds of likelihood maximisations) dominates: never fitted twice
    split_accounts: ClassVar[bool] = False
    name: ClassVar[str] = "garch"
    summary: ClassVar[str] = "GARCH conditional-volatility VaR/ES (parametric correlation or FHS)"

    def __init__(
        self,
        vol: str = "garch",
        dist: str = "t",
        confidence: float = 0.99,
        horizon: int = 1,
        measure: str = "var",
        portfolio: str = "parametric",
        correlation: str = "constant",
        corr_lambda: float = 0.94,
        refit_every: int = 20,
        window: str = "rolling",
        window_length: int = 1000,
        min_history: int = 250,
        fhs_window: int | None = None,
        im_multiplier: float = 1.1,
        ewma_lambda: float = 0.94,
        n_sim: int = 2000,
        seed: int = 0,
        n_jobs: int | None = None,
        max_param_age: int = 250,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        self.vol = _choice("vol", vol, VOLS)
        self.dist = _choice("dist", dist, DISTS)
        self.confidence = check_range("confidence", confidence, 0.5, 1.0, lo_open=True, hi_open=True)
        self.horizon = _whole("horizon", horizon, 1, 10)
        self.measure = _choice("measure", measure, ("var", "es"))
        self.portfolio = _choice("portfolio", portfolio, ("parametric", "fhs"))
        self.correlation = _choice("correlation", correlation, ("constant", "ewma"))
        self.corr_lambda = check_range("corr_lambda", corr_lambda, 0.0, 1.0, lo_open=True, hi_open=True)
        self.refit_every = _whole("refit_every", refit_every, 1)
        self.window = _choice("window", window, ("rolling", "expanding"))
        self._min_history = _whole("min_history", min_history, 2)
        self.window_length = _whole("window_length", window_length, self._min_history)
        fw = min(250, self._min_history) if fhs_window is None else fhs_window
        self.fhs_window = _whole("fhs_window", fw, min(20, self._min_history), self._min_history)
        self.im_multiplier = check_range("im_multiplier", im_multiplier, 1.0)
        self.ewma_lambda = check_range("ewma_lambda", ewma_lambda, 0.0, 1.0, lo_open=True, hi_open=True)
        self.n_sim = _whole("n_sim", n_sim, 100)
        self.seed = _whole("seed", seed, 0)
        self.n_jobs = None if n_jobs is None else _whole("n_jobs", n_jobs, 1)
        self.max_param_age = _whole("max_param_age", max_param_age, 0)

    @property
    def min_history(self) -> int:
        return self._min_history

    def spec(self) -> FitSpec:
        return FitSpec(
            vol=self.vol,
            dist=self.dist,
            lam=self.ewma_lambda,
            confidence=self.confidence,
            horizon=self.horizon,
            refit_every=self.refit_every,
            window=self.window,
            window_length=self.window_length,
            min_history=self._min_history,
            n_sim=self.n_sim,
            seed=self.seed,
            max_param_age=self.max_param_age,
        )

    def fit(self, panel: PricePanel) -> FittedGarch:
        """Estimate every asset on the refit schedule (in parallel) and filter daily."""
        return FittedGarch(self, panel)


@register
class EwmaMargin(GarchMargin):
    """RiskMetrics EWMA volatility margin: :class:`GarchMargin` with ``vol="ewma"``.

    ``sigma2_{t+1} = lambda sigma2_t + (1 - lambda) r_t^2`` (J.P. Morgan /
    Reuters 1996, RiskMetrics Technical Document, lambda 0.94 for daily data);
    no variance parameters are estimated (with ``dist="normal"`` nothing is
    fitted at all). Other parameters as :class:`GarchMargin`.
    """

    name: ClassVar[str] = "ewma"
    summary: ClassVar[str] = "RiskMetrics EWMA volatility VaR/ES"
    relative_cost: ClassVar[float] = 4.0

    @property
    def split_accounts(self) -> bool:  # type: ignore[override]
        """Normal innovations: nothing is estimated, so the fit is cheap to repeat."""
        return self.dist == "normal"

    def __init__(
        self,
        ewma_lambda: float = 0.94,
        dist: str = "normal",
        confidence: float = 0.99,
        horizon: int = 1,
        measure: str = "var",
        portfolio: str = "parametric",
        correlation: str = "constant",
        corr_lambda: float = 0.94,
        refit_every: int = 20,
        window: str = "rolling",
        window_length: int = 1000,
        min_history: int = 250,
        fhs_window: int | None = None,
        im_multiplier: float = 1.1,
        n_jobs: int | None = None,
        max_param_age: int = 250,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(
            vol="ewma",
            dist=dist,
            confidence=confidence,
            horizon=horizon,
            measure=measure,
            portfolio=portfolio,
            correlation=correlation,
            corr_lambda=corr_lambda,
            refit_every=refit_every,
            window=window,
            window_length=window_length,
            min_history=min_history,
            fhs_window=fhs_window,
            im_multiplier=im_multiplier,
            ewma_lambda=ewma_lambda,
            n_jobs=n_jobs,
            max_param_age=max_param_age,
            label=label,
        )
