"""Coverage tests of margin exceptions, as result objects.

An *exception* is a date (and account) on which the realised loss over the
margin period of risk exceeds the margin (VaR-like) requirement. Everything
here works on plain arrays of exceptions (bool, or float 0/1 with NaN for "no
observation"), so it does not depend on the backtest engine.

Formulas (METHODOLOGY.md section 5; notation: T valid observations, x
exceptions, p = 1 - VaR level, pi_hat = x / T):

* Kupiec (1995) proportion of failures::

      LR_POF = -2 ln[ (1-p)^(T-x) p^x / ((1-pi_hat)^(T-x) pi_hat^x) ]  ~ chi2(1)

  two-sided: too few exceptions are rejected as well as too many.
* Christoffersen (1998) independence, transition counts n_ij (state i at t-1,
  j at t; 1 = exception), pi01 = n01/(n00+n01), pi11 = n11/(n10+n11),
  pi = (n01+n11)/(n00+n01+n10+n11)::

      LR_ind = -2 ln[ (1-pi)^(n00+n10) pi^(n01+n11)
                      / ((1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11) ]  ~ chi2(1)

* Conditional coverage ``LR_cc = LR_POF + LR_ind ~ chi2(2)`` (the MathWorks
  ``cc`` convention: POF on all T observations, independence on the T-1
  transitions).
* Basel traffic light (BCBS 1996) generalised: with F the Binomial(T, p) CDF,
  green if F(x) <= 0.95, yellow if 0.95 < F(x) <= 0.9999, red otherwise.
  Plus factor: the Basel table for T = 250, p = 1%; otherwise the MathWorks
  ``tl`` increase ``3 (z(1-p) / z(1-x/T) - 1)`` clipped to [0, 1] in the yellow
  zone (0 in green, 1 in red).
* Acerbi & Szekely (2014) Z2 for ES:
  ``Z2 = sum_t X_t I_t / (T alpha ES_t) + 1``, I_t = 1{X_t < -VaR_t}.
* Lopez (1999) magnitude loss: ``C_t = 1 + (L_t - VaR_t)^2`` on exceptions.

Missing observations: NaN entries, masked entries and entries where ``valid``
is False are dropped. The Christoffersen transition counts use only pairs of
*consecutive valid* dates (t-1 and t both valid); a gap breaks the chain.

Overlapping windows: with an h-day margin period of risk evaluated daily,
consecutive exceptions share h-1 days of returns, so exceptions are
autocorrelated even for a perfect model: the independence test then rejects
by construction and the chi2 law of LR_POF no longer holds (the rate is still
unbiased). :func:`coverage_tests` and :func:`coverage_report` therefore also
run the tests on the h non-overlapping sub-samples ``t = offset, offset+h,
...`` (offset = 0..h-1), each of which is free of the overlap, and report each
sub-sample, the smallest p-value and its Bonferroni-adjusted value
``min(1, h * min p)`` (a valid, conservative level test of the joint null);
for h > 1 the verdict uses the adjusted value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numba
import numpy as np
import pandas as pd
from scipy import special, stats

from riskmodels.backtest._testresult import (
    ComparisonTable,
    Table,
    TestResult,
    comparison_table,
    format_value,
    pareto_chart,
    pareto_front,
)

__all__ = [
    "BASEL_PLUS_FACTORS",
    "ComparisonTable",
    "CoverageReport",
    "CoverageTests",
    "LopezResult",
    "TestResult",
    "TrafficLightResult",
    "acerbi_szekely_z2",
    "as_exceptions",
    "christoffersen_independence",
    "comparison_table",
    "conditional_coverage",
    "coverage_report",
    "coverage_rows_for_comparison",
    "coverage_tests",
    "independence_lr",
    "kupiec_lr",
    "kupiec_pof",
    "lopez_loss",
    "non_overlapping",
    "pareto_chart",
    "pareto_front",
    "traffic_light",
    "traffic_light_bounds",
    "transition_counts",
]

#: significance levels for which critical values are reported
LEVELS: tuple[float, ...] = (0.10, 0.05, 0.01)

#: Basel (BCBS 1996) plus factors for 250 observations of a 99% VaR, by exceptions (>= 10: 1.00)
BASEL_PLUS_FACTORS: dict[int, float] = {
    0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85,
}

#: Acerbi & Szekely (2014) approximate Z2 thresholds (stable across distributions, T=250, alpha=2.5%)
AS_Z2_PUBLISHED: dict[float, float] = {0.05: -0.70, 0.0001: -1.8}

ArrayLike = Any


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------


def _check_prob(name: str, value: float, hi: float = 1.0) -> float:
    v = float(value)
    if not (0.0 < v < hi) or math.isnan(v):
        raise ValueError(f"{name}={value!r} is outside its valid range (0, {hi:g})")
    return v


def _to_float_array(a: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(float data, extra invalid mask) from bool/float/masked/pandas input."""
    if isinstance(a, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(a)
        data = np.asarray(a.filled(0), dtype=np.float64)
        return data, mask
    if hasattr(a, "to_numpy"):
        data = a.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        data = np.asarray(a, dtype=np.float64)
    return data, np.zeros(data.shape, dtype=bool)


def as_exceptions(exceptions: ArrayLike, valid: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalise an exception series/panel to ``(exc, valid)`` boolean arrays.

    Parameters
    ----------
    exceptions : array_like of bool or {0, 1, NaN}, shape (T,) or (T, P)
        NaN and masked entries are "no observation".
    valid : array_like of bool, optional
        Extra mask (True = observed), broadcast to ``exceptions``.

    Returns
    -------
    exc, valid : ndarray of bool
        ``exc`` is False wherever ``valid`` is False.
    """
    if isinstance(exceptions, np.ma.MaskedArray) and exceptions.dtype == bool:
        # boolean panels (the backtest's) skip the float copy: 8x less memory
        ok = ~np.ma.getmaskarray(exceptions)
        if valid is not None:
            ok &= np.broadcast_to(np.asarray(valid, dtype=bool), ok.shape)
        return np.asarray(exceptions.data, dtype=bool) & ok, ok
    data, masked = _to_float_array(exceptions)
    ok = ~np.isnan(data) & ~masked
    if valid is not None:
        ok &= np.broadcast_to(np.asarray(valid, dtype=bool), data.shape)
    bad = ok & (data != 0) & (data != 1)
    if bad.any():
        raise ValueError("exceptions must be boolean or 0/1 (NaN for missing); found other values")
    return (data == 1) & ok, ok


# ---------------------------------------------------------------------------
# vectorised cores (arrays over accounts)
# ---------------------------------------------------------------------------


def kupiec_lr(x: ArrayLike, n: ArrayLike, p: float) -> np.ndarray:
    """Kupiec LR_POF for arrays of exception counts ``x`` out of ``n``; NaN where n = 0.

    ``LR = 2 [x ln(pi_hat/p) + (n-x) ln((1-pi_hat)/(1-p))]`` with 0 ln 0 = 0.
    """
    p = _check_prob("p", p)
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pi = np.where(n > 0, x / np.where(n > 0, n, 1.0), 0.0)
        ll_hat = special.xlogy(x, pi) + special.xlogy(n - x, 1.0 - pi)
        ll_0 = x * math.log(p) + (n - x) * math.log1p(-p)
        lr = 2.0 * (ll_hat - ll_0)
    lr = np.maximum(lr, 0.0)  # rounding can give -1e-15
    return np.where(n > 0, lr, np.nan)


def transition_counts(exc: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Christoffersen transition counts ``(n00, n01, n10, n11)`` along axis 0.

    Only pairs with both t-1 and t valid count. For (T, P) input each count is
    a (P,) array (one per account), computed with array operations.
    """
    exc = np.asarray(exc, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if exc.ndim == 2 and exc.shape == valid.shape and exc.shape[0] > 1:
        n = _transition_kernel(np.ascontiguousarray(exc), np.ascontiguousarray(valid))
        return n[0], n[1], n[2], n[3]
    return _transition_counts_numpy(exc, valid)


@numba.njit(cache=True)
def _transition_kernel(exc: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(4, P)`` int64 counts ``n00, n01, n10, n11`` of :func:`transition_counts` in one pass."""
    T, P = exc.shape
    out = np.zeros((4, P), dtype=np.int64)
    for t in range(1, T):
        for p in range(P):
            if valid[t, p] and valid[t - 1, p]:
                out[2 * int(exc[t - 1, p]) + int(exc[t, p]), p] += 1
    return out


def _transition_counts_numpy(exc: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`transition_counts` with array operations (any shape; the reference of the kernel)."""
    pair = valid[1:] & valid[:-1]
    prev, cur = exc[:-1], exc[1:]
    n11 = np.sum(pair & prev & cur, axis=0)
    n10 = np.sum(pair & prev & ~cur, axis=0)
    n01 = np.sum(pair & ~prev & cur, axis=0)
    n00 = np.sum(pair & ~prev & ~cur, axis=0)
    return n00, n01, n10, n11


def independence_lr(n00: ArrayLike, n01: ArrayLike, n10: ArrayLike, n11: ArrayLike) -> np.ndarray:
    """Christoffersen LR_ind from transition counts (arrays allowed); NaN with no transition."""
    n00, n01, n10, n11 = (np.asarray(a, dtype=np.float64) for a in (n00, n01, n10, n11))
    tot = n00 + n01 + n10 + n11

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros_like(a + b), where=b > 0)

    pi01 = ratio(n01, n00 + n01)
    pi11 = ratio(n11, n10 + n11)
    pi = ratio(n01 + n11, tot)
    ll_alt = (special.xlogy(n00, 1 - pi01) + special.xlogy(n01, pi01)
              + special.xlogy(n10, 1 - pi11) + special.xlogy(n11, pi11))
    ll_0 = special.xlogy(n00 + n10, 1 - pi) + special.xlogy(n01 + n11, pi)
    lr = np.maximum(2.0 * (ll_alt - ll_0), 0.0)
    return np.where(tot > 0, lr, np.nan)


def _chi2_crit(df: int) -> dict[float, float]:
    """chi2(df) upper critical values at :data:`LEVELS` (scipy.special.chdtri = inverse survival)."""
    return {a: float(special.chdtri(df, a)) for a in LEVELS}


def _pval(lr: np.ndarray | float, df: int) -> np.ndarray:
    """chi2(df) survival function (scipy.special.chdtrc), NaN stays NaN."""
    return special.chdtrc(df, lr)


def _one_dim(exceptions: ArrayLike, valid: ArrayLike | None, fname: str) -> tuple[np.ndarray, np.ndarray]:
    exc, ok = as_exceptions(exceptions, valid)
    if exc.ndim != 1:
        raise ValueError(
            f"{fname} takes a 1-d exception series, got shape {exc.shape}; "
            "use coverage_report() for (T, P) panels"
        )
    return exc, ok


# ---------------------------------------------------------------------------
# single-series tests
# ---------------------------------------------------------------------------


def kupiec_pof(
    exceptions: ArrayLike, p: float, valid: ArrayLike | None = None, level: float = 0.05
) -> TestResult:
    """Kupiec (1995) proportion-of-failures test.

    ``LR_POF = -2 ln[(1-p)^(T-x) p^x / ((1-x/T)^(T-x) (x/T)^x)] ~ chi2(1)``
    (METHODOLOGY.md section 5; MathWorks ``varbacktest.pof``).

    Parameters
    ----------
    exceptions : array_like, shape (T,)
        Exception indicators (bool or 0/1; NaN = missing).
    p : float in (0, 1)
        Expected exception probability (1 - confidence level).
    valid : array_like of bool, optional
        Observation mask.
    level : float
        Significance level of :attr:`TestResult.reject`.
    """
    p = _check_prob("p", p)
    level = _check_prob("level", level)
    exc, ok = _one_dim(exceptions, valid, "kupiec_pof")
    n, x = int(ok.sum()), int(exc.sum())
    lr = float(kupiec_lr(x, n, p))
    return TestResult(
        name="Kupiec POF",
        stat=lr,
        pvalue=float(_pval(lr, 1)),
        critical_values=_chi2_crit(1),
        null=f"exception probability = {p:g}",
        n_obs=n,
        n_exceptions=x,
        level=level,
        details={"rate": x / n if n else float("nan"), "expected": n * p},
    )


def christoffersen_independence(
    exceptions: ArrayLike, valid: ArrayLike | None = None, level: float = 0.05
) -> TestResult:
    """Christoffersen (1998) independence test (first-order Markov alternative).

    ``LR_ind`` from the transition counts n_ij (see module docstring), ~ chi2(1)
    (MathWorks ``varbacktest.cci``). Only consecutive valid dates form a
    transition.
    """
    level = _check_prob("level", level)
    exc, ok = _one_dim(exceptions, valid, "christoffersen_independence")
    n00, n01, n10, n11 = (int(c) for c in transition_counts(exc, ok))
    lr = float(independence_lr(n00, n01, n10, n11))
    return TestResult(
        name="Christoffersen independence",
        stat=lr,
        pvalue=float(_pval(lr, 1)),
        critical_values=_chi2_crit(1),
        null="exceptions are serially independent (pi01 = pi11)",
        n_obs=int(ok.sum()),
        n_exceptions=int(exc.sum()),
        level=level,
        details={
            "n00": n00, "n01": n01, "n10": n10, "n11": n11,
            "pi01": n01 / (n00 + n01) if n00 + n01 else float("nan"),
            "pi11": n11 / (n10 + n11) if n10 + n11 else float("nan"),
        },
    )


def conditional_coverage(
    exceptions: ArrayLike, p: float, valid: ArrayLike | None = None, level: float = 0.05
) -> TestResult:
    """Christoffersen (1998) conditional coverage: ``LR_cc = LR_POF + LR_ind ~ chi2(2)``.

    MathWorks ``varbacktest.cc`` convention (POF on all T observations).
    """
    pof = kupiec_pof(exceptions, p, valid, level)
    ind = christoffersen_independence(exceptions, valid, level)
    lr = pof.stat + ind.stat
    return TestResult(
        name="Conditional coverage",
        stat=lr,
        pvalue=float(_pval(lr, 2)),
        critical_values=_chi2_crit(2),
        null=f"exceptions are i.i.d. Bernoulli({p:g})",
        n_obs=pof.n_obs,
        n_exceptions=pof.n_exceptions,
        level=pof.level,
        details={"lr_pof": pof.stat, "lr_ind": ind.stat, **{k: ind.details[k] for k in ("n00", "n01", "n10", "n11")}},
    )


# ---------------------------------------------------------------------------
# traffic light
# ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TrafficLightResult(TestResult):
    """Basel traffic light outcome.

    ``zone`` follows the Basel rule on the CDF ``F(x; T, p)``; ``pvalue`` is the
    type-I error ``P(X >= x)`` of the one-sided binomial test (what
    :meth:`verdict` uses); ``cum_prob = F(x)``; ``plus_factor`` is the
    increase of the multiplier (``multiplier = baseline + plus_factor``).
    """

    zone: str
    cum_prob: float
    plus_factor: float
    multiplier: float
    yellow_from: int
    red_from: int
    basel_table: bool


def traffic_light_bounds(n_obs: int, p: float, green: float = 0.95, yellow: float = 0.9999) -> tuple[int, int]:
    """Smallest exception counts of the yellow and red zones: ``F(x) > green``, ``F(x) > yellow``."""
    return _tl_bounds(int(n_obs), float(p), float(green), float(yellow))


@functools.lru_cache(maxsize=256)
def _tl_bounds(n_obs: int, p: float, green: float, yellow: float) -> tuple[int, int]:
    p = _check_prob("p", p)
    green = _check_prob("green", green)
    yellow = _check_prob("yellow", yellow)
    if yellow <= green:
        raise ValueError(f"yellow={yellow!r} must be larger than green={green!r}")
    if int(n_obs) < 1:
        raise ValueError(f"n_obs={n_obs!r} is outside its valid range [1, inf)")
    x = np.arange(int(n_obs) + 2)
    cdf = stats.binom.cdf(x, int(n_obs), p)
    y_from = int(np.argmax(cdf > green)) if (cdf > green).any() else int(n_obs) + 1
    r_from = int(np.argmax(cdf > yellow)) if (cdf > yellow).any() else int(n_obs) + 1
    return y_from, r_from


def traffic_light(
    n_exceptions: int,
    n_obs: int,
    p: float = 0.01,
    green: float = 0.95,
    yellow: float = 0.9999,
    baseline: float = 3.0,
    level: float = 0.05,
    basel_table: bool | None = None,
) -> TrafficLightResult:
    """Basel traffic light for ``n_exceptions`` out of ``n_obs``, generalised to any T and p.

    Zones from the Binomial(n_obs, p) CDF F: green if F(x) <= ``green``
    (0.95), yellow if F(x) <= ``yellow`` (0.9999), else red (BCBS 1996;
    MathWorks ``varbacktest.tl``). Plus factor: the BCBS table (0.40, 0.50,
    0.65, 0.75, 0.85, 1.00 for 5..>=10 exceptions) when ``n_obs == 250`` and
    ``p == 0.01`` with the default bounds; otherwise MathWorks' increase
    ``baseline * (z(1-p) / z(1-x/T) - 1)`` clipped to [0, 1] in the yellow zone,
    0 in green and 1 in red. ``basel_table=False`` forces the generalised
    increase even for 250 days at 99% (``True`` requires that case).
    """
    p = _check_prob("p", p)
    level = _check_prob("level", level)
    n = int(n_obs)
    x = int(n_exceptions)
    if n < 1:
        raise ValueError(f"n_obs={n_obs!r} is outside its valid range [1, inf)")
    if not 0 <= x <= n:
        raise ValueError(f"n_exceptions={n_exceptions!r} is outside its valid range [0, n_obs={n}]")
    y_from, r_from = traffic_light_bounds(n, p, green, yellow)
    cum = float(stats.binom.cdf(x, n, p))
    type1 = float(stats.binom.sf(x - 1, n, p))
    zone = "green" if cum <= green else ("yellow" if cum <= yellow else "red")
    standard = n == 250 and math.isclose(p, 0.01) and green == 0.95 and yellow == 0.9999
    if basel_table and not standard:
        raise ValueError(
            f"basel_table=True needs n_obs=250, p=0.01 and the default zone bounds; got n_obs={n}, p={p:g}"
        )
    basel = standard if basel_table is None else bool(basel_table)
    if basel:
        plus = BASEL_PLUS_FACTORS.get(x, 1.0)
    elif zone == "green":
        plus = 0.0
    elif zone == "red":
        plus = 1.0
    else:
        z_obs = float(stats.norm.isf(x / n)) if x < n else -np.inf
        plus = 1.0 if z_obs <= 0 else float(np.clip(baseline * (stats.norm.isf(p) / z_obs - 1.0), 0.0, 1.0))
    crit = dict(_binom_crit(n, p))
    return TrafficLightResult(
        name="Traffic light",
        stat=float(x),
        pvalue=type1,
        critical_values=crit,
        null=f"exceptions ~ Binomial({n}, {p:g})",
        n_obs=n,
        n_exceptions=x,
        level=level,
        details={"zone": zone, "cum_prob": cum, "plus_factor": plus, "yellow_from": y_from, "red_from": r_from},
        zone=zone,
        cum_prob=cum,
        plus_factor=plus,
        multiplier=baseline + plus,
        yellow_from=y_from,
        red_from=r_from,
        basel_table=basel,
    )


@functools.lru_cache(maxsize=256)
def _binom_crit(n: int, p: float) -> tuple[tuple[float, float], ...]:
    return tuple((a, float(stats.binom.isf(a, n, p))) for a in LEVELS)


def _zones(x: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    cdf = stats.binom.cdf(x, n, p)
    z = np.where(cdf <= 0.95, "green", np.where(cdf <= 0.9999, "yellow", "red")).astype(object)
    z[np.asarray(n) <= 0] = "n/a"
    return z


# ---------------------------------------------------------------------------
# expected shortfall and loss functions
# ---------------------------------------------------------------------------


def _std_tail(dist: str, df: float, alpha: float) -> tuple[float, float]:
    """(VaR, ES) of the standard ``dist`` at tail probability alpha, both positive."""
    if dist == "normal":
        z = float(stats.norm.ppf(alpha))
        return -z, float(stats.norm.pdf(z)) / alpha
    t = float(stats.t.ppf(alpha, df))
    return -t, (df + t * t) / (df - 1.0) * float(stats.t.pdf(t, df)) / alpha


def acerbi_szekely_z2(
    pnl: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    alpha: float = 0.025,
    n_sims: int = 10_000,
    seed: int = 0,
    dist: Literal["normal", "t"] = "normal",
    df: float = 5.0,
    level: float = 0.05,
) -> TestResult:
    """Acerbi & Szekely (2014) unconditional ES test Z2.

    ``Z2 = sum_t X_t I_t / (T alpha ES_t) + 1`` with ``I_t = 1{X_t < -VaR_t}``
    (METHODOLOGY.md section 5). E[Z2] = 0 under H0, negative when risk is
    underestimated: a left-tailed test.

    Critical values and the p-value come from ``n_sims`` seeded simulations
    under H0 with P&L ``X_t = s_t e_t``, e_t i.i.d. standard ``dist`` (normal or
    Student t with ``df``) and VaR_t, ES_t the matching quantile and ES; Z2 is
    scale free so s_t drops out. The published distribution-free
    approximations (-0.70 at 5%, -1.8 at 0.01%; Acerbi & Szekely 2014) are in
    ``details["published_critical_values"]``.

    Parameters
    ----------
    pnl : array_like (T,)
        Realised P&L, losses negative.
    var, es : array_like (T,)
        VaR and ES forecasts as positive numbers (same units as ``pnl``).
    alpha : float in (0, 0.5)
        Tail probability (1 - VaR level), e.g. 0.025.
    n_sims, seed, dist, df
        Null simulation settings.
    """
    alpha = _check_prob("alpha", alpha, 0.5)
    level = _check_prob("level", level)
    if int(n_sims) < 100:
        raise ValueError(f"n_sims={n_sims!r} is outside its valid range [100, inf)")
    if dist not in ("normal", "t"):
        raise ValueError(f"dist={dist!r} is not valid; choose 'normal' or 't'")
    if dist == "t" and not df > 2:
        raise ValueError(f"df={df!r} is outside its valid range (2, inf)")
    x, v, e = (np.asarray(a, dtype=np.float64).ravel() for a in (pnl, var, es))
    if not x.shape == v.shape == e.shape:
        raise ValueError(f"pnl, var and es must have the same length, got {x.size}, {v.size}, {e.size}")
    ok = np.isfinite(x) & np.isfinite(v) & np.isfinite(e) & (e > 0)
    x, v, e = x[ok], v[ok], e[ok]
    T = x.size
    if T == 0:
        raise ValueError("acerbi_szekely_z2 needs at least one valid observation")
    hit = x < -v
    z2 = float(np.sum(np.where(hit, x / e, 0.0)) / (T * alpha) + 1.0)

    q, es_std = _std_tail(dist, df, alpha)
    rng = np.random.default_rng(seed)
    sims = np.empty(int(n_sims))
    chunk = max(1, 2_000_000 // T)
    for s in range(0, int(n_sims), chunk):
        m = min(chunk, int(n_sims) - s)
        eps = rng.standard_normal((m, T)) if dist == "normal" else rng.standard_t(df, (m, T))
        sims[s:s + m] = np.sum(np.where(eps < -q, eps, 0.0), axis=1) / (T * alpha * es_std) + 1.0
    pval = float((1 + np.count_nonzero(sims <= z2)) / (1 + sims.size))
    crit = {a: float(np.quantile(sims, a)) for a in (0.05, 0.01)}
    return TestResult(
        name="Acerbi-Szekely Z2",
        stat=z2,
        pvalue=pval,
        critical_values=crit,
        null=f"ES at tail {alpha:g} is correct (E[Z2] = 0)",
        n_obs=int(T),
        n_exceptions=int(hit.sum()),
        level=level,
        tail="left",
        details={
            "published_critical_values": dict(AS_Z2_PUBLISHED),
            "null_mean": float(sims.mean()),
            "dist": dist if dist == "normal" else f"t({df:g})",
            "n_sims": int(n_sims),
            "seed": int(seed),
        },
    )


@dataclass(frozen=True)
class LopezResult:
    """Lopez (1999) loss-function score: ``score = sum_t C_t`` over valid dates."""

    kind: str
    score: float
    mean: float
    n_obs: int
    n_exceptions: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "score": self.score, "mean": self.mean,
                "n_obs": self.n_obs, "n_exceptions": self.n_exceptions}

    def __str__(self) -> str:
        return (f"Lopez {self.kind} loss: score {format_value(self.score)} "
                f"(mean {format_value(self.mean)}) over {self.n_obs} obs, {self.n_exceptions} exceptions")


def lopez_loss(
    loss: ArrayLike, var: ArrayLike, kind: Literal["magnitude", "binary"] = "magnitude"
) -> LopezResult:
    """Lopez (1999) loss function.

    Magnitude: ``C_t = 1 + (L_t - VaR_t)^2`` if ``L_t > VaR_t`` else 0; binary:
    ``C_t = 1{L_t > VaR_t}`` (METHODOLOGY.md section 5). ``loss`` is positive
    for losses; pass losses and VaR in the same units (returns or fractions of
    notional make scores comparable across accounts; USD squares are not).
    Any shape; NaN pairs are dropped and the score sums over all valid cells.
    """
    if kind not in ("magnitude", "binary"):
        raise ValueError(f"kind={kind!r} is not valid; choose 'magnitude' or 'binary'")
    L = np.asarray(loss, dtype=np.float64)
    V = np.asarray(var, dtype=np.float64)
    L, V = np.broadcast_arrays(L, V)
    ok = ~(np.isnan(L) | np.isnan(V))
    hit = ok & (L > V)
    if kind == "binary":
        c = hit.astype(np.float64)
    else:
        c = np.where(hit, 1.0 + (L - V) ** 2, 0.0)
    n = int(ok.sum())
    score = float(c[ok].sum())
    return LopezResult(kind, score, score / n if n else float("nan"), n, int(hit.sum()))


# ---------------------------------------------------------------------------
# overlapping windows
# ---------------------------------------------------------------------------


def non_overlapping(exceptions: ArrayLike, h: int, offset: int = 0) -> np.ndarray:
    """Every h-th observation from ``offset``: ``exceptions[offset::h]`` (axis 0).

    With an h-day horizon evaluated daily, observations h apart use disjoint
    return windows, so each sub-sample is free of the overlap-induced
    autocorrelation.
    """
    h_i, o_i = int(h), int(offset)
    if h_i != h or h_i < 1:
        raise ValueError(f"h={h!r} is outside its valid range: integers >= 1")
    if o_i != offset or not 0 <= o_i < h_i:
        raise ValueError(f"offset={offset!r} is outside its valid range [0, h-1={h_i - 1}]")
    if isinstance(exceptions, np.ma.MaskedArray):
        return exceptions[o_i::h_i]
    if hasattr(exceptions, "iloc"):
        return exceptions.iloc[o_i::h_i]
    return np.asarray(exceptions)[o_i::h_i]


@dataclass(frozen=True)
class CoverageTests:
    """Coverage tests on the full series and on the h non-overlapping sub-samples.

    ``full`` and each ``subsamples[k]`` map ``"pof"``, ``"ind"``, ``"cc"``,
    ``"tl"`` to results. For h > 1 judge with :meth:`adjusted_pvalue`
    (Bonferroni over the h sub-samples); the full-sample independence test
    rejects by construction when windows overlap.
    """

    p: float
    h: int
    level: float
    full: Mapping[str, TestResult]
    subsamples: tuple[Mapping[str, TestResult], ...] = field(default=())

    def min_pvalue(self, test: str) -> float:
        """Smallest p-value of ``test`` over the sub-samples (the full sample when h = 1)."""
        ps = [s[test].pvalue for s in self.subsamples] if self.h > 1 else [self.full[test].pvalue]
        ps = [q for q in ps if not math.isnan(q)]
        return min(ps) if ps else float("nan")

    def adjusted_pvalue(self, test: str) -> float:
        """``min(1, h * min_pvalue)``: Bonferroni over the h sub-samples (h = 1: the p-value)."""
        return min(1.0, self.h * self.min_pvalue(test))

    def verdict(self, test: str = "cc", level: float | None = None) -> str:
        lv = self.level if level is None else _check_prob("level", level)
        q = self.adjusted_pvalue(test)
        return "n/a" if math.isnan(q) else ("reject" if q < lv else "accept")

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for label, tests in [("full", self.full)] + [
            (f"offset {k} (every {self.h})", s) for k, s in enumerate(self.subsamples)
        ]:
            r: dict[str, Any] = {"sample": label, "n": tests["pof"].n_obs, "exceptions": tests["pof"].n_exceptions}
            for key in ("pof", "ind", "cc"):
                r[f"{key}_lr"] = tests[key].stat
                r[f"{key}_p"] = tests[key].pvalue
            r["tl_zone"] = tests["tl"].zone  # type: ignore[attr-defined]
            rows.append(r)
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        t = Table(self.to_frame(), title=f"Coverage tests (p={self.p:g}, h={self.h})")
        extra = [f"{k}: min sub-sample p {format_value(self.min_pvalue(k))}, adjusted "
                 f"{format_value(self.adjusted_pvalue(k))} -> {self.verdict(k)}" for k in ("pof", "ind", "cc")]
        return "\n".join([str(t), *extra])


def _tests(exc: np.ndarray, ok: np.ndarray, p: float, level: float) -> dict[str, TestResult]:
    pof = kupiec_pof(exc, p, ok, level)
    ind = christoffersen_independence(exc, ok, level)
    cc = conditional_coverage(exc, p, ok, level)
    tl = traffic_light(pof.n_exceptions, max(pof.n_obs, 1), p, level=level)
    return {"pof": pof, "ind": ind, "cc": cc, "tl": tl}


def coverage_tests(
    exceptions: ArrayLike, p: float, h: int = 1, valid: ArrayLike | None = None, level: float = 0.05
) -> CoverageTests:
    """Kupiec, Christoffersen, conditional coverage and traffic light, overlap-aware.

    Runs the tests on the full series and, when ``h > 1``, on each of the h
    non-overlapping sub-samples ``exceptions[k::h]`` (k = 0..h-1). Overlapping
    h-day windows make exceptions autocorrelated even for a correct model, so
    for h > 1 the full-sample independence and conditional-coverage tests are
    descriptive only; :meth:`CoverageTests.verdict` uses the Bonferroni bound
    ``min(1, h * min_k p_k)`` over the sub-samples, a level-``level`` test.
    """
    p = _check_prob("p", p)
    level = _check_prob("level", level)
    exc, ok = _one_dim(exceptions, valid, "coverage_tests")
    h_i = int(h)
    if h_i != h or h_i < 1:
        raise ValueError(f"h={h!r} is outside its valid range: integers >= 1")
    full = _tests(exc, ok, p, level)
    subs = tuple(_tests(exc[k::h_i], ok[k::h_i], p, level) for k in range(h_i)) if h_i > 1 else ()
    return CoverageTests(p=p, h=h_i, level=level, full=full, subsamples=subs)


# ---------------------------------------------------------------------------
# coverage report (models x sides, series or panels)
# ---------------------------------------------------------------------------


class CoverageReport(Table):
    """One row per model x side: counts, Kupiec, Christoffersen, CC, traffic light, verdict.

    See :func:`coverage_report` for the column meanings.
    """


def _pooled(exc: np.ndarray, ok: np.ndarray, p: float) -> dict[str, Any]:
    """Pooled and per-account statistics of a (T, P) panel, vectorised over accounts."""
    x_acc = exc.sum(axis=0)
    n_acc = ok.sum(axis=0)
    X, N = int(x_acc.sum()), int(n_acc.sum())
    counts = transition_counts(exc, ok)
    lr_pof = float(kupiec_lr(X, N, p)) if N else float("nan")
    lr_ind = float(independence_lr(*(int(c.sum()) for c in counts)))
    lr_cc = lr_pof + lr_ind
    lr_acc = kupiec_lr(x_acc, n_acc, p)
    has = n_acc > 0
    return {
        "accounts": int(has.sum()),
        "n": N,
        "exceptions": X,
        "lr_pof": lr_pof,
        "p_pof": float(_pval(lr_pof, 1)),
        "lr_ind": lr_ind,
        "p_ind": float(_pval(lr_ind, 1)),
        "lr_cc": lr_cc,
        "p_cc": float(_pval(lr_cc, 2)),
        "share_rej": float(np.mean(_pval(lr_acc[has], 1) < 0.05)) if has.any() else float("nan"),
    }


def coverage_report(
    models: Mapping[str, Mapping[str, ArrayLike] | ArrayLike],
    p: float,
    h: int = 1,
    level: float = 0.05,
) -> CoverageReport:
    """Coverage table for several models and sides.

    Parameters
    ----------
    models : mapping
        ``{model: {side: exceptions}}`` (sides e.g. ``"combined"``, ``"long"``,
        ``"short"``) or ``{model: exceptions}`` (side ``"combined"``). Each
        exceptions array is (T,) or a (T, P) dates x accounts panel; NaN or
        masked = no observation.
    p : float
        Expected exception probability.
    h : int
        Margin period of risk in observations; h > 1 adds sub-sample columns.
    level : float
        Significance level of the verdicts.

    Returns
    -------
    CoverageReport
        Columns: ``model, side, accounts, n, exceptions, rate, expected_rate,
        kupiec_lr, kupiec_p, christoffersen_lr, christoffersen_p, cc_lr, cc_p,
        tl_zone, share_accounts_kupiec_rejected`` (panels: share of accounts
        whose own Kupiec test rejects at 5%; its expectation under H0 is about
        5%, more with discreteness), for h > 1 also ``kupiec_p_sub,
        christoffersen_p_sub, cc_p_sub`` (Bonferroni-adjusted minimum over the
        h non-overlapping sub-samples), and ``verdict`` = "reject" when the
        Kupiec or the conditional-coverage p-value (the adjusted ones for
        h > 1) is below ``level``.

    Notes
    -----
    Panels are pooled: exceptions and valid cells are summed over accounts and
    compared with Binomial(N, p); transition counts are summed over accounts.
    Accounts hit by the same market move are dependent, so pooled p-values
    overstate the evidence (too many rejections); the per-account rejection
    share is the robust complement. Per-account tests are not listed (too
    many); everything is computed with array operations over accounts.
    """
    p = _check_prob("p", p)
    level = _check_prob("level", level)
    h_i = int(h)
    if h_i != h or h_i < 1:
        raise ValueError(f"h={h!r} is outside its valid range: integers >= 1")
    rows = []
    for model, sides in models.items():
        side_map = sides if isinstance(sides, Mapping) else {"combined": sides}
        for side, arr in side_map.items():
            exc, ok = as_exceptions(arr)
            if exc.ndim == 1:
                exc, ok = exc[:, None], ok[:, None]
            elif exc.ndim != 2:
                raise ValueError(f"exceptions for {model!r}/{side!r} must be (T,) or (T, P), got {exc.shape}")
            s = _pooled(exc, ok, p)
            tl_zone = _zones(np.asarray(s["exceptions"]), np.asarray(s["n"]), p).item()
            row: dict[str, Any] = {
                "model": str(model),
                "side": str(side),
                "accounts": s["accounts"],
                "n": s["n"],
                "exceptions": s["exceptions"],
                "rate": s["exceptions"] / s["n"] if s["n"] else float("nan"),
                "expected_rate": p,
                "kupiec_lr": s["lr_pof"],
                "kupiec_p": s["p_pof"],
                "christoffersen_lr": s["lr_ind"],
                "christoffersen_p": s["p_ind"],
                "cc_lr": s["lr_cc"],
                "cc_p": s["p_cc"],
                "tl_zone": tl_zone,
                "share_accounts_kupiec_rejected": s["share_rej"] if exc.shape[1] > 1 else float("nan"),
            }
            p_pof, p_cc = s["p_pof"], s["p_cc"]
            if h_i > 1:
                sub = [_pooled(exc[k::h_i], ok[k::h_i], p) for k in range(h_i)]
                for key, col in (("p_pof", "kupiec_p_sub"), ("p_ind", "christoffersen_p_sub"), ("p_cc", "cc_p_sub")):
                    vals = [d[key] for d in sub if not math.isnan(d[key])]
                    row[col] = min(1.0, h_i * min(vals)) if vals else float("nan")
                p_pof, p_cc = row["kupiec_p_sub"], row["cc_p_sub"]
            if math.isnan(p_pof) or math.isnan(p_cc):
                row["verdict"] = "n/a"
            else:
                row["verdict"] = "reject" if min(p_pof, p_cc) < level else "accept"
            rows.append(row)
    notes = [f"p = {p:g}; verdict at {level:g}: Kupiec or conditional coverage rejects."]
    if h_i > 1:
        notes.append(
            f"h = {h_i}: overlapping windows autocorrelate exceptions; *_sub columns are "
            f"Bonferroni-adjusted minimum p-values over the {h_i} non-overlapping sub-samples "
            "and drive the verdict."
        )
    if any(r["accounts"] > 1 for r in rows):
        notes.append(
            "Panels are pooled over accounts (exceptions vs Binomial(cells, p)); accounts are "
            "cross-sectionally dependent, so pooled p-values are anti-conservative."
        )
    frame = pd.DataFrame(rows)
    return CoverageReport(frame, title="Coverage tests", notes=notes)


def coverage_rows_for_comparison(report: CoverageReport, side: str = "combined") -> list[dict[str, Any]]:
    """Helper for the summary table: ``{"model", "exception_rate", "kupiec_p", "cc_p", "tl_zone", "verdict"}`` per model."""
    f = report.to_frame()
    f = f[f["side"] == side]
    cols = ["model", "rate", "kupiec_p", "cc_p", "tl_zone", "verdict"]
    return [dict(zip(cols, r, strict=True)) for r in f[cols].itertuples(index=False)]

