"""The floor's threshold kernel (``riskmodels.margin._hs_above``) and the four-asset loss pass (issue 23, item 4).

``var_above(th)`` must return the unit-mass HS VaR exactly where it exceeds
``th`` and NaN elsewhere, so that ``floor_rule(b, var_above(b)) ==
floor_rule(b, VaR)`` (EMIR RTS 153/2013 Art. 28(1)(c): the margin is the
larger of the base and the 10-year look-back). Checked against two
independent statements of the VaR: the fused kernel ``unit_tail`` (bit for
bit: the same losses) and a plain numpy sort of the finite losses with the
documented convention (``k = ceil(n (1 - c))``-th largest of the ``n`` finite
rows); and the wrapper's requirement against ``max(base, full floor)``.
"""

from __future__ import annotations

import numba
import numpy as np
from conftest import random_walk_panel
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hs_fused import _inputs, _matrix_losses, _plain_unit

from riskmodels.margin import _hs_above, _hs_fused
from riskmodels.margin.apc import LookbackFloor
from riskmodels.margin.apc_rules import floor_rule
from riskmodels.margin.historical import HistoricalVaR


def _above(X, g, n_window, conf, min_window, th, ok=None):
    prep = _hs_fused.prepare(g)
    out = np.empty(X.shape[0])
    ok = np.ones(X.shape[1], dtype=np.bool_) if ok is None else ok
    _hs_above.var_above(np.ascontiguousarray(X), prep.gT, prep.bad, prep.bad_any, n_window, min_window, 1.0 - conf,
                        ok, np.ascontiguousarray(th, dtype=np.float64), out)
    return out


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(20, 400), A=st.integers(1, 8), nan_block=st.booleans(),
       holes=st.booleans(), ties=st.booleans(), conf=st.sampled_from([0.9, 0.975, 0.99, 0.995]),
       th_scale=st.floats(-0.5, 3.0))
def test_var_above_is_the_var_where_it_exceeds_the_threshold_else_nan(seed, rows, A, nan_block, holes, ties, conf,
                                                                    th_scale) -> None:
    g, X, _ = _inputs(seed, rows, A, 40, nan_block, holes, ties, 0.0)
    min_window = max(10, rows // 2)
    flags = np.zeros(rows, dtype=bool)
    var, _es = _hs_fused.unit_tail(X, _hs_fused.prepare(g), rows, conf, min_window, flags)
    plain, _ = _plain_unit(np.asarray(_matrix_losses(g, X)), rows, conf, min_window)
    assert np.array_equal(np.isnan(var), np.isnan(plain))
    ok = ~np.isnan(plain)
    np.testing.assert_allclose(var[ok], plain[ok], rtol=1e-12, atol=1e-9)
    rng = np.random.default_rng(seed)
    # thresholds around each account's VaR: below, at, above it, and some NaN
    th = np.where(np.isfinite(var), var, 1e4) * th_scale + rng.normal(0, 1e3, var.size)
    th[::7] = var[::7]  # exactly the VaR: does not bind (max(b, f) = b)
    th[3::11] = np.nan
    got = _above(X, g, rows, conf, min_window, th)
    binds = np.isfinite(th) & np.isfinite(var) & (var > th)
    assert np.array_equal(got[binds], var[binds])  # bit for bit: the same losses
    assert np.isnan(got[~binds]).all()
    np.testing.assert_array_equal(floor_rule(th, got), floor_rule(th, var))


def test_var_above_refuses_ineligible_assets_and_short_windows() -> None:
    g, X, _ = _inputs(5, 120, 4, 30, True, False, False, 0.0)
    th = np.full(30, -1e12)  # binds wherever the VaR exists
    ok = np.array([True, True, False, True])
    got = _above(X, g, 120, 0.99, 60, th, ok)
    assert np.isnan(got[(X[:, 2] != 0)]).all()
    var, _ = _hs_fused.unit_tail(X, _hs_fused.prepare(g), 120, 0.99, 60, np.zeros(120, bool), ok)
    assert np.array_equal(got, var, equal_nan=True)
    assert np.isnan(_above(X, g, 120, 0.99, 121, th)).all()  # fewer finite rows than min_window everywhere


@numba.njit(fastmath={"contract"})
def _one_by_one(gT, nz, xv, m, col, start):  # type: ignore[no-untyped-def]  # the kernel's loop before the four-asset passes
    for i in range(start, col.shape[0]):
        col[i] = 0.0
    for j in range(m):
        for i in range(start, col.shape[0]):
            col[i] = col[i] + xv[j] * gT[nz[j], i]


@numba.njit(fastmath={"contract"})
def _grouped(gT, nz, xv, m, col, start):  # type: ignore[no-untyped-def]
    _hs_fused.accumulate(gT, nz, xv, m, col, start)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 300), m=st.integers(0, 9), start=st.integers(0, 40))
