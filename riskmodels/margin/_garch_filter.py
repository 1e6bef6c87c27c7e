"""Variance recursions of the GARCH margin model: numba kernels + plain references.

Between two re-estimations the GARCH margin filters each asset's conditional
variance daily with fixed parameters. The recursions below reproduce the
ones ``arch`` evaluates in ``arch_model(...).fix(params)`` (``arch`` 8.0,
``arch/univariate/recursions_python.py``) so that the margin's volatility
equals arch's own filtered volatility to rounding (tested to 1e-10):

GARCH / GJR-GARCH(1,1) (``o = 1`` gives GJR; ``gamma = 0`` plain GARCH)::

    s2[0] = omega + (alpha + gamma / 2 + beta) * backcast
    s2[t] = omega + alpha e[t-1]^2 + gamma e[t-1]^2 1{e[t-1] < 0} + beta s2[t-1]

EGARCH(1,1,1) (Nelson 1991, arch's parametrisation)::

    ln s2[0] = omega + beta * ln(backcast)
    ln s2[t] = omega + alpha (|z[t-1]| - sqrt(2/pi)) + gamma z[t-1] + beta ln s2[t-1]
    z[t] = e[t] / s2[t]^(1/2)

EWMA / RiskMetrics (J.P. Morgan 1996) is GARCH with ``omega = 0``,
``alpha = 1 - lambda``, ``beta = lambda`` (then ``s2[0] = backcast`` exactly
as arch's ``EWMAVariance``) and no variance bounds.

Each in-sample step is clipped to arch's loose variance bounds (a value below
the lower bound is set to it; above the upper bound ``u`` it becomes
``u + ln(s2 / u)``). The kernels return ``n + 1`` values: the ``n`` in-sample
conditional variances and, last, the unbounded one-step-ahead forecast after
the final residual, as arch's ``forecast(horizon=1)`` computes it.

The backcast is arch's: an exponentially weighted (0.94) mean of the first
``min(75, n)`` squared residuals.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

SQRT2_OV_PI = math.sqrt(2.0 / math.pi)
LNSIGMA_MAX = float(np.log(np.finfo(np.float64).max) - 0.1)


def arch_backcast(resids: np.ndarray) -> float:
    """arch's backcast: ``sum_k w_k e_k^2`` over the first ``tau = min(75, n)`` residuals,
    ``w_k = 0.94^k / sum_j 0.94^j`` (``arch.univariate.volatility.GARCH.backcast``)."""
    tau = min(75, resids.shape[0])
    w = 0.94 ** np.arange(tau)
    w = w / sum(w)  # written as arch writes it (Python sum, |e|**2.0): bit-equal to arch's, tested
    return float(np.sum((np.absolute(resids[:tau]) ** 2.0) * w))


def variance_bounds(resids: np.ndarray, n_fit: int | None = None) -> np.ndarray:
    """arch's loose variance bounds, ``(n, 2)``, computed without look-ahead.

    ``arch.univariate.volatility.VolatilityProcess.variance_bounds``: an EWMA
    (0.94) variance path ``v`` gives ``[v / 1e6, v * 1e6]``; the lower bound is
    floored at ``var(e) / 1e8`` and the upper bound kept in ``[1 + max e^2,
    1e7 (1 + max e^2)]``. arch takes ``var`` and ``max`` over the whole sample;
    here they are taken over the first ``n_fit`` residuals (the estimation
    window), so filtering beyond the window uses no later data. With
    ``n_fit = n`` the result is arch's exactly. ``v[t]`` uses residuals up to
    ``t - 1`` only.
    """
    e = np.asarray(resids, dtype=np.float64)
    n = e.shape[0]
    n_fit = n if n_fit is None else int(n_fit)
    tau = min(75, n_fit)
    w = 0.94 ** np.arange(tau)
    w = w / w.sum()
    v = np.empty(n)
    v[0] = float(w.dot(e[:tau] ** 2))
    _ewma_path(e, v, 0.94)
    sample = e[:n_fit]
    var = float(np.var(sample))
    big = float(np.max(sample**2))
    lower = np.maximum(v / 1e6, var / 1e8)
    upper = np.clip(v * 1e6, 1.0 + big, 1e7 * (1.0 + big))
    return np.ascontiguousarray(np.column_stack([lower, upper]))


@njit(cache=True, fastmath=False)
def _ewma_path(e: np.ndarray, v: np.ndarray, lam: float) -> None:  # pragma: no cover - numba
    for t in range(1, e.shape[0]):
        v[t] = lam * v[t - 1] + (1.0 - lam) * e[t - 1] * e[t - 1]


# ------------------------------------------------------------------ GARCH/GJR
def _bound(s2: float, lo: float, hi: float) -> float:
    if s2 < lo:
        return lo
    if s2 > hi:
        if math.isinf(s2):
            return hi + 1000.0
        return hi + math.log(s2 / hi)
    return s2


def garch_filter_py(
    resids: np.ndarray,
    omega: float,
    alpha: float,
    gamma: float,
    beta: float,
    backcast: float,
    bounds: np.ndarray,
) -> np.ndarray:
    """Plain-Python GJR-GARCH(1,1) variance recursion (reference for the numba kernel).

    Parameters
    ----------
    resids : (n,) residuals (percent returns in the model).
    omega, alpha, gamma, beta : GJR-GARCH parameters (``gamma = 0``: GARCH).
    backcast : the pre-sample value of ``e^2`` and ``s2`` (:func:`arch_backcast`).
    bounds : (n, 2) lower/upper variance bounds (:func:`variance_bounds`);
        ``[0, inf]`` rows switch the clipping off.

    Returns
    -------
    (n + 1,) conditional variances; the last is the one-step forecast.
    """
    n = resids.shape[0]
    out = np.empty(n + 1)
    prev_e2 = backcast
    prev_neg = 0.5 * backcast
    prev_s2 = backcast
    for t in range(n + 1):
        s2 = omega + alpha * prev_e2 + gamma * prev_neg + beta * prev_s2
        if t < n:
            s2 = _bound(s2, bounds[t, 0], bounds[t, 1])
            e = resids[t]
            prev_e2 = e * e
            prev_neg = e * e if e < 0 else 0.0
        out[t] = s2
        prev_s2 = s2
    return out


_bound_nb = njit(cache=True, inline="always")(_bound)


@njit(cache=True, fastmath=False)
def garch_filter(
    resids: np.ndarray,
    omega: float,
    alpha: float,
    gamma: float,
    beta: float,
    backcast: float,
    bounds: np.ndarray,
) -> np.ndarray:  # pragma: no cover - numba (parity-tested against garch_filter_py)
    """numba twin of :func:`garch_filter_py` (same arguments, same result)."""
    n = resids.shape[0]
    out = np.empty(n + 1)
    prev_e2 = backcast
    prev_neg = 0.5 * backcast
    prev_s2 = backcast
    for t in range(n + 1):
        s2 = omega + alpha * prev_e2 + gamma * prev_neg + beta * prev_s2
        if t < n:
            s2 = _bound_nb(s2, bounds[t, 0], bounds[t, 1])
            e = resids[t]
            prev_e2 = e * e
            prev_neg = e * e if e < 0 else 0.0
        out[t] = s2
        prev_s2 = s2
    return out


# ---------------------------------------------------------------------- EGARCH
def egarch_filter_py(
    resids: np.ndarray,
    omega: float,
    alpha: float,
    gamma: float,
    beta: float,
    backcast: float,
    bounds: np.ndarray,
) -> np.ndarray:
    """Plain-Python EGARCH(1,1,1) variance recursion (reference).

    ``backcast`` is on the variance scale (arch's GARCH backcast); the
    recursion starts from its logarithm as arch's ``EGARCH.backcast`` does.
    Returns ``(n + 1,)`` variances, the last the one-step forecast.
    """
    n = resids.shape[0]
    out = np.empty(n + 1)
    ln_prev = math.log(backcast)
    z_prev = 0.0
    has_prev = False
    for t in range(n + 1):
        ln = omega + beta * ln_prev
        if has_prev:
            ln += alpha * (abs(z_prev) - SQRT2_OV_PI) + gamma * z_prev
        ln = min(ln, LNSIGMA_MAX)
        s2 = math.exp(ln)
        if t < n:
            if s2 < bounds[t, 0]:
                s2 = bounds[t, 0]
                ln = math.log(s2)
            elif s2 > bounds[t, 1]:
                s2 = bounds[t, 1] + math.log(s2) - math.log(bounds[t, 1])
                ln = math.log(s2)
            z_prev = resids[t] / math.sqrt(s2)
            has_prev = True
        out[t] = s2
        ln_prev = ln
    return out


#: the numba kernel is the reference compiled (parity-tested: numba vs the interpreter)
egarch_filter = njit(cache=True, fastmath=False)(egarch_filter_py)


# ------------------------------------------------------------ h-day variance
def garch_hday_variance(var1: np.ndarray, omega: float, alpha: float, gamma: float, beta: float, h: int) -> np.ndarray:
    """Sum of the 1..h-step variance forecasts of GJR-GARCH(1,1), closed form.

    With ``p = alpha + gamma / 2 + beta`` (``E[e^2 1{e<0}] = s2 / 2`` for
    symmetric innovations, as arch assumes in ``GARCH._analytic_forecast``),
    ``f_1 = var1`` and ``f_k = omega + p f_{k-1}``, the h-day variance of the
    summed returns is ``sum_{k=1..h} f_k`` (returns are conditionally
    uncorrelated). Equals ``arch``'s ``forecast(horizon=h).variance`` summed
    over the row (tested). EWMA is the case ``omega = 0, p = 1``: ``h var1``.
    """
    p = alpha + 0.5 * gamma + beta
    f = np.asarray(var1, dtype=np.float64).copy()
    total = f.copy()
    for _ in range(1, h):
        f = omega + p * f
        total += f
    return total


def egarch_hday_variance_py(
    var1: np.ndarray, omega: float, alpha: float, gamma: float, beta: float, shocks: np.ndarray
) -> np.ndarray:
    """Simulated sum of the 1..h-step EGARCH variance forecasts (reference).

    EGARCH has no closed-form multi-step variance. For each origin ``t`` and
    each of the ``S`` rows of ``shocks`` (``(S, h - 1)`` standardised
    innovations drawn from the fitted distribution, shared by all origins:
    common random numbers) the log-variance is iterated ``ln s2_{k+1} = omega
    + alpha (|z_k| - sqrt(2/pi)) + gamma z_k + beta ln s2_k`` from ``s2_1 =
    var1[t]``; the forecast is the mean over paths of ``sum_k s2_k``. This is
    arch's ``EGARCH._simulation_forecast`` (same shocks give the same numbers).
    """
    S, hm1 = shocks.shape
    out = np.empty(var1.shape[0])
    for t in range(var1.shape[0]):
        acc = 0.0
        for s in range(S):
            ln = math.log(var1[t])
            tot = var1[t]
            for k in range(hm1):
                z = shocks[s, k]
                ln = min(omega + alpha * (abs(z) - SQRT2_OV_PI) + gamma * z + beta * ln, LNSIGMA_MAX)
                tot += math.exp(ln)
            acc += tot
        out[t] = acc / S
    return out


#: the numba kernel is the reference compiled (parity-tested: numba vs the interpreter)
egarch_hday_variance = njit(cache=True, fastmath=False)(egarch_hday_variance_py)
