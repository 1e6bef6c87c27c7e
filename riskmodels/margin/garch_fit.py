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
   end. See *Estimator* in :mod:`riskmodels.margin.garch_estimate`.
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

Modules: this one holds the schedule (:func:`run_asset`, :func:`run_all`),
the fallback, :class:`FitSpec`, :class:`AssetResult` and
:class:`GarchEstimationWarning`; one fit and its checks (:func:`arch_mle`,
:func:`fit_window`, the *Estimator* description) are in
:mod:`riskmodels.margin.garch_estimate`, the innovation quantile and ES
multipliers (:func:`quantile_multipliers`) in
:mod:`riskmodels.margin.garch_innovations`; every moved public name is
importable from here too.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np

from riskmodels.margin import _garch_filter as gf
from riskmodels.margin.garch_estimate import MAX_PERSISTENCE as MAX_PERSISTENCE
from riskmodels.margin.garch_estimate import MAXITER as MAXITER
from riskmodels.margin.garch_estimate import MIN_FIT_OBS as MIN_FIT_OBS
from riskmodels.margin.garch_estimate import MIN_NU as MIN_NU
from riskmodels.margin.garch_estimate import PERSISTENCE_CAP as PERSISTENCE_CAP
from riskmodels.margin.garch_estimate import arch_components as arch_components
from riskmodels.margin.garch_estimate import arch_mle as arch_mle
from riskmodels.margin.garch_estimate import (
    bound_hits,
    cap_persistence,
    fit_window,
    persistence,
    split_params,
)
from riskmodels.margin.garch_estimate import n_vol_params as n_vol_params
from riskmodels.margin.garch_estimate import real_failure as real_failure
from riskmodels.margin.garch_innovations import _dist_ppf, quantile_multipliers

# Re-exported (`x as x`) from riskmodels.margin.garch_estimate (and
# quantile_multipliers from riskmodels.margin.garch_innovations), so every public
# name defined here before the split is still importable from
# riskmodels.margin.garch_fit.

#: RiskMetrics decay used by the fallback.
FALLBACK_LAMBDA = 0.94
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


def default_jobs() -> int:
    """Processes of ``n_jobs=None``: every core, or 1 in a pool's worker (no pool inside a pool).

    The backtest runs one model per core (``[backtest] n_jobs``), a sweep one
    point per core, a Dask cluster one chunk per worker: there the cores are
    taken, and a nested pool of the per-asset fits only adds its start-up and
    a third process on two cores (:func:`riskmodels.workers.in_pool_worker`).
    """
    from riskmodels.workers import in_pool_worker

    return 1 if in_pool_worker() else (os.cpu_count() or 1)


#: where the per-asset fits may run instead of ``n_jobs`` local processes (:func:`asset_executor`)
_ASSET_EXECUTOR: contextvars.ContextVar[Callable[[], Executor | None] | None] = contextvars.ContextVar(
    "riskmodels_garch_asset_executor", default=None
)


@contextlib.contextmanager
def asset_executor(provider: Callable[[], Executor | None]) -> Iterator[None]:
    """Run the per-asset fits of :func:`run_all` on ``provider()``'s executor inside this block.

    ``provider`` is called only when a fit has more than one asset to run; it
    may block (a Dask cluster still starting) and may return None (then the
    model's own ``n_jobs`` applies). A streamed run on a Dask cluster of two
    or more workers fits the GARCH and EWMA assets on the workers while they
    would otherwise wait for the fitted states (:mod:`riskmodels.backtest.stream`).
    Each asset's result depends only on its own returns and seed, so where it
    runs does not change it.
    """
    token = _ASSET_EXECUTOR.set(provider)
    try:
        yield
    finally:
        _ASSET_EXECUTOR.reset(token)


def run_all(
    assets: tuple[str, ...], r_pct: np.ndarray, spec: FitSpec, n_jobs: int | None, driver: str = "fast"
) -> list[AssetResult]:
    """Run :func:`run_asset` for every column, in ``n_jobs`` processes (1: serial; None: :func:`default_jobs`).

    Each asset's result depends only on its own returns and seed, so the
    output is identical for any ``n_jobs`` (or executor: :func:`asset_executor`).
    Assets are submitted longest history first (they have the most refits) so
    the workers stay balanced.
    """
    tasks = [(a, np.ascontiguousarray(r_pct[:, j]), spec, driver) for j, a in enumerate(assets)]
    n_live = np.isfinite(r_pct).sum(axis=0)
    order = sorted(range(len(tasks)), key=lambda j: -int(n_live[j]))
    out: list[AssetResult | None] = [None] * len(tasks)
    provider = _ASSET_EXECUTOR.get()
    shared = provider() if provider is not None and len(tasks) > 1 else None
    if shared is not None:
        futs = [shared.submit(_run_packed, tasks[j]) for j in order]
        for j, fut in zip(order, futs, strict=True):
            out[j] = fut.result()
        return [r for r in out if r is not None]
    jobs = default_jobs() if n_jobs is None else int(n_jobs)
    if jobs <= 1 or len(tasks) <= 1:
        return [_run_packed(t) for t in tasks]
    method = "fork" if "fork" in _start_methods() else "spawn"
    from riskmodels.workers import process_pool

    with process_pool(min(jobs, len(tasks)), get_context(method)) as ex:  # workers die with this process
        for j, res in zip(order, ex.map(_run_packed, [tasks[j] for j in order]), strict=True):
            out[j] = res
    return [r for r in out if r is not None]


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()
