"""SPAN-like scenario-grid margin and a Deribit-style portfolio-margin preset.

Facts and sources: METHODOLOGY.md section 1 (CME SPAN) and 2.1 (Deribit PM).
Building blocks (scenario tables, revaluation, risk arrays, scan ranges) live
in :mod:`riskmodels.margin.span_arrays`.

ScenarioGrid (``"scenario_grid"``): SPAN's combined-commodity assembly
------------------------------------------------------------------------
Each asset is one combined commodity; its spot collateral and perp both
move with the asset's scenario (collateral is priced inside the scan). With
``e_a = collateral_a + position_a`` the account's net USD exposure (= its
composite delta in this linear world) and ``RA[t, a, s]`` the risk array::

    scan_a      = max(max_s e_a RA[t, a, s], 0)                       (METHODOLOGY 1.2)
    credit_a    = sum over inter-commodity spreads of rate x spreads x ratio_a x WPR_a
    maintenance = sum_a max(scan_a - credit_a, 0) + sum_a haircut_a x collateral_a
    initial     = im_multiplier x maintenance      (CME HRP 110%; METHODOLOGY 1.2)

WPR inter-commodity spreads (CME "Inter Spreads", HKEX PRiME; METHODOLOGY
1.2), processed in the order given (priority), each consuming delta:

* price risk_a = (loss in the scan-risk scenario + loss in its paired
  scenario) / 2 - time risk (mean loss of the zero-move scenarios);
* WPR_a = max(price risk_a / |e_a|, 0);
* spreads = min_k(|d_k| / ratio_k) when every leg k is on its side
  (``sides``; default long one leg, short the other), else 0;
* credit_k = rate x spreads x ratio_k x WPR_k; ``d_k`` shrinks by
  spreads x ratio_k for the next spread.

``rate`` is configured, or ``"correlation"``: derived as of each
recalibration date from the rolling correlation of daily log returns
(:func:`~riskmodels.margin.span_arrays.correlation_credit`); ``ratios`` is
configured (USD of each leg per spread) or ``"psr"`` (``1 / PSR_k``:
risk-matched legs, the case the correlation mapping assumes).

Scanning-based spreads (``scan_spreads``; CME Treasury 70% credit; METHODOLOGY
1.2): the legs are scanned together, at each scenario
``loss[s] = sum of losing legs' losses - credit x sum of gaining legs' gains``
and the group's scan risk ``max(max_s loss[s], 0)`` replaces the legs'
own scans.

Options (``option_requirement``): risk arrays from the pricer with a real
volatility dimension, the short option minimum and no net-option-value
subtraction (equity holds the marks): :mod:`riskmodels.margin.options_span`;
``deribit_pm`` / ``derive_pm``: :mod:`riskmodels.margin.options_deribit`.

``scan="joint"`` instead scans all assets together:
``maintenance = max(max_s sum_a e_a RA[t, a, s], 0) + haircut`` — every asset
moves by the same fraction of its own range in the same scenario. This is
the Deribit X:PM reading below.

DeribitPM (``"deribit_pm"``)
----------------------------
The cross-collateral X:PM portfolio margin (METHODOLOGY 2.1): price moves
-16%..+16% in 9 evenly spaced buckets including 0 (range per asset
configurable), vol up / same / down per bucket (irrelevant for linear
instruments: the three give the same loss; carried for options), optionally
the extended moves -66%, -33%, +50%, +100%, +200..+500% counted at
``extended_fraction`` (Deribit publishes that only "a fraction" counts, not
the value; default 0 = off). **Joint** means all assets move together, in
the same direction and by the same bucket (each as a fraction of its own
range), and the worst of the joint scenarios is charged. Long/short
positions across *different* assets therefore net in full: long 1M SOL
against short 1M BTC has zero scan risk at equal ranges, although the
pair can lose heavily on a relative move (e.g. FTX/SOL, Nov 2022). The
"offsetting futures" contingency (v-A 1%, v-B 2% of the offset underlying;
METHODOLOGY 2.1) charges that netting::

    contingency = futures_contingency x (sum|collateral| + sum|positions| - |net delta|) / 2

i.e. the rate times the USD amount of exposure that offsets other exposure
(both within an asset, spot against perp, and across assets). Deribit's
IM/MM link is not public here (METHODOLOGY "Not yet verified"); the
preset's ``im_multiplier`` defaults to 1.0 and is a free parameter.

Modules: this one holds :class:`ScenarioGrid` (the parameters, their checks
and the scenario table); the fitted model (:class:`FittedScenarioGrid`: risk
arrays of a panel, requirements, margin paths) is in
:mod:`riskmodels.margin.span_fitted`. Every name defined here before the
split, and the helpers other modules imported from here, are still
importable from this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from riskmodels.data.panel import PricePanel
from riskmodels.instruments.options import OptionState as OptionState
from riskmodels.margin.base import FittedMargin as FittedMargin
from riskmodels.margin.base import MarginModel, check_range, register
from riskmodels.margin.base import MarginPath as MarginPath
from riskmodels.margin.base import Requirement as Requirement
from riskmodels.margin.base import account_eligibility as account_eligibility
from riskmodels.margin.base import combine_units as combine_units
from riskmodels.margin.base import per_asset as per_asset
from riskmodels.margin.span_arrays import SCHEDULES, ScenarioTable, span_table
from riskmodels.margin.span_arrays import calibrate_psr as calibrate_psr
from riskmodels.margin.span_arrays import correlation_credit as correlation_credit
from riskmodels.margin.span_arrays import hold_last as hold_last
from riskmodels.margin.span_arrays import recalibration_mask as recalibration_mask
from riskmodels.margin.span_arrays import risk_arrays as risk_arrays
from riskmodels.margin.span_arrays import rolling_correlation as rolling_correlation
from riskmodels.margin.span_arrays import scan_summaries as scan_summaries
from riskmodels.margin.span_fitted import _CHUNK_BYTES as _CHUNK_BYTES
from riskmodels.margin.span_fitted import FittedScenarioGrid
from riskmodels.portfolio import Book as Book

# FittedScenarioGrid and _CHUNK_BYTES (and the helpers they read, imported `x as x`)
# are re-exported so that every name importable from riskmodels.margin.span before
# the split still is.

__all__ = ["FittedScenarioGrid", "ScenarioGrid"]


def _check_int(name: str, value: int, lo: int, hi: int) -> int:
    if int(value) != value:
        raise ValueError(f"{name}={value!r} must be a whole number in [{lo}, {hi}]")
    return int(check_range(name, value, lo, hi))


@register
class ScenarioGrid(MarginModel):
    """SPAN-like scenario-grid margin (see module docstring for the formulas).

    Parameters
    ----------
    psr : float, mapping or sequence, optional
        Constant price scan range per asset as a simple-return fraction in
        (0, 1]; ``None`` (default) calibrates it from history.
    psr_quantile : float
        Quantile of |h-day log return| for calibration, in [0.5, 1); 0.99.
    psr_horizon : int
        h, days, in [1, 30]; default 2 (a 2-day margin period of risk).
    psr_lookback : int
        Rows (days) of history in the window, in [30, 3650]; default 365.
    psr_floor : float
        Minimum calibrated range, in [0, 1]; default 0.05.
    psr_min_obs : int
        h-day returns needed in the window before an asset can be margined,
        in [10, psr_lookback]; default 90.
    recalibration : {"daily", "weekly", "monthly", "quarterly"}
        When calibrated ranges (and correlation-derived credits) are
        recomputed; held fixed in between. Default "daily".
    extreme_multiplier, extreme_cover : float
        Extreme scenarios 15/16: move of ``extreme_multiplier`` x PSR in
        [1, 10] counted at ``extreme_cover`` in [0, 1]. Defaults 3 / 0.33
        (current CME); the classic values are 2 / 0.35.
    spreads : sequence of mapping, optional
        WPR inter-commodity spreads in priority order, each
        ``{"legs": ("BTC", "ETH"), "rate": 0.5 | "correlation",
        "ratios": (1, 1) | "psr", "sides": (1, -1)}``. ``sides`` defaults to
        (1, -1) for two legs and is required for more.
    scan_spreads : sequence of mapping, optional
        Scanning-based spreads ``{"legs": (...), "credit": 0.7}``; an asset
        may be in at most one, and not also in a WPR spread.
    collateral_haircut : float or mapping
        Extra charge on collateral value per asset, in [0, 1]; default 0.
    im_multiplier : float
        Initial / maintenance ratio, in [1, 2]; default 1.1 (CME HRP).
    risk_arrays : mapping, optional
        ``{asset: [S losses]}``: externally supplied loss per USD of
        exposure for each scenario (an exchange's risk-parameter file),
        used instead of computed arrays for that asset (constant in time).
    risk_arrays_weighted : bool
        True if the supplied arrays already include the extreme cover
        (as SPAN files do); default False (the cover is applied here).
    scan : {"per_asset", "joint"}
        SPAN's per-combined-commodity scan (default) or one joint scan.
    corr_lookback, corr_min_obs : int
        Window (rows) and minimum observations of the correlation behind
        ``rate="correlation"``; defaults 365 / 90.
    corr_min_rho, corr_max_rate : float
        No credit below ``corr_min_rho`` in [-1, 1] (default 0.5); cap
        ``corr_max_rate`` in [0, 1] (default 0.8).
    vsr, vsr_mode : float or mapping, {"relative", "absolute"}
        Options only (:mod:`riskmodels.margin.options_span`): volatility scan
        range per asset, in [0, 10]; relative ``sigma (1 +- vsr)`` (default
        0.25: NSE's VSR of 25% of the volatility) or absolute vol points.
    som_rate, som_method : float, {"sum", "max"}
        Short option minimum per short contract as a fraction of the outright
        margin ``PSR x price`` of one unit, in [0, 1] (default 0.1, a choice:
        CME sets a dollar amount per product); "sum" (CME code 2) counts short
        calls plus short puts, "max" (code 1) the larger.
    look_ahead_days : float
        Time decay in every scenario, days in [0, 30]; default 1 (CME).
    """

    relative_cost: ClassVar[float] = 2.0
    #: which full-revaluation scan prices options: "span" (risk arrays + SOM) or "deribit"
    option_scan: ClassVar[str] = "span"
    name: ClassVar[str] = "scenario_grid"
    summary: ClassVar[str] = "SPAN-like 16-scenario grid, per-asset scan with WPR inter-commodity credits"

    def __init__(
        self,
        psr: float | Mapping[str, float] | Sequence[float] | None = None,
        psr_quantile: float = 0.99,
        psr_horizon: int = 2,
        psr_lookback: int = 365,
        psr_floor: float = 0.05,
        psr_min_obs: int = 90,
        recalibration: Literal["daily", "weekly", "monthly", "quarterly"] = "daily",
        extreme_multiplier: float = 3.0,
        extreme_cover: float = 0.33,
        spreads: Sequence[Mapping[str, Any]] | None = None,
        scan_spreads: Sequence[Mapping[str, Any]] | None = None,
        collateral_haircut: float | Mapping[str, float] = 0.0,
        im_multiplier: float = 1.1,
        risk_arrays: Mapping[str, Sequence[float]] | None = None,
        risk_arrays_weighted: bool = False,
        scan: Literal["per_asset", "joint"] = "per_asset",
        corr_lookback: int = 365,
        corr_min_obs: int = 90,
        corr_min_rho: float = 0.5,
        corr_max_rate: float = 0.8,
        vsr: float | Mapping[str, float] = 0.25,
        vsr_mode: Literal["relative", "absolute"] = "relative",
        som_rate: float = 0.1,
        som_method: Literal["sum", "max"] = "sum",
        look_ahead_days: float = 1.0,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        if not isinstance(vsr, Mapping):
            check_range("vsr", vsr, 0.0, 10.0)  # type: ignore[arg-type]
        self.vsr = vsr
        if vsr_mode not in ("relative", "absolute"):
            raise ValueError(f"vsr_mode={vsr_mode!r} must be 'relative' or 'absolute'")
        self.vsr_mode = vsr_mode
        self.som_rate = check_range("som_rate", som_rate, 0.0, 1.0)
        if som_method not in ("sum", "max"):
            raise ValueError(f"som_method={som_method!r} must be 'sum' or 'max'")
        self.som_method = som_method
        self.look_ahead_days = check_range("look_ahead_days", look_ahead_days, 0.0, 30.0)
        if psr is not None and not isinstance(psr, Mapping):
            arr = np.atleast_1d(np.asarray(psr, dtype=np.float64))
            for v in arr:
                check_range("psr", v, 0.0, 1.0, lo_open=True)
        self.psr = psr
        self.psr_quantile = check_range("psr_quantile", psr_quantile, 0.5, 1.0, hi_open=True)
        self.psr_horizon = _check_int("psr_horizon", psr_horizon, 1, 30)
        self.psr_lookback = _check_int("psr_lookback", psr_lookback, 30, 3650)
        self.psr_floor = check_range("psr_floor", psr_floor, 0.0, 1.0)
        self.psr_min_obs = _check_int("psr_min_obs", psr_min_obs, 10, self.psr_lookback)
        if recalibration not in SCHEDULES:
            raise ValueError(f"recalibration={recalibration!r} must be one of {SCHEDULES}")
        self.recalibration = recalibration
        self.extreme_multiplier = check_range("extreme_multiplier", extreme_multiplier, 1.0, 10.0)
        self.extreme_cover = check_range("extreme_cover", extreme_cover, 0.0, 1.0)
        if not isinstance(collateral_haircut, Mapping):
            check_range("collateral_haircut", collateral_haircut, 0.0, 1.0)  # type: ignore[arg-type]
        self.collateral_haircut = collateral_haircut
        self.im_multiplier = check_range("im_multiplier", im_multiplier, 1.0, 2.0)
        if scan not in ("per_asset", "joint"):
            raise ValueError(f"scan={scan!r} must be 'per_asset' or 'joint'")
        self.scan = scan
        self.corr_lookback = _check_int("corr_lookback", corr_lookback, 10, 3650)
        self.corr_min_obs = _check_int("corr_min_obs", corr_min_obs, 5, self.corr_lookback)
        self.corr_min_rho = check_range("corr_min_rho", corr_min_rho, -1.0, 1.0)
        self.corr_max_rate = check_range("corr_max_rate", corr_max_rate, 0.0, 1.0)
        self.spreads = _check_spreads(spreads)
        self.scan_spreads = _check_scan_spreads(scan_spreads)
        if scan == "joint" and (self.spreads or self.scan_spreads):
            raise ValueError("spreads/scan_spreads apply to scan='per_asset' only: a joint scan already nets all assets")
        wpr_assets = {a for s in self.spreads for a in s["legs"]}
        scan_assets = [a for g in self.scan_spreads for a in g["legs"]]
        if len(scan_assets) != len(set(scan_assets)):
            raise ValueError(f"scan_spreads: an asset may be in only one scanning group, got {scan_assets}")
        both = wpr_assets & set(scan_assets)
        if both:
            raise ValueError(f"assets {sorted(both)} are in both spreads and scan_spreads; use one method per asset")
        n_s = self.table().n
        ext: dict[str, np.ndarray] = {}
        for a, vals in (risk_arrays or {}).items():
            arr = np.asarray(vals, dtype=np.float64)
            if arr.shape != (n_s,) or not np.isfinite(arr).all():
                raise ValueError(f"risk_arrays[{a}] must be {n_s} finite losses per USD, got {vals!r}")
            ext[str(a)] = arr
        self.risk_arrays = ext or None
        self.risk_arrays_weighted = bool(risk_arrays_weighted)

    # ------------------------------------------------------------------
    def table(self) -> ScenarioTable:
        """The scenario grid (SPAN's 16 scenarios here)."""
        return span_table(self.extreme_multiplier, self.extreme_cover)

    @property
    def min_history(self) -> int:
        return 0 if self.psr is not None else self.psr_horizon - 1 + self.psr_min_obs

    def fit(self, panel: PricePanel) -> FittedScenarioGrid:
        return FittedScenarioGrid(self, panel)


def _check_spreads(spreads: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for i, sp in enumerate(spreads or ()):
        legs = tuple(str(a) for a in sp.get("legs", ()))
        if len(legs) < 2 or len(set(legs)) != len(legs):
            raise ValueError(f"spreads[{i}].legs must be >= 2 distinct assets, got {legs}")
        rate = sp.get("rate", "correlation")
        if rate != "correlation":
            rate = check_range(f"spreads[{i}].rate", rate, 0.0, 1.0)
        elif len(legs) != 2:
            raise ValueError(f"spreads[{i}]: rate='correlation' needs exactly 2 legs, got {len(legs)}")
        ratios = sp.get("ratios", (1.0,) * len(legs))
        if ratios != "psr":
            ratios = tuple(float(r) for r in ratios)
            if len(ratios) != len(legs) or any(not r > 0 for r in ratios):
                raise ValueError(f"spreads[{i}].ratios must be {len(legs)} values > 0 (or 'psr'), got {ratios}")
        sides = sp.get("sides")
        if sides is None:
            if len(legs) != 2:
                raise ValueError(f"spreads[{i}]: give `sides` (+1/-1 per leg) for a {len(legs)}-leg spread")
            sides = (1, -1)
        sides = tuple(int(s) for s in sides)
        if len(sides) != len(legs) or any(s not in (1, -1) for s in sides) or len(set(sides)) < 2:
            raise ValueError(f"spreads[{i}].sides must be +1/-1 per leg with both signs present, got {sides}")
        unknown = set(sp) - {"legs", "rate", "ratios", "sides"}
        if unknown:
            raise ValueError(f"spreads[{i}] has unknown keys {sorted(unknown)}; valid: legs, rate, ratios, sides")
        out.append({"legs": legs, "rate": rate, "ratios": ratios, "sides": sides})
    return out


def _check_scan_spreads(groups: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for i, g in enumerate(groups or ()):
        legs = tuple(str(a) for a in g.get("legs", ()))
        if len(legs) < 2 or len(set(legs)) != len(legs):
            raise ValueError(f"scan_spreads[{i}].legs must be >= 2 distinct assets, got {legs}")
        credit = check_range(f"scan_spreads[{i}].credit", g.get("credit", np.nan), 0.0, 1.0)
        out.append({"legs": legs, "credit": credit})
    return out
