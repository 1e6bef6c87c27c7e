"""Estimation schedule of the GARCH margin: periodic arch fits, daily filtering.

For each asset (independently, so assets run in parallel processes):

1. **Refit dates** ``t_k = f + min_history - 1 + k N`` where ``f`` is the
   asset's first return and ``N = refit_every``: the first fit is on the
   first date the asset has ``min_history`` returns. The dates depend only on
   the listing date and ``N``, never on later prices.
2. **Fit** at ``t_k`` with ``arch`` (zero mean, the chosen volatility process
   and innovation distribution) on the returns of the window ending at
   ``t_k`` (rolling: the last ``window_length`` returns; expanding: all since
   listing), warm-started from the previous parameters
   (``fit(starting_values=...)``). Returns are log returns **x 100**
   (percent) for the fit, as arch's optimiser expects data of order 1-100;
   variances are converted back to decimal units (``/ 100^2``) at the end.
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

Estimation failures
-------------------
A fit fails when the window has fewer than :data:`MIN_FIT_OBS` returns, the
returns are constant, arch raises, the optimiser does not converge (arch's
``ConvergenceWarning`` or ``convergence_flag != 0``), or a parameter sits at
its bound (persistence ``alpha + gamma/2 + beta >= 0.9999`` (EGARCH:
``beta``), ``omega`` at its lower bound, Student-t ``nu <= 2.1``). The
fallback is the **previous good parameters** of the asset if there are any,
otherwise **EWMA (lambda 0.94) with normal innovations**. Each failure is a
record (asset, date, what failed, fallback) that the model re-emits as a
:class:`GarchEstimationWarning` and keeps in ``fit_log``.
"""

from __future__ import annotations

import math
import os
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
from scipy import integrate, stats

from riskmodels.margin import _garch_filter as gf

#: fewer returns than this in the estimation window: no arch fit (fallback).
MIN_FIT_OBS = 100
#: persistence at or above this counts as "at the bound" (integrated GARCH).
MAX_PERSISTENCE = 0.9999
#: RiskMetrics decay used by the fallback.
FALLBACK_LAMBDA = 0.94
SCALE = 100.0


