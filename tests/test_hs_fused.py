"""The fused HS requirement kernels equal the loss-matrix path they replace (issue 23e).

``riskmodels.margin._hs_fused`` prices each account's losses and tail without
the ``(N, rows)`` loss matrix, reading again only the strided row blocks whose
largest loss can reach the kept tail. Checked here:

* against the retained matrix path (``FittedHistorical._losses`` + the column
  kernels ``tail_columns`` / ``stress_tail_columns``) on random inputs with
  NaN returns (a block before an asset lists, scattered holes), stressed rows,
  extras, ties and hedged accounts: the same NaN pattern and values within
  1e-12 relative (bitwise on the OpenBLAS build numpy ships, which sums the
  same fused multiply-adds in the same order);
* against a plain numpy calculation with the documented quantile convention
  (sort the finite losses, ``k = ceil(n (1 - c))``-th largest; the stressed
  share masses ``share n / S`` and ``(1 - share) n / O`` walked to ``n (1 - c)``);
* the numba layout equals its numpy statement; k above the number of blocks
  and tails of tied losses;
* ``FittedHistorical.requirement`` / ``account_requirement`` /
  ``isolated_requirement`` against ``requirement_reference`` and the base
  class's account requirement on a panel (plain HS, FHS, stressed weight).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import random_walk_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.margin import _hs_fused
from riskmodels.margin._quantile import tail_columns
from riskmodels.margin._stress_tail import stress_tail_columns
from riskmodels.margin.base import FittedMargin
from riskmodels.margin.historical import DEFAULT_STRESS_WINDOWS, FittedHistorical, HistoricalVaR


def _inputs(seed: int, rows: int, A: int, N: int, nan_block: bool, holes: bool, ties: bool, p_stress: float):
    rng = np.random.default_rng(seed)
    f = rng.standard_t(3, (rows, 1)) * 0.03
    g = 0.6 * f + 0.4 * rng.standard_t(3, (rows, A)) * 0.03
    if ties:
        g = np.round(g, 2)
    if nan_block and A > 1:
        g[: rng.integers(1, max(rows, 2)), A - 1] = np.nan  # an asset listed late
    if holes:
        g[rng.random(g.shape) < 0.01] = np.nan
    X = np.zeros((N, A))
    for p in range(N):
        k = int(rng.integers(0, min(A, 5) + 1))
        nz = rng.choice(A, k, replace=False)
        X[p, nz] = rng.normal(0, 5e4, k)
    if N > 2:
        X[1] = 0.0  # holds nothing
        X[2, :] = 1e4 * np.sign(rng.normal(size=A))  # every asset, hedged
    stressed = rng.random(rows) < p_stress
    return g, X, stressed


def _matrix_losses(g: np.ndarray, X: np.ndarray) -> np.ndarray:
    return FittedHistorical._losses(None, g, X)  # type: ignore[arg-type]  (does not read self)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=1e-12, atol=0.0)


def _plain_unit(loss: np.ndarray, n_window: int, conf: float, min_window: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted finite losses: VaR = k-th largest, ES = mean of the worst n(1-c) (Acerbi-Tasche), extras mass 1."""
    var = np.full(loss.shape[1], np.nan)
    es = np.full(loss.shape[1], np.nan)
    for p in range(loss.shape[1]):
        col = loss[:, p]
        n = int(np.isfinite(col[:n_window]).sum())
        if n < min_window or n == 0:
            continue
        v = np.sort(col[np.isfinite(col)])[::-1]
        tail = n * (1 - conf)
        if abs(tail - round(tail)) < 1e-9:
            tail = float(round(tail))
        k = max(1, math.ceil(tail - 1e-9))
        var[p] = v[k - 1]
        es[p] = (v[: k - 1].sum() + (tail - (k - 1)) * v[k - 1]) / tail
    return var, es


