"""The all-isolated margin path (the engine's netting path) against a date-by-date reference.

Reference: for every date, ``fitted.isolated_requirement(t, c, p)`` on the
eligible rows (the per-account sum of stand-alone requirements), independent
of the unit-matrix products of each model's ``path``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_walk_panel

from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.margin.apc import Buffer25, StressWeight25
from riskmodels.margin.base import MarginPath, combine_units
from riskmodels.margin.deribit import DeribitPM
from riskmodels.margin.garch import EwmaMargin, GarchMargin
from riskmodels.margin.historical import HistoricalVaR
from riskmodels.margin.span import ScenarioGrid
from riskmodels.portfolio import Book

FAST = dict(min_history=150, window_length=300, refit_every=60, fhs_window=100, n_jobs=1)
HS = HistoricalVaR(window=40, horizon=2, im_multiplier=1.2)


def _panel_book(isolated: str) -> tuple[object, Book]:
    pan = random_walk_panel(T=320, A=3, seed=3)
    close = pan.close.copy()
    close[:200, 2] = np.nan  # the third asset lists late: NaN units before
    pan = pan.with_close(close)
    rng = np.random.default_rng(4)
    P = 9
    coll = np.abs(rng.normal(size=(P, 3))) * 100
    coll[:, 2] = 0.0
    pos = rng.normal(size=(P, 3)) * 100
    pos[0, 2] = 0.0  # does not hold the young asset: priced before it lists
    pos[1, 2] = 0.0
    coll[8] = pos[8] = 0.0  # empty account
    iso = np.ones(P, bool) if isolated == "all" else np.arange(P) % 3 == 1
    return pan, Book(tuple(pan.assets), coll, pos, isolated=iso)


MODELS = {
    "hs": lambda: HS,
    "hs_stress": lambda: HistoricalVaR(window=40, horizon=2, stress_windows=[("2020-05-01", "2020-06-15")],
                                       stress_weight=0.3),
    "fhs": lambda: HistoricalVaR(window=40, horizon=2, method="fhs"),
    "garch_t": lambda: GarchMargin(vol="garch", dist="t", horizon=2, **FAST),
    "ewma": lambda: EwmaMargin(horizon=2, min_history=150),
    "span": lambda: ScenarioGrid(psr_lookback=60, psr_min_obs=30),
    "deribit": lambda: DeribitPM(),
    "apc_buffer": lambda: Buffer25(HS),
    "apc_stress": lambda: StressWeight25(HS, stress_windows=[("2020-05-01", "2020-06-15")]),
}


def _reference(f: object, book: Book, eligible: np.ndarray) -> np.ndarray:
    T, P = eligible.shape
    ref = np.full((T, P), np.nan)
    for t in np.flatnonzero(eligible.any(axis=1)):
        rows = eligible[t]
        ref[t, rows] = f.isolated_requirement(int(t), book.collateral[rows], book.positions[rows]).maintenance
    return ref


# the declared rule's cap around a path rule (the buffer) is left out: the cap acts on the rule's own
# path, and the plain-model cases with declared=True cover the cap on the unit sums
CASES = [(n, d) for n in sorted(MODELS) for d in (False, True) if not (n == "apc_buffer" and d)]


@pytest.mark.parametrize(("name", "declared"), CASES)
def test_all_isolated_path_equals_per_date_units(name: str, declared: bool) -> None:
    pan, book = _panel_book("all")
    f = MODELS[name]().fit(pan)
    if declared:
        f = apply_rule(f, 1 / 1.1)
    if name == "apc_buffer":
        # a path rule on each account's own isolated path: the rule applied to the reference inner path
        fast = f.path(book)
        ref_inner = _reference(f.inner, book, fast.eligible)
        ref = f.model.apply(MarginPath(fast.model, fast.dates, fast.account_ids, 1.2 * ref_inner, ref_inner,
                                       fast.eligible)).maintenance
    else:
        fast = f.path(book)
        ref = _reference(f, book, fast.eligible)
    ok = fast.eligible
    assert ok.sum() > 100 and (~ok).any()
    np.testing.assert_allclose(fast.maintenance[ok], ref[ok], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(np.isnan(fast.maintenance), np.isnan(ref))
    # mixed book: the isolated columns by the same reference, the cross ones unchanged
    pan, mixed = _panel_book("mixed")
    g = MODELS[name]().fit(pan)
    if name == "apc_buffer":
        return
    mp = g.path(mixed)
    iso = mixed.isolated
    ref = _reference(g, Book(mixed.assets, mixed.collateral[iso], mixed.positions[iso],
                             isolated=np.ones(iso.sum(), bool)), mp.eligible[:, iso])
    np.testing.assert_allclose(mp.maintenance[:, iso], ref, rtol=1e-12, atol=1e-9)


def test_combine_units_nan_only_poisons_holders() -> None:
    up = np.array([[1.0, np.nan, 2.0], [0.5, 0.25, 3.0]])
    un = np.array([[1.5, 0.75, np.nan], [0.5, 0.25, 3.0]])
    c = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    p = np.array([[0.0, 0.0, 4.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -2.0]])
    for uc in (None, up):
        out = combine_units(c, p, up, un, uc)
        # date 0: account 0 holds asset 2 long (unit 2.0), account 1 holds asset 1 (NaN), account 2 short asset 2 (NaN)
        np.testing.assert_array_equal(out[0], [1.0 + 8.0, np.nan, np.nan])
        np.testing.assert_array_equal(out[1], [0.5 + 12.0, 0.5 + 0.5, 6.0])
    uc = np.array([[9.0, 9.0, 9.0], [np.nan, 1.0, 1.0]])
    out = combine_units(c, p, up, un, uc)
    np.testing.assert_array_equal(out[:, 0], [9.0 + 8.0, np.nan])


def test_combine_units_all_finite_is_the_stated_sum_and_the_nan_paths_numbers() -> None:
    """``M_n(t) = sum_a c Uc + max(p, 0) U+ + max(-p, 0) U-`` (docstring), with and without a NaN unit elsewhere.

    With every unit finite the function skips its NaN bookkeeping; the numbers must be the explicit sum, and
    bitwise those of the bookkeeping path (forced here by a NaN unit of an asset no account holds).
    """
    rng = np.random.default_rng(11)
    T, N, A = 7, 40, 5
    c = np.abs(rng.normal(1e4, 5e3, (N, A))) * (rng.random((N, A)) < 0.5)
    p = rng.normal(0, 2e4, (N, A)) * (rng.random((N, A)) < 0.5)
    c[:, A - 1] = p[:, A - 1] = 0.0  # nobody holds the last asset
    up, un, ucol = (np.abs(rng.normal(0.1, 0.05, (T, A))) for _ in range(3))
    for uc in (None, ucol):
        got = combine_units(c, p, up, un, uc)
        cu = up if uc is None else uc
        want = np.array([[sum(c[n, a] * cu[t, a] + max(p[n, a], 0) * up[t, a] + max(-p[n, a], 0) * un[t, a]
                              for a in range(A)) for n in range(N)] for t in range(T)])
        np.testing.assert_allclose(got, want, rtol=1e-12)
        nan_up, nan_un = up.copy(), un.copy()
        nan_up[:, A - 1] = np.nan
        nan_un[:, A - 1] = np.nan
        nan_uc = None if uc is None else np.where(np.arange(A) == A - 1, np.nan, uc)
        np.testing.assert_array_equal(combine_units(c, p, nan_up, nan_un, nan_uc), got)
