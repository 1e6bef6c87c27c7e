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

Path-dependent rules and ``requirement()``
------------------------------------------
The buffer and the speed limit depend on the past margins of the same
holdings. :meth:`path` applies them to the full path. ``requirement(t, ...)``
replays the rule over the inner requirements of the given holdings on the
last ``history`` dates (default 250), starting fresh at the first of them;
it equals the path value whenever the account's path starts within that
span. A NaN base margin (ineligible account) restarts the rule. The replay
uses the inner model's ``requirement_history(t0, t1, collateral, positions)``
when it has one (plain HS: one rolling-kernel pass), else ``history`` calls
of ``requirement``.

In the account simulation (carried state)
-----------------------------------------
The simulation does not replay: it carries each account's rule state from
one close to the next (:meth:`_FittedRule.carried_requirement`, the steps of
:mod:`riskmodels.margin.apc_rules`). An account's margin at close t is the
rule applied to its **own** daily base margins since it opened, ``b_s`` =
the inner requirement of the quantities it holds valued at close s; it
starts fresh (``(1 + B) b``, or ``b`` under the speed limit) when the
account opens or re-opens. The intraday check steps once from the state of
the previous close (the margin in force) without committing it. The cost is
one inner requirement per date, as for the inner model.

Why this, and not the replay, is the simulated margin (a change of numbers
from issue 23 on): Art. 28(1)(a) applies the buffer to "the calculated
margins" and lets it be exhausted "in periods where calculated margin
requirements are rising significantly": the margin that rises is the one
the CCP calculated and collected for the account on each day, and the
buffer consumed is the part of *yesterday's collected* margin above today's
calculated one. The carried rule is exactly that series (and exactly what
:meth:`path` computes for a constant-notional book). The replay instead asks
what the rule would give had today's USD amounts been held for ``history``
days: it credits a new or re-opened account with buffer "released" on days
before it existed, and an account whose amounts moved with prices with a
history of other amounts. The carried numbers differ from the replay's
where that matters: the accounts' first weeks after an opening during
rising margins (the carried account posts the full buffer), and accounts
whose value moved a lot. A CCP that buffers its *margin parameters* rather
than each account's requirement would charge a new account the exhausted
rate too; ``requirement()`` (the replay) is that reading and stays available
for stateless callers (stress tests, cascades).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from riskmodels.data.panel import PricePanel
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
from riskmodels.margin.base import (
    FittedMargin,
    MarginModel,
    MarginPath,
    Requirement,
    check_range,
    get,
    register,
)
from riskmodels.margin.historical import DEFAULT_STRESS_WINDOWS, HistoricalVaR
from riskmodels.portfolio import Book

ModelSpec = MarginModel | str | Mapping[str, Any]


def resolve_model(spec: ModelSpec, what: str = "inner") -> MarginModel:
    """A MarginModel from an instance, a registry name or ``{"name": ..., **params}``."""
    if isinstance(spec, MarginModel):
        return spec
    if isinstance(spec, str):
        return get(spec)
    if isinstance(spec, Mapping):
        params = dict(spec)
        try:
            name = params.pop("name")
        except KeyError:
            raise ValueError(f"{what} given as a mapping needs a 'name' key, got {sorted(spec)}") from None
        return get(name, **params)
    raise TypeError(f"{what} must be a MarginModel, a registered name or a mapping, got {spec!r}")


