"""Calibration targets: what a calibrated parameter value must achieve.

:class:`Target` (``coverage``, ``kupiec``, ``liquidations`` or ``bad_debt``; the
kinds are described in :mod:`riskmodels.calibrate`), the evaluation of one
candidate value (:class:`_Eval`), and the checks behind the coverage and Kupiec
targets: :func:`_side_rate` (the combined, long, short or worst-side breach rate)
and :func:`_kupiec_ok` (the one-sided Kupiec test on the h non-overlapping
sub-samples with the Bonferroni bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TARGET_KINDS = ("coverage", "kupiec", "liquidations", "bad_debt")
SIDES = ("combined", "long", "short", "worst")


# --------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    """What the calibrated parameter must achieve (see module docstring).

    Parameters
    ----------
    kind : {"coverage", "kupiec", "liquidations", "bad_debt"}
    value : float
        Coverage: the highest acceptable breach rate in (0, 1) (default 1%).
        Kupiec: the exception probability p in (0, 1). Liquidations: per
        account-year, >= 0. Bad debt: fraction of notional per year, >= 0.
    level : float
        Significance level of the Kupiec test in (0, 1); default 0.05.
    side : {"combined", "long", "short", "worst"}
        Which breach rate the coverage / Kupiec targets use.
    """

    kind: str
    value: float = 0.01
    level: float = 0.05
    side: str = "combined"

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"target kind={self.kind!r} must be one of {TARGET_KINDS}")
        v = float(self.value)
        if self.kind in ("coverage", "kupiec") and not 0.0 < v < 1.0:
            raise ValueError(f"target value={self.value!r} is outside its valid range (0, 1) for {self.kind}")
        if self.kind in ("liquidations", "bad_debt") and not (v >= 0.0 and math.isfinite(v)):
            raise ValueError(f"target value={self.value!r} is outside its valid range [0, inf) for {self.kind}")
        if not 0.0 < float(self.level) < 1.0:
            raise ValueError(f"target level={self.level!r} is outside its valid range (0, 1)")
        if self.side not in SIDES:
            raise ValueError(f"target side={self.side!r} must be one of {SIDES}")
        object.__setattr__(self, "value", v)

    @property
    def needs_simulation(self) -> bool:
        return self.kind in ("liquidations", "bad_debt")

    @property
    def metric(self) -> str:
        """Name of the achieved quantity reported in results."""
        return {
            "coverage": f"breach_rate ({self.side})",
            "kupiec": f"exception rate ({self.side})",
            "liquidations": "liquidations_per_account_year",
            "bad_debt": "bad_debt (fraction of notional / yr)",
        }[self.kind]

    def __str__(self) -> str:
        if self.kind == "coverage":
            return f"breach rate ({self.side}) <= {self.value:.4g}"
        if self.kind == "kupiec":
            return f"Kupiec POF p={self.value:g} not rejected (too many exceptions) at {self.level:g}"
        if self.kind == "liquidations":
            return f"liquidations per account-year <= {self.value:.4g}"
        return f"bad debt <= {self.value:.4g} of notional per year"


@dataclass(frozen=True)
class _Eval:
    """One evaluation: the target quantity, whether it is met, and the capital."""

    value: float
    achieved: float
    met: bool
    capital: float


def _side_rate(cov: Any, side: str) -> float:
    if side == "worst":
        rates = [_side_rate(cov, s) for s in ("long", "short")]
        rates = [r for r in rates if math.isfinite(r)]
        return max(rates) if rates else float("nan")
    if side == "combined":
        return cov.breach_rate
    n, x = cov.by_side()[side]
    return x / n if n else float("nan")


def _kupiec_ok(cov: Any, target: Target, h: int) -> tuple[float, bool]:
    from riskmodels.backtest.stats import coverage_tests

    if cov.valid.shape[1] != 1:
        raise ValueError(
            "target kind='kupiec' needs a single-account book (one series): use per_asset=True "
            "with book='collateral', 'long' or 'short', or target kind='coverage'"
        )
    exc = cov.exceptions[:, 0]
    ok = cov.valid[:, 0]
    n, x = int(ok.sum()), int(exc[ok].sum())
    rate = x / n if n else float("nan")
    if not n:
        return rate, False
    if rate <= target.value:
        return rate, True
    tests = coverage_tests(exc, target.value, h=h, valid=ok, level=target.level)
    return rate, tests.verdict("pof", target.level) != "reject"
