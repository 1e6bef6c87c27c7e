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

Where the code lives: the frequency tests and their building blocks in
:mod:`~riskmodels.backtest.stats_core`, the traffic light in
:mod:`~riskmodels.backtest.stats_zones`, Acerbi-Szekely, Lopez and the
non-overlapping sub-samples in :mod:`~riskmodels.backtest.stats_es`; this
module holds the combined tests and the coverage report, and re-exports
every name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import (
    ComparisonTable,
    Table,
    TestResult,
    comparison_table,
    format_value,
    pareto_chart,
    pareto_front,
)

# Re-exported (`x as x`): defined here before the split into stats_core / stats_zones / stats_es, still
# importable from riskmodels.backtest.stats (tests and other modules use some of them).
from riskmodels.backtest.stats_core import LEVELS as LEVELS
from riskmodels.backtest.stats_core import (
    ArrayLike,
    _check_prob,
    _one_dim,
    _pval,
    as_exceptions,
    christoffersen_independence,
    conditional_coverage,
    independence_lr,
    kupiec_lr,
    kupiec_pof,
    panel_counts,
    transition_counts,
)
from riskmodels.backtest.stats_core import _chi2_crit as _chi2_crit
from riskmodels.backtest.stats_core import _to_float_array as _to_float_array
from riskmodels.backtest.stats_core import _transition_counts_numpy as _transition_counts_numpy
from riskmodels.backtest.stats_core import _transition_kernel as _transition_kernel
from riskmodels.backtest.stats_es import AS_Z2_PUBLISHED as AS_Z2_PUBLISHED
from riskmodels.backtest.stats_es import (
    LopezResult,
    acerbi_szekely_z2,
    lopez_loss,
    non_overlapping,
)
from riskmodels.backtest.stats_es import _std_tail as _std_tail
from riskmodels.backtest.stats_zones import (
    BASEL_PLUS_FACTORS,
    TrafficLightResult,
    _zones,
    traffic_light,
    traffic_light_bounds,
)
from riskmodels.backtest.stats_zones import _binom_crit as _binom_crit
from riskmodels.backtest.stats_zones import _tl_bounds as _tl_bounds

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


# ---------------------------------------------------------------------------
# overlapping windows
# ---------------------------------------------------------------------------


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


def _pooled(exc: np.ndarray, ok: np.ndarray, p: float, start: int = 0, step: int = 1) -> dict[str, Any]:
    """Pooled and per-account statistics of the rows ``start::step`` of a (T, P) panel, vectorised over accounts."""
    c = panel_counts(np.ascontiguousarray(exc, dtype=bool), np.ascontiguousarray(ok, dtype=bool), int(start), int(step))
    x_acc, n_acc = c[0], c[1]
    X, N = int(x_acc.sum()), int(n_acc.sum())
    counts = c[2:]
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
                sub = [_pooled(exc, ok, p, k, h_i) for k in range(h_i)]
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

