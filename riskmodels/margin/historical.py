"""Historical-simulation VaR / ES margin: plain, filtered (FHS) and age-weighted (BRW).

The margin method of most CCPs (Eurex Prisma, LCH PAIRS; METHODOLOGY.md s.3):
the requirement is a tail quantile (VaR) or tail mean (ES) of the account's
P&L over the margin period of risk ``h`` days, computed from historical
scenarios.

Scenarios
---------
At date t the scenario set is the last ``W`` dates ``s = t-W+1 .. t`` (only
data up to t's close). Each scenario is a vector of log returns ``r_s``:

* ``scaling="overlapping"``: the h-day return ending at s,
  ``r_s = ln(C_s / C_{s-h})`` (overlapping windows);
* ``scaling="sqrt"``: the 1-day return scaled, ``r_s = sqrt(h) ln(C_s / C_{s-1})``.

Applied to the account's current holdings (collateral and perps together,
the USD exposure ``x_a = collateral_a + positions_a``)::

    P&L_s = sum_a x_a (exp(r_{s,a}) - 1),   loss_s = -P&L_s.

``measure="var"``: the empirical quantile of the losses at ``confidence``;
``measure="es"``: the tail mean. The quantile convention (k-th largest loss,
``k = ceil(W (1 - c))``, and the Acerbi-Tasche empirical ES) is documented in
:mod:`riskmodels.margin._quantile`. The requirement is floored at 0;
maintenance = that number, initial = ``im_multiplier`` x maintenance.

Variants (``method``)
---------------------
* ``"hs"``: plain historical simulation, equal weights.
* ``"fhs"``: filtered HS (Barone-Adesi, Giannopoulos & Vosper 1999; Hull &
  White 1998, "Incorporating volatility updating into the historical
  simulation method for VaR"): each asset's scenario return is rescaled by
  the ratio of today's volatility forecast to the one in force when the
  scenario happened, ``r*_s = r_s sigma_t / sigma_{s-h}`` (``sigma_{s-1}``
  with sqrt scaling), where ``sigma_u`` is the 1-day volatility forecast for
  day ``u+1`` made with returns up to ``u``. Default source: EWMA,
  ``v_u = lambda v_{u-1} + (1 - lambda) r_u^2`` (RiskMetrics 1996,
  lambda = 0.94), seeded with the mean of the asset's first
  :data:`EWMA_WARMUP` squared returns (NaN before, so no future data is
  used). Another source (e.g. GARCH) plugs in as ``volatility=callable``
  returning that ``(T, A)`` array.

  **Bounded rescaling** (``max_vol_ratio = c``, default 3): the ratio is
  clipped to ``[1/c, c]``, ``r*_s = r_s clip(sigma_t / sigma_{s-h}, 1/c, c)``.
  Unbounded, the ratio multiplies a calm period's moves by today's
  volatility over a tiny historical one: after DOGE's +355% day
  (2021-01-28) the EWMA ratio passed 9 and FHS asked short-DOGE accounts
  for 92x their notional. Gurrola-Perez & Murphy (2015, Bank of England
  Working Paper 525, "Filtered historical simulation Value-at-Risk models
  and their competitors", s.4-5) show that the filter transforms the
  return distribution through this ratio and discuss bounding it for
  margin models; a symmetric cap also stops a calm today from scaling a
  past crash away by more than ``c``. ``c = None`` is the textbook,
  unbounded FHS. With a cap, a volatility of 0 (a constant price) gives the
  bound instead of a division by zero (0/0 -> 1), so such an asset is
  priced, not dropped.
* ``"brw"``: age-weighted HS (Boudoukh, Richardson & Whitelaw 1998, "The best
  of both worlds"): the scenario ``i = t - s`` days old has weight
  ``proportional to brw_decay**i``; the weighted quantile / ES.

Stress-period floor
-------------------
``stress_windows = [(start, end), ...]`` (inclusive dates; a scenario belongs
to a window when the date its return ends on does). Every stressed scenario
dated ``<= t`` that has left the window stays in the set with mass 1 on top of
the window, so adding a stressed window can never lower the margin. The
stressed scenarios are the raw historical moves (not volatility-filtered: a
floor must not be scaled away by today's calm). With ``stress_weight = w``
the stressed scenarios (in and outside the window) get at least the share
``w`` of the total mass (EMIR RTS 153/2013 Art. 28(1)(b): "at least 25%
weight to stressed observations"); that weighted quantile can fall when
calm scenarios are added, unlike the inclusion rule.

Modules
-------
This one holds the model classes (:class:`HistoricalVaR`,
:class:`FilteredHS`, :class:`AgeWeightedHS`), their parameter checks and
:data:`DEFAULT_STRESS_WINDOWS`; the fitted model (:class:`FittedHistorical`:
scenarios, requirements, margin paths and the *Speed* notes) is in
:mod:`riskmodels.margin.historical_fitted`. Every name defined here before
the split, and the helpers other modules imported from here, are still
importable from this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.margin import _hs_fused as _hs_fused
from riskmodels.margin._ewma_vol import EWMA_WARMUP
from riskmodels.margin._ewma_vol import ewma_volatility as ewma_volatility
from riskmodels.margin._quantile import MEASURES
from riskmodels.margin._quantile import rolling_tail as rolling_tail
from riskmodels.margin._quantile import tail_columns as tail_columns
from riskmodels.margin._stress_tail import rolling_stress_tail as rolling_stress_tail
from riskmodels.margin._stress_tail import stress_tail_columns as stress_tail_columns
from riskmodels.margin.base import FittedMargin as FittedMargin
from riskmodels.margin.base import MarginModel, check_range, register
from riskmodels.margin.base import MarginPath as MarginPath
from riskmodels.margin.base import Requirement as Requirement
from riskmodels.margin.base import combine_units as combine_units
from riskmodels.margin.historical_fitted import FittedHistorical as FittedHistorical
from riskmodels.portfolio import Book as Book

# FittedHistorical (and the helpers it reads, imported `x as x`) are re-exported so
# that every name importable from riskmodels.margin.historical before the split still is.

#: Crypto stress periods (METHODOLOGY.md s.6.2, CRASH_DAYS.md): Covid crash,
#: May 2021 crash, LUNA/UST, FTX.
DEFAULT_STRESS_WINDOWS: tuple[tuple[str, str], ...] = (
    ("2020-03-01", "2020-04-15"),
    ("2021-05-10", "2021-06-30"),
    ("2022-05-01", "2022-06-30"),
    ("2022-11-01", "2022-12-15"),
)
METHODS = ("hs", "fhs", "brw")
SCALINGS = ("overlapping", "sqrt")

VolatilitySource = Callable[[PricePanel], np.ndarray]


def _check_windows(windows: Sequence[Sequence[str]] | None) -> tuple[tuple[str, str], ...]:
    if not windows:
        return ()
    out = []
    for w in windows:
        if len(w) != 2:
            raise ValueError(f"stress_windows entries must be (start, end) date pairs, got {w!r}")
        try:
            a, b = pd.Timestamp(w[0]), pd.Timestamp(w[1])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"stress_windows entry {w!r} is not a pair of dates: {exc}") from None
        if b < a:
            raise ValueError(f"stress_windows entry {w!r}: end is before start")
        out.append((str(a.date()), str(b.date())))
    return tuple(out)


def _whole(name: str, value: Any, lo: int, hi: float = np.inf) -> int:
    try:
        ok = int(value) == value
    except (TypeError, ValueError):
        ok = False
    if not ok or not (lo <= value <= hi):
        raise ValueError(f"{name}={value!r} must be a whole number in [{lo}, {hi}]")
    return int(value)


@register
class HistoricalVaR(MarginModel):
    """Historical-simulation VaR / ES margin (plain, filtered or age-weighted).

    Parameters
    ----------
    confidence : float
        VaR level in (0.5, 1); default 0.99 (EMIR RTS 153/2013 Art. 24).
    horizon : int
        Margin period of risk h in days, 1..10; default 2 (EMIR Art. 26).
    window : int
        Look-back W in dates (>= 20); default 500.
    measure : {"var", "es"}
        Quantile or tail mean.
    scaling : {"overlapping", "sqrt"}
        Overlapping h-day returns, or 1-day returns x sqrt(h).
    method : {"hs", "fhs", "brw"}
        Plain, filtered (EWMA / pluggable volatility) or age-weighted.
        Default: ``"hs"`` (``"fhs"`` for :class:`FilteredHS`, ``"brw"`` for
        :class:`AgeWeightedHS`).
    ewma_lambda : float
        EWMA decay for FHS in (0, 1); default 0.94.
    brw_decay : float
        BRW decay in (0, 1]; default 0.99 (1 = equal weights).
    stress_windows : sequence of (str, str), optional
        Stressed periods whose scenarios always stay in the set
        (:data:`DEFAULT_STRESS_WINDOWS` is a ready list).
    stress_weight : float, optional
        Minimum total weight of stressed scenarios in (0, 1) (EMIR Art.
        28(1)(b) uses 0.25); needs ``stress_windows``.
    im_multiplier : float
        Initial = multiplier x maintenance, >= 1; default 1.
    min_window : int, optional
        Fewest scenarios to price an account (20..window); default ``window``.
        A smaller value gives a growing window for young assets.
    min_history : int, optional
        1-day returns an asset needs (default: what ``min_window`` scenarios
        need: ``min_window + h - 1`` overlapping / ``min_window`` sqrt, plus
        :data:`EWMA_WARMUP` for FHS). Given without ``min_window``, it sets
        ``min_window = min(window, min_history - those extra days)`` (a
        growing window); given with it, it may not be smaller than they need.
    volatility : "ewma" or callable
        FHS volatility source: a callable ``f(panel) -> (T, A)`` array whose
        row t is the 1-day volatility forecast for t+1 using data up to t.
    max_vol_ratio : float or None
        FHS only: bound ``c >= 1`` on the volatility ratio, clipped to
        ``[1/c, c]`` (module docstring); default 3.0, None = unbounded.
    """

    relative_cost: ClassVar[float] = 5.0
    name: ClassVar[str] = "historical_var"
    summary: ClassVar[str] = "historical-simulation VaR/ES of account P&L (CCP style: Prisma, PAIRS)"
    default_method: ClassVar[str] = "hs"

    def __init__(
        self,
        confidence: float = 0.99,
        horizon: int = 2,
        window: int = 500,
        measure: str = "var",
        scaling: str = "overlapping",
        method: str | None = None,
        ewma_lambda: float = 0.94,
        brw_decay: float = 0.99,
        stress_windows: Sequence[Sequence[str]] | None = None,
        stress_weight: float | None = None,
        im_multiplier: float = 1.0,
        min_window: int | None = None,
        min_history: int | None = None,
        volatility: str | VolatilitySource = "ewma",
        max_vol_ratio: float | None = 3.0,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        self.max_vol_ratio = None if max_vol_ratio is None else check_range("max_vol_ratio", max_vol_ratio, 1.0)
        self.confidence = check_range("confidence", confidence, 0.5, 1.0, lo_open=True, hi_open=True)
        self.horizon = _whole("horizon", horizon, 1, 10)
        self.window = _whole("window", window, 20)
        if measure not in MEASURES:
            raise ValueError(f"measure={measure!r} must be one of {MEASURES}")
        self.measure = measure
        if scaling not in SCALINGS:
            raise ValueError(f"scaling={scaling!r} must be one of {SCALINGS}")
        self.scaling = scaling
        method = method or self.default_method
        if method not in METHODS:
            raise ValueError(f"method={method!r} must be one of {METHODS}")
        self.method = method
        self.ewma_lambda = check_range("ewma_lambda", ewma_lambda, 0.0, 1.0, lo_open=True, hi_open=True)
        self.brw_decay = check_range("brw_decay", brw_decay, 0.0, 1.0, lo_open=True)
        self.stress_windows = _check_windows(stress_windows)
        if stress_weight is not None:
            stress_weight = check_range("stress_weight", stress_weight, 0.0, 1.0, lo_open=True, hi_open=True)
            if not self.stress_windows:
                raise ValueError("stress_weight needs stress_windows (e.g. DEFAULT_STRESS_WINDOWS)")
        self.stress_weight = stress_weight
        self.im_multiplier = check_range("im_multiplier", im_multiplier, 1.0)
        extra = (self.horizon - 1 if scaling == "overlapping" else 0) + (EWMA_WARMUP if method == "fhs" else 0)
        self._min_history = None if min_history is None else _whole("min_history", min_history, 20 + extra)
        if min_window is not None:
            self.min_window = _whole("min_window", min_window, 20, self.window)
            if self._min_history is not None and self._min_history < self.min_window + extra:
                raise ValueError(
                    f"min_history={min_history} is below the {self.min_window + extra} returns that "
                    f"min_window={self.min_window} scenarios need; raise min_history or lower min_window"
                )
        elif self._min_history is not None:
            # a shorter history than the window: margin on a growing window from min_history on
            self.min_window = min(self.window, self._min_history - extra)
        else:
            self.min_window = self.window
        if not (volatility == "ewma" or callable(volatility)):
            raise ValueError(f"volatility={volatility!r} must be 'ewma' or a callable panel -> (T, A) array")
        self.volatility = volatility

    @property
    def min_history(self) -> int:
        if self._min_history is not None:
            return self._min_history
        n = self.min_window + (self.horizon - 1 if self.scaling == "overlapping" else 0)
        return n + (EWMA_WARMUP if self.method == "fhs" else 0)

    def fit(self, panel: PricePanel) -> FittedHistorical:
        return FittedHistorical(self, panel)


@register
class FilteredHS(HistoricalVaR):
    """:class:`HistoricalVaR` with ``method="fhs"`` (filtered historical simulation)."""

    name: ClassVar[str] = "filtered_hs"
    summary: ClassVar[str] = "filtered historical simulation (EWMA-devolatilised, Hull-White)"
    default_method: ClassVar[str] = "fhs"


@register
class AgeWeightedHS(HistoricalVaR):
    """:class:`HistoricalVaR` with ``method="brw"`` (age-weighted, Boudoukh-Richardson-Whitelaw)."""

    name: ClassVar[str] = "age_weighted_hs"
    summary: ClassVar[str] = "age-weighted historical simulation (BRW 1998)"
    default_method: ClassVar[str] = "brw"
