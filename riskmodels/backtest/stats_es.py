"""Expected-shortfall and magnitude backtests: Acerbi & Szekely (2014) Z2, Lopez (1999) loss, non-overlapping sub-samples.

``Z2 = sum_t X_t I_t / (T alpha ES_t) + 1`` with ``I_t = 1{X_t < -VaR_t}``;
Lopez ``C_t = 1 + (L_t - VaR_t)^2`` on exceptions (formulas and sources in
:mod:`riskmodels.backtest.stats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from riskmodels.backtest._testresult import (
    TestResult,
    format_value,
)
from riskmodels.backtest.stats_core import ArrayLike, _check_prob

#: Acerbi & Szekely (2014) approximate Z2 thresholds (stable across distributions, T=250, alpha=2.5%)
AS_Z2_PUBLISHED: dict[float, float] = {0.05: -0.70, 0.0001: -1.8}


def _std_tail(dist: str, df: float, alpha: float) -> tuple[float, float]:
    """(VaR, ES) of the standard ``dist`` at tail probability alpha, both positive."""
    from scipy import stats  # imported here: at module level it was ~0.3 s of the CLI's start-up

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
