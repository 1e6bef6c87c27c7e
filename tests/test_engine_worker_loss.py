"""A pool worker's realised loss: computed once per book and process, equal to ``realised_loss``.

``engine._worker_loss`` keys the window's realised MPOR loss on a digest of
the closes and the book's amounts. Checked: it equals
:func:`riskmodels.backtest.coverage.realised_loss` (the formula, itself
tested against a hand calculation in ``test_coverage*``); the same content in
fresh objects (a worker's next row) is a hit; other amounts, closes or
horizon are misses; a book over the cell limit is left to the per-block path;
the cached array is read-only; and a model's coverage cells are the same
whether the path got the loss or computed it per block.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import random_walk_panel

from riskmodels.backtest import engine
from riskmodels.backtest.coverage import coverage_backtest, realised_loss
from riskmodels.margin.haircut import FixedHaircut
from riskmodels.portfolio import Book


def _book(A: int, P: int, seed: int) -> Book:
    rng = np.random.default_rng(seed)
    coll = np.where(rng.random((P, A)) < 0.5, rng.uniform(0, 1e4, (P, A)), 0.0)
    pos = np.where(rng.random((P, A)) < 0.5, rng.normal(0, 1e4, (P, A)), 0.0)
    return Book([f"A{i}" for i in range(A)], coll, pos, np.full(P, 1e3), rng.random(P) < 0.2)


@pytest.fixture(autouse=True)
def _empty_memo():
    engine._LOSS_MEMO.clear()
    yield
    engine._LOSS_MEMO.clear()


def test_equals_realised_loss_and_hits_on_equal_content() -> None:
    panel = random_walk_panel(T=300, A=3, seed=1)
    panel = copy.copy(panel)
    book = _book(3, 40, 2)
    got = engine._worker_loss(panel, book, 2, 100, 250)
    ref = realised_loss(panel, book, 2, slice(100, 251))
    np.testing.assert_array_equal(got, ref)
    assert not got.flags.writeable
    again = engine._worker_loss(copy.deepcopy(panel), copy.deepcopy(book), 2, 100, 250)
    assert again is got  # a fresh unpickled copy of the same book: the same array
    iso = Book(book.assets, book.collateral, book.positions, book.cash, np.ones(40, dtype=bool))
    assert engine._worker_loss(panel, iso, 2, 100, 250) is got  # the netting book: same amounts, same loss


def test_other_amounts_closes_or_horizon_miss() -> None:
    panel = random_walk_panel(T=300, A=3, seed=1)
    book = _book(3, 40, 2)
    first = engine._worker_loss(panel, book, 2, 100, 250)
    pos = book.positions.copy()
    pos[0, 0] += 1.0
    other = Book(book.assets, book.collateral, pos, book.cash, book.isolated)
    np.testing.assert_array_equal(engine._worker_loss(panel, other, 2, 100, 250),
                                  realised_loss(panel, other, 2, slice(100, 251)))
    assert engine._worker_loss(panel, book, 3, 100, 250) is not first
    np.testing.assert_array_equal(engine._worker_loss(panel, book, 3, 100, 250),
                                  realised_loss(panel, book, 3, slice(100, 251)))
    panel2 = random_walk_panel(T=300, A=3, seed=9)
    np.testing.assert_array_equal(engine._worker_loss(panel2, book, 2, 100, 250),
                                  realised_loss(panel2, book, 2, slice(100, 251)))


def test_large_books_are_left_to_the_block_path(monkeypatch) -> None:
    monkeypatch.setattr(engine, "LOSS_MEMO_CELLS", 100)
    panel = random_walk_panel(T=300, A=3, seed=1)
    assert engine._worker_loss(panel, _book(3, 40, 2), 2, 100, 250) is None


def test_window_path_coverage_is_the_same_with_the_shared_loss() -> None:
    panel = random_walk_panel(T=400, A=3, seed=4)
    book = _book(3, 30, 5)
    fitted = FixedHaircut(imf=0.1, mmf=0.05).fit(panel)
    elig = np.ones((panel.n_dates, book.n_accounts), dtype=bool)
    loss = engine._worker_loss(panel, book, 2, 50, 390)
    _p1, c1 = engine._window_path(fitted, panel, book, elig, 50, 390, 2, "initial", loss)
    _p2, c2 = engine._window_path(fitted, panel, book, elig, 50, 390, 2, "initial", None)
    np.testing.assert_array_equal(c1.valid, c2.valid)
    np.testing.assert_array_equal(c1.exceptions, c2.exceptions)
    ref = coverage_backtest(panel, book, fitted.path(book).window(50, 390), 2)
    np.testing.assert_array_equal(c1.exceptions, ref.exceptions)
