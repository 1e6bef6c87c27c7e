"""Historical VaR / ES margin: quantile convention, kernels, FHS, BRW, stress floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_panel, random_walk_panel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from riskmodels.margin import get
from riskmodels.margin._quantile import (
    rolling_tail,
    rolling_tail_reference,
    tail_columns,
    tail_columns_reference,
)
from riskmodels.margin.base import FittedMargin
from riskmodels.margin.historical import (
    DEFAULT_STRESS_WINDOWS,
    AgeWeightedHS,
    FilteredHS,
    HistoricalVaR,
    ewma_volatility,
)
from riskmodels.portfolio import Book

# ----------------------------------------------------------- hand windows
LOSSES10 = np.array([3.0, -1.0, 7.0, 2.0, -4.0, 9.0, 0.5, 5.0, -2.0, 1.0])


@pytest.mark.parametrize(
    ("conf", "var", "es"),
    [
        # n_tail = 10 x 0.1 = 1: the worst loss
        (0.90, 9.0, 9.0),
        # n_tail = 2: the 2nd worst (7); ES = (9 + 7) / 2
        (0.80, 7.0, 8.0),
        # n_tail = 1.5: k = 2 -> VaR 7; ES = (9 + 0.5 x 7) / 1.5 (Acerbi-Tasche)
        (0.85, 7.0, (9.0 + 0.5 * 7.0) / 1.5),
        # n_tail = 3: losses sorted 9, 7, 5 -> VaR 5, ES 7
        (0.70, 5.0, 7.0),
    ],
)
def test_tail_on_hand_window(conf: float, var: float, es: float) -> None:
    """W = 10 losses listed by hand; VaR = k-th largest, k = ceil(W(1-c)) (Hull, RMFI ch. 13)."""
    v, e = tail_columns(LOSSES10[:, None], 10, conf)
    assert v[0] == pytest.approx(var, abs=1e-12)
    assert e[0] == pytest.approx(es, abs=1e-12)
    rv, re_ = rolling_tail(LOSSES10[None, :], 10, conf)
    assert rv[0, -1] == pytest.approx(var, abs=1e-12)
    assert re_[0, -1] == pytest.approx(es, abs=1e-12)
    assert np.isnan(rv[0, :-1]).all()  # fewer than W rows before the last date


def test_tail_count_snaps_500_at_99() -> None:
    """500 x (1 - 0.99) is 5.000000000000004 in floating point: the 5th worst, not the 6th."""
    losses = np.arange(500, dtype=float)[:, None]  # worst = 499, 5th worst = 495
    v, e = tail_columns(losses, 500, 0.99)
    assert v[0] == 495.0
    assert e[0] == pytest.approx((499 + 498 + 497 + 496 + 495) / 5)


def test_brw_weights_hand_example() -> None:
    """BRW (1998) weights lambda^age, lambda = 0.5, 4 scenarios (oldest first), c = 0.75.

    Relative weights 1/8, 1/4, 1/2, 1 -> masses x 4/1.875 = 4/15, 8/15, 16/15, 32/15.
    Losses oldest..newest 10, 4, 2, 0; tail mass 1: cumulative 4/15, 12/15, 28/15 -> VaR = 2,
    ES = (4/15 x 10 + 8/15 x 4 + (1 - 12/15) x 2) / 1 = 78/15.
    """
    losses = np.array([[10.0], [4.0], [2.0], [0.0]])
    w = 0.5 ** np.arange(3, -1, -1)
    v, e = tail_columns(losses, 4, 0.75, weights=w)
    assert v[0] == pytest.approx(2.0)
    assert e[0] == pytest.approx(78 / 15)
    v0, e0 = tail_columns(losses, 4, 0.75)  # equal weights: the worst loss
    assert (v0[0], e0[0]) == (10.0, 10.0)


def test_stress_extras_and_share_hand_example() -> None:
    """Window losses 1, 2, 3, 4 plus one stressed extra loss 10.

    Inclusion (mass 1 on top of the window): c = 0.75 -> tail mass 1 -> VaR = ES = 10.
    Share 0.5 (natural share 1/5): stressed mass 2, others 0.5 each (total 4);
    c = 0.25 -> tail mass 3: 10 (2), 4 (0.5), 3 (0.5) -> VaR 3, ES = (20 + 2 + 1.5) / 3.
    """
    losses = np.array([[1.0], [2.0], [3.0], [4.0], [10.0]])
    flags = np.array([False, False, False, False, True])
    v, e = tail_columns(losses, 4, 0.75, stressed=flags)
    assert (v[0], e[0]) == (10.0, 10.0)
    v, e = tail_columns(losses, 4, 0.25, stressed=flags, stress_share=0.5)
    assert v[0] == pytest.approx(3.0)
    assert e[0] == pytest.approx(23.5 / 3)


# ------------------------------------------------------------ kernel parity
def test_rolling_kernel_equals_partition_reference() -> None:
    """numba sliding top-k == np.partition per window, exactly, with NaN, stress pool, min_window."""
    rng = np.random.default_rng(11)
    L = rng.standard_t(3, size=(70, 500))  # 70 >= PARALLEL_ACCOUNTS: the parallel kernel too
    L[1, :120] = np.nan  # ragged start
    L[2, 300:] = np.nan  # delisted
    L[3, 200:210] = np.nan  # hole
    L[4] = np.round(L[4])  # ties
    L[5] = np.linspace(5, -5, 500)  # decreasing: the top-k leave every step
    extra = np.zeros(500, dtype=bool)
    extra[40:90] = True
    extra[250:260] = True
    for window, conf, mw, ex in [(100, 0.99, None, None), (100, 0.95, 60, extra), (73, 0.9, 20, extra), (250, 0.975, None, extra)]:
        ref = rolling_tail_reference(L[:9], window, conf, mw, ex)
        serial = rolling_tail(L[:9], window, conf, mw, ex)  # < PARALLEL_ACCOUNTS
        for g, r in zip(serial, ref, strict=True):
            np.testing.assert_array_equal(g, r)
        parallel = rolling_tail(L, window, conf, mw, ex)
        chunks = [rolling_tail(L[i : i + 35], window, conf, mw, ex) for i in (0, 35)]
        for j in range(2):
            np.testing.assert_array_equal(parallel[j], np.vstack([c[j] for c in chunks]))


def test_column_kernel_equals_sort_reference() -> None:
    rng = np.random.default_rng(5)
    M = rng.standard_normal((130, 600))  # >= PARALLEL_COLUMNS: the parallel kernel too
    M[:7, 3] = np.nan
    M[125, 9] = np.nan
    M[:, 10] = np.round(M[:, 10])
    w = 0.97 ** np.arange(119, -1, -1)
    for weights in (None, w, rng.random(120) ** 6):  # the last makes the top-K widen
        for conf in (0.99, 0.95, 0.9):
            got = tail_columns(M, 120, conf, 100, weights)
            ref = tail_columns_reference(M, 120, conf, 100, weights)
            for g, r in zip(got, ref, strict=True):
                np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- the model
def _returns_panel(r: np.ndarray, start: str = "2020-01-01") -> object:
    r = np.atleast_2d(np.asarray(r, dtype=float).T).T
    close = 100.0 * np.exp(np.vstack([np.zeros((1, r.shape[1])), np.cumsum(r, axis=0)]))
    return make_panel(close, start=start)


def test_single_asset_var_on_hand_window() -> None:
    """W = 20 one-day returns, c = 0.9 -> 2nd worst loss of a 1,000 USD long.

    Worst returns -0.10 and -0.08: VaR = 1000 (1 - e^-0.08) = 76.884; ES = mean of
    1000 (1 - e^-0.10) and that = 86.519. A short of 1,000 loses on the rises +0.12, +0.09:
    VaR = 1000 (e^0.09 - 1) = 94.174.
    """
    r = np.array([0.01, -0.02, 0.03, -0.10, 0.0, 0.12, -0.01, 0.02, -0.08, 0.05,
                  0.04, -0.03, 0.01, 0.09, -0.05, 0.02, -0.04, 0.0, 0.06, -0.06])
    pan = _returns_panel(r)
    t = 20
    var = HistoricalVaR(confidence=0.9, horizon=1, window=20).fit(pan)
    es = HistoricalVaR(confidence=0.9, horizon=1, window=20, measure="es", im_multiplier=1.5).fit(pan)
    req = var.requirement(t, np.array([[1000.0]]), np.array([[0.0]]))
    assert req.maintenance[0] == pytest.approx(1000 * (1 - math.exp(-0.08)))
    assert req.initial[0] == req.maintenance[0]
    req = es.requirement(t, np.array([[0.0]]), np.array([[1000.0]]))
    assert req.maintenance[0] == pytest.approx(1000 * ((1 - math.exp(-0.10)) + (1 - math.exp(-0.08))) / 2)
    assert req.initial[0] == pytest.approx(1.5 * req.maintenance[0])
    short = var.requirement(t, np.array([[0.0]]), np.array([[-1000.0]]))
    assert short.maintenance[0] == pytest.approx(1000 * (math.exp(0.09) - 1))
    # one date earlier the window is incomplete: NaN, not a crash
    assert np.isnan(var.requirement(t - 1, np.array([[1000.0]]), np.array([[0.0]])).maintenance[0])


def test_overlapping_h_day_scenarios() -> None:
    """h = 2 overlapping: scenarios are r_s + r_{s-1}; hand check on a short series."""
    r = np.zeros(30)
    r[10], r[11] = -0.05, -0.04  # 2-day return -0.09 at s = 11 (index 12 in prices)
    r[20] = -0.07
    pan = _returns_panel(r)
    f = HistoricalVaR(confidence=0.95, horizon=2, window=20, min_window=20).fit(pan)
    # t = 30, window s = 11..30 (price indices); 2-day returns: -0.09 (s=12), -0.04 (s=13),
    # -0.05 (s=11), -0.07 twice (s=21, 22). n_tail = 1 -> worst: 1 - e^-0.09.
    req = f.requirement(30, np.array([[1.0]]), np.array([[0.0]]))
    assert req.maintenance[0] == pytest.approx(1 - math.exp(-0.09))
    sq = HistoricalVaR(confidence=0.95, horizon=2, window=20, scaling="sqrt").fit(pan)
    req = sq.requirement(30, np.array([[1.0]]), np.array([[0.0]]))
    assert req.maintenance[0] == pytest.approx(1 - math.exp(-0.07 * math.sqrt(2)))


@pytest.mark.parametrize("measure", ["var", "es"])
def test_iid_normal_matches_analytic(measure: str) -> None:
    """i.i.d. N(0, s^2) log returns, W = 20,000, h = 2 (sqrt scaling), c = 99%, long 1 USD.

    Loss = 1 - exp(S Z), S = s sqrt(2): VaR = 1 - exp(-S z_c); ES = 1 - e^{S^2/2} Phi(-z_c - S)/(1-c)
    (log-normal tail mean). Tolerance 4 Monte-Carlo standard errors of the quantile,
    sqrt(p(1-p)/n) / f(z_c) in units of S.
    """
    s, n, c = 0.02, 20_000, 0.99
    rng = np.random.default_rng(2024)
    pan = _returns_panel(s * rng.standard_normal(n + 5))
    f = HistoricalVaR(confidence=c, horizon=2, window=n, scaling="sqrt", measure=measure).fit(pan)
    got = f.requirement(pan.n_dates - 1, np.array([[1.0]]), np.array([[0.0]])).maintenance[0]
    S, z = s * math.sqrt(2), norm.ppf(c)
    if measure == "var":
        exact = 1 - math.exp(-S * z)
    else:
        exact = 1 - math.exp(S * S / 2) * norm.cdf(-z - S) / (1 - c)
    se = S * math.sqrt(c * (1 - c) / n) / norm.pdf(z)
    assert abs(got - exact) < 4 * se
    # the textbook linear approximation sigma sqrt(h) z_c differs by the log-normal curvature (~3%)
    assert got == pytest.approx(S * z if measure == "var" else S * norm.pdf(z) / (1 - c), rel=0.06)


def test_ewma_and_fhs_against_direct_loop() -> None:
    """FHS scenario = r_s sigma_t / sigma_{s-1} (Hull-White 1998), EWMA by a scalar loop."""
    rng = np.random.default_rng(9)
    T, lam, W, c = 140, 0.94, 60, 0.95
    r = 0.02 * rng.standard_normal((T, 2)) * np.linspace(1, 3, T)[:, None]
    r[:15, 1] = np.nan  # the second asset lists later
    close = 100 * np.exp(np.nancumsum(np.vstack([np.zeros((1, 2)), r]), axis=0))
    close[:16, 1] = np.nan
    pan = make_panel(close)
    r1 = pan.returns(1)
    # scalar reference: seed at the 20th return with the mean of 20 squares
    sig = np.full_like(r1, np.nan)
    for a in range(2):
        v, cnt, acc = None, 0, 0.0
        for t in range(len(r1)):
            x = r1[t, a]
            if not np.isfinite(x):
                continue
            cnt += 1
            acc += x * x
            if cnt == 20:
                v = acc / 20
            elif cnt > 20:
                v = lam * v + (1 - lam) * x * x
            if v is not None:
                sig[t, a] = math.sqrt(v)
    np.testing.assert_allclose(ewma_volatility(r1, lam), sig, rtol=1e-13)

    f = FilteredHS(confidence=c, horizon=1, window=W, ewma_lambda=lam).fit(pan)
    x = np.array([300.0, -200.0])
    t = len(r1) - 1
    losses = []
    for s in range(t - W + 1, t + 1):
        scen = [r1[s, a] * sig[t, a] / sig[s - 1, a] for a in range(2)]
        losses.append(-sum(x[a] * (math.exp(scen[a]) - 1) for a in range(2)))
    losses = sorted(losses, reverse=True)
    k = math.ceil(round(W * (1 - c), 9))
    got = f.requirement(t, np.array([[300.0, 0.0]]), np.array([[0.0, -200.0]]))
    assert got.maintenance[0] == pytest.approx(losses[k - 1], rel=1e-12)
    # the filter reacts to regimes: scaling all past returns by today's vol
    plain = HistoricalVaR(confidence=c, horizon=1, window=W).fit(pan)
    assert plain.requirement(t, x[None, :], np.zeros((1, 2))).maintenance[0] != got.maintenance[0]


def test_fhs_pluggable_volatility() -> None:
    """A constant volatility source makes FHS equal plain HS (sigma_t / sigma_s = 1)."""
    pan = random_walk_panel(T=200, A=2, seed=3)
    const = HistoricalVaR(method="fhs", window=50, volatility=lambda p: np.full(p.close.shape, 0.03)).fit(pan)
    plain = HistoricalVaR(window=50, min_history=const.model.min_history).fit(pan)
    x = np.array([[100.0, -50.0]])
    t = 150
    a = const.requirement(t, x, np.zeros_like(x)).maintenance
    b = plain.requirement(t, x, np.zeros_like(x)).maintenance
    np.testing.assert_allclose(a, b, rtol=1e-12)


# --------------------------------------------------- path == requirement
def _ragged_book_panel() -> tuple[object, Book]:
    pan = random_walk_panel(T=260, A=3, seed=1)
    close = pan.close.copy()
    close[:70, 2] = np.nan
    pan = pan.with_close(close)
    rng = np.random.default_rng(2)
    P = 7
    coll = np.abs(rng.normal(size=(P, 3))) * 100
    pos = rng.normal(size=(P, 3)) * 100
    coll[0, 2] = pos[0, 2] = 0.0  # does not hold the young asset
    coll[6] = pos[6] = 0.0  # empty account
    iso = np.zeros(P, dtype=bool)
    iso[[1, 4]] = True
    return pan, Book(tuple(pan.assets), coll, pos, isolated=iso)


VARIANTS = [
    {},
    {"stress_windows": [("2020-02-01", "2020-03-15")]},
    {"stress_windows": [("2020-02-01", "2020-03-15")], "stress_weight": 0.3},
    {"measure": "es", "scaling": "sqrt", "min_window": 30},
    {"method": "fhs"},
    {"method": "brw", "brw_decay": 0.97},
]


@pytest.mark.parametrize("kw", VARIANTS)
def test_path_equals_requirement(kw: dict) -> None:
    """path() (numba rolling kernel for plain HS) equals the per-date requirement() loop."""
    pan, book = _ragged_book_panel()
    f = HistoricalVaR(window=40, horizon=2, **kw).fit(pan)
    fast = f.path(book)
    slow = FittedMargin.path(f, book, fast.eligible)
    np.testing.assert_allclose(fast.maintenance, slow.maintenance, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(np.isnan(fast.maintenance), np.isnan(slow.maintenance))
    # the account without the young asset is priced earlier than those holding it
    first = np.argmax(fast.eligible, axis=0)
    assert first[0] < first[2]
    assert np.all(fast.maintenance[fast.eligible] >= 0)
    assert np.all(fast.maintenance[:, 6][fast.eligible[:, 6]] == 0)


@pytest.mark.parametrize("kw", VARIANTS)
def test_requirement_history_equals_requirement(kw: dict) -> None:
    pan, book = _ragged_book_panel()
    f = HistoricalVaR(window=40, **kw).fit(pan)
    c, x = book.collateral, book.positions
    hist = f.requirement_history(90, 130, c, x)
    for i, t in enumerate(range(90, 131)):
        r = f.requirement(t, c, x)
        np.testing.assert_allclose(hist.maintenance[i], r.maintenance, rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(np.isnan(hist.initial[i]), np.isnan(r.initial))


@pytest.mark.parametrize("kw", VARIANTS)
def test_no_look_ahead(kw: dict) -> None:
    """Perturb every price after t0: margins up to t0 are unchanged (exactly)."""
    pan, book = _ragged_book_panel()
    t0 = 180
    rng = np.random.default_rng(7)
    close = pan.close.copy()
    close[t0 + 1 :] *= np.exp(rng.normal(0, 0.3, size=close[t0 + 1 :].shape))
    pert = pan.with_close(close)
    model = HistoricalVaR(window=40, **kw)
    a = model.fit(pan).path(book)
    b = model.fit(pert).path(book)
    np.testing.assert_array_equal(a.maintenance[: t0 + 1], b.maintenance[: t0 + 1])
    assert not np.array_equal(a.maintenance[t0 + 5 :], b.maintenance[t0 + 5 :], equal_nan=True)


# ------------------------------------------------------------- invariants
_PAN = random_walk_panel(T=160, A=3, seed=4)
_STRESS = [("2020-02-10", "2020-03-01")]
_FITS = {
    "hs": HistoricalVaR(window=60, stress_windows=_STRESS).fit(_PAN),
    "fhs": HistoricalVaR(window=60, method="fhs").fit(_PAN),
    "brw": HistoricalVaR(window=60, method="brw", brw_decay=0.98).fit(_PAN),
    "weight": HistoricalVaR(window=60, stress_windows=_STRESS, stress_weight=0.25).fit(_PAN),
}
_amount = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: 0.0 if abs(v) < 1e-3 else v)
_holdings = st.lists(_amount, min_size=3, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=_holdings, k=st.floats(1e-3, 1e3), t=st.integers(100, 159), which=st.sampled_from(sorted(_FITS)))
def test_invariants(x: list[float], k: float, t: int, which: str) -> None:
    """Non-negative, positively homogeneous, zero holdings neutral, ES >= VaR."""
    f = _FITS[which]
    X = np.array([x])
    z = np.zeros_like(X)
    base = f.requirement(t, X, z).maintenance[0]
    assert base >= 0
    assert f.requirement(t, k * X, z).maintenance[0] == pytest.approx(k * base, rel=1e-9, abs=1e-9)
    # the same exposure split between collateral and perps gives the same margin
    assert f.requirement(t, np.abs(X), X - np.abs(X)).maintenance[0] == pytest.approx(base, rel=1e-9, abs=1e-6)
    if which in ("hs", "brw", "fhs"):
        es_model = HistoricalVaR(**{**f.model.params(), "measure": "es"})
        es = es_model.fit(_PAN).requirement(t, X, z).maintenance[0]
        assert es >= base - 1e-9


def test_zero_position_in_unpriced_asset_changes_nothing() -> None:
    pan, _ = _ragged_book_panel()
    f = HistoricalVaR(window=40).fit(pan)
    t = 100  # asset 2 is not eligible yet
    b = f.requirement(t, np.array([[100.0, 50.0, 0.0]]), np.array([[0.0, -30.0, 0.0]]))
    assert np.isfinite(b.maintenance[0])
    c = HistoricalVaR(window=40).fit(pan.select(pan.assets[:2])).requirement(
        t, np.array([[100.0, 50.0]]), np.array([[0.0, -30.0]])
    )
    assert b.maintenance[0] == c.maintenance[0]
    held = f.requirement(t, np.array([[100.0, 50.0, 1.0]]), np.array([[0.0, -30.0, 0.0]]))
    assert np.isnan(held.maintenance[0])


@settings(max_examples=30, deadline=None)
@given(x=_holdings, t=st.integers(60, 159), start=st.integers(0, 120), length=st.integers(1, 30))
def test_adding_a_stressed_window_never_lowers_margin(x: list[float], t: int, start: int, length: int) -> None:
    """Stressed scenarios enter with mass 1 on top of the window: the tail can only grow."""
    d = _PAN.dates
    w1 = [("2020-02-10", "2020-03-01")]
    w2 = [*w1, (str(d[start].date()), str(d[min(start + length, len(d) - 1)].date()))]
    X = np.array([x])
    for measure in ("var", "es"):
        a = HistoricalVaR(window=40, measure=measure, stress_windows=w1).fit(_PAN).requirement(t, X, 0 * X)
        b = HistoricalVaR(window=40, measure=measure, stress_windows=w2).fit(_PAN).requirement(t, X, 0 * X)
        none = HistoricalVaR(window=40, measure=measure).fit(_PAN).requirement(t, X, 0 * X)
        assert b.maintenance[0] >= a.maintenance[0] - 1e-9
        assert a.maintenance[0] >= none.maintenance[0] - 1e-9


# ------------------------------------------------------- params, registry
@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"confidence": 0.5}, "confidence"),
        ({"confidence": 1.0}, "confidence"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 11}, "horizon"),
        ({"horizon": 1.5}, "horizon"),
        ({"window": 19}, "window"),
        ({"measure": "cvar"}, "measure"),
        ({"scaling": "linear"}, "scaling"),
        ({"method": "garch"}, "method"),
        ({"ewma_lambda": 1.0}, "ewma_lambda"),
        ({"brw_decay": 0.0}, "brw_decay"),
        ({"stress_windows": [("2022-05-01",)]}, "stress_windows"),
        ({"stress_windows": [("2022-05-01", "2022-04-01")]}, "stress_windows"),
        ({"stress_weight": 0.25}, "stress_weight"),
        ({"stress_windows": DEFAULT_STRESS_WINDOWS, "stress_weight": 1.0}, "stress_weight"),
        ({"im_multiplier": 0.9}, "im_multiplier"),
        ({"min_window": 10}, "min_window"),
        ({"min_window": 600}, "min_window"),
        ({"min_history": 20}, "min_history"),
        ({"min_history": 40, "min_window": 40}, "min_history"),
        ({"volatility": "garch"}, "volatility"),
    ],
)
def test_bad_parameters_raise_naming_them(kw: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        HistoricalVaR(**kw)


def test_registry_and_defaults() -> None:
    m = get("historical_var")
    assert (m.confidence, m.horizon, m.window, m.measure, m.method) == (0.99, 2, 500, "var", "hs")
    assert m.min_history == 501
    assert isinstance(get("filtered_hs"), FilteredHS) and get("filtered_hs").method == "fhs"
    assert isinstance(get("age_weighted_hs", brw_decay=0.97), AgeWeightedHS)
    assert get("filtered_hs").min_history == 521
    assert "method" in m.params() and repr(m).startswith("HistoricalVaR(")
    # min_history alone sets a growing window: 60 returns give 59 two-day scenarios
    g = get("historical_var", window=60, min_history=60)
    assert (g.min_window, g.min_history) == (59, 60)
    assert get("filtered_hs", window=100, min_history=100).min_window == 79


# ------------------------------------------------------------- real data
def test_real_btc_eth_margins(daily_dir) -> None:
    """BTC/ETH daily closes: plausible 2-day 99% HS VaR, FHS reacts to March 2020, stress floor binds."""
    from riskmodels.data.loaders import load_panel

    pan = load_panel(daily_dir.parent, assets=["BTC", "ETH"], policy="truncate")
    book = Book(("BTC", "ETH"), np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [-1.0, 1.0]]))
    hs = HistoricalVaR().fit(pan).path(book)
    fhs = FilteredHS().fit(pan).path(book)
    floor = HistoricalVaR(stress_windows=DEFAULT_STRESS_WINDOWS).fit(pan).path(book)
    btc = hs.maintenance[:, 0][hs.eligible[:, 0]]
    assert btc.size > 2000 and 0.03 < btc.min() and btc.max() < 0.35
    t = pan.date_index("2020-03-13")
    assert fhs.maintenance[t, 0] > 1.5 * hs.maintenance[t, 0]
    ok = hs.eligible
    assert np.all(floor.maintenance[ok] >= hs.maintenance[ok] - 1e-12)
    assert np.any(floor.maintenance[ok] > hs.maintenance[ok] * 1.2)
