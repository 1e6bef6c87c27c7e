"""Books with options: CSV/TOML rows, strict errors naming the position, subset/align/scaled/frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskmodels.errors import UserError
from riskmodels.instruments.options import OptionTable
from riskmodels.portfolio import Book

CSV_HEAD = "account,asset,kind,usd,type,strike,expiry,quantity,trade,hedged\n"
GOOD_CSV = (CSV_HEAD + "bob,USD,cash,20000,,,,,,\n"
            "bob,BTC,collateral,30000,,,,,,\n"
            "bob,BTC,option,,call,40000,2021-03-26,-1,2021-01-01,false\n"
            "amy,ETH,position,-5000,,,,,,\n"
            "amy,ETH,option,,put,1000,2021-02-26,2,,true\n")


def _book(tmp_path: Path, text: str, name: str = "book.csv") -> Book:
    p = tmp_path / name
    p.write_text(text)
    return Book.read(p)


def test_csv_book_with_options(tmp_path: Path) -> None:
    b = _book(tmp_path, GOOD_CSV)
    o = b.options
    assert b.has_options and len(o) == 2 and b.assets == ("BTC", "ETH")
    assert list(np.asarray(b.account_ids)[o.account]) == ["bob", "amy"]
    assert list(o.is_call) == [True, False] and list(o.strike) == [40000, 1000] and list(o.quantity) == [-1, 2]
    assert str(o.expiry[0]) == "2021-03-26" and str(o.trade[0]) == "2021-01-01" and np.isnat(o.trade[1])
    assert list(o.hedged) == [False, True]
    assert "line 4" in o.ids[0]
    assert b.held()[1, 1] and b.held()[0, 0]


def test_toml_book_with_options(tmp_path: Path) -> None:
    b = _book(tmp_path, """
[[account]]
id = "bob"
cash = 20000
collateral = { BTC = 30000 }
options = [{ asset = "BTC", type = "call", strike = 40000, expiry = "2021-03-26", quantity = -1 },
           { asset = "BTC", type = "put", strike = 30000, expiry = 2021-03-26, quantity = 1, trade = "2021-01-04" }]
""", "book.toml")
    o = b.options
    assert len(o) == 2 and list(o.is_call) == [True, False] and str(o.expiry[1]) == "2021-03-26"
    assert str(o.trade[1]) == "2021-01-04"


@pytest.mark.parametrize("row,needle", [
    ("bob,BTC,option,,call,-5,2021-03-26,-1,,", "line 3: option strike = '-5' must be a positive USD strike"),
    ("bob,BTC,option,,call,0,2021-03-26,-1,,", "option strike = '0' must be a positive"),
    ("bob,BTC,option,,call,x,2021-03-26,-1,,", "option strike = 'x' is not a number"),
    ("bob,BTC,option,,straddle,100,2021-03-26,-1,,", "option type = 'straddle' must be call or put"),
    ("bob,BTC,option,,call,100,2021-03-26,0,,", "quantity = '0' is zero"),
    ("bob,BTC,option,,call,100,2021-02-30,1,,", "option expiry = '2021-02-30' is not an ISO date"),
    ("bob,BTC,option,,call,100,2021-01-01,1,2021-02-01,", "option expiry = '2021-01-01' is not after the trade date"),
    ("bob,BTC,option,,call,100,2021-03-26,1,,maybe", "option hedged = 'maybe' must be true or false"),
    ("bob,BTC,option,5,call,100,2021-03-26,1,,", "usd = '5' must be empty on an option row"),
    ("bob,BTC,collateral,5,call,,,,,", "type = 'call' must be empty on a row that is not an option"),
])
def test_bad_option_rows_name_the_line(tmp_path: Path, row: str, needle: str) -> None:
    with pytest.raises(UserError) as exc:
        _book(tmp_path, CSV_HEAD + "bob,USD,cash,1,,,,,,\n" + row + "\n")
    assert needle in str(exc.value) and "book.csv" in str(exc.value)


@pytest.mark.parametrize("opt,needle", [
    ('{ asset = "BTC", type = "call", strike = -1, expiry = "2021-03-26", quantity = 1 }', "strike = -1.0 must be"),
    ('{ asset = "BTC", type = "call", strike = 1, expiry = "2021-03-26", quantity = 1, trade = "2021-04-01" }',
     "is not after the trade date"),
    ('{ asset = "BTC", type = "call", strike = 1, quantity = 1 }', "lacks ['expiry']"),
    ('{ asset = "BTC", type = "call", strike = 1, expiry = "2021-03-26", qty = 1 }', "qty"),
])
def test_bad_toml_options_name_the_account_and_option(tmp_path: Path, opt: str, needle: str) -> None:
    with pytest.raises(UserError) as exc:
        _book(tmp_path, f'[[account]]\nid = "bob"\ncash = 1\noptions = [{opt}]\n', "book.toml")
    assert needle in str(exc.value)
    assert "(bob) options[0]" in str(exc.value)


def test_option_on_an_asset_without_prices_names_the_position(tmp_path: Path) -> None:
    b = _book(tmp_path, GOOD_CSV)
    with pytest.raises(UserError, match=r"option amy ETH put 1000 2021-02-26 \(line 6\) is on ETH, which has no prices"):
        b.align(("BTC", "SOL"))


def _table() -> Book:
    opt = OptionTable(("BTC", "ETH"), [0, 2, 2], [0, 1, 0], [True, False, True], [100.0, 50.0, 120.0],
                      np.array(["2021-03-26"] * 3, dtype="datetime64[D]"), [-1.0, 2.0, 3.0])
    return Book(("BTC", "ETH"), np.zeros((3, 2)), np.array([[0, 10.0], [5, 0], [0, 0]]), options=opt)


def test_subset_align_scaled_and_frame_round_trip_keep_the_options() -> None:
    b = _table()
    s = b.subset([2, 0])
    assert list(s.options.account) == [1, 0, 0] and list(s.options.strike) == [100.0, 50.0, 120.0]
    m = b.subset(np.array([False, True, True]))
    assert list(m.options.account) == [1, 1]
    al = b.align(("SOL", "ETH", "BTC"))
    assert list(np.asarray(al.assets)[al.options.asset]) == ["BTC", "ETH", "BTC"]
    sc = b.scaled(np.array([1.0, 2.0, 3.0]))
    assert list(sc.options.quantity) == [-1.0, 6.0, 9.0]
    back = Book.from_frame(b.to_frame())
    o, p = back.options, b.options
    assert back.account_ids == b.account_ids
    for f in ("account", "is_call", "strike", "expiry", "quantity", "hedged"):
        np.testing.assert_array_equal(getattr(o, f), getattr(p, f))
    assert list(np.asarray(back.assets)[o.asset]) == list(np.asarray(b.assets)[p.asset])


def test_linear_book_frame_is_unchanged() -> None:
    b = Book(("BTC",), np.array([[1.0]]), np.array([[2.0]]))
    assert list(b.to_frame().columns) == ["account", "asset", "kind", "usd", "isolated"]
    assert b.options is None and not b.has_options


def test_a_written_book_reads_back(tmp_path: Path) -> None:
    """Book.to_frame written as CSV is a valid book file (the option ids come back as the positions' names)."""
    b = _table()
    p = tmp_path / "back.csv"
    b.to_frame().to_csv(p, index=False)
    back = Book.read(p)
    assert back.options.ids[0].startswith("opt00000")
    np.testing.assert_array_equal(back.options.quantity, b.options.quantity)
    np.testing.assert_array_equal(back.positions, b.positions)