def _plain_stress(loss: np.ndarray, n_window: int, conf: float, min_window: int, stressed: np.ndarray,
                  w: float) -> tuple[np.ndarray, np.ndarray]:
    var = np.full(loss.shape[1], np.nan)
    es = np.full(loss.shape[1], np.nan)
    for p in range(loss.shape[1]):
        col = loss[:, p]
        fin = np.isfinite(col)
        n = int(fin[:n_window].sum())
        if n < min_window or n == 0:
            continue
        vals, is_s = col[fin], stressed[fin]
        S, n_calm = int(is_s.sum()), int((~is_s).sum())
        mass = np.ones(vals.size)
        if S:
            share = 1.0 if n_calm == 0 else max(w, S / (S + n_calm))
            mass = np.where(is_s, share * n / S, (1 - share) * n / n_calm if n_calm else 0.0)
        order = np.argsort(-vals, kind="stable")
        v, m = vals[order], mass[order]
        tail = n * (1 - conf)
        if abs(tail - round(tail)) < 1e-9:
            tail = float(round(tail))
        cum = np.cumsum(m)
        j = int(np.argmax(cum >= tail - 1e-9 * max(1.0, tail)))
        before = cum[j - 1] if j else 0.0
        var[p] = v[j]
        es[p] = (np.dot(m[:j], v[:j]) + (tail - before) * v[j]) / tail
    return var, es


CASES = dict(
    seed=st.integers(0, 2**31 - 1), n_window=st.integers(20, 300), n_extra=st.integers(0, 150),
    A=st.integers(1, 8), nan_block=st.booleans(), holes=st.booleans(), ties=st.booleans(),
    p_stress=st.floats(0.0, 1.0), conf=st.sampled_from([0.9, 0.975, 0.99, 0.995]),
)


@settings(max_examples=120, deadline=None)
@given(**CASES)
def test_unit_tail_equals_matrix_path_and_sorted_losses(seed, n_window, n_extra, A, nan_block, holes, ties,
                                                        p_stress, conf) -> None:
    rows = n_window + n_extra
    g, X, stressed = _inputs(seed, rows, A, 40, nan_block, holes, ties, p_stress)
    stressed[n_window:] = True  # extras are stressed scenarios
    min_window = max(20, n_window - 5)
    prep = _hs_fused.prepare(g)
    var, es = _hs_fused.unit_tail(X, prep, n_window, conf, min_window, stressed)
    # the class-ordered layout (calm rows first) gives the same numbers: a row's loss does not depend on its place
    var2, es2 = _hs_fused.unit_tail(X, _hs_fused.prepare(g, stressed), n_window, conf, min_window, stressed)
    assert np.array_equal(var, var2, equal_nan=True) and np.array_equal(es, es2, equal_nan=True)
    loss = _matrix_losses(g, X)
    rv, re = tail_columns(loss, n_window, conf, min_window, None, stressed, None)
    _close(var, rv)
    _close(es, re)
    pv, pe = _plain_unit(np.asarray(loss), n_window, conf, min_window)
    assert np.array_equal(np.isnan(var), np.isnan(pv))
    ok = ~np.isnan(pv)
    np.testing.assert_allclose(var[ok], pv[ok], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(es[ok], pe[ok], rtol=1e-12, atol=1e-9)


@settings(max_examples=120, deadline=None)
@given(w=st.floats(0.25, 0.95), **CASES)
def test_stress_tail_equals_matrix_path_and_sorted_masses(seed, n_window, n_extra, A, nan_block, holes, ties,
                                                          p_stress, conf, w) -> None:
    rows = n_window + n_extra
    g, X, stressed = _inputs(seed, rows, A, 40, nan_block, holes, ties, p_stress)
    stressed[n_window:] = True
    min_window = max(20, n_window - 5)
    prep = _hs_fused.prepare(g)
    var, es = _hs_fused.stress_tail(X, prep, n_window, conf, min_window, stressed, w)
    loss = _matrix_losses(g, X)
    rv, re = stress_tail_columns(loss, n_window, conf, min_window, stressed, w)
    _close(var, rv)
    _close(es, re)
    pv, pe = _plain_stress(np.asarray(loss), n_window, conf, min_window, stressed, w)
    assert np.array_equal(np.isnan(var), np.isnan(pv))
    ok = ~np.isnan(pv)
    np.testing.assert_allclose(var[ok], pv[ok], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(es[ok], pe[ok], rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 200), A=st.integers(1, 6))
def test_prepare_is_the_nan_zeroed_transpose(seed, rows, A) -> None:
    g, _X, _stressed = _inputs(seed, rows, A, 3, True, True, False, 0.5)
    prep = _hs_fused.prepare(g)
    ref = _hs_fused.prepare_reference(g)
    for name in ("gT", "bad", "bad_any"):  # the numba pass builds the numpy layout
        a, b = getattr(prep, name), getattr(ref, name)
        assert a.shape == b.shape and np.array_equal(a, b), name
    assert prep.order is None and prep.n_calm == -1
    assert np.array_equal(prep.gT, np.where(np.isfinite(g), g, 0.0).T)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 200), A=st.integers(1, 6), share=st.floats(0.0, 1.0))
