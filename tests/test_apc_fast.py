"""The APC wrappers' fast ``requirement()`` replay equals the old slow replay (issue 23, item 4).

The reference below is the replay as first written (``riskmodels`` 6a655b7):
one ``inner.requirement(s, ...)`` call per replayed date and the plain-numpy
loop rules :func:`buffer_rule_reference` / :func:`speed_limit_rule_reference`.
It shares no code with ``HistoricalVaR.requirement_history`` (the sliced
rolling-kernel pass), so equality is an independent check.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_panel

from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.margin.apc import (
    Buffer25,
    SpeedLimit,
    buffer_rule_reference,
    speed_limit_rule_reference,
)
from riskmodels.margin.base import FittedMargin, Requirement
from riskmodels.margin.historical import HistoricalVaR
from riskmodels.portfolio import Book


def _panel(T: int = 330, seed: int = 11):
    rng = np.random.default_rng(seed)
    r = 0.03 * rng.standard_normal((T, 3))
    r[0] = 0.0
    r[200:] *= 2.5  # a volatility rise: the buffer is consumed, the speed limit binds
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    close[:90, 2] = np.nan  # the third asset lists late
    return make_panel(close, spread=0.02)


PAN = _panel()


def _book(n: int = 40, seed: int = 5) -> Book:
    rng = np.random.default_rng(seed)
    coll = np.abs(rng.normal(100.0, 50.0, (n, 3))) * (rng.random((n, 3)) < 0.6)
    pos = rng.normal(0.0, 80.0, (n, 3)) * (rng.random((n, 3)) < 0.7)
    return Book(tuple(PAN.assets), coll, pos)


def _reference_requirement(wrapper, inner_fitted, t: int, coll: np.ndarray, pos: np.ndarray) -> Requirement:
    s0 = max(0, t - wrapper.history + 1)
    reqs = [inner_fitted.requirement(s, coll, pos) for s in range(s0, t + 1)]
    ims = np.array([r.initial for r in reqs])
    mms = np.array([r.maintenance for r in reqs])
    if isinstance(wrapper, Buffer25):
        rule = lambda b: buffer_rule_reference(b, wrapper.buffer)  # noqa: E731
    else:
        rule = lambda b: speed_limit_rule_reference(b, wrapper.n_days, wrapper.max_increase)  # noqa: E731
    return Requirement(rule(ims)[-1], rule(mms)[-1])


INNERS = {
    "hs": HistoricalVaR(window=60, horizon=2, min_window=30, im_multiplier=1.1),
    "hs_es": HistoricalVaR(window=50, horizon=1, measure="es", confidence=0.975),
    # stressed dates stay in the set after they leave the window: the replay must read them
    "hs_stress": HistoricalVaR(window=40, horizon=1, stress_windows=[("2020-04-01", "2020-04-20")]),
    "fhs": HistoricalVaR(window=50, horizon=1, method="fhs"),
}


def _wrappers():
    for key, inner in INNERS.items():
        yield f"buffer-{key}", Buffer25(inner, history=70)
        yield f"speed-{key}", SpeedLimit(inner, n_days=5, max_increase=0.2, history=45)


@pytest.mark.parametrize(("name", "wrapper"), list(_wrappers()), ids=lambda x: x if isinstance(x, str) else "")
def test_fast_replay_equals_slow_replay(name: str, wrapper) -> None:
    book = _book()
    fitted = wrapper.fit(PAN)
    inner_fitted = wrapper.inner.fit(PAN)
    for t in (5, 31, 61, 95, 150, 201, 260, 329):
        fast = fitted.requirement(t, book.collateral, book.positions)
        ref = _reference_requirement(wrapper, inner_fitted, t, book.collateral, book.positions)
        np.testing.assert_allclose(fast.maintenance, ref.maintenance, rtol=1e-10, atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(fast.initial, ref.initial, rtol=1e-10, atol=1e-9, equal_nan=True)


def test_requirement_history_equals_per_date_requirements() -> None:
    """The sliced rolling pass of plain HS equals one requirement per date (every span edge)."""
    book = _book(25, seed=9)
    for inner in (INNERS["hs"], INNERS["hs_stress"]):
        f = inner.fit(PAN)
        for t0, t1 in ((0, 10), (20, 80), (85, 95), (100, 329), (329, 329)):
            h = f.requirement_history(t0, t1, book.collateral, book.positions)
            ref = np.array([f.requirement(s, book.collateral, book.positions).maintenance for s in range(t0, t1 + 1)])
            np.testing.assert_allclose(h.maintenance, ref, rtol=1e-10, atol=1e-9, equal_nan=True)


class _SlowReplay(FittedMargin):
    """The wrapper with the old per-date replay (the independent reference)."""

    def __init__(self, wrapper, panel) -> None:
        super().__init__(wrapper, panel)
        self.inner = wrapper.inner.fit(panel)
        self.homogeneous = self.inner.homogeneous

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        return _reference_requirement(self.model, self.inner, int(t), collateral, positions)


class _ReplayOnly(FittedMargin):
    """The fitted wrapper's stateless ``requirement()`` (the replay) without its carried state."""

    def __init__(self, fitted) -> None:
        super().__init__(fitted.model, fitted.panel)
        self.fitted = fitted
        self.homogeneous = fitted.homogeneous

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        return self.fitted.requirement(t, collateral, positions)


