"""Estimation schedule of the GARCH margin: periodic arch fits, daily filtering.

For each asset (independently, so assets run in parallel processes):

1. **Refit dates** ``t_k = f + min_history - 1 + k N`` where ``f`` is the
   asset's first return and ``N = refit_every``: the first fit is on the
   first date the asset has ``min_history`` returns (the date
   ``PricePanel.eligible(min_history)`` first turns True). The dates depend
   only on the listing date and ``N``, never on later prices.
2. **Fit** at ``t_k`` by maximum likelihood on the returns of the window
   ending at ``t_k`` (rolling: the last ``window_length`` returns; expanding:
   all since listing), warm-started from the previous estimate. Returns are
   log returns **x 100** (percent), as arch's optimiser expects data of order
   1-100; variances are converted back to decimal units (``/ 100^2``) at the
   end. See *Estimator* below.
3. **Filter** the conditional variance daily with the fixed parameters
   ``theta_k`` for ``t`` in ``[t_k, t_{k+1})``: the recursion of
   :mod:`riskmodels.margin._garch_filter` is run from the window start (arch's
   backcast and variance bounds from the window, data up to ``t_k``) through
   return ``t``; ``var1[t]`` is the one-step-ahead variance for day ``t + 1``
   known at ``t``'s close. For the first fit the in-sample path back to
   listing is kept too (it feeds the standardised residuals of FHS; it uses
   data up to ``t_0``, earlier than any margin date).
4. **h-day variance** ``varh[t]``: GARCH/GJR closed form (sum of the
   k-step forecasts), EWMA ``h var1`` (flat forecasts), EGARCH by seeded
   simulation (common random numbers drawn from the fitted distribution
   through its ppf, seed from ``(seed, crc32(asset), k)``).
5. **Quantile multipliers** of the fitted standardised innovation
   distribution per segment: ``qL = -F^{-1}(1 - c)`` (loss of a long unit),
   ``qS = F^{-1}(c)`` (loss of a short unit), and the matching ES
   multipliers.

Estimator
---------
:func:`arch_mle` maximises arch's own likelihood: the objective is
``-Distribution.loglikelihood(dp, y, Volatility.compute_variance(vp, ...))``
of the ``arch`` components (``ZeroMean`` model: residuals = returns), with
arch's backcast, variance bounds, parameter bounds, linear constraints and
starting values, minimised by SciPy's SLSQP with arch's defaults (``ftol``
1e-6, ``maxiter`` 100) -- the same problem and optimiser
``arch_model(...).fit()`` solves. Differences in how it is evaluated:

* the linear constraints ``A theta - b >= 0`` are one vector constraint with
  its exact Jacobian ``A`` (``arch.fit`` passes one scalar function per row
  without a Jacobian, so SciPy finite-differences every constraint at every
  iteration: about half of arch's fit time, profiled);
* GARCH and GJR with normal or Student-t innovations (the default model)
  evaluate the likelihood and its exact analytic gradient in one numba pass
  (:mod:`riskmodels.margin._garch_lik`: the gradient of arch's bounded
  variance recursion, equal to arch's likelihood to 1e-9 and to a central
  difference to 1e-6, tested) instead of arch's objective plus a 2-point
  finite-difference gradient (``k + 1`` evaluations per iteration), with
  SciPy's ``minimize(method="SLSQP", jac=True)``. EGARCH, EWMA and skew-t
  keep arch's objective with the finite-difference gradient.

The estimates agree with ``arch.fit`` to optimiser tolerance (tested: on real
1,000-day windows to 1e-3 in the parameters and 1e-6 in the log-likelihood,
typically 1e-6 and 1e-12) and :func:`fit_window` ``(driver="arch")`` keeps
arch's own ``fit`` as the reference. Measured on the default 18-asset
universe (GARCH-t, 1,000-day window, refit every 20 days: 2,039 fits, whole
schedule including filtering, CPU time, one process, warm): 47 ms per fit with
arch ``fit``, 11 ms with the stacked constraint Jacobian and a numerical
gradient (22.6 s), 4.7 ms with the analytic gradient (9.5 s; SciPy's
SLSQP wrapper is now most of a fit's time).

Estimation outcomes
-------------------
*Accepted at a bound.* Daily crypto returns very often give an
integrated-GARCH-like estimate: persistence ``alpha + gamma/2 + beta`` on
arch's constraint ``<= 1`` (``>= MAX_PERSISTENCE = 0.9999`` counts as at
the bound; EGARCH: ``beta``), or ``omega`` on its lower bound (``~0``, the
EWMA-like limit). On the default 18-asset universe 37% of the fits do
(GARCH-t, refit every 20 days; BTC 84%, XRP and DOGE 80%, SOL and LINK 0%). Such an estimate is a legitimate outcome (Engle & Bollerslev 1986,
IGARCH; RiskMetrics' EWMA is the special case ``omega = 0``,
``alpha + beta = 1``) and is **accepted**, with ``at_bound=True`` and the
bound named in ``fit_log``. If the persistence is above
``PERSISTENCE_CAP = 1 - 1e-6`` (SLSQP may land a hair outside the
constraint), ``alpha, gamma, beta`` (EGARCH: ``beta``) are scaled down by
the same factor so that it equals the cap: the recursion stays strictly
mean-reverting and the multi-step forecast finite; the change in the
filtered variance is of order ``1e-6 / (1 - beta)``, far below estimation
error. ``fit_log.params`` holds the parameters used.

*Failed.* A fit fails when the window has fewer than :data:`MIN_FIT_OBS`
returns, the returns are constant, the estimator raises, the optimiser does
not converge (SLSQP status != 0), the log-likelihood or a parameter is not
finite, or the Student-t / skew-t ``nu <= 2.1`` (variance barely finite).
The fallback is the asset's **previous accepted parameters** if they were
estimated at most ``max_param_age`` rows (days for a daily panel) before the
last date they would be used (the end of the segment), otherwise **EWMA
(lambda 0.94) with normal innovations**. An asset therefore never keeps old
parameters for years.

Reporting: every refit is a ``fit_log`` row (asset, date, parameters used,
log-likelihood, ``converged``, ``at_bound``, ``bound``, ``persistence``,
``failure``, ``fallback``). The model emits at most one
:class:`GarchEstimationWarning` per asset and fit, summarising how many
refits hit a bound and how many failed (with the first failure and the
fallbacks used): a warning per refit would be a flood nobody reads.
"""