def test_class_order_puts_the_calm_rows_first_each_class_in_scenario_order(seed, rows, A, share) -> None:
    g, _X, _ = _inputs(seed, rows, A, 3, True, True, False, 0.5)
    stressed = np.random.default_rng(seed).random(rows) < share
    prep = _hs_fused.prepare(g, stressed)
    calm, hot = np.flatnonzero(~stressed), np.flatnonzero(stressed)
    assert prep.n_calm == calm.size and np.array_equal(prep.order, np.concatenate([calm, hot]))
    ref = _hs_fused.prepare_reference(g)
    assert np.array_equal(prep.gT, ref.gT[:, prep.order]) and np.array_equal(prep.bad, ref.bad[:, prep.order])
    assert np.array_equal(prep.bad_any, ref.bad_any)
    with pytest.raises(ValueError, match="already in class order"):
        _hs_fused.by_class(prep, stressed)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_window=st.integers(1, 120), conf=st.sampled_from([0.5, 0.9, 0.99]),
       tie_value=st.sampled_from([0.0, 0.01]), w=st.floats(0.25, 0.95))
def test_few_blocks_many_ties_and_large_k(seed, n_window, conf, tie_value, w) -> None:
    """Cases the block threshold must survive: k above the number of blocks, a tail of equal losses.

    Every held return equal to ``tie_value`` on a random subset of rows makes
    the tail a run of ties; a low confidence on a short window makes ``k``
    exceed ``ceil(rows / BLOCK)`` (``th0 = -inf``, every row read).
    """
    rng = np.random.default_rng(seed)
    rows, A = n_window + int(rng.integers(0, 30)), 3
    g = rng.standard_t(3, (rows, A)) * 0.03
    g[rng.random(rows) < 0.4] = -tie_value
    stressed = rng.random(rows) < 0.3
    stressed[n_window:] = True
    X = rng.normal(0, 1e4, (25, A)) * (rng.random((25, A)) < 0.8)
    X[0] = [1e4, 0.0, 0.0]
    prep = _hs_fused.prepare(g)
    loss = _matrix_losses(g, X)
    var, es = _hs_fused.unit_tail(X, prep, n_window, conf, 1, stressed)
    rv, re = tail_columns(loss, n_window, conf, 1, None, stressed, None)
    _close(var, rv)
    _close(es, re)
    var, es = _hs_fused.stress_tail(X, prep, n_window, conf, 1, stressed, w)
    rv, re = stress_tail_columns(loss, n_window, conf, 1, stressed, w)
    _close(var, rv)
    _close(es, re)


