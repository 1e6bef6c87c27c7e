"""Anti-procyclicality (APC) tools as wrappers around any margin model.

EMIR RTS 153/2013 Art. 28(1) asks a CCP to apply at least one of: (a) a
margin buffer of at least 25%, "which it allows to be temporarily exhausted
in periods where calculated margin requirements are rising significantly";
(b) at least 25% weight on stressed observations in the look-back period;
(c) margins not lower than those computed with volatility estimated over a
10-year look-back. Murphy, Vasios & Vause (2016, BoE Staff Working Paper 597)
add a *speed limit* on margin increases. Each tool here is one small class:

=========================  ====================  =================================
class                      registry name         rule on the base margin ``b_t``
=========================  ====================  =================================
:class:`Buffer25`          ``apc_buffer``        ``m_t = max(b_t, min((1+B) b_t, m_{t-1}))``
:class:`StressWeight25`    ``apc_stress_weight`` HS scenarios, stressed weight >= 25%
:class:`LookbackFloor`     ``apc_floor``         ``m_t = max(b_t, f_t)``, ``f`` = 10-year HS
:class:`SpeedLimit`        ``apc_speed_limit``   ``m_t = min(b_t, (1+x) min_{t-n<=s<t} m_s)``
=========================  ====================  =================================

Every rule uses the base margins up to t only (no look-ahead). The rules act
on a whole path (:meth:`~APCWrapper.apply` takes a ``(T, P)`` array or a
:class:`~riskmodels.margin.base.MarginPath`), and the wrappers are margin
models themselves: ``Buffer25(HistoricalVaR())`` or
``get("apc_buffer", inner="historical_var")``. Initial and maintenance are
transformed separately by the same rule (the rules are positively
homogeneous, so ``IM = k x MM`` survives).

Modules: the wrapper base (:class:`APCWrapper`, :func:`resolve_model`), the
path-dependent wrappers (:class:`Buffer25`, :class:`SpeedLimit`) and their
fitted rule (the replay of ``requirement()`` and the carried state of the
account simulation, described there) are in
:mod:`riskmodels.margin.apc_path_dependent`; the floor
(:class:`LookbackFloor`) and the stressed weight (:class:`StressWeight25`)
are here; the rules' arithmetic is in :mod:`riskmodels.margin.apc_rules`.
Every name defined here before the split is still importable from this
module.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from riskmodels.data.panel import PricePanel

# historical first, as before the split: the registry keeps its order (HS models, then the wrappers)
from riskmodels.margin.historical import DEFAULT_STRESS_WINDOWS, HistoricalVaR

# isort: split
from riskmodels.margin import _hs_above
from riskmodels.margin.apc_path_dependent import (
    APCWrapper,
    ModelSpec,
    resolve_model,
)
from riskmodels.margin.apc_path_dependent import Buffer25 as Buffer25
from riskmodels.margin.apc_path_dependent import SpeedLimit as SpeedLimit
from riskmodels.margin.apc_path_dependent import _FittedRule as _FittedRule
from riskmodels.margin.apc_rules import (  # noqa: F401  (re-exported: the rules' public home was this module)
    buffer_last,
    buffer_rule,
    buffer_rule_reference,
    buffer_step,
    floor_rule,
    speed_limit_rule,
    speed_limit_rule_reference,
    speed_limit_step,
)
from riskmodels.margin.base import FittedMargin, MarginPath, Requirement, check_range, register
from riskmodels.margin.base import MarginModel as MarginModel
from riskmodels.margin.base import get as get
from riskmodels.margin.historical_fitted import FittedHistorical
from riskmodels.portfolio import Book

# APCWrapper, Buffer25, SpeedLimit, _FittedRule, ModelSpec and resolve_model (and the
# helpers they read, imported `x as x`) are re-exported so that every name importable
# from riskmodels.margin.apc before the split still is.


@register
class LookbackFloor(APCWrapper):
    """Margin floored at a long-look-back model (EMIR RTS 153/2013 Art. 28(1)(c)).

    Parameters
    ----------
    inner : MarginModel, str or mapping
        The base model.
    floor_model : MarginModel, str or mapping, optional
        The floor. Default (only for :class:`HistoricalVaR` inners): plain HS
        with the inner's confidence, horizon, measure and scaling, window
        ``lookback_days`` and the inner's ``min_window`` (a growing window
        until ``lookback_days`` of history exist).
    lookback_days : int
        Default floor window, >= 250; default 3650 (10 years x 365 days).
    """

    name: ClassVar[str] = "apc_floor"
    summary: ClassVar[str] = "EMIR Art. 28(1)(c) floor at a 10-year look-back margin"

    def __init__(
        self, inner: ModelSpec, floor_model: ModelSpec | None = None, lookback_days: int = 3650, *, label: str | None = None
    ) -> None:
        lb = check_range("lookback_days", lookback_days, 250)
        if lb != int(lb):
            raise ValueError(f"lookback_days={lookback_days!r} must be a whole number >= 250")
        self.lookback_days = int(lb)
        super().__init__(inner, label=label)
        if floor_model is not None:
            self.floor_model = resolve_model(floor_model, "floor_model")
        elif isinstance(self.inner, HistoricalVaR):
            m = self.inner
            self.floor_model = HistoricalVaR(
                confidence=m.confidence,
                horizon=m.horizon,
                window=max(self.lookback_days, m.window),
                measure=m.measure,
                scaling=m.scaling,
                method="hs",
                im_multiplier=m.im_multiplier,
                min_window=m.min_window,
                label=f"{m.label}-{self.lookback_days}d",
            )
        else:
            raise ValueError(
                f"floor_model is needed for a {type(self.inner).__name__} inner "
                "(the default floor is only defined for HistoricalVaR)"
            )

    @property
    def im_multiplier(self) -> float | None:  # type: ignore[override]
        """The common IM / MM multiple of the inner and the floor model, None if they differ."""
        k = getattr(self.inner, "im_multiplier", None)
        return k if k is not None and getattr(self.floor_model, "im_multiplier", None) == k else None

    def fit(self, panel: PricePanel) -> FittedMargin:
        return _FittedFloor(self, panel, self.inner.fit(panel), self.floor_model.fit(panel))

    def apply(self, base: np.ndarray | MarginPath, floor: np.ndarray | MarginPath | None = None) -> np.ndarray | MarginPath:  # type: ignore[override]
        """``max(base, floor)`` on arrays or MarginPaths (``floor`` is required)."""
        if floor is None:
            raise ValueError("LookbackFloor.apply needs the floor path")
        if isinstance(base, MarginPath):
            fi = floor.initial if isinstance(floor, MarginPath) else floor
            fm = floor.maintenance if isinstance(floor, MarginPath) else floor
            return MarginPath(
                self.label, base.dates, base.account_ids, floor_rule(base.initial, fi), floor_rule(base.maintenance, fm), base.eligible
            )
        return floor_rule(base, floor.maintenance if isinstance(floor, MarginPath) else floor)


class _FittedFloor(FittedMargin):
    def __init__(self, model: LookbackFloor, panel: PricePanel, inner: FittedMargin, floor: FittedMargin) -> None:
        super().__init__(model, panel)
        self.inner = inner
        self.floor = floor
        self.homogeneous = inner.homogeneous and floor.homogeneous  # type: ignore[misc]
        self.paired = model.im_multiplier is not None and _pairable(inner, floor)

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """``max(base, floor)`` per account; the floor priced only where it can bind when its model allows.

        With an HS VaR floor (unit masses) and the same IM multiple as the
        base, ``floor > base`` is decided without pricing the floor's calm
        rows (:meth:`~riskmodels.margin.historical_fitted.FittedHistorical.maintenance_above`):
        where the floor does not bind the result is the base, as
        :func:`~riskmodels.margin.apc_rules.floor_rule` gives (tested against
        the full floor).
        """
        if self.paired:
            X = np.atleast_2d(np.asarray(collateral, dtype=np.float64)) + np.atleast_2d(
                np.asarray(positions, dtype=np.float64)
            )
            if np.isfinite(X).all():
                return self._paired_requirement(int(t), X)
        b = self.inner.requirement(t, collateral, positions)
        k = self.model.im_multiplier  # type: ignore[attr-defined]
        above = getattr(self.floor, "maintenance_above", None)
        fm = None
        # the base's IM must be k x its MM exactly: then "the floor's MM does not bind" decides the IM too
        if above is not None and k is not None and np.array_equal(b.initial, k * b.maintenance, equal_nan=True):
            fm = above(t, collateral, positions, b.maintenance)
        if fm is not None:  # NaN where the floor does not bind: the base stands
            return Requirement(floor_rule(b.initial, k * fm), floor_rule(b.maintenance, fm))
        f = self.floor.requirement(t, collateral, positions)
        return Requirement(floor_rule(b.initial, f.initial), floor_rule(b.maintenance, f.maintenance))

    def _paired_requirement(self, t: int, X: np.ndarray) -> Requirement:
        """Base and floor from one loss pass over the floor's window (:func:`~riskmodels.margin._hs_above.base_and_floor`).

        The base's scenario rows at ``t`` are the last ``n_b`` of the floor's
        (:func:`_pairable`), so each loss is priced once; the base is its
        ``k``-th largest loss there and the floor is priced where it can
        exceed the base's maintenance, as the unpaired path does (the same
        numbers: tested against it and against the two full models).
        """
        inner: FittedHistorical = self.inner  # type: ignore[assignment]
        floor: FittedHistorical = self.floor  # type: ignore[assignment]
        prep = floor._prepared(t)
        n_b = t + 1 - max(0, t - inner.model.window + 1)  # type: ignore[attr-defined]
        N = X.shape[0]
        base, fm = np.empty(N), np.empty(N)
        _hs_above.base_and_floor(
            np.ascontiguousarray(X), prep.gT, prep.bad, prep.bad_any, int(n_b),
            int(inner.model.min_window), 1.0 - float(inner.model.confidence),  # type: ignore[attr-defined]
            np.ascontiguousarray(inner.asset_ok[t], dtype=np.bool_),
            int(floor.model.min_window), 1.0 - float(floor.model.confidence),  # type: ignore[attr-defined]
            np.ascontiguousarray(floor.asset_ok[t], dtype=np.bool_), base, fm,
        )
        with np.errstate(invalid="ignore"):
            base[base < 0.0] = 0.0  # the base's maintenance is max(VaR, 0) (FittedHistorical._measure); NaN stays
        k = float(self.model.im_multiplier)  # type: ignore[attr-defined,arg-type]
        return Requirement(floor_rule(k * base, k * fm), floor_rule(base, fm))

    def maintenance_lipschitz(self, t: int) -> np.ndarray | None:
        """``max(L_b, L_f)`` per asset: ``|max(b', f') - max(b, f)| <= max(|b' - b|, |f' - f|)``.

        Both bounds are sums over assets of ``L_a |dx_a|``, so the larger
        constant per asset bounds the maximum (a NaN floor lets the base
        through, which the same bound covers). Lets the simulation skip safe
        intraday checks; ``None`` unless both models have a bound.
        """
        lb = getattr(self.inner, "maintenance_lipschitz", None)
        lf = getattr(self.floor, "maintenance_lipschitz", None)
        if lb is None or lf is None:
            return None
        b, f = lb(int(t)), lf(int(t))
        if b is None or f is None:
            return None
        return np.where(np.isnan(b) | np.isnan(f), np.nan, np.fmax(b, f))

    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        base = self.inner.path(book, eligible)
        floor = self.floor.path(book, base.eligible)
        return self.model.apply(base, floor)  # type: ignore[attr-defined,return-value]


def _pairable(inner: FittedMargin, floor: FittedMargin) -> bool:
    """True if at every date the floor's scenario rows end with the base's: one loss pass can price both.

    Both plain HS VaR (unit masses, no stressed share or extras, the
    requirement not overridden) on the same scenario returns (same panel,
    horizon and scaling: checked element by element), the floor's window at
    least the base's. The default floor of an HS inner is such a pair.
    """
    if not (isinstance(inner, FittedHistorical) and isinstance(floor, FittedHistorical)):
        return False
    for f in (inner, floor):
        m: HistoricalVaR = f.model  # type: ignore[assignment]
        if (type(f).requirement is not FittedHistorical.requirement or m.method != "hs" or m.measure != "var"
                or m.stress_weight is not None or f.stress.any()):
            return False
    gi, gf = inner.G, floor.G
    return (
        floor.model.window >= inner.model.window  # type: ignore[attr-defined]
        and gi is not None and gf is not None and gi.shape == gf.shape and np.array_equal(gi, gf, equal_nan=True)
    )


@register
class StressWeight25(APCWrapper):
    """At least ``weight`` of scenario mass on stressed observations (EMIR Art. 28(1)(b)).

    Only meaningful for historical simulation: the wrapper returns the inner
    :class:`HistoricalVaR` with ``stress_weight = max(weight, inner's)`` and
    ``stress_windows`` = the inner's, or ``stress_windows`` given here, or
    :data:`~riskmodels.margin.historical.DEFAULT_STRESS_WINDOWS`.

    Parameters
    ----------
    inner : HistoricalVaR, str or mapping
        A historical-simulation model (plain, FHS or BRW).
    weight : float
        Minimum stressed share in [0.25, 1); default 0.25.
    stress_windows : sequence of (str, str), optional
        Stressed periods to use when the inner has none.
    """

    name: ClassVar[str] = "apc_stress_weight"
    summary: ClassVar[str] = "EMIR Art. 28(1)(b) >= 25% weight on stressed scenarios (HS only)"

    def __init__(
        self,
        inner: ModelSpec,
        weight: float = 0.25,
        stress_windows: Any = None,
        *,
        label: str | None = None,
    ) -> None:
        self.weight = check_range("weight", weight, 0.25, 1.0, hi_open=True)
        self.stress_windows = stress_windows
        super().__init__(inner, label=label)
        if not isinstance(self.inner, HistoricalVaR):
            raise TypeError(
                f"inner must be a HistoricalVaR model for apc_stress_weight, got {type(self.inner).__name__}"
            )
        params = self.inner.params()
        params["stress_windows"] = self.inner.stress_windows or stress_windows or DEFAULT_STRESS_WINDOWS
        params["stress_weight"] = max(self.weight, self.inner.stress_weight or 0.0)
        params["method"] = self.inner.method
        self.effective = type(self.inner)(**params, label=self.label)

    @property
    def min_history(self) -> int:
        return self.effective.min_history

    def fit(self, panel: PricePanel) -> FittedMargin:
        return self.effective.fit(panel)

    def apply(self, base: np.ndarray | MarginPath) -> np.ndarray | MarginPath:
        raise TypeError("the stressed-weight tool changes the scenario weights: it cannot act on a finished path")
