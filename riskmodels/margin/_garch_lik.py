"""GARCH / GJR-GARCH(1,1) negative log-likelihood with its exact gradient (numba).

The GARCH margin estimates, at each refit, the zero-mean models of ``arch``
8.0 (``ZeroMean`` with ``GARCH(1, 0, 1)`` or ``GARCH(1, 1, 1)`` and
``Normal`` or ``StudentsT`` innovations). :func:`nll_grad` evaluates the
objective those fits minimise -- ``-Distribution.loglikelihood(dp, e,
Volatility.compute_variance(vp, e, ...))`` -- together with its analytic
gradient in one pass, so SLSQP can run with ``jac=True`` instead of a 2-point
finite difference (one objective evaluation per parameter per iteration).

Parameter order as in arch: ``omega, alpha, [gamma], beta, [nu]``.

Variance recursion (arch ``recursions_python.garch_recursion_python`` with
``p = q = 1``, ``o in {0, 1}``, power 2)::

    s2[0] = omega + (alpha + gamma / 2 + beta) bc
    s2[t] = omega + alpha e[t-1]^2 + gamma e[t-1]^2 1{e[t-1] < 0} + beta s2[t-1]

each step then passed through arch's ``bounds_check`` with the loose bounds
``[lo_t, hi_t]`` (arch's ``variance_bounds``): ``s2 < lo -> lo``;
``s2 > hi -> hi + ln(s2 / hi)`` (``hi + 1000`` if ``s2`` is infinite). The
backcast ``bc`` is arch's (0.94-weighted mean of the first ``min(75, n)``
squared residuals) and does not depend on the parameters.

Gradient of the bounded recursion: with ``x_t = d s2[t] / d theta`` before the
bounds check,

    x_0 = (1, bc, bc / 2, bc)
    x_t = (1, e[t-1]^2, e[t-1]^2 1{e[t-1] < 0}, s2[t-1]) + beta d s2[t-1] / d theta

and after it ``d s2[t] / d theta = 0`` when the lower bound (or the infinite
case) applies, ``x_t / s2_raw`` when the logarithmic upper bound applies
(``d (hi + ln(s2 / hi)) = d s2 / s2``), ``x_t`` otherwise. At the switch
points the one-sided derivative is returned (the objective has a kink there).

Per-observation log-likelihoods (arch ``Normal.loglikelihood``,
``StudentsT.loglikelihood``; Bollerslev 1987 for the standardised t)::

    normal:  l_t = -(ln 2 pi + ln s2 + e^2 / s2) / 2
             dl/ds2 = -(1 / s2 - e^2 / s2^2) / 2
    t:       l_t = c(nu) - ln(s2) / 2 - (nu + 1) / 2 ln(1 + q),  q = e^2 / (s2 (nu - 2))
             c(nu) = lnG((nu + 1) / 2) - lnG(nu / 2) - ln(pi (nu - 2)) / 2
             dl/ds2 = -1 / (2 s2) + (nu + 1) q / (2 s2 (1 + q))
             dl/dnu = c'(nu) - ln(1 + q) / 2 + (nu + 1) q / (2 (nu - 2) (1 + q))
             c'(nu) = (psi((nu + 1) / 2) - psi(nu / 2)) / 2 - 1 / (2 (nu - 2))

``d(-sum l) / d theta_v = -sum_t dl/ds2[t] d s2[t] / d theta_v``. The
``nu``-only constants ``c, c'`` are computed outside numba with
``scipy.special.gammaln`` / ``digamma``.

:func:`nll_reference` is an independent plain-Python/numpy evaluation of the
same likelihood (loop recursion, vectorised densities) kept for parity tests.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit
from scipy import optimize, special

from riskmodels.margin import _garch_filter as gf

LOG_2PI = math.log(2.0 * math.pi)
#: ``(vol, dist)`` pairs served by :func:`nll_grad` (arch names: GARCH(1,0,1), GARCH(1,1,1); Normal, StudentsT).
SUPPORTED = {("garch", "normal"), ("garch", "t"), ("gjr", "normal"), ("gjr", "t")}
#: arch's ``StudentsT.bounds``: nu in [2.05, 500].
NU_BOUNDS = (2.05, 500.0)


def _layout(vol: str, dist: str) -> tuple[int, bool]:
    if (vol, dist) not in SUPPORTED:
        raise ValueError(f"(vol, dist) must be one of {sorted(SUPPORTED)}, got {(vol, dist)!r}")
    return (1 if vol == "gjr" else 0), dist == "t"


def n_params(vol: str, dist: str) -> int:
    """Number of parameters: 3 (GARCH) or 4 (GJR), plus 1 for Student-t ``nu``."""
    o, is_t = _layout(vol, dist)
    return 3 + o + int(is_t)


# --------------------------------------------------------------- the problem
def problem(y: np.ndarray, vol: str, dist: str) -> tuple[float, np.ndarray, list[tuple[float, float]], np.ndarray, np.ndarray]:
    """arch's estimation problem without building arch objects.

    Returns ``(backcast, var_bounds, bounds, A, b)`` as arch 8.0 computes them
    for ``ZeroMean(y, GARCH(1, o, 1), Normal|StudentsT)``:

    * ``backcast``: arch's ``GARCH.backcast`` (0.94-weighted mean of the first
      ``min(75, n)`` squared residuals), ``var_bounds``:
      :func:`_garch_filter.variance_bounds` (equal to arch's, tested);
    * ``bounds`` (``GARCH.bounds`` + ``StudentsT.bounds``), with
      ``v = mean(e^2)``: ``omega in [1e-8 v, 10 v]``, ``alpha in [0, 1]``,
      ``gamma in [-1, 2]``, ``beta in [0, 1]``, ``nu in [2.05, 500]``;
    * linear constraints ``A theta - b >= 0`` (``GARCH.constraints`` +
      ``StudentsT.constraints``): every variance parameter ``>= 0`` (GJR:
      ``alpha + gamma >= 0`` in place of ``gamma >= 0``),
      ``1 - alpha - gamma / 2 - beta >= 0``, and ``nu - 2.05 >= 0``,
      ``500 - nu >= 0``.
    """
    o, is_t = _layout(vol, dist)
    e = np.ascontiguousarray(y, dtype=np.float64)
    kv = 3 + o
    v = float(np.mean(np.absolute(e) ** 2.0))
    bounds: list[tuple[float, float]] = [(1e-8 * v, 10.0 * v), (0.0, 1.0)]
    if o:
        bounds.append((-1.0, 2.0))
    bounds.append((0.0, 1.0))
    k = kv + int(is_t)
    a = np.zeros((kv + 1 + 2 * int(is_t), k))
    for i in range(kv):
        a[i, i] = 1.0
    if o:
        a[2, 1] = 1.0  # alpha + gamma >= 0
    a[kv, 1:kv] = -1.0
    if o:
        a[kv, 2] = -0.5
    b = np.zeros(a.shape[0])
    b[kv] = -1.0
    if is_t:
        bounds.append(NU_BOUNDS)
        a[kv + 1, kv], b[kv + 1] = 1.0, NU_BOUNDS[0]
        a[kv + 2, kv], b[kv + 2] = -1.0, -NU_BOUNDS[1]
    return gf.arch_backcast(e), gf.variance_bounds(e), bounds, a, b


# --------------------------------------------------------------- numba core
#: factors outside this range are logged one by one; products are flushed outside PROD_MAX^{+-1}.
_SAFE = 1e100
_PROD_MAX = 1e200


@njit(cache=True, inline="always")
def _mul_log(prod: float, acc: float, v: float) -> tuple[float, float]:  # pragma: no cover - numba
    """Accumulate ``ln v`` as a running product ``prod`` (one ``log`` per many terms): ``ln prod + acc``
    is the running sum. Factors of extreme size are logged directly, so ``prod`` never under/overflows."""
    if v > _SAFE or v < 1.0 / _SAFE:
        return prod, acc + math.log(v)
    prod *= v
    if prod > _PROD_MAX or prod < 1.0 / _PROD_MAX:
        return 1.0, acc + math.log(prod)
    return prod, acc


@njit(cache=True, fastmath=False)
def _nll_grad_core(
    params: np.ndarray,
    o: int,
    is_t: bool,
    c_nu: float,
    dc_nu: float,
    resids: np.ndarray,
    backcast: float,
    var_bounds: np.ndarray,
    grad: np.ndarray,
) -> float:  # pragma: no cover - numba (tested against arch, the reference and finite differences)
    """``-sum_t l_t`` and its gradient (written into ``grad``); see the module docstring.

    ``sum ln s2`` and ``sum ln(1 + q)`` are accumulated as products (:func:`_mul_log`): one ``log``
    per block of terms instead of two per observation (the logs dominate the cost); the rounding
    of a product of at most a few hundred factors is far below the 1e-9 parity with arch.
    """
    omega = params[0]
    alpha = params[1]
    gamma = params[2] if o == 1 else 0.0
    kv = 3 + o
    beta = params[kv - 1]
    nu = params[kv] if is_t else 4.0
    inv_nm2 = 1.0 / (nu - 2.0)
    n = resids.shape[0]
    # running d s2[t] / d(omega, alpha, gamma, beta)
    dw = 1.0
    da = backcast
    dg = 0.5 * backcast
    db = backcast
    s2 = omega + alpha * backcast + gamma * 0.5 * backcast + beta * backcast
    e2p = 0.0
    negp = 0.0
    s2p = 0.0
    p_s2 = 1.0  # running products for sum ln s2 and sum ln(1 + q)
    a_s2 = 0.0
    p_q = 1.0
    a_q = 0.0
    quad = 0.0  # normal: sum e^2 / s2; t: sum q / (1 + q)
    gw = 0.0
    ga = 0.0
    gg = 0.0
    gb = 0.0
    for t in range(n):
        if t > 0:
            s2 = omega + alpha * e2p + gamma * negp + beta * s2p
            dw = 1.0 + beta * dw
            da = e2p + beta * da
            dg = negp + beta * dg
            db = s2p + beta * db
        lo = var_bounds[t, 0]
        hi = var_bounds[t, 1]
        if s2 < lo:
            s2 = lo
            dw = 0.0
            da = 0.0
            dg = 0.0
            db = 0.0
        elif s2 > hi:
            if math.isinf(s2):
                s2 = hi + 1000.0
                dw = 0.0
                da = 0.0
                dg = 0.0
                db = 0.0
            else:
                f = 1.0 / s2
                s2 = hi + math.log(s2 / hi)
                dw *= f
                da *= f
                dg *= f
                db *= f
        e = resids[t]
        e2 = e * e
        inv_s2 = 1.0 / s2
        p_s2, a_s2 = _mul_log(p_s2, a_s2, s2)
        if is_t:
            q = e2 * inv_s2 * inv_nm2
            r = q / (1.0 + q)
            p_q, a_q = _mul_log(p_q, a_q, 1.0 + q)
            quad += r
            dl = (-0.5 + 0.5 * (nu + 1.0) * r) * inv_s2
        else:
            z2 = e2 * inv_s2
            quad += z2
            dl = -0.5 * (1.0 - z2) * inv_s2
        gw += dl * dw
        ga += dl * da
        gg += dl * dg
        gb += dl * db
        e2p = e2
        negp = e2 if e < 0.0 else 0.0
        s2p = s2
    sum_ln_s2 = a_s2 + math.log(p_s2)
    if is_t:
        sum_ln_1q = a_q + math.log(p_q)
        ll = n * c_nu - 0.5 * sum_ln_s2 - 0.5 * (nu + 1.0) * sum_ln_1q
        grad[kv] = -(n * dc_nu - 0.5 * sum_ln_1q + 0.5 * (nu + 1.0) * inv_nm2 * quad)
    else:
        ll = -0.5 * (LOG_2PI * n + sum_ln_s2 + quad)
    grad[0] = -gw
    grad[1] = -ga
    if o == 1:
        grad[2] = -gg
    grad[kv - 1] = -gb
    return -ll


def t_constants(nu: float) -> tuple[float, float]:
    """``c(nu)`` and ``c'(nu)`` of the standardised Student-t log-density (module docstring)."""
    c = float(special.gammaln(0.5 * (nu + 1.0)) - special.gammaln(0.5 * nu)) - 0.5 * math.log(math.pi * (nu - 2.0))
    dc = 0.5 * float(special.digamma(0.5 * (nu + 1.0)) - special.digamma(0.5 * nu)) - 0.5 / (nu - 2.0)
    return c, dc


def nll_grad(
    params: np.ndarray, resids: np.ndarray, backcast: float, var_bounds: np.ndarray, vol: str, dist: str
) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of arch's zero-mean GARCH/GJR model and its exact gradient.

    Parameters
    ----------
    params : ``(omega, alpha, [gamma], beta, [nu])`` in arch's order.
    resids : (n,) residuals (percent returns; zero mean).
    backcast : arch's backcast (:func:`_garch_filter.arch_backcast`).
    var_bounds : (n, 2) arch's variance bounds (:func:`_garch_filter.variance_bounds`).
    vol : ``"garch"`` (arch ``GARCH(1, 0, 1)``) or ``"gjr"`` (``GARCH(1, 1, 1)``).
    dist : ``"normal"`` or ``"t"`` (arch's standardised ``StudentsT``).

    Returns
    -------
    ``(nll, grad)``: ``-sum_t l_t`` and ``d nll / d params``.
    """
    o, is_t = _layout(vol, dist)
    return make_objective(np.ascontiguousarray(resids, dtype=np.float64), backcast, var_bounds, o, is_t)(
        np.asarray(params, dtype=np.float64)
    )


def make_objective(
    resids: np.ndarray, backcast: float, var_bounds: np.ndarray, o: int, is_t: bool
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``f(theta) -> (nll, grad)`` for SciPy's ``minimize(..., jac=True)`` (minimal Python overhead)."""
    e = np.ascontiguousarray(resids, dtype=np.float64)
    vb = np.ascontiguousarray(var_bounds, dtype=np.float64)
    bc = float(backcast)
    kv = 3 + o

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        g = np.empty(x.shape[0])
        c, dc = t_constants(float(x[kv])) if is_t else (0.0, 0.0)
        return _nll_grad_core(x, o, is_t, c, dc, e, bc, vb, g), g

    return fg


# ------------------------------------------------------------------ SLSQP
def slsqp(
    fg: Callable[[np.ndarray], Any],
    x0: np.ndarray,
    bounds: list[tuple[float, float]],
    a: np.ndarray,
    b: np.ndarray,
    maxiter: int = 100,
    ftol: float = 1e-6,
    jac: bool = True,
) -> tuple[np.ndarray, float, int, int]:
    """``minimize(fg, x0, jac=jac, method="SLSQP", bounds, [A x - b >= 0], ftol, maxiter)``: ``(x, f, status, nit)``.

    ``jac=True``: ``fg`` returns ``(f, gradient)``; ``False``: ``fg`` returns
    ``f`` and SciPy uses its 2-point finite difference (arch's setting).

    SciPy's public ``optimize.minimize`` with the linear constraints stacked
    into one vector constraint with its exact Jacobian ``A``. With the
    analytic gradient the objective costs ~20 us per evaluation and SciPy's
    Python wrapper around the SLSQP routine (~0.7 ms per fit plus ~0.12 ms
    per iteration, profiled) is most of a fit's time; driving SciPy's private
    C routine directly would halve it again, but private interfaces change
    between releases, so we do not.
    """
    cons = [{"type": "ineq", "fun": lambda x: a @ x - b, "jac": lambda x: a}] if a.shape[0] else []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Values in x were outside bounds", RuntimeWarning)
        opt = optimize.minimize(
            fg, x0, jac=True if jac else None, method="SLSQP", bounds=bounds, constraints=cons,
            options={"maxiter": maxiter, "ftol": ftol},
        )
    return np.asarray(opt.x, dtype=np.float64), float(opt.fun), int(opt.status), int(opt.nit)


# -------------------------------------------------------- plain reference
def nll_reference(
    params: np.ndarray, resids: np.ndarray, backcast: float, var_bounds: np.ndarray, vol: str, dist: str
) -> float:
    """Plain-Python/numpy negative log-likelihood (reference for :func:`nll_grad`).

    The variance path is a Python loop over the recursion with arch's bounds
    check written out; the densities are evaluated vectorised with
    ``scipy.special.gammaln`` (standardised t) or the normal formula.
    """
    o, is_t = _layout(vol, dist)
    p = [float(v) for v in params]
    omega, alpha = p[0], p[1]
    gamma = p[2] if o else 0.0
    beta = p[2 + o]
    e = np.asarray(resids, dtype=np.float64)
    n = e.shape[0]
    s2 = np.empty(n)
    for t in range(n):
        if t == 0:
            v = omega + alpha * backcast + 0.5 * gamma * backcast + beta * backcast
        else:
            v = omega + alpha * e[t - 1] ** 2 + gamma * e[t - 1] ** 2 * (e[t - 1] < 0) + beta * s2[t - 1]
        lo, hi = var_bounds[t]
        if v < lo:
            v = lo
        elif v > hi:
            v = hi + 1000.0 if math.isinf(v) else hi + math.log(v / hi)
        s2[t] = v
    if is_t:
        nu = p[3 + o]
        lls = (
            special.gammaln((nu + 1) / 2)
            - special.gammaln(nu / 2)
            - np.log(np.pi * (nu - 2)) / 2
            - 0.5 * np.log(s2)
            - (nu + 1) / 2 * np.log1p(e**2 / (s2 * (nu - 2)))
        )
    else:
        lls = -0.5 * (np.log(2 * np.pi) + np.log(s2) + e**2 / s2)
    return -float(np.sum(lls))