@pytest.mark.parametrize("key", ["hs", "hs_stress"])
def test_simulation_liquidations_identical(key: str) -> None:
    """Run through the simulation as the requirement of a stateless model, the fast replay gives the
    same liquidation events (account, date, trigger, amounts) as the slow one. (The simulation itself
    carries the rule's state per account instead: tests/test_apc_carry.py.)"""
    wrapper = Buffer25(INNERS[key], history=70)
    book = _book(30, seed=2)
    pol = LiquidationPolicy(reentry_days=3)
    fast = simulate_accounts(_ReplayOnly(wrapper.fit(PAN)), book, pol, start=70, end=None)
    slow = simulate_accounts(_SlowReplay(wrapper, PAN), book, pol, start=70, end=None)
    assert len(fast.events) > 0
    for col in ("account", "t", "trigger"):
        np.testing.assert_array_equal(fast.events[col], slow.events[col])
    for col in ("equity", "maintenance", "bad_debt"):
        np.testing.assert_allclose(fast.events[col], slow.events[col], rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("key", ["hs", "hs_stress"])
def test_buffer_lipschitz_bound_holds(key: str) -> None:
    """|m_t(x') - m_t(x)| <= sum_a L_a |x'_a - x_a| on random holdings pairs (the skip is exact)."""
    wrapper = Buffer25(INNERS[key], history=70)
    f = wrapper.fit(PAN)
    rng = np.random.default_rng(4)
    book = _book(60, seed=8)
    for t in (205, 240, 300, 329):
        lip = f.maintenance_lipschitz(t)
        assert lip is not None and lip.shape == (3,)
        x = book.positions
        dx = x * rng.uniform(-0.3, 0.3, x.shape)
        m0 = f.requirement(t, book.collateral, x).maintenance
        m1 = f.requirement(t, book.collateral, x + dx).maintenance
        ok = np.isfinite(m0) & np.isfinite(m1)
        bound = np.abs(dx) @ np.where(np.isfinite(lip), lip, np.inf)
        assert ok.sum() > 10
        assert np.all(np.abs(m1 - m0)[ok] <= bound[ok] * (1 + 1e-9) + 1e-9)
    assert SpeedLimit(INNERS[key]).fit(PAN).maintenance_lipschitz(200) is None  # no factor: no skip


def test_buffer_last_equals_the_full_rule_wherever_it_decides() -> None:
    """The clamp-composition shortcut equals the loop rule on random paths (with NaN restarts)
    and any history before the short span, where it says the span decides the value."""
    from riskmodels.margin.apc import buffer_last

    rng = np.random.default_rng(0)
    n_done = 0
    for _ in range(300):
        T, k = int(rng.integers(3, 40)), int(rng.integers(1, 12))
        b = np.exp(np.cumsum(rng.normal(0, rng.choice([0.02, 0.1, 0.3]), (T, 4)), axis=0))
        b[rng.random((T, 4)) < 0.05] = np.nan
        ref = buffer_rule_reference(b, 0.25)[-1]
        last, done = buffer_last(b[-k:], 0.25, starts_fresh=(k >= T))
        if k >= T:
            assert done.all()
        np.testing.assert_allclose(last[done], ref[done], rtol=1e-12, equal_nan=True)
        assert np.isnan(last[~done]).all()
        n_done += int(done.sum())
    assert n_done > 300  # the shortcut does decide most of them