from __future__ import annotations

import math
import os
import warnings
import zlib
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
from scipy import integrate, special, stats

from riskmodels.margin import _garch_filter as gf

#: fewer returns than this in the estimation window: no fit (fallback).
MIN_FIT_OBS = 100
#: persistence at or above this counts as "at the bound" (integrated GARCH).
MAX_PERSISTENCE = 0.9999
#: accepted estimates are shrunk to at most this persistence (see module docstring).
PERSISTENCE_CAP = 1.0 - 1e-6
#: Student-t / skew-t degrees of freedom at or below this: a failed fit.
MIN_NU = 2.1
#: RiskMetrics decay used by the fallback.
FALLBACK_LAMBDA = 0.94
#: SLSQP iteration limit (SciPy's and so arch's default).
MAXITER = 100
SCALE = 100.0


class GarchEstimationWarning(UserWarning):
    """Summary of one asset's estimation problems in one ``fit``.

    Emitted at most once per asset: how many refits were accepted with a
    parameter at its bound (integrated-GARCH-like), how many failed, the first
    failure (date and cause) and the fallbacks used (previous parameters not
    older than ``max_param_age``, or EWMA lambda 0.94 with normal
    innovations). The model's ``fit_log`` table holds every refit.
    """


@dataclass(frozen=True)
class FitSpec:
    """Everything a worker needs to run one asset's schedule (picklable)."""

    vol: str
    dist: str
    lam: float
    confidence: float
    horizon: int
    refit_every: int
    window: str
    window_length: int
    min_history: int
    n_sim: int
    seed: int
    max_param_age: int = 250


