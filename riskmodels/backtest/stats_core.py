"""The frequency tests of margin exceptions: Kupiec POF, Christoffersen independence, conditional coverage.

With their building blocks: exceptions as boolean arrays
(:func:`as_exceptions`), the vectorised Kupiec LR for arrays of counts
(:func:`kupiec_lr`), Christoffersen transition counts and LR
(:func:`transition_counts`, :func:`independence_lr`), chi2 critical values
and p-values. The formulas and their sources are in the docstring of
:mod:`riskmodels.backtest.stats`, which re-exports every name.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from scipy import special

from riskmodels.backtest._testresult import (
    TestResult,
)

#: significance levels for which critical values are reported
LEVELS: tuple[float, ...] = (0.10, 0.05, 0.01)


ArrayLike = Any


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


@numba.njit(cache=True, fastmath=False)
def _transition_kernel(exc: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(4, P)`` int64 counts ``n00, n01, n10, n11`` of :func:`transition_counts` in one pass."""
    T, P = exc.shape
    out = np.zeros((4, P), dtype=np.int64)
    for t in range(1, T):
        for p in range(P):
            if valid[t, p] and valid[t - 1, p]:
                out[2 * int(exc[t - 1, p]) + int(exc[t, p]), p] += 1
    return out


@numba.njit(cache=True, fastmath=False)
def panel_counts(exc: np.ndarray, valid: np.ndarray, start: int, step: int) -> np.ndarray:
    """``(6, P)`` int64 per account: exceptions, observations, ``n00, n01, n10, n11`` of the rows ``start::step``.

    One pass over the sub-sample without copying it: row 0 is
    ``(exc & valid)[start::step].sum(0)``, row 1 ``valid[start::step].sum(0)`` and
    rows 2-5 :func:`transition_counts` of ``exc[start::step], valid[start::step]``
    (a pair counts when both of its rows are valid). ``exc`` and ``valid`` are
    ``(T, P)`` bool.
    """
    T, P = exc.shape
    out = np.zeros((6, P), dtype=np.int64)
    prev = -1
    for t in range(start, T, step):
        for p in range(P):
            if valid[t, p]:
                e = int(exc[t, p])
                out[0, p] += e
                out[1, p] += 1
                if prev >= 0 and valid[prev, p]:
                    out[2 + 2 * int(exc[prev, p]) + e, p] += 1
        prev = t
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