def test_four_asset_loss_pass_is_bitwise_the_one_asset_passes(seed, rows, m, start) -> None:
    """``accumulate`` sums the same fused multiply-adds in the same order as one pass per asset."""
    rng = np.random.default_rng(seed)
    A = 10
    gT = rng.standard_t(3, (A, rows)) * 0.03
    nz = np.sort(rng.choice(A, m, replace=False)).astype(np.int64)
    xv = rng.normal(0, 5e4, A)
    a, b = np.full(rows, 7.0), np.full(rows, 7.0)
    s = min(start, rows)
    _one_by_one(gT, nz, xv, m, a, s)
    _grouped(gT, nz, xv, m, b, s)
    assert np.array_equal(a, b)
    assert (a[:s] == 7.0).all()


def test_lookback_floor_requirement_is_max_of_base_and_full_floor() -> None:
    panel = random_walk_panel(T=900, A=4, seed=8, vol=0.04)
    inner = HistoricalVaR(confidence=0.99, horizon=2, window=120, min_window=60, label="HS")
    fitted = LookbackFloor(inner, lookback_days=600).fit(panel)
    rng = np.random.default_rng(2)
    coll = np.abs(rng.normal(1e4, 5e3, (200, 4))) * (rng.random((200, 4)) < 0.5)
    pos = rng.normal(0, 2e4, (200, 4)) * (rng.random((200, 4)) < 0.6)
    binding = 0
    for t in (130, 300, 610, 899):
        got = fitted.requirement(t, coll, pos)
        b = fitted.inner.requirement(t, coll, pos)
        f = fitted.floor.requirement(t, coll, pos)
        assert fitted.floor.maintenance_above(t, coll, pos, b.maintenance) is not None  # the threshold path ran
        np.testing.assert_array_equal(got.maintenance, floor_rule(b.maintenance, f.maintenance))
        np.testing.assert_array_equal(got.initial, floor_rule(b.initial, f.initial))
        binding += int(np.sum(f.maintenance > b.maintenance))
    assert binding > 0  # the floor binds somewhere, so both branches are exercised


def test_negative_thresholds_and_other_floors_take_the_full_path() -> None:
    """The maintenance is max(VaR, 0): below 0 a floor can bind at 0, so a negative threshold is priced in full."""
    panel = random_walk_panel(T=400, A=3, seed=4, vol=0.04)
    x = np.array([[1e4, 0.0, -5e3], [0.0, 2e4, 0.0]])
    z = np.zeros_like(x)
    hs = HistoricalVaR(confidence=0.99, horizon=2, window=120, min_window=60).fit(panel)
    assert hs.maintenance_above(399, x, z, np.array([0.0, 1.0])) is not None
    assert hs.maintenance_above(399, x, z, np.array([-1.0, 1.0])) is None
    assert hs.maintenance_above(399, x, z, np.array([-np.inf, 1.0])) is None
    for other in (HistoricalVaR(confidence=0.99, window=120, min_window=60, measure="es"),
                  HistoricalVaR(confidence=0.99, window=120, min_window=60, method="fhs")):
        assert other.fit(panel).maintenance_above(399, x, z, np.array([0.0, 1.0])) is None


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(0, 60), A=st.integers(1, 6), p_nan=st.floats(0.0, 1.0),
       infs=st.booleans())
def test_abs_nanmax_columns_is_numpys(seed, rows, A, p_nan, infs) -> None:
    import warnings

    rng = np.random.default_rng(seed)
    g = rng.standard_t(3, (rows, A)) * 0.05
    g[rng.random(g.shape) < p_nan] = np.nan
    if infs and rows:
        g[0, 0] = -np.inf
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmax(np.abs(g), axis=0) if rows else np.full(A, np.nan)
    np.testing.assert_array_equal(_hs_above.abs_nanmax_columns(np.ascontiguousarray(g)), want)