@dataclass
class AssetResult:
    """One asset's schedule output (percent units for variances)."""

    asset: str
    var1: np.ndarray  # (T,) one-step-ahead variance known at t
    varh: np.ndarray  # (T,) h-day variance known at t
    q: np.ndarray  # (T, 4): qL, qS, esL, esS
    first_fit: int  # date index of the first fit (-1: never)
    log: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------- quantiles
def quantile_multipliers(dist: str, params: np.ndarray, c: float) -> np.ndarray:
    """Loss multipliers of a unit-variance innovation: ``[qL, qS, esL, esS]``.

    * normal: ``q = Phi^{-1}(c)``, ``ES = phi(q) / (1 - c)`` (both sides);
    * Student-t standardised to unit variance (arch's ``StudentsT``):
      ``q = t_nu^{-1}(c) sqrt((nu - 2) / nu)`` and
      ``ES = sqrt((nu - 2)/nu) f_nu(t_c) (nu + t_c^2) / ((nu - 1)(1 - c))``
      (McNeil, Frey & Embrechts 2015, *Quantitative Risk Management*, ex. 2.19);
    * Hansen skew-t (arch's ``SkewStudent``, parameters ``eta, lambda``):
      ``qL = -F^{-1}(1 - c)``, ``qS = F^{-1}(c)`` from arch's ppf, ES by
      numerical integration of the ppf over the tail,
      ``ES = (1/(1 - c)) int_c^1 q(u) du``.
    """
    if dist == "normal":
        q = float(stats.norm.ppf(c))
        es = float(stats.norm.pdf(q) / (1.0 - c))
        return np.array([q, q, es, es])
    if dist == "t":
        nu = float(params[0])
        # scipy.special directly: scipy.stats' frozen-distribution overhead was a
        # quarter of the GARCH schedule's time (one call per refit)
        tc = float(special.stdtrit(nu, c))
        s = math.sqrt((nu - 2.0) / nu)
        log_pdf = (special.gammaln((nu + 1.0) / 2.0) - special.gammaln(nu / 2.0) - 0.5 * math.log(nu * math.pi)
                   - (nu + 1.0) / 2.0 * math.log1p(tc * tc / nu))
        es = s * math.exp(log_pdf) * (nu + tc * tc) / ((nu - 1.0) * (1.0 - c))
        return np.array([s * tc, s * tc, es, es])
    if dist == "skewt":
        from arch.univariate import SkewStudent

        d = SkewStudent()
        p = np.asarray(params, dtype=np.float64)

        def ppf(u: float) -> float:
            return float(d.ppf(np.array([u]), p)[0])

        qL = -ppf(1.0 - c)
        qS = ppf(c)
        lo = integrate.quad(ppf, 0.0, 1.0 - c, limit=200)[0]
        hi = integrate.quad(ppf, c, 1.0, limit=200)[0]
        return np.array([qL, qS, -lo / (1.0 - c), hi / (1.0 - c)])
    raise ValueError(f"dist must be 'normal', 't' or 'skewt', got {dist!r}")


def _dist_ppf(dist: str, params: np.ndarray, u: np.ndarray) -> np.ndarray:
    if dist == "normal":
        return stats.norm.ppf(u)
    from arch.univariate import SkewStudent, StudentsT

    d = StudentsT() if dist == "t" else SkewStudent()
    return np.asarray(d.ppf(u.ravel(), np.asarray(params)), dtype=np.float64).reshape(u.shape)


# ---------------------------------------------------------------- arch
def arch_components(vol: str, dist: str, lam: float) -> tuple[Any, Any]:
    """The ``arch`` volatility process and innovation distribution of a spec."""
    from arch.univariate import EGARCH, GARCH, EWMAVariance, Normal, SkewStudent, StudentsT

    vols = {
        "garch": lambda: GARCH(1, 0, 1),
        "gjr": lambda: GARCH(1, 1, 1),
        "egarch": lambda: EGARCH(1, 1, 1),
        "ewma": lambda: EWMAVariance(lam),
    }
    dists = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}
    return vols[vol](), dists[dist]()


