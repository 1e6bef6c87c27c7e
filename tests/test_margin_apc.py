"""APC wrappers: rules on hand-made margin paths, wrapping, no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_walk_panel

from riskmodels.margin import FixedHaircut, get
from riskmodels.margin.apc import (
    Buffer25,
    LookbackFloor,
    SpeedLimit,
    StressWeight25,
    buffer_rule,
    buffer_rule_reference,
    floor_rule,
    speed_limit_rule,
    speed_limit_rule_reference,
)
from riskmodels.margin.base import MarginPath
from riskmodels.margin.historical import DEFAULT_STRESS_WINDOWS, HistoricalVaR
from riskmodels.portfolio import Book

NAN = np.nan


def test_buffer_rule_hand_path() -> None:
    """EMIR RTS 153/2013 Art. 28(1)(a): m_t = max(b_t, min(1.25 b_t, m_{t-1})), m_0 = 1.25 b_0.

    b:  100   100   110   130   120   90     80   | NaN restarts
    m:  125   125   125   130   130   112.5  100  (by hand)
    """
    b = np.array([100, 100, 110, 130, 120, 90, 80, NAN, 100, 100], dtype=float)
    want = np.array([125, 125, 125, 130, 130, 112.5, 100, NAN, 125, 125])
    np.testing.assert_array_equal(buffer_rule(b[:, None])[:, 0], want)
    # 2-D: accounts are independent
    two = buffer_rule(np.column_stack([b, 2 * b]))
    np.testing.assert_array_equal(two[:, 1], 2 * want)


def test_speed_limit_rule_hand_path() -> None:
    """Increase over any n = 2 days capped at +50%: m_t = min(b_t, 1.5 min(m_{t-2}, m_{t-1})).

    b:  100  100  300  300  300  50  300
    m:  100  100  150  150  225  50   75
    """
    b = np.array([100, 100, 300, 300, 300, 50, 300], dtype=float)[:, None]
    want = np.array([100, 100, 150, 150, 225, 50, 75], dtype=float)
    np.testing.assert_array_equal(speed_limit_rule(b, n_days=2, max_increase=0.5)[:, 0], want)
    # a NaN day drops out of the reference window; with no finite past the base passes
    b2 = np.array([100, NAN, 400, NAN, NAN, 400], dtype=float)[:, None]
    want2 = np.array([100, NAN, 150, NAN, NAN, 400])
    np.testing.assert_array_equal(speed_limit_rule(b2, n_days=2, max_increase=0.5)[:, 0], want2)


def test_numba_rules_equal_numpy_references() -> None:
    rng = np.random.default_rng(3)
    b = np.exp(np.cumsum(rng.normal(0, 0.2, size=(300, 12)), axis=0))
    b[rng.random(b.shape) < 0.05] = NAN
    b[:40, 3] = NAN
    np.testing.assert_array_equal(buffer_rule(b, 0.3), buffer_rule_reference(b, 0.3))
    for n, x in ((1, 0.1), (5, 0.2), (20, 0.5)):
        np.testing.assert_array_equal(speed_limit_rule(b, n, x), speed_limit_rule_reference(b, n, x))
    np.testing.assert_array_equal(buffer_rule(b[:, 0]), buffer_rule_reference(b[:, 0]))


def test_floor_rule_hand_path() -> None:
    b = np.array([1.0, 5.0, NAN, 3.0])
    f = np.array([2.0, 2.0, 2.0, NAN])
    np.testing.assert_array_equal(floor_rule(b, f), [2.0, 5.0, NAN, 3.0])


# ------------------------------------------------------------ wrappers
PAN = random_walk_panel(T=220, A=2, seed=3, vol=0.03)
# volatility regime change: the base margin rises, so the rules bind
_close = PAN.close.copy()
_r = np.diff(np.log(_close), axis=0)
_r[140:] *= 3.0
PAN = PAN.with_close(_close[0] * np.exp(np.vstack([np.zeros((1, 2)), np.cumsum(_r, axis=0)])))
BOOK = Book(
    tuple(PAN.assets),
    np.array([[100.0, 0.0], [50.0, 20.0], [0.0, 0.0]]),
    np.array([[0.0, -40.0], [-50.0, 10.0], [30.0, 0.0]]),
    isolated=np.array([False, False, True]),
)
INNER = HistoricalVaR(window=40, horizon=1, im_multiplier=1.2)


def _wrappers() -> list:
    return [
        Buffer25(INNER),
        SpeedLimit(INNER, n_days=5, max_increase=0.2),
        LookbackFloor(INNER, lookback_days=250),
        StressWeight25(INNER, stress_windows=[("2020-02-01", "2020-02-20")]),
    ]


@pytest.mark.parametrize("wrapper", _wrappers(), ids=lambda w: w.name)
def test_wrapper_path_no_look_ahead(wrapper) -> None:
    """Perturb prices after t0: the wrapped margins up to t0 are unchanged."""
    t0 = 160
    rng = np.random.default_rng(1)
    close = PAN.close.copy()
    close[t0 + 1 :] *= np.exp(rng.normal(0, 0.2, size=close[t0 + 1 :].shape))
    a = wrapper.fit(PAN).path(BOOK)
    b = wrapper.fit(PAN.with_close(close)).path(BOOK)
    np.testing.assert_array_equal(a.maintenance[: t0 + 1], b.maintenance[: t0 + 1])
    np.testing.assert_array_equal(a.initial[: t0 + 1], b.initial[: t0 + 1])
    assert not np.array_equal(a.maintenance[t0 + 3 :], b.maintenance[t0 + 3 :], equal_nan=True)


def test_buffer_and_speed_limit_wrap_the_inner_path() -> None:
    base = INNER.fit(PAN).path(BOOK)
    buf = Buffer25(INNER).fit(PAN).path(BOOK)
    np.testing.assert_array_equal(buf.maintenance, buffer_rule(base.maintenance))
    np.testing.assert_array_equal(buf.initial, buffer_rule(base.initial))
    ok = base.eligible
    assert np.all(buf.maintenance[ok] >= base.maintenance[ok])
    assert np.all(buf.maintenance[ok] <= 1.25 * base.maintenance[ok] + 1e-12)
    # the buffer is (partly) released somewhere after the volatility step
    assert np.any(buf.maintenance[ok] < 1.25 * base.maintenance[ok] - 1e-9)
    sl = SpeedLimit(INNER, n_days=5, max_increase=0.2).fit(PAN).path(BOOK)
    assert np.all(sl.maintenance[ok] <= base.maintenance[ok])
    assert np.any(sl.maintenance[ok] < base.maintenance[ok])
    m = sl.maintenance
    for t in range(5, m.shape[0]):
        past = m[t - 5 : t]
        with np.errstate(invalid="ignore"):
            assert np.all((m[t] <= 1.2 * np.nanmin(np.where(np.isnan(past), np.inf, past), axis=0) + 1e-9) | np.isnan(m[t]))
    # IM = 1.2 x MM survives both rules (positive homogeneity)
    np.testing.assert_allclose(sl.initial[ok], 1.2 * sl.maintenance[ok], rtol=1e-12)


@pytest.mark.parametrize("wrapper", _wrappers()[:3], ids=lambda w: w.name)
def test_wrapper_requirement_equals_path(wrapper) -> None:
    """requirement(t) replays the rule over `history` dates: equal to the path when it starts in that span."""
    f = wrapper.fit(PAN)
    p = f.path(BOOK)
    cross = ~BOOK.isolated
    for t in (60, 150, 200):
        req = f.requirement(t, BOOK.collateral[cross], BOOK.positions[cross])
        np.testing.assert_allclose(req.maintenance, p.maintenance[t, cross], rtol=1e-12)
        np.testing.assert_allclose(req.initial, p.initial[t, cross], rtol=1e-12)


def test_apply_on_margin_path_and_arrays() -> None:
    dates = PAN.dates[:7]
    b = np.array([100, 100, 110, 130, 120, 90, 80], dtype=float)[:, None]
    mp = MarginPath("x", dates, ("a",), 2 * b, b, np.ones_like(b, dtype=bool))
    out = Buffer25(INNER).apply(mp)
    np.testing.assert_array_equal(out.maintenance, buffer_rule(b))
    np.testing.assert_array_equal(out.initial, 2 * buffer_rule(b))
    np.testing.assert_array_equal(Buffer25(INNER, buffer=0.5).apply(b), buffer_rule(b, 0.5))
    floor = LookbackFloor(INNER)
    np.testing.assert_array_equal(floor.apply(b, np.full_like(b, 105.0))[:, 0], [105, 105, 110, 130, 120, 105, 105])
    with pytest.raises(ValueError, match="floor"):
        floor.apply(b)
    with pytest.raises(TypeError, match="finished path"):
        StressWeight25(INNER).apply(b)


def test_floor_is_a_longer_window_hs() -> None:
    w = LookbackFloor(HistoricalVaR(window=40, method="fhs"), lookback_days=250)
    fm = w.floor_model
    assert (fm.window, fm.min_window, fm.method, fm.confidence) == (250, 40, "hs", 0.99)
    f = w.fit(PAN)
    p = f.path(BOOK)
    base = w.inner.fit(PAN).path(BOOK)
    floor = fm.fit(PAN).path(BOOK, base.eligible)
    ok = base.eligible
    np.testing.assert_array_equal(p.maintenance[ok], np.maximum(base.maintenance[ok], np.where(np.isnan(floor.maintenance[ok]), -np.inf, floor.maintenance[ok])))
    assert np.all(p.maintenance[ok] >= base.maintenance[ok])
    # floor model for a non-HS inner must be given
    with pytest.raises(ValueError, match="floor_model"):
        LookbackFloor(FixedHaircut())
    hc = LookbackFloor(FixedHaircut(imf=0.01, mmf=0.01, haircut=0.0), floor_model=INNER).fit(PAN)
    req = hc.requirement(150, np.array([[0.0, 0.0]]), np.array([[100.0, 0.0]]))
    assert req.maintenance[0] == pytest.approx(max(1.0, INNER.fit(PAN).requirement(150, np.zeros((1, 2)), np.array([[100.0, 0.0]])).maintenance[0]))


def test_stress_weight_wrapper_sets_the_hs_option() -> None:
    w = StressWeight25(INNER)
    eff = w.effective
    assert eff.stress_weight == 0.25 and eff.stress_windows == DEFAULT_STRESS_WINDOWS
    assert (eff.window, eff.horizon, eff.im_multiplier) == (40, 1, 1.2)
    w2 = StressWeight25(HistoricalVaR(window=40, stress_windows=[("2020-02-01", "2020-02-20")], stress_weight=0.4), weight=0.3)
    assert w2.effective.stress_weight == 0.4
    assert w2.effective.stress_windows == (("2020-02-01", "2020-02-20"),)
    with pytest.raises(TypeError, match="HistoricalVaR"):
        StressWeight25(FixedHaircut())


def test_stress_weight_hand_example() -> None:
    """A stressed fortnight of +-20% days (7 falls) long gone from a W = 40 calm window.

    With >= 25% of the mass on the 14 stressed scenarios (each ~0.74 of a scenario) the
    99% tail mass 0.4 falls on a -20% day: VaR = 1000 (1 - e^-0.2) = 181.27; without the
    tool the calm window gives about 1000 x 0.01 x 2.33.
    """
    rng = np.random.default_rng(0)
    r = 0.01 * rng.standard_normal(200)
    r[20:34] = 0.2 * np.array([1, -1] * 7)
    close = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    from conftest import make_panel

    pan = make_panel(close)
    win = [(str(pan.dates[21].date()), str(pan.dates[34].date()))]
    inner = HistoricalVaR(window=40, horizon=1)
    x = np.array([[1000.0]])
    calm = inner.fit(pan).requirement(150, x, 0 * x).maintenance[0]
    stressed = StressWeight25(inner, stress_windows=win).fit(pan).requirement(150, x, 0 * x).maintenance[0]
    assert stressed == pytest.approx(1000 * (1 - np.exp(-0.2)), rel=1e-12)
    assert calm < 40


def test_registry_names_and_specs() -> None:
    b = get("apc_buffer", inner="historical_var")
    assert isinstance(b, Buffer25) and isinstance(b.inner, HistoricalVaR)
    s = get("apc_speed_limit", inner={"name": "filtered_hs", "window": 100}, n_days=30, max_increase=0.3)
    assert s.inner.method == "fhs" and s.inner.window == 100 and s.n_days == 30
    assert get("apc_floor", inner="historical_var").floor_model.window == 3650
    assert get("apc_stress_weight", inner="historical_var").effective.stress_weight == 0.25
    assert b.label == "historical_var+apc_buffer"
    assert b.min_history == b.inner.min_history


@pytest.mark.parametrize(
    ("cls", "kw", "name"),
    [
        (Buffer25, {"buffer": 0.2}, "buffer"),
        (Buffer25, {"history": 0}, "history"),
        (SpeedLimit, {"n_days": 0}, "n_days"),
        (SpeedLimit, {"n_days": 2.5}, "n_days"),
        (SpeedLimit, {"max_increase": 0.0}, "max_increase"),
        (LookbackFloor, {"lookback_days": 100}, "lookback_days"),
        (StressWeight25, {"weight": 0.2}, "weight"),
    ],
)
def test_bad_wrapper_parameters(cls, kw: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        cls(INNER, **kw)
    with pytest.raises(ValueError, match="name"):
        Buffer25({"window": 10})