@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(30, 400), A=st.integers(1, 8), nan_block=st.booleans(),
       holes=st.booleans(), ties=st.booleans(), inner_share=st.floats(0.05, 1.0),
       conf=st.sampled_from([0.9, 0.975, 0.99]), conf_b=st.sampled_from([0.95, 0.99]),
       bad_ok=st.integers(-1, 7), bad_ok_b=st.integers(-1, 7))
def test_base_and_floor_kernel_equals_two_kernels(seed, rows, A, nan_block, holes, ties, inner_share, conf, conf_b,
                                                  bad_ok, bad_ok_b) -> None:
    """The one-pass kernel == ``unit_tail`` on the base's rows, then ``var_above`` at the base's maintenance.

    Any listing (also inside the base's window), scattered gaps, ties, an
    asset the base or the floor does not accept, windows that are not whole
    blocks.
    """
    g, X, _ = _inputs(seed, rows, A, 40, nan_block, holes, ties, 0.0)
    n_b = max(10, int(rows * inner_share))
    min_b, min_f = max(5, n_b // 2), max(10, rows // 2)
    ok_b, ok_f = np.ones(A, dtype=np.bool_), np.ones(A, dtype=np.bool_)
    if 0 <= bad_ok < A:
        ok_f[bad_ok] = False
    if 0 <= bad_ok_b < A:
        ok_b[bad_ok_b] = False
    var_b, _ = _hs_fused.unit_tail(X, _hs_fused.prepare(g[rows - n_b :]), n_b, conf_b, min_b,
                                   np.zeros(n_b, dtype=bool), ok_b)
    mm_b = np.where(var_b < 0, 0.0, var_b)
    want = _above(X, g, rows, conf, min_f, mm_b, ok_f)
    prep = _hs_fused.prepare(g)
    base, fm = np.empty(X.shape[0]), np.empty(X.shape[0])
    _hs_above.base_and_floor(np.ascontiguousarray(X), prep.gT, prep.bad, prep.bad_any, n_b, min_b, 1.0 - conf_b, ok_b,
                             min_f, 1.0 - conf, ok_f, base, fm)
    np.testing.assert_array_equal(base, var_b)  # NaN where var_b is NaN, else bit for bit
    fin = np.isfinite(var_b)
    np.testing.assert_array_equal(fm[fin], want[fin])
    assert np.isnan(fm[~fin]).all()



def test_base_and_floor_counts_a_listing_inside_the_base_window() -> None:
    """An asset listed 60 rows before t: the base has 60 finite rows, k = 60 x 5% = 3 exactly (61 would give 4)."""
    rng = np.random.default_rng(3)
    rows, n_b = 300, 100
    g = rng.standard_t(3, (rows, 2)) * 0.03
    g[: rows - 60, 1] = np.nan
    X = np.array([[2e4, -3e4], [0.0, 1e4], [5e3, 0.0]])
    ok = np.ones(2, dtype=np.bool_)
    flags = np.zeros(n_b, dtype=bool)
    var_b, _ = _hs_fused.unit_tail(X, _hs_fused.prepare(g[rows - n_b :]), n_b, 0.95, 40, flags, ok)
    losses = -(X @ np.nan_to_num(g[rows - n_b :]).T)  # the plain statement: 3rd largest of the 60 finite rows
    np.testing.assert_allclose(var_b[[0, 2]], [np.sort(losses[0, -60:])[-3], np.sort(losses[2])[-5]], rtol=1e-12)
    prep = _hs_fused.prepare(g)
    base, fm = np.empty(3), np.empty(3)
    _hs_above.base_and_floor(X, prep.gT, prep.bad, prep.bad_any, n_b, 40, 0.05, ok, 50, 0.01, ok, base, fm)
    np.testing.assert_array_equal(base, var_b)


def _gappy_panel(seed: int, T: int, A: int, listing: int, hole: tuple[int, int] | None):
    """A random walk with a late listing (asset 1 has no price before ``listing``) and a gap in asset 2."""
    from conftest import make_panel

    rng = np.random.default_rng(seed)
    r = 0.03 * rng.standard_normal((T, A)) * np.where(np.arange(T)[:, None] % 300 < 40, 2.5, 1.0)
    r[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    if A > 1:
        close[:listing, 1] = np.nan
    if A > 2 and hole is not None:
        close[hole[0] : hole[1], 2] = np.nan
    return make_panel(close, spread=0.01)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), A=st.integers(1, 5), window=st.integers(30, 140),
       lookback=st.integers(250, 420), listing=st.integers(0, 380), hole=st.booleans(),
       conf=st.sampled_from([0.95, 0.975, 0.99]), min_window=st.integers(20, 30),
       im=st.sampled_from([1.0, 1.25]))