def _arch_model(y: np.ndarray, vol: str, dist: str, lam: float) -> Any:
    from arch.univariate import ZeroMean

    v, d = arch_components(vol, dist, lam)
    return ZeroMean(y, volatility=v, distribution=d, rescale=False)


def _constraint_rows(c: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(c[0], dtype=np.float64), np.asarray(c[1], dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, k)), np.zeros(0)
    return a.reshape(-1, k), b.ravel()


def arch_mle(
    y: np.ndarray, vol: str, dist: str, lam: float, start: np.ndarray | None, maxiter: int = MAXITER
) -> tuple[np.ndarray, float, int]:
    """Maximum likelihood with arch's components and SLSQP: ``(params, loglik, status)``.

    Solves the problem of ``arch_model(y, mean="Zero", ...).fit()`` (module
    docstring, *Estimator*): objective ``-sum_t ln f(y_t | sigma2_t)`` from
    arch's ``compute_variance`` and ``loglikelihood``, arch's backcast,
    variance bounds, parameter bounds and starting values, the linear
    constraints ``A theta >= b`` stacked into one constraint with exact
    Jacobian ``A``. ``start`` (the previous estimate) is used when it
    satisfies the bounds and constraints, as arch does; otherwise arch's own
    starting values (its grid search) are used. ``status`` is SLSQP's exit
    status (0: converged).

    GARCH and GJR with normal or Student-t innovations use the numba
    objective of :mod:`riskmodels.margin._garch_lik` (the same likelihood,
    backcast, variance bounds, parameter bounds and constraints, equal to
    arch's to rounding) with its exact analytic gradient (``jac=True``) in
    place of SciPy's 2-point finite difference (:func:`_garch_lik.slsqp`);
    EGARCH, EWMA and skew-t keep arch's components with the
    finite-difference gradient.
    """
    from riskmodels.margin import _garch_lik as gl

    y = np.ascontiguousarray(y, dtype=np.float64)
    v, d = arch_components(vol, dist, lam)
    fast = (vol, dist) in gl.SUPPORTED
    if fast:
        backcast, var_bounds, bounds, a, b = gl.problem(y, vol, dist)
    else:
        kv, kd = int(v.num_params), int(d.num_params)
        backcast = v.backcast(y)
        var_bounds = v.variance_bounds(y)
        av, bv = _constraint_rows(v.constraints(), kv)
        ad, bd = _constraint_rows(d.constraints(), kd)
        a = np.zeros((av.shape[0] + ad.shape[0], kv + kd))
        a[: av.shape[0], :kv] = av
        a[av.shape[0] :, kv:] = ad
        b = np.concatenate([bv, bd])
        # the distribution bounds of arch do not depend on the residuals (Normal: none,
        # StudentsT: nu in [2.05, 500], SkewStudent: [2.05, 300] x [-1, 1])
        bounds = list(v.bounds(y)) + list(d.bounds(y))
    sigma2 = np.empty_like(y)
    sv = None if start is None else np.asarray(start, dtype=np.float64)
    if sv is not None:
        ok = sv.shape == (a.shape[1],) and bool(np.all(a @ sv - b >= 0))
        ok = ok and all(lo <= x <= hi for x, (lo, hi) in zip(sv, bounds, strict=True))
        sv = sv if ok else None
    if sv is None:  # arch's starting values: its grid search, then the distribution's (moment-based nu)
        sv_v = np.asarray(v.starting_values(y), dtype=np.float64)
        v.compute_variance(sv_v, y, sigma2, backcast, var_bounds)
        sv = np.concatenate([sv_v, np.asarray(d.starting_values(y / np.sqrt(sigma2)), dtype=np.float64)])
    if fast:
        fg = gl.make_objective(y, backcast, var_bounds, 1 if vol == "gjr" else 0, dist == "t")
        x, f, status, _ = gl.slsqp(fg, sv, bounds, a, b, maxiter=maxiter)
        return x, -f, status
    kv = int(v.num_params)

    def nll(x: np.ndarray) -> float:
        s2 = v.compute_variance(x[:kv], y, sigma2, backcast, var_bounds)
        return -float(d.loglikelihood(x[kv:], y, s2, False))

    x, f, status, _ = gl.slsqp(nll, sv, bounds, a, b, maxiter=maxiter, jac=False)
    return x, -f, status


