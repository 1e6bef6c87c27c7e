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