def _accounts(A: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    N = 60
    coll = np.where(rng.random((N, A)) < 0.3, rng.uniform(0, 3e4, (N, A)), 0.0)
    pos = np.where(rng.random((N, A)) < 0.5, rng.normal(0, 5e4, (N, A)), 0.0)
    iso = rng.random(N) < 0.3
    return coll, pos, iso


def test_fitted_requirement_equals_the_matrix_reference() -> None:
    panel = random_walk_panel(T=700, A=4, seed=11)
    # AVAX-like: the last asset lists late, so the windows see its missing returns
    close = panel.close.copy()
    close[:150, 3] = np.nan
    from conftest import make_panel

    panel = make_panel(np.where(np.isfinite(close), close, np.nan), spread=0.01)
    coll, pos, iso = _accounts(panel.n_assets, 5)
    stress = (("2020-03-01", "2020-04-15"), ("2020-08-01", "2020-09-30"))
    models = [
        HistoricalVaR(window=200),
        HistoricalVaR(window=200, method="fhs"),
        HistoricalVaR(window=200, measure="es", min_window=100),
        HistoricalVaR(window=200, stress_windows=stress, stress_weight=0.25),
        HistoricalVaR(window=200, stress_windows=DEFAULT_STRESS_WINDOWS[:1], stress_weight=0.4, method="fhs"),
    ]
    for model in models:
        f = model.fit(panel)
        for t in (120, 230, 400, 699):
            a = f.requirement(t, coll, pos)
            b = f.requirement_reference(t, coll, pos)
            _close(a.maintenance, b.maintenance)
            _close(a.initial, b.initial)
            # the override prices the cross requirement of the cross rows only: the base class's numbers
            got = f.account_requirement(t, coll, pos, iso)
            ref = FittedMargin.account_requirement(f, t, coll, pos, iso)
            assert np.array_equal(got.maintenance, ref.maintenance, equal_nan=True)
            # cached unit requirements: the same as pricing the unit portfolios now
            A = panel.n_assets
            units = f.requirement_reference(t, np.vstack([np.eye(A), np.zeros((A, A))]),
                                            np.vstack([np.zeros((A, A)), -np.eye(A)])).maintenance
            up, un = f.unit_requirements(t, A)
            _close(np.concatenate([up, un]), units)
        assert f.maintenance_lipschitz(400) is not None  # the overrides keep the exact intraday bound


def test_batch_invariance() -> None:
    """An account's requirement does not depend on which other accounts are priced with it."""
    panel = random_walk_panel(T=500, A=5, seed=2)
    coll, pos, _iso = _accounts(panel.n_assets, 9)
    f = HistoricalVaR(window=250).fit(panel)
    full = f.requirement(480, coll, pos).maintenance
    single = np.array([f.requirement(480, coll[i : i + 1], pos[i : i + 1]).maintenance[0] for i in range(len(coll))])
    assert np.array_equal(full, single, equal_nan=True)


def test_accounts_the_kernel_flags_are_priced_by_the_separate_column_kernel(monkeypatch) -> None:
    """A class that needs more than CAP kept losses is flagged by the fused kernel and priced by
    ``_fallback`` (a build of its own, so a cold cache compiles the column kernel only when needed);
    the numbers are the matrix path's (``stress_tail_columns``), and unflagged accounts never reach it."""
    rng = np.random.default_rng(5)
    n_window, A = 400, 3
    g = rng.standard_t(3, (n_window, A)) * 0.03
    stressed = rng.random(n_window) < 0.3
    X = rng.normal(0, 1e4, (30, A))
    prep = _hs_fused.prepare(g)
    loss = _matrix_losses(g, X)
    calls: list[np.ndarray] = []
    real = _hs_fused._fallback

    def spy(X, gT, bad, order, accounts, *rest):  # type: ignore[no-untyped-def]
        calls.append(accounts.copy())
        return real(X, gT, bad, order, accounts, *rest)

    monkeypatch.setattr(_hs_fused, "_fallback", spy)
    # confidence 0.8 on 400 rows: n_tail = 80 > CAP, so both classes need more than CAP losses
    var, es = _hs_fused.stress_tail(X, prep, n_window, 0.8, 1, stressed, 0.5)
    assert len(calls) == 1 and calls[0].tolist() == list(range(30))
    rv, re = stress_tail_columns(loss, n_window, 0.8, 1, stressed, 0.5)
    _close(var, rv)
    _close(es, re)
    calls.clear()
    var, es = _hs_fused.stress_tail(X, prep, n_window, 0.99, 1, stressed, 0.25)  # n_tail = 4: fits
    assert calls == []
    rv, re = stress_tail_columns(loss, n_window, 0.99, 1, stressed, 0.25)
    _close(var, rv)
    _close(es, re)