class GarchEstimationWarning(UserWarning):
    """A GARCH fit failed for one asset on one refit date; a fallback was used.

    The message names the asset, the date, what failed and the fallback
    (previous good parameters, or EWMA lambda 0.94 with normal innovations).
    The model's ``fit_log`` table holds the same record.
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
        tc = float(stats.t.ppf(c, nu))
        s = math.sqrt((nu - 2.0) / nu)
        es = s * float(stats.t.pdf(tc, nu)) * (nu + tc * tc) / ((nu - 1.0) * (1.0 - c))
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
def _arch_model(y: np.ndarray, vol: str, dist: str, lam: float) -> Any:
    from arch.univariate import (
        EGARCH,
        GARCH,
        EWMAVariance,
        Normal,
        SkewStudent,
        StudentsT,
        ZeroMean,
    )

    vols = {
        "garch": lambda: GARCH(1, 0, 1),
        "gjr": lambda: GARCH(1, 1, 1),
        "egarch": lambda: EGARCH(1, 1, 1),
        "ewma": lambda: EWMAVariance(lam),
    }
    dists = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}
    return ZeroMean(y, volatility=vols[vol](), distribution=dists[dist](), rescale=False)


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


def check_fit(vol: str, dist: str, params: np.ndarray, y: np.ndarray) -> str:
    """'' if the estimate is usable, else what is wrong (parameter at a bound)."""
    if not np.all(np.isfinite(params)):
        return "non-finite parameter estimate"
    (omega, alpha, gamma, beta), dp = split_params(vol, params)
    if vol in ("garch", "gjr"):
        pers = alpha + 0.5 * gamma + beta
        if pers >= MAX_PERSISTENCE:
            return f"persistence alpha+gamma/2+beta={pers:.6f} at its bound {MAX_PERSISTENCE}"
        lower = 1e-8 * float(np.mean(y**2))
        if omega <= 1.0001 * lower:
            return f"omega={omega:.3g} at its lower bound (~0)"
    elif vol == "egarch" and beta >= MAX_PERSISTENCE:
        return f"beta={beta:.6f} at its bound {MAX_PERSISTENCE}"
    if dist in ("t", "skewt") and dp[0] <= 2.1:
        return f"nu={dp[0]:.4f} at its lower bound (infinite variance)"
    return ""


def fit_window(
    y: np.ndarray, vol: str, dist: str, lam: float, start: np.ndarray | None
) -> tuple[np.ndarray | None, float, int, str]:
    """One arch fit: ``(params, loglik, convergence_flag, failure)``; ``failure == ''`` if usable."""
    from arch.utility.exceptions import ConvergenceWarning

    if not np.var(y) > 0:
        return None, np.nan, -1, "constant returns (zero variance)"
    if y.shape[0] < MIN_FIT_OBS:
        return None, np.nan, -1, f"too little history ({y.shape[0]} < {MIN_FIT_OBS} returns)"
    model = _arch_model(y, vol, dist, lam)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(disp="off", starting_values=start, show_warning=True)
        except Exception as exc:  # arch raises various errors on degenerate data
            return None, np.nan, -1, f"arch raised {type(exc).__name__}: {exc}"
    params = np.asarray(res.params, dtype=np.float64)
    flag = int(res.convergence_flag)
    conv_warn = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if flag != 0 or conv_warn:
        return params, float(res.loglikelihood), flag, f"optimizer did not converge (convergence_flag={flag})"
    bad = check_fit(vol, dist, params, y)
    return params, float(res.loglikelihood), flag, bad


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


def run_asset(asset: str, r_pct: np.ndarray, spec: FitSpec) -> AssetResult:
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
    if live.size != last - f + 1:
        hole = int(np.flatnonzero(~np.isfinite(r_pct[f : last + 1]))[0]) + f
        raise ValueError(f"{asset}: return missing at date index {hole} inside its live range; validate the panel")
    dates = refit_dates(f, last, spec.min_history, spec.refit_every)
    prev_good: np.ndarray | None = None
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
            params, ll, flag, failure = np.empty(0), np.nan, 0, ""
        else:
            params, ll, flag, failure = fit_window(y, vol, dist, spec.lam, prev_good)
        fallback = ""
        fb_lam = spec.lam if spec.vol == "ewma" else FALLBACK_LAMBDA
        lam = spec.lam
        if failure:
            if prev_good is not None:
                params = prev_good
                fallback = f"previous parameters (fitted at date index {prev_good_date})"
            else:
                vol, dist, params, lam = "ewma", "normal", np.empty(0), fb_lam
                fallback = f"EWMA lambda={fb_lam}, normal innovations"
        else:
            prev_good, prev_good_date = params, tk
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
                "loglik": ll,
                "converged": flag == 0 and not failure.startswith(("optimizer", "arch raised")),
                "failure": failure,
                "fallback": fallback,
            }
        )
    return AssetResult(asset, var1, varh, qarr, int(dates[0]) if len(dates) else -1, log)


def _run_packed(args: tuple[str, np.ndarray, FitSpec]) -> AssetResult:
    return run_asset(*args)


def run_all(assets: tuple[str, ...], r_pct: np.ndarray, spec: FitSpec, n_jobs: int | None) -> list[AssetResult]:
    """Run :func:`run_asset` for every column, in ``n_jobs`` processes (1: serial).

    Each asset's result depends only on its own returns and seed, so the
    output is identical for any ``n_jobs``.
    """
    jobs = (os.cpu_count() or 1) if n_jobs is None else int(n_jobs)
    tasks = [(a, np.ascontiguousarray(r_pct[:, j]), spec) for j, a in enumerate(assets)]
    if jobs <= 1 or len(tasks) <= 1:
        return [_run_packed(t) for t in tasks]
    method = "fork" if "fork" in _start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=get_context(method)) as ex:
        return list(ex.map(_run_packed, tasks))


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()
