"""Bad option inputs through the CLI: one ``riskmodels: error:`` line naming the position, file or key."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskmodels.cli import main

BASE = ('[data]\ndir = "embedded"\nuniverse = ["BTC", "ETH"]\nstart = "2021-01-01"\nend = "2021-02-28"\n'
        '[backtest]\nn_jobs = 1\nnetting = false\n'
        '[[models]]\nname = "fixed_haircut"\nlabel = "Deribit standard"\n')
HEAD = "account,asset,kind,usd,type,strike,expiry,quantity,trade\n"

CASES = [
    ("negative-strike", HEAD + "bob,USD,cash,1000,,,,,\nbob,BTC,option,,call,-5,2021-03-26,-1,\n", "", "",
     ["book.csv", "line 3", "option strike = '-5' must be a positive USD strike"]),
    ("expiry-before-trade", HEAD + "bob,BTC,option,,put,30000,2021-01-15,1,2021-02-01\n", "", "",
     ["line 2", "option expiry = '2021-01-15' is not after the trade date"]),
    ("no-prices", HEAD + "bob,DOGE,option,,call,1,2021-03-26,1,\n", "", "",
     ["option bob DOGE call 1 2021-03-26 (line 2) is on DOGE, which has no prices"]),
    ("iv-nan", HEAD + "bob,BTC,option,,call,40000,2021-03-26,-1,\n",
     "date,asset,tenor_days,iv\n2021-01-01,BTC,30,0.8\n2021-01-02,BTC,30,nan\n", "",
     ["iv.csv", "line 3", "iv = 'nan'"]),
    ("iv-missing", HEAD + "bob,BTC,option,,call,40000,2021-03-26,-1,\n",
     "date,asset,tenor_days,iv\n2021-01-01,BTC,30,0.8\n", "",
     ["option bob BTC call 40000 2021-03-26 (line 2): implied vol nan on 2021-01-07", "vol_fallback"]),
    ("options-typo", None, "", "[options]\nstrikes_by = \"delta\"\n", ["[options]", "'strikes_by'", "strike_by"]),
    ("proxy-range", None, "", "[options.proxy]\npremium = 10\n", ["[options.proxy]", "premium"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_option_input_is_one_clear_message(case, tmp_path: Path, capsys) -> None:
    _id, book, iv, extra, words = case
    text = BASE
    if book is not None:
        (tmp_path / "book.csv").write_text(book)
        text = text.replace("[backtest]", f'[book]\nsource = "{tmp_path / "book.csv"}"\n[backtest]')
    opts = extra
    if iv:
        (tmp_path / "iv.csv").write_text(iv)
        opts = f'[options]\nvol_file = "{tmp_path / "iv.csv"}"\n' + opts
    elif book is None:
        opts = extra
    cfg = tmp_path / "run.toml"
    cfg.write_text(text + opts)
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("riskmodels:")]
    assert len(lines) == 1 and lines[0].startswith("riskmodels: error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "out").exists()