def split_params(vol: str, params: np.ndarray) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """``(omega, alpha, gamma, beta)`` and the distribution parameters of an arch vector."""
    p = np.asarray(params, dtype=np.float64)
    if vol == "garch":
        return (p[0], p[1], 0.0, p[2]), p[3:]
    if vol in ("gjr", "egarch"):
        return (p[0], p[1], p[2], p[3]), p[4:]
    return (0.0, 0.0, 0.0, 0.0), p  # ewma: only distribution parameters


def n_vol_params(vol: str) -> int:
    return {"garch": 3, "gjr": 4, "egarch": 4, "ewma": 0}[vol]


def persistence(vol: str, params: np.ndarray) -> float:
    """``alpha + gamma/2 + beta`` (GARCH/GJR), ``beta`` (EGARCH), 1 (EWMA)."""
    if vol == "ewma":
        return 1.0
    (_, alpha, gamma, beta), _ = split_params(vol, params)
    return float(beta) if vol == "egarch" else float(alpha + 0.5 * gamma + beta)


def bound_hits(vol: str, params: np.ndarray, y: np.ndarray) -> str:
    """Which variance parameter sits at its bound ('' if none): an accepted outcome."""
    if vol == "ewma":
        return ""
    hits = []
    pers = persistence(vol, params)
    if pers >= MAX_PERSISTENCE:
        what = "beta" if vol == "egarch" else "alpha+gamma/2+beta"
        hits.append(f"persistence {what}={pers:.6f} >= {MAX_PERSISTENCE} (integrated-GARCH-like)")
    if vol in ("garch", "gjr"):
        omega = float(params[0])
        if omega <= 1.0001 * 1e-8 * float(np.mean(y**2)):
            hits.append(f"omega={omega:.3g} at its lower bound (EWMA-like)")
    return "; ".join(hits)


def cap_persistence(vol: str, params: np.ndarray) -> np.ndarray:
    """Scale ``alpha, gamma, beta`` (EGARCH: ``beta``) so persistence <= :data:`PERSISTENCE_CAP`."""
    p = np.asarray(params, dtype=np.float64).copy()
    pers = persistence(vol, p)
    if vol == "ewma" or pers <= PERSISTENCE_CAP:
        return p
    k = PERSISTENCE_CAP / pers
    if vol == "egarch":
        p[3] *= k
    else:
        p[1 : n_vol_params(vol)] *= k
    return p


def real_failure(dist: str, vol: str, params: np.ndarray, loglik: float) -> str:
    """'' if the estimate is usable, else the reason (non-finite values, nu <= 2.1)."""
    if not np.all(np.isfinite(params)):
        return "non-finite parameter estimate"
    if not math.isfinite(loglik):
        return "non-finite log-likelihood"
    _, dp = split_params(vol, params)
    if dist in ("t", "skewt") and dp[0] <= MIN_NU:
        return f"nu={dp[0]:.4f} <= {MIN_NU} (innovation variance barely finite)"
    return ""


