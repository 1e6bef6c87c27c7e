"""The Book: construction, files, generator, measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskmodels.portfolio import Book, generate_book

ASSETS = ("BTC", "ETH", "SOL")


def test_measures_by_hand():
    """Collateral BTC 10k + ETH 5k, perps BTC -4k, SOL +20k, cash 1k.

    gross = 4k + 20k + 15k = 39k; net delta = 10k - 4k + 5k + 20k = 31k;
    equity at the reference prices = 1k + 15k = 16k.
    """
    b = Book(ASSETS, [[10_000, 5_000, 0]], [[-4_000, 0, 20_000]], cash=[1_000])
    assert b.gross_notional[0] == 39_000
    assert b.net_notional[0] == 31_000
    assert b.equity[0] == 16_000
    assert b.position_notional[0] == 24_000
    assert b.held().tolist() == [[True, True, True]]


def test_csv_and_toml_round_trip(tmp_path: Path):
    b = Book(ASSETS, [[10_000, 0, 0], [0, 2_000, 0]], [[0, -1_000, 5_000], [3_000, 0, 0]],
             cash=[100, 0], isolated=[False, True], account_ids=("alice", "bob"))
    csv = tmp_path / "book.csv"
    b.to_frame().to_csv(csv, index=False)
    back = Book.read(csv).align(ASSETS)
    np.testing.assert_array_equal(back.collateral, b.collateral)
    np.testing.assert_array_equal(back.positions, b.positions)
    np.testing.assert_array_equal(back.cash, b.cash)
    assert back.isolated.tolist() == [False, True]
    toml = tmp_path / "book.toml"
    toml.write_text(
        '[[account]]\nid = "alice"\ncash = 100\ncollateral = { BTC = 10000 }\npositions = { ETH = -1000, SOL = 5000 }\n'
        '[[account]]\nid = "bob"\nisolated = true\ncollateral = { ETH = 2000 }\npositions = { BTC = 3000 }\n'
    )
    t = Book.read(toml).align(ASSETS)
    np.testing.assert_array_equal(t.collateral, b.collateral)
    np.testing.assert_array_equal(t.positions, b.positions)
    assert t.account_ids == ("alice", "bob") and t.isolated.tolist() == [False, True]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"collateral": [[-1, 0, 0]], "positions": [[0, 0, 0]]}, "negative"),
        ({"collateral": [[np.nan, 0, 0]], "positions": [[0, 0, 0]]}, "not finite"),
        ({"collateral": [[0, 0]], "positions": [[0, 0, 0]]}, "must both be"),
    ],
)
def test_bad_books_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Book(ASSETS, **kwargs)


def test_align_refuses_to_drop_held_assets():
    b = Book(ASSETS, [[1, 0, 0]], [[0, 0, 5]])
    with pytest.raises(KeyError, match="SOL"):
        b.align(("BTC", "ETH"))
    wide = b.align(("XRP", "SOL", "BTC", "ETH"))
    assert wide.positions.tolist() == [[0, 5, 0, 0]]


def test_missing_book_file_is_named(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        Book.read(tmp_path / "nope.csv")
    bad = tmp_path / "b.csv"
    bad.write_text("account,asset,usd\nx,BTC,1\n")
    with pytest.raises(ValueError, match="kind"):
        Book.read(bad)


def test_generator_is_seeded_and_realistic():
    a = generate_book(ASSETS, 500, seed=3)
    b = generate_book(ASSETS, 500, seed=3)
    c = generate_book(ASSETS, 500, seed=4)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, c.positions)
    k = (a.positions != 0).sum(axis=1)
    assert k.min() >= 1 and k.max() <= 3
    assert (a.collateral >= 0).all()
    assert 0.5 < (a.positions.sum(axis=1) > 0).mean() < 0.7  # long probability 0.6
    lev = a.position_notional / a.equity
    assert 1.0 - 1e-9 <= lev.min() and lev.max() <= 20.0 + 1e-9
    assert 0.05 < a.isolated.mean() < 0.15
