"""Two-class stressed-share kernels equal an independent sort-based calculation (issue 23, item 4).

EMIR RTS 153/2013 Art. 28(1)(b): at least ``w`` of the scenario mass on
stressed observations. The reference below builds every scenario's mass
from the rule (``share = max(w, S / (S + O))``, stressed masses ``share n /
S``, calm ``(1 - share) n / O``), sorts the losses and walks to the tail
mass ``n (1 - c)`` (the quantile convention of ``riskmodels.margin._quantile``),
with none of the kernels' code. The general weighted path of
``tail_columns`` is a second, older implementation checked alongside.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.margin._quantile import tail_columns
from riskmodels.margin._stress_tail import rolling_stress_tail, stress_tail_columns
from riskmodels.margin.historical import HistoricalVaR
from riskmodels.portfolio import Book


def reference(col: np.ndarray, n_window: int, conf: float, min_window: int, stressed: np.ndarray,
              w: float) -> tuple[float, float]:
    fin = np.isfinite(col)
    n = int(fin[:n_window].sum())
    if n < min_window or n == 0:
        return np.nan, np.nan
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
    return v[j], (np.dot(m[:j], v[:j]) + (tail - before) * v[j]) / tail


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_window=st.integers(20, 400), n_extra=st.integers(0, 600),
       p_stress=st.floats(0.0, 1.0), conf=st.sampled_from([0.5, 0.8, 0.9, 0.975, 0.99, 0.999]),
       w=st.floats(0.25, 0.95), ties=st.booleans())
def test_columns_equal_the_sorted_reference(seed, n_window, n_extra, p_stress, conf, w, ties) -> None:
    rng = np.random.default_rng(seed)
    rows = n_window + n_extra
    x = rng.standard_t(3, (rows, 7))
    if ties:
        x = np.round(x, 1)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 0] = np.nan  # a column nobody can price
    stressed = np.concatenate([rng.random(n_window) < p_stress, np.ones(n_extra, dtype=bool)])
    mw = max(1, n_window // 2)
    var, es = stress_tail_columns(x, n_window, conf, mw, stressed, w)
    old_var, old_es = tail_columns(x, n_window, conf, mw, None, stressed, w)
    for p in range(x.shape[1]):
        rv, re = reference(x[:, p], n_window, conf, mw, stressed, w)
        np.testing.assert_allclose([var[p], es[p]], [rv, re], rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(var, old_var, rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(es, old_es, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_hand_example_two_masses() -> None:
    """4 calm losses and 1 stressed of 10 window rows (n = 10), c = 0.8, w = 0.25: tail mass 2.

    Window: losses 1..9 and the stressed 10 (flag on the last row); S = 1, O = 9,
    share = max(0.25, 0.1) = 0.25, stressed mass 0.25 x 10 / 1 = 2.5 >= 2: VaR = ES = 10.
    With w = 0.1 the natural share 0.1 gives mass 1: then 9 (mass 9 x 0.9 / 9 = 1)
    completes the tail: VaR = 9, ES = (10 + 9) / 2 = 9.5.
    """
    col = np.arange(1.0, 11.0)[:, None]
    flags = np.zeros(10, dtype=bool)
    flags[-1] = True
    assert stress_tail_columns(col, 10, 0.8, 10, flags, 0.25) == (pytest.approx([10.0]), pytest.approx([10.0]))
    var, es = stress_tail_columns(col, 10, 0.8, 10, flags, 0.1)
    assert var[0] == pytest.approx(9.0) and es[0] == pytest.approx(9.5)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(30, 300), window=st.integers(20, 120),
       conf=st.sampled_from([0.8, 0.95, 0.99]), w=st.floats(0.25, 0.9))
def test_rolling_equals_one_date_at_a_time(seed, T, window, conf, w) -> None:
    """The sliding kernel equals pricing each date's scenario set (window + earlier stressed) on its own."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(4, (3, T))
    x[rng.random(x.shape) < 0.03] = np.nan
    x[1, : T // 3] = np.nan  # a late listing
    stressed = np.zeros(T, dtype=bool)
    a = int(rng.integers(0, T))
    stressed[a : a + int(rng.integers(1, 40))] = True
    mw = max(1, window // 2)
    var, es = rolling_stress_tail(x, window, conf, mw, stressed, w)
    for t in range(T):
        lo = max(0, t - window + 1)
        ext = np.flatnonzero(stressed[:lo])
        cols = np.concatenate([x[:, lo : t + 1], x[:, ext]], axis=1).T
        flags = np.concatenate([stressed[lo : t + 1], np.ones(ext.size, dtype=bool)])
        rv, re = stress_tail_columns(cols, t + 1 - lo, conf, mw, flags, w)
        np.testing.assert_allclose(var[:, t], rv, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(es[:, t], re, rtol=1e-12, equal_nan=True)


def test_stress_weighted_hs_path_equals_requirements() -> None:
    """HS with stress_weight: the rolling path (cross and isolated accounts) equals one requirement per date."""
    rng = np.random.default_rng(2)
    r = 0.02 * rng.standard_normal((260, 3))
    r[0] = 0.0
    r[120:140] *= 4.0
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    close[:50, 2] = np.nan
    pan = make_panel(close, spread=0.01)
    win = [(str(pan.dates[120].date()), str(pan.dates[139].date()))]
    coll = np.abs(rng.normal(100, 50, (12, 3))) * (rng.random((12, 3)) < 0.5)
    pos = rng.normal(0, 80, (12, 3)) * (rng.random((12, 3)) < 0.7)
    book = Book(tuple(pan.assets), coll, pos, isolated=np.arange(12) % 4 == 0)
    for measure in ("var", "es"):
        f = HistoricalVaR(window=60, horizon=2, min_window=30, stress_windows=win, stress_weight=0.3,
                          measure=measure, im_multiplier=1.2).fit(pan)
        p = f.path(book)
        for t in range(40, 260, 7):
            rows = p.eligible[t]
            req = f.account_requirement(t, coll[rows], pos[rows], book.isolated[rows])
            np.testing.assert_allclose(p.maintenance[t, rows], req.maintenance, rtol=1e-10, atol=1e-9)
            np.testing.assert_allclose(p.initial[t, rows], req.initial, rtol=1e-10, atol=1e-9)
        h = f.requirement_history(100, 200, coll, pos)
        ref = np.array([f.requirement(s, coll, pos).maintenance for s in range(100, 201)])
        np.testing.assert_allclose(h.maintenance, ref, rtol=1e-10, atol=1e-9, equal_nan=True)


def test_full_sort_fallback_when_a_class_needs_more_than_its_buffer() -> None:
    """c = 0.5 over 400 window rows: the tail mass 200 needs far more than CAP losses of each class."""
    from riskmodels.margin._stress_tail import CAP

    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 5))
    stressed = np.concatenate([rng.random(400) < 0.3, np.ones(600, dtype=bool)])
    var, es = stress_tail_columns(x, 400, 0.5, 400, stressed, 0.25)
    assert 200 > 4 * CAP
    for p in range(5):
        np.testing.assert_allclose([var[p], es[p]], reference(x[:, p], 400, 0.5, 400, stressed, 0.25), rtol=1e-12)


def test_parallel_and_serial_rolling_kernels_agree_and_one_thread_picks_serial(monkeypatch) -> None:
    """Each account's rolling tail is computed alone: the parfor and the serial loop give the same bits.

    With one numba thread (the engine's workers) the serial kernel is used, so a
    cold cache never builds the parallel one.
    """
    import numba

    from riskmodels.margin import _stress_tail as stl

    rng = np.random.default_rng(11)
    P, T = 70, 200
    x = np.ascontiguousarray(rng.standard_t(4, (P, T)))
    stressed = np.zeros(T, dtype=bool)
    stressed[40:60] = True
    outs = []
    for kernel in (stl._rolling_serial, stl._rolling_parallel):
        v, e, need = np.empty((P, T)), np.empty((P, T)), np.ones((P, T), dtype=bool)
        kernel(x, 100, 50, 0.01, stressed, 0.25, v, e, need)
        outs.append((v, e, need))
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not outs[0][2].any()  # at 99% over 100 rows no class runs short of its kept losses
    used = []
    for name in ("_rolling_serial", "_rolling_parallel"):
        real = getattr(stl, name)
        monkeypatch.setattr(stl, name, lambda *a, _n=name, _k=real: (used.append(_n), _k(*a))[1])
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    stl.rolling_stress_tail(x, 100, 0.99, 50, stressed, 0.25)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    stl.rolling_stress_tail(x, 100, 0.99, 50, stressed, 0.25)
    assert used == ["_rolling_serial", "_rolling_parallel"]


def test_rolling_dates_the_kernel_marks_are_priced_by_the_full_sort_kernel(monkeypatch) -> None:
    """At c = 0.5 the tail mass (~50 of 100 window rows) needs more calm losses than the sliding kernel keeps.

    Those dates are marked and priced by ``_rolling_fallback`` (a kernel of its
    own, so a cold cache compiles the sort only when a date needs it); every
    date, marked or not, equals the independent sort-based ``reference`` on
    its scenario set (the window plus every earlier stressed row). At 99% no
    date is marked and the fallback is not called.
    """
    from riskmodels.margin import _stress_tail as stl

    rng = np.random.default_rng(5)
    P, T, W = 4, 260, 100
    x = rng.standard_t(4, (P, T))
    x[rng.random(x.shape) < 0.03] = np.nan
    stressed = np.zeros(T, dtype=bool)
    stressed[30:70] = True
    calls = []
    real = stl._rolling_fallback

    def spy(losses, ps, ts, *rest):  # type: ignore[no-untyped-def]
        calls.append((ps.copy(), ts.copy()))
        return real(losses, ps, ts, *rest)

    monkeypatch.setattr(stl, "_rolling_fallback", spy)
    var, es = stl.rolling_stress_tail(x, W, 0.5, 50, stressed, 0.25)
    assert len(calls) == 1 and calls[0][0].size > 100  # most priced dates need the full sort
    for p in range(P):
        for t in range(T):
            lo = max(0, t - W + 1)
            ext = np.flatnonzero(stressed[:lo])
            col = np.concatenate([x[p, lo : t + 1], x[p, ext]])
            flags = np.concatenate([stressed[lo : t + 1], np.ones(ext.size, dtype=bool)])
            rv, re = reference(col, t + 1 - lo, 0.5, 50, flags, 0.25)
            np.testing.assert_allclose([var[p, t], es[p, t]], [rv, re], rtol=1e-12, atol=1e-12, equal_nan=True)
    calls.clear()
    stl.rolling_stress_tail(x, W, 0.99, 50, stressed, 0.25)
    assert calls == []
