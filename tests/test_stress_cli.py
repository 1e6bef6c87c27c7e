"""``riskmodels stress`` and the backtest's ``[stress]`` outputs, end to end on the real data (small book)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_panel

from riskmodels.backtest.engine import run_models
from riskmodels.cli import main
from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import Book, generate_book
from riskmodels.stress import StressConfig, backtest_stress

SMALL = """
[data]
universe = ["BTC", "ETH", "SOL"]
start = "2021-06-01"
end = "2022-12-31"
[book]
accounts = 40
seed = 3
group_size = [1, 3]
[backtest]
min_history = 365
[[models]]
name = "fixed_haircut"
label = "flat"
params = { imf = 0.1, mmf = 0.05 }
[stress]
worst_windows = 2
btc_shocks = [-0.3]
[[stress.scenarios]]
name = "ETH unwind"
moves = { ETH = -0.45 }
default = -0.2
"""


def test_stress_command_prints_the_table_and_writes_csv(data_root: Path, tmp_path: Path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text(SMALL)
    out = tmp_path / "out"
    rc = main(["stress", "--date", "2022-11-10", "--config", str(cfg), "--data", str(data_root), "--out", str(out),
               "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "stress on 2022-11-10" in text and "Cover-2" in text and "ETH unwind" in text
    assert "crash 2022-11-09 FTX" in text and "reverse stress, all assets fall" in text
    tab = pd.read_csv(out / "stress_table.csv")
    assert {"scenario", "cover1", "cover2", "rule", "model"} <= set(tab.columns)
    assert (tab["cover2"] >= tab["cover1"]).all() and (tab["cover1"] >= 0).all()
    scen = pd.read_csv(out / "scenarios.csv")
    # the FTX row is each asset's own 2-day move in a window containing 2022-11-09
    ftx = scen[scen.scenario == "crash 2022-11-09 FTX"].iloc[0]
    assert -0.5 < ftx["BTC"] < 0 and -0.8 < ftx["SOL"] < ftx["BTC"]
    cover = pd.read_csv(out / "cover.csv")
    assert cover["cover2"].iloc[0] == pytest.approx(tab["cover2"].max())
    assert set(pd.read_csv(out / "reverse_stress.csv")["family"]) >= {"all assets fall", "all assets rise"}
    acc = pd.read_csv(out / "stress_accounts.csv")
    assert len(acc) == 40 and (acc["worst_loss_beyond_margin"] >= 0).all()
    # a group's Cover-1 is at least its largest member's worst loss beyond margin
    assert cover["cover1"].iloc[0] >= acc["worst_loss_beyond_margin"].max() - 1e-6


def test_stress_errors_name_the_key(data_root: Path, tmp_path: Path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(SMALL + "\n[stress.extra]\n")
    assert main(["stress", "--date", "2022-11-10", "--config", str(cfg), "--data", str(data_root)]) == 2
    assert "[stress] has unknown key(s) ['extra']" in capsys.readouterr().err
    cfg.write_text(SMALL.replace("worst_windows = 2", "worst_windows = 2\nmargin = 'posted'"))
    assert main(["stress", "--date", "2022-11-10", "--config", str(cfg), "--data", str(data_root)]) == 2
    assert "stress.margin='posted'" in capsys.readouterr().err
    cfg.write_text(SMALL)
    assert main(["stress", "--date", "not-a-date", "--config", str(cfg), "--data", str(data_root)]) == 2
    assert "--date" in capsys.readouterr().err


def _bt_panel() -> PricePanel:
    p = random_walk_panel(T=500, A=3, seed=5, vol=0.06)
    return PricePanel(p.dates, ("BTC", "ETH", "SOL"), p.open, p.high, p.low, p.close, p.volume)


def test_backtest_stress_outputs(tmp_path: Path):
    panel = _bt_panel()
    book = generate_book(panel.assets, 80, seed=2, group_size=(1, 4))
    res = run_models(panel, book, [FixedHaircut(imf=0.05, mmf=0.03, label="hc")], mpor=2, min_history=100,
                     start=150, netting=False)
    st = backtest_stress(res, StressConfig(every=7))
    cov = st.cover
    assert cov["date"].iloc[-1] == panel.dates[-1] and len(cov) == len(range(150, 500, 7)) + 1
    assert (cov["cover2"] >= cov["cover1"] - 1e-9).all()
    # the end date's full table agrees with the fast path
    assert cov["cover2"].iloc[-1] == pytest.approx(st.final.results["hc"].cover(2)[0])
    assert cov["cover1_scenario"].iloc[-1] == st.final.results["hc"].cover(1)[1]
    # a group's Cover-1 is at least its largest member's
    r = st.final.results["hc"]
    assert r.cover(1)[0] >= r.uncovered.max() - 1e-9
    lg = st.ledgers["hc"].ledger
    assert len(lg) == 350
    files = st.write(tmp_path / "stress")
    assert {"scenarios.csv", "stress_table.csv", "cover.csv", "fund.csv", "adl.csv", "reverse_stress.csv",
            "stress_summary.json", "cover_fund.png"} <= set(files)
    assert (tmp_path / "stress" / "cover_fund.png").read_bytes()[:4] == b"\x89PNG"
    summ = json.loads((tmp_path / "stress" / "stress_summary.json").read_text())
    assert summ["models"][0]["model"] == "hc"
    st.write(tmp_path / "stress")  # replacing an existing folder works
    assert not list(tmp_path.glob(".stress-*"))


def test_cover_path_does_not_see_the_future():
    panel = _bt_panel()
    book = generate_book(panel.assets, 40, seed=4)
    model = FixedHaircut(imf=0.05, mmf=0.03, label="hc")
    t = 320
    res = run_models(panel, book, [model], mpor=2, min_history=100, start=150, end=t, netting=False)
    close = panel.close.copy()
    close[t + 1:] *= np.exp(np.random.default_rng(1).normal(0, 0.4, close[t + 1:].shape))
    res2 = run_models(panel.with_close(close), book, [model], mpor=2, min_history=100, start=150, end=t,
                      netting=False)
    cfg = StressConfig(every=10, adl=True)
    a, b = backtest_stress(res, cfg), backtest_stress(res2, cfg)
    pd.testing.assert_frame_equal(a.cover, b.cover)
    pd.testing.assert_frame_equal(a.final.table(), b.final.table())


def test_book_group_round_trips_and_defaults(tmp_path: Path):
    b = Book(("BTC", "ETH"), [[1.0, 0], [0, 2.0], [0, 0]], [[0, 5.0], [3.0, 0], [0, -1.0]],
             account_ids=("x", "y", "z"), group=("f", "f", "z"))
    csv = tmp_path / "b.csv"
    b.to_frame().to_csv(csv, index=False)
    back = Book.read(csv)
    assert back.group == ("f", "f", "z")
    assert back.subset([1, 2]).group == ("f", "z") and back.align(("ETH", "BTC", "SOL")).group == back.group
    assert back.scaled(2.0).group == back.group
    plain = Book(("BTC",), [[1.0]], [[0.0]], account_ids=("a",))
    assert plain.group == ("a",) and "group" not in plain.to_frame().columns
    toml = tmp_path / "b.toml"
    toml.write_text('[[account]]\nid = "a"\ngroup = "fam"\npositions = { BTC = 100 }\n'
                    '[[account]]\nid = "b"\npositions = { BTC = -50 }\n')
    assert Book.read(toml).group == ("fam", "b")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"account": ["a", "a"], "asset": ["BTC", "ETH"], "kind": ["position"] * 2, "usd": [1, 2],
                  "group": ["g1", "g2"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="account 'a' has several groups"):
        Book.read(bad)
    with pytest.raises(ValueError, match="2 group labels for 3 accounts"):
        Book(("BTC",), [[1.0], [1.0], [1.0]], [[0.0]] * 3, group=("a", "b"))


def test_generated_groups_leave_the_holdings_unchanged():
    assets = ("BTC", "ETH", "SOL", "XRP")
    a = generate_book(assets, 200, seed=9)
    b = generate_book(assets, 200, seed=9, group_size=(2, 4))
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.cash, b.cash)
    np.testing.assert_array_equal(a.isolated, b.isolated)
    assert a.group == a.account_ids
    sizes = pd.Series(b.group).value_counts()
    assert sizes.iloc[:-1].between(2, 4).all() and sizes.max() <= 4  # the last group may be cut short
    # groups are consecutive runs of accounts
    g = np.array(b.group)
    assert (np.sum(g[1:] != g[:-1]) + 1) == len(sizes)
    with pytest.raises(ValueError, match="group_size"):
        generate_book(assets, 10, group_size=(0, 2))


def test_backtest_with_stress_enabled_writes_the_stress_folder(data_root: Path, tmp_path: Path, capsys):
    cfg = tmp_path / "bt.toml"
    cfg.write_text(SMALL.replace("worst_windows = 2", "worst_windows = 2\nenabled = true\nevery = 10")
                   .replace("[backtest]\n", "[backtest]\nnetting = false\nn_jobs = 1\n"))
    out = tmp_path / "bt"
    assert main(["backtest", "--config", str(cfg), "--data", str(data_root), "--out", str(out), "--quiet"]) == 0
    cover = pd.read_csv(out / "stress" / "cover.csv")
    assert set(cover["model"]) == {"flat"} and cover["date"].iloc[-1] == "2022-12-31"
    fund = pd.read_csv(out / "stress" / "fund.csv")
    liq = pd.read_csv(out / "liquidations.csv")
    liq = liq[liq["trigger"] != "delisted"]
    # the ledger's inflows and bad debt are the backtest's own liquidation events
    assert fund["penalties"].sum() == pytest.approx(liq["penalty"].sum(), rel=1e-9, abs=1e-6)
    assert fund["bad_debt"].sum() == pytest.approx(liq["bad_debt"].sum(), rel=1e-9, abs=1e-6)
    assert "ETH unwind" in set(pd.read_csv(out / "stress" / "stress_table.csv")["scenario"])