# ---------------------------------------------------------------- wrappers
class APCWrapper(MarginModel):
    """Base of the APC wrappers: holds the inner model."""

    def __init__(self, inner: ModelSpec, *, label: str | None = None) -> None:
        self.inner = resolve_model(inner)
        super().__init__(label=label or f"{self.inner.label}+{self.name}")

    @property
    def min_history(self) -> int:
        return self.inner.min_history

    @property
    def split_accounts(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "split_accounts", False))

    @property
    def relative_cost(self) -> float:  # type: ignore[override]
        """The inner model's (each wrapper costs about one inner requirement per date; README)."""
        return float(getattr(self.inner, "relative_cost", 1.0))

    @property
    def im_multiplier(self) -> float | None:
        """The inner model's IM / MM multiple, if it declares one.

        The rules are positively homogeneous (``rule(k b) = k rule(b)``), so the
        wrapped IM is the same multiple of the wrapped MM.
        """
        return getattr(self.inner, "im_multiplier", None)

    #: columns of one side's (IM or MM) carried state; 0 = the rule is not carried
    state_width: ClassVar[int] = 0

    def _rule(self, base: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _step(self, base: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        """One date of :meth:`_rule`: ``(N,)`` base and ``(N, state_width)`` state -> margin, new state."""
        raise NotImplementedError

    def apply(self, base: np.ndarray | MarginPath) -> np.ndarray | MarginPath:
        """The rule on a ``(T, P)`` array or on both sides of a MarginPath."""
        if isinstance(base, MarginPath):
            return MarginPath(
                self.label, base.dates, base.account_ids, self._rule(base.initial), self._rule(base.maintenance), base.eligible
            )
        return self._rule(base)

    def fit(self, panel: PricePanel) -> FittedMargin:
        return _FittedRule(self, panel, self.inner.fit(panel))


class _FittedRule(FittedMargin):
    """A path-dependent rule on the inner model's margins."""

    def __init__(self, model: APCWrapper, panel: PricePanel, inner: FittedMargin) -> None:
        super().__init__(model, panel)
        self.inner = inner
        self.homogeneous = inner.homogeneous  # type: ignore[misc]

    #: dates first replayed by the buffer before the full ``history`` (where they do not decide it)
    SHORT_SPAN: ClassVar[int] = 24

    @property
    def carry_width(self) -> int:
        """Columns of an account's carried state (IM side, then MM side)."""
        return 2 * int(self.model.state_width)  # type: ignore[attr-defined]

    def carried_requirement(
        self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray | None, state: np.ndarray
    ) -> tuple[Requirement, np.ndarray]:
        """The rule's step on the accounts' state at the previous close (the account simulation).

        ``state`` is ``(N, carry_width)``, NaN for accounts that start fresh
        (opening or re-opening today). The base margin is the inner model's
        :meth:`~FittedMargin.account_requirement` (isolated accounts: the sum
        of their stand-alone margins), so the cost is one inner requirement.
        Returns the wrapped requirement and the state to carry to the next
        date (the caller keeps it only when it commits the close).
        """
        model: APCWrapper = self.model  # type: ignore[assignment]
        base = self.inner.account_requirement(t, collateral, positions, isolated)
        w = int(model.state_width)
        st = np.asarray(state, dtype=np.float64)
        im, s_im = model._step(base.initial, st[:, :w])
        mm, s_mm = model._step(base.maintenance, st[:, w:])
        return Requirement(im, mm), np.hstack([s_im, s_mm])

    def carried_lipschitz(self, t: int) -> np.ndarray | None:
        """``k L_t``: bound of :meth:`carried_requirement`'s maintenance against the committed state.

        At fixed state ``m`` (the MM committed at the previous close) the
        buffer step is ``clip(m, b, k b)`` with ``k = 1 + B``, and ``clip`` is
        1-Lipschitz in each bound, so a move of the holdings moves it by at
        most ``k |b' - b| <= k sum_a L_{t,a} |dx_a|`` (``L_t`` the inner
        bound); at the committed holdings it equals ``m``. ``None`` for rules
        without a ``lipschitz_factor`` (the speed limit) or inners without a bound.
        """
        k = getattr(self.model, "lipschitz_factor", None)
        inner_lip = getattr(self.inner, "maintenance_lipschitz", None)
        if k is None or inner_lip is None:
            return None
        lip = inner_lip(int(t))
        return None if lip is None else float(k) * lip

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        model: APCWrapper = self.model  # type: ignore[assignment]
        if isinstance(model, Buffer25) and model.history > self.SHORT_SPAN:
            return self._buffer_requirement(int(t), np.atleast_2d(collateral), np.atleast_2d(positions))
        return self._replay(int(t), collateral, positions)

    def _buffer_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """The buffer's replay, short span first: exact (see :func:`buffer_last`)."""
        model: Buffer25 = self.model  # type: ignore[assignment]
        s0 = max(0, t - model.history + 1)
        s1 = max(s0, t - self.SHORT_SPAN + 1)
        batch = getattr(self.inner, "requirement_history", None)
        if batch is not None:
            hist = batch(s1, t, collateral, positions)
            ims, mms = hist.initial, hist.maintenance
        else:
            reqs = [self.inner.requirement(s, collateral, positions) for s in range(s1, t + 1)]
            ims = np.array([r.initial for r in reqs])
            mms = np.array([r.maintenance for r in reqs])
        im, done_im = buffer_last(ims, model.buffer, s1 == s0)
        mm, done_mm = buffer_last(mms, model.buffer, s1 == s0)
        rest = np.flatnonzero(~(done_im & done_mm))
        if rest.size:
            full = self._replay(t, collateral[rest], positions[rest])
            im[rest], mm[rest] = full.initial, full.maintenance
        return Requirement(im, mm)

    def _replay(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """The rule over the inner requirements of the last ``history`` dates."""
        model: APCWrapper = self.model  # type: ignore[assignment]
        s0 = max(0, int(t) - int(getattr(model, "history", 1)) + 1)
        batch = getattr(self.inner, "requirement_history", None)
        if batch is not None:
            hist = batch(s0, int(t), collateral, positions)
            ims, mms = hist.initial, hist.maintenance
        else:
            reqs = [self.inner.requirement(s, collateral, positions) for s in range(s0, int(t) + 1)]
            ims = np.array([r.initial for r in reqs])
            mms = np.array([r.maintenance for r in reqs])
        return Requirement(model._rule(ims)[-1], model._rule(mms)[-1])

    def maintenance_lipschitz(self, t: int) -> np.ndarray | None:
        """Per-asset bound on how fast ``requirement(t, ...).maintenance`` moves with the holdings.

        Only for rules with a ``lipschitz_factor`` ``k`` (the buffer: ``1 + B``)
        around an inner model that has such a bound ``L_s``::

            |m_t(x') - m_t(x)| <= k max_{s0 <= s <= t} |b_s(x') - b_s(x)|
                               <= k sum_a max_s L_{s,a} |x'_a - x_a|

        because ``m_s = max(b_s, min(k b_s, m_{s-1}))`` and ``max``/``min``
        are 1-Lipschitz in each argument (induction over the replayed dates
        ``s0..t``; a NaN restart only shortens the chain). The simulation uses
        it to skip provably safe intraday checks (exact). ``None`` otherwise.
        """
        model: APCWrapper = self.model  # type: ignore[assignment]
        k = getattr(model, "lipschitz_factor", None)
        inner_lip = getattr(self.inner, "maintenance_lipschitz", None)
        if k is None or inner_lip is None:
            return None
        cache: dict[int, np.ndarray | None] = self.__dict__.setdefault("_lip_cache", {})
        s0 = max(0, int(t) - int(getattr(model, "history", 1)) + 1)
        parts = []
        for s in range(s0, int(t) + 1):
            if s not in cache:
                cache[s] = inner_lip(s)
            if cache[s] is None:
                return None
            parts.append(cache[s])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN (no skip there)
            return float(k) * np.nanmax(np.vstack(parts), axis=0)

    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        return self.model.apply(self.inner.path(book, eligible))  # type: ignore[attr-defined,return-value]


@register
class Buffer25(APCWrapper):
    """EMIR 25% margin buffer, exhausted when margins rise (RTS 153/2013 Art. 28(1)(a)).

    Parameters
    ----------
    inner : MarginModel, str or mapping
        The base model.
    buffer : float
        Buffer fraction ``B`` in [0.25, 10]; EMIR's minimum is 0.25.
    history : int
        Dates replayed by ``requirement()`` (>= 1); default 250.
    """

    name: ClassVar[str] = "apc_buffer"
    summary: ClassVar[str] = "EMIR Art. 28(1)(a) 25% buffer, released when margins rise"

    def __init__(self, inner: ModelSpec, buffer: float = 0.25, history: int = 250, *, label: str | None = None) -> None:
        self.buffer = check_range("buffer", buffer, 0.25, 10.0)
        self.history = int(check_range("history", history, 1))
        super().__init__(inner, label=label)

    @property
    def lipschitz_factor(self) -> float:
        """``1 + B``: the buffered margin moves at most this much faster than the base."""
        return 1.0 + self.buffer

    state_width: ClassVar[int] = 1

    def _rule(self, base: np.ndarray) -> np.ndarray:
        return buffer_rule(base, self.buffer)

    def _step(self, base: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cur = buffer_step(base, state[:, 0], self.buffer)
        return cur, cur[:, None]


@register
class SpeedLimit(APCWrapper):
    """Cap on margin increases over any ``n_days`` (Murphy, Vasios & Vause 2016, BoE SWP 597).

    Parameters
    ----------
    inner : MarginModel, str or mapping
        The base model.
    n_days : int
        Window of the cap, 1..250; default 20 (no regulatory value: an
        illustrative choice, as in public replications of the paper).
    max_increase : float
        Largest allowed relative increase over ``n_days``, in (0, 10];
        default 0.5 (+50%).
    history : int
        Dates replayed by ``requirement()``; default 250.
    """

    name: ClassVar[str] = "apc_speed_limit"
    summary: ClassVar[str] = "speed limit on n-day margin increases (Murphy-Vasios-Vause 2016)"

    def __init__(
        self, inner: ModelSpec, n_days: int = 20, max_increase: float = 0.5, history: int = 250, *, label: str | None = None
    ) -> None:
        n = check_range("n_days", n_days, 1, 250)
        if n != int(n):
            raise ValueError(f"n_days={n_days!r} must be a whole number in [1, 250]")
        self.n_days = int(n)
        self.max_increase = check_range("max_increase", max_increase, 0.0, 10.0, lo_open=True)
        self.history = int(check_range("history", history, 1))
        super().__init__(inner, label=label)

    @property
    def state_width(self) -> int:  # type: ignore[override]
        return self.n_days

    def _rule(self, base: np.ndarray) -> np.ndarray:
        return speed_limit_rule(base, self.n_days, self.max_increase)

    def _step(self, base: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return speed_limit_step(base, state, self.max_increase)


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

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        b = self.inner.requirement(t, collateral, positions)
        f = self.floor.requirement(t, collateral, positions)
        return Requirement(floor_rule(b.initial, f.initial), floor_rule(b.maintenance, f.maintenance))

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
