"""The Basel traffic light, generalised to any sample size and coverage (BCBS 1996).

With F the Binomial(T, p) CDF of the exception count: green if F(x) <= 0.95,
yellow if 0.95 < F(x) <= 0.9999, red otherwise; the plus factors of the Basel
table for T = 250, p = 1%, else the MathWorks ``tl`` increase (formulas in
:mod:`riskmodels.backtest.stats`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from riskmodels.backtest._testresult import (
    TestResult,
)
from riskmodels.backtest.stats_core import LEVELS, _check_prob

# scipy.stats is imported in the functions that use it: at module level it was ~0.3 s of the CLI's
# start-up (the CLI imports the report tables before the models; the tables run after them)

#: Basel (BCBS 1996) plus factors for 250 observations of a 99% VaR, by exceptions (>= 10: 1.00)
BASEL_PLUS_FACTORS: dict[int, float] = {
    0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85,
}


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
    from scipy import stats

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
    from scipy import stats

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
    from scipy import stats

    return tuple((a, float(stats.binom.isf(a, n, p))) for a in LEVELS)


def _zones(x: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    from scipy import stats

    cdf = stats.binom.cdf(x, n, p)
    z = np.where(cdf <= 0.95, "green", np.where(cdf <= 0.9999, "yellow", "red")).astype(object)
    z[np.asarray(n) <= 0] = "n/a"
    return z
