"""The verdict's bootstrap kernel against the numpy statement it replaced and against a loop over resamples."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest import verdict
from riskmodels.backtest._verdict_kernel import boot_tail_counts


def _numpy_counts(d: np.ndarray, idx: np.ndarray, h: int, s: float, z: float) -> tuple[int, int, int]:
    """The bootstrap of ``exceedance_z`` as it was stated with arrays: gather, sum, demean, Hansen-Hodrick."""
    ds = d[idx]
    ss = ds.sum(axis=1)
    vs = verdict._hh_var(ds - ds.mean(axis=1, keepdims=True), h)
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = (ss - s) / np.sqrt(vs)
    zs = zs[np.isfinite(zs)]
    return int(zs.size), int(np.sum(zs >= z)), int(np.sum(zs <= z))


def _loop_counts(d: np.ndarray, idx: np.ndarray, h: int, s: float, z: float) -> tuple[int, int, int, int]:
    """The same counts written one resample at a time with math.fsum (exactly rounded sums), and the near ties.

    A near tie is a resample whose ``Z*`` is within 1e-9 of ``z`` (a resample
    that repeats the sample has ``S* - S`` = rounding): summation order decides
    its side, so a count may differ from another summation's by the ties.
    """
    import math

    fin = ge = le = ties = 0
    for row in idx:
        x = d[row]
        tot = math.fsum(x)
        e = x - tot / x.size
        v0 = math.fsum(e * e)
        v = v0 + 2.0 * sum(math.fsum(e[:-k] * e[k:]) for k in range(1, h) if k < x.size)
        v = v if v > 0 else v0
        if v > 0 and math.isfinite((tot - s) / math.sqrt(v)):
            zs = (tot - s) / math.sqrt(v)
            fin += 1
            ge += zs >= z
            le += zs <= z
            ties += abs(zs - z) < 1e-9
    return fin, ge, le, ties


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(2, 300),
    h=st.integers(1, 4),
    n_boot=st.integers(1, 60),
    seed=st.integers(0, 2**31),
    zshift=st.floats(-3, 3),
)
def test_kernel_counts_equal_the_array_statement_and_the_loop(T: int, h: int, n_boot: int, seed: int, zshift: float) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 200, T)
    d = rng.binomial(n, 0.02) - 0.01 * n
    b = min(verdict.block_length(T, h), T)
    starts = verdict._boot_starts(T, b, n_boot, seed)
    idx = verdict._boot_index(T, b, n_boot, seed)
    s = float(d.sum())
    z = zshift  # any threshold (0 makes ties: a resample can repeat the sample): the counts are compared
    got = boot_tail_counts(d, starts, b, h, s, z)
    fin, ge, le, ties = _loop_counts(d, idx, h, s, z)
    for other in (_numpy_counts(d, idx, h, s, z), (fin, ge, le)):
        assert got[0] == other[0] == fin
        assert abs(got[1] - other[1]) <= ties and abs(got[2] - other[2]) <= ties


def test_degenerate_resamples_are_dropped_like_the_array_statement() -> None:
    """Constant blocks have zero variance: Z* is 0/0 or x/0, not finite, and not counted (both forms)."""
    d = np.array([1.0, 1.0, 1.0, 1.0, -2.0, 5.0])
    starts = np.array([[0, 1], [3, 3], [0, 3]])
    idx = (starts[:, :, None] + np.arange(3)).reshape(3, -1)[:, :6]
    for h in (1, 2, 3):
        assert boot_tail_counts(d, starts, 3, h, float(d.sum()), 0.1) == _numpy_counts(d, idx, h, float(d.sum()), 0.1)
    assert boot_tail_counts(np.ones(4), np.array([[0, 2]]), 2, 2, 4.0, 0.0) == (0, 0, 0)


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 40), P=st.integers(1, 6), step=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_panel_counts_equal_the_array_statements_of_a_subsample(T: int, P: int, step: int, seed: int) -> None:
    """Counts and Christoffersen transitions of ``exc[k::h]`` (the copies the coverage report used to make)."""
    from riskmodels.backtest.stats_core import _transition_counts_numpy, panel_counts

    rng = np.random.default_rng(seed)
    ok = rng.random((T, P)) < 0.8
    exc = (rng.random((T, P)) < 0.3) & ok
    for k in range(step):
        c = panel_counts(exc, ok, k, step)
        e, v = exc[k::step], ok[k::step]
        np.testing.assert_array_equal(c[0], e.sum(axis=0))
        np.testing.assert_array_equal(c[1], v.sum(axis=0))
        np.testing.assert_array_equal(c[2:], np.array(_transition_counts_numpy(e, v)).reshape(4, P))


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 30), P=st.integers(1, 8), G=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_daily_counts_equal_the_matrix_products(T: int, P: int, G: int, seed: int) -> None:
    """``X = (exc & ok) @ masks`` and ``N = ok @ masks`` (integer matrix products: exact)."""
    rng = np.random.default_rng(seed)
    ok = rng.random((T, P)) < 0.8
    exc = rng.random((T, P)) < 0.3  # exceptions outside ``ok`` must not count
    masks = rng.random((P, G)) < 0.5
    X, N = verdict.daily_counts(exc, ok, masks)
    np.testing.assert_array_equal(X, (exc & ok).astype(np.int64) @ masks.astype(np.int64))
    np.testing.assert_array_equal(N, ok.astype(np.int64) @ masks.astype(np.int64))