def fit_window(
    y: np.ndarray, vol: str, dist: str, lam: float, start: np.ndarray | None, driver: str = "fast"
) -> tuple[np.ndarray | None, float, int, str]:
    """One fit: ``(params, loglik, status, failure)``; ``failure == ''`` if usable.

    ``driver="fast"``: :func:`arch_mle`; ``driver="arch"``: arch's own
    ``ZeroMean(...).fit(starting_values=start)`` (the reference). A
    parameter at its bound is not a failure (see :func:`bound_hits`).
    """
    if driver not in ("fast", "arch"):
        raise ValueError(f"driver must be 'fast' or 'arch', got {driver!r}")
    y = np.ascontiguousarray(y, dtype=np.float64)
    if not np.var(y) > 0:
        return None, np.nan, -1, "constant returns (zero variance)"
    if y.shape[0] < MIN_FIT_OBS:
        return None, np.nan, -1, f"too little history ({y.shape[0]} < {MIN_FIT_OBS} returns)"
    try:
        if driver == "fast":
            params, ll, flag = arch_mle(y, vol, dist, lam, start)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = _arch_model(y, vol, dist, lam).fit(disp="off", starting_values=start, show_warning=False)
            params, ll, flag = np.asarray(res.params, dtype=np.float64), float(res.loglikelihood), int(res.convergence_flag)
    except Exception as exc:  # arch/scipy raise various errors on degenerate data
        return None, np.nan, -1, f"estimator raised {type(exc).__name__}: {exc}"
    if flag != 0:
        return params, ll, flag, f"optimizer did not converge (SLSQP status={flag})"
    return params, ll, flag, real_failure(dist, vol, params, ll)


# ------------------------------------------------------------ schedule
def refit_dates(first_return: int, last_return: int, min_history: int, refit_every: int) -> np.ndarray:
    """Refit date indices ``f + min_history - 1 + k N`` up to the last live return."""
    t0 = first_return + min_history - 1
    if t0 > last_return:
        return np.empty(0, dtype=np.intp)
    return np.arange(t0, last_return + 1, refit_every, dtype=np.intp)


def _filter(vol: str, coeffs: tuple[float, float, float, float], lam: float, resids: np.ndarray, n_fit: int) -> np.ndarray:
    bc = gf.arch_backcast(resids[:n_fit])
    if vol == "ewma":
        bounds = np.zeros((resids.shape[0], 2))
        bounds[:, 1] = np.inf
        return gf.garch_filter(resids, 0.0, 1.0 - lam, 0.0, lam, bc, bounds)
    bounds = gf.variance_bounds(resids, n_fit)
    kern = gf.egarch_filter if vol == "egarch" else gf.garch_filter
    return kern(resids, *coeffs, bc, bounds)


def first_gap(r_pct: np.ndarray) -> int:
    """Index of the first missing return inside the live range, -1 if none."""
    live = np.flatnonzero(np.isfinite(r_pct))
    if live.size == 0 or live.size == live[-1] - live[0] + 1:
        return -1
    return int(np.flatnonzero(~np.isfinite(r_pct[live[0] : live[-1] + 1]))[0] + live[0])


