"""The path-dependent APC wrappers (buffer, speed limit), their base class and fitted rule.

:class:`APCWrapper` is the base of every wrapper in :mod:`riskmodels.margin.apc`
(it holds the inner model, resolved by :func:`resolve_model`);
:class:`Buffer25` and :class:`SpeedLimit` are the rules that depend on the past
margins of the same holdings, and ``_FittedRule`` is their fitted form: the
whole-path rule, the replay behind ``requirement()`` and the carried state of
the account simulation. The rules' arithmetic (whole path and one step) is in
:mod:`riskmodels.margin.apc_rules`.

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
from riskmodels.margin.apc_rules import (
    buffer_last,
    buffer_rule,
    buffer_step,
    speed_limit_rule,
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