def test_paired_floor_equals_base_and_full_floor(seed, A, window, lookback, listing, hole, conf, min_window,
                                                 im) -> None:
    """One loss pass for both windows (``_hs_above.base_and_floor``) gives ``max(base, full floor)`` bit for bit.

    The reference prices the two models separately, each with its own fused
    kernel on its own window (``HistoricalVaR.requirement``), and takes
    ``floor_rule`` (EMIR RTS 153/2013 Art. 28(1)(c): the margin is not lower
    than the 10-year look-back's). Late listings, gaps, ineligible assets,
    growing windows (dates before either window is full), accounts holding
    nothing, base VaRs below zero.
    """
    T = 460
    panel = _gappy_panel(seed, T, A, listing, (300, 306) if hole else None)
    inner = HistoricalVaR(confidence=conf, horizon=2, window=window, min_window=min_window, im_multiplier=im,
                          label="HS")
    fitted = LookbackFloor(inner, lookback_days=lookback).fit(panel)
    assert fitted.paired
    rng = np.random.default_rng(seed)
    P = 60
    coll = np.abs(rng.normal(1e4, 5e3, (P, A))) * (rng.random((P, A)) < 0.5)
    pos = rng.normal(0, 2e4, (P, A)) * (rng.random((P, A)) < 0.6)
    coll[0] = pos[0] = 0.0  # holds nothing
    pos[1] = 0.0
    coll[1] = 0.0
    coll[1, 0] = 1e4  # long spot only: a negative VaR, maintenance 0
    # the dates around the listing's min_window-th return: the base's finite-row count crosses min_window there
    dates = {min_window + 2, window - 1, window + 5, 260, 310, T - 1, *range(listing + min_window - 2, listing + min_window + 5)}
    for t in sorted(dates & set(range(3, T))):
        got = fitted.requirement(t, coll, pos)
        b = fitted.inner.requirement(t, coll, pos)
        f = fitted.floor.requirement(t, coll, pos)
        np.testing.assert_array_equal(got.maintenance, floor_rule(b.maintenance, f.maintenance))
        np.testing.assert_array_equal(got.initial, floor_rule(b.initial, f.initial))


def test_paired_floor_binds_and_is_used_only_for_a_pair() -> None:
    """The default floor of plain HS VaR is paired; FHS, ES or a stressed share take the two-model path."""
    panel = random_walk_panel(T=700, A=3, seed=4, vol=0.04)
    inner = HistoricalVaR(confidence=0.99, horizon=2, window=100, min_window=50, label="HS")
    fitted = LookbackFloor(inner, lookback_days=500).fit(panel)
    assert fitted.paired
    rng = np.random.default_rng(1)
    coll = np.abs(rng.normal(1e4, 5e3, (300, 3))) * (rng.random((300, 3)) < 0.5)
    pos = rng.normal(0, 2e4, (300, 3)) * (rng.random((300, 3)) < 0.6)
    binding = 0
    for t in (120, 400, 699):
        got = fitted.requirement(t, coll, pos)
        b = fitted.inner.requirement(t, coll, pos)
        binding += int(np.sum(got.maintenance > b.maintenance))
    assert binding > 0  # the floor binds somewhere: its branch ran
    for other in (HistoricalVaR(window=100, method="fhs"), HistoricalVaR(window=100, measure="es"),
                  HistoricalVaR(window=100, stress_weight=0.25, stress_windows=[("2020-03-01", "2020-04-01")])):
        assert not LookbackFloor(other, lookback_days=500).fit(panel).paired
    floor_fhs = LookbackFloor(inner, floor_model=HistoricalVaR(window=500, method="fhs"))
    assert not floor_fhs.fit(panel).paired