def run_asset(asset: str, r_pct: np.ndarray, spec: FitSpec, driver: str = "fast") -> AssetResult:
    """The whole schedule of one asset (see the module docstring)."""
    T = r_pct.shape[0]
    var1 = np.full(T, np.nan)
    varh = np.full(T, np.nan)
    qarr = np.full((T, 4), np.nan)
    live = np.flatnonzero(np.isfinite(r_pct))
    log: list[dict[str, Any]] = []
    if live.size == 0:
        return AssetResult(asset, var1, varh, qarr, -1, log)
    f, last = int(live[0]), int(live[-1])
    hole = first_gap(r_pct)
    if hole >= 0:
        raise ValueError(
            f"{asset}: return missing at date index {hole} inside its live range; load the panel with "
            "policy='truncate' (keep the clean tail) or max_fill=k (fill short gaps)"
        )
    dates = refit_dates(f, last, spec.min_history, spec.refit_every)
    prev_used: np.ndarray | None = None  # last accepted (capped) estimate: filter + warm start
    prev_good_date = -1
    asset_seed = zlib.crc32(asset.encode())
    no_fit = spec.vol == "ewma" and spec.dist == "normal"
    for k, tk in enumerate(dates):
        tk = int(tk)
        seg_end = int(dates[k + 1]) if k + 1 < len(dates) else last + 1
        w0 = f if spec.window == "expanding" else max(f, tk - spec.window_length + 1)
        y = r_pct[w0 : tk + 1]
        vol, dist = spec.vol, spec.dist
        if no_fit:
            raw, ll, _status, failure = np.empty(0), np.nan, 0, ""
        else:
            raw, ll, _status, failure = fit_window(y, vol, dist, spec.lam, prev_used, driver)
        fallback, bound = "", ""
        fb_lam = spec.lam if spec.vol == "ewma" else FALLBACK_LAMBDA
        lam = spec.lam
        if failure:
            age = seg_end - 1 - prev_good_date
            if prev_used is not None and age <= spec.max_param_age:
                params = prev_used
                fallback = f"previous parameters (fitted at date index {prev_good_date})"
            else:
                vol, dist, params, lam = "ewma", "normal", np.empty(0), fb_lam
                why = "" if prev_used is None else f" (previous parameters would be {age} > max_param_age days old)"
                fallback = f"EWMA lambda={fb_lam}, normal innovations{why}"
        else:
            assert raw is not None
            bound = bound_hits(vol, raw, y)
            params = cap_persistence(vol, raw)
            prev_used, prev_good_date = params, tk
        coeffs, dparams = split_params(vol, params)
        s2 = _filter(vol, coeffs, lam, r_pct[w0:seg_end], tk - w0 + 1)
        lo = w0 - 1 if k == 0 else tk
        idx = np.arange(lo, seg_end)
        var1[idx] = s2[idx - w0 + 1]
        seg = np.arange(tk, seg_end)
        v = var1[seg]
        h = spec.horizon
        if vol == "ewma":
            varh[seg] = h * v
        elif vol in ("garch", "gjr"):
            varh[seg] = gf.garch_hday_variance(v, *coeffs, h)
        elif h == 1:
            varh[seg] = v
        else:
            rng = np.random.default_rng(np.random.SeedSequence([spec.seed, asset_seed, k]))
            u = np.clip(rng.random((spec.n_sim, h - 1)), 1e-12, 1 - 1e-12)
            z = _dist_ppf(dist, dparams, u)
            varh[seg] = gf.egarch_hday_variance(np.ascontiguousarray(v), *coeffs, np.ascontiguousarray(z))
        qarr[seg] = quantile_multipliers(dist, dparams, spec.confidence)
        log.append(
            {
                "asset": asset,
                "date_index": tk,
                "n_obs": int(tk - w0 + 1),
                "vol": vol,
                "dist": dist,
                "params": np.asarray(params, dtype=np.float64).round(12).tolist(),
                "persistence": persistence(vol, params),
                "loglik": ll,
                "converged": not failure.startswith(("optimizer", "estimator raised", "too little", "constant")),
                "at_bound": bool(bound),
                "bound": bound,
                "failure": failure,
                "fallback": fallback,
            }
        )
    return AssetResult(asset, var1, varh, qarr, int(dates[0]) if len(dates) else -1, log)


def _run_packed(args: tuple[str, np.ndarray, FitSpec, str]) -> AssetResult:
    return run_asset(*args)


def run_all(
    assets: tuple[str, ...], r_pct: np.ndarray, spec: FitSpec, n_jobs: int | None, driver: str = "fast"
) -> list[AssetResult]:
    """Run :func:`run_asset` for every column, in ``n_jobs`` processes (1: serial).

    Each asset's result depends only on its own returns and seed, so the
    output is identical for any ``n_jobs``. Assets are submitted longest
    history first (they have the most refits) so the pool stays balanced.
    """
    jobs = (os.cpu_count() or 1) if n_jobs is None else int(n_jobs)
    tasks = [(a, np.ascontiguousarray(r_pct[:, j]), spec, driver) for j, a in enumerate(assets)]
    if jobs <= 1 or len(tasks) <= 1:
        return [_run_packed(t) for t in tasks]
    n_live = np.isfinite(r_pct).sum(axis=0)
    order = sorted(range(len(tasks)), key=lambda j: -int(n_live[j]))
    method = "fork" if "fork" in _start_methods() else "spawn"
    out: list[AssetResult | None] = [None] * len(tasks)
    from riskmodels.workers import process_pool

    with process_pool(min(jobs, len(tasks)), get_context(method)) as ex:  # workers die with this process
        for j, res in zip(order, ex.map(_run_packed, [tasks[j] for j in order]), strict=True):
            out[j] = res
    return [r for r in out if r is not None]


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()
