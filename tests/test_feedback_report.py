"""The with / without feedback comparison of a backtest (riskmodels.backtest.feedback_report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.backtest.engine import run_models
from riskmodels.backtest.feedback import feedback_comparison
from riskmodels.backtest.feedback_report import (
    feedback_on,
    feedback_pair,
    market_scale,
    scale_check,
)
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import generate_book
from tests.test_feedback import FB, crash_panel

CFG = {"liquidation": {"feedback": True, "feedback_oi_to_volume": 0.5}}


@pytest.fixture(scope="module")
def runs():
    panel = crash_panel(0.3)
    book = generate_book(("A0", "A1", "A2"), 200, seed=3, collateral_assets=["A0"], long_probability=0.8)
    models = [FixedHaircut(imf=0.1, mmf=0.05, label="m"), FixedHaircut(imf=0.2, mmf=0.1, label="safe")]
    fb = run_models(panel, book, models, start=100, min_history=20, policy=LiquidationPolicy(**FB), netting=False,
                    config=CFG)
    plain = run_models(panel, book, models, start=100, min_history=20,
                       policy=LiquidationPolicy(**{**FB, "feedback": False}), netting=False)
    return fb, plain


def test_the_engine_baseline_is_the_backtest_without_feedback(runs):
    """The engine hook's price-taker simulation equals an independent run with feedback = false."""
    fb, plain = runs
    for name, r in fb.results.items():
        np.testing.assert_array_equal(r.baseline_simulation.events, plain.results[name].simulation.events)
        np.testing.assert_array_equal(r.baseline_simulation.equity, plain.results[name].simulation.equity)
    assert all(r.baseline_simulation is None for r in plain.results.values())
    rep = feedback_pair(fb)
    assert rep is not None
    pd.testing.assert_frame_equal(rep.comparison[feedback_comparison(plain, fb).columns],
                                  feedback_comparison(plain, fb))


def test_comparison_by_hand(runs):
    fb, plain = runs
    rep = feedback_pair(fb)
    for _, row in rep.comparison.iterrows():
        l0 = plain.results[row["model"]].simulation.liquidations
        l1 = fb.results[row["model"]].simulation.liquidations
        assert row["liquidations"] == len(l0) and row["liquidations_feedback"] == len(l1)
        assert row["bad_debt_feedback"] == pytest.approx(float(l1["bad_debt"].sum()))
        assert row["amplification"] == pytest.approx(l1["notional"].sum() / l0["notional"].sum())
        log = fb.results[row["model"]].simulation.feedback_log
        assert row["days_moved"] == int(((log["max_move"] > 0) | (log["liquidated"] > 0)).sum())
    # the crash day (intraday low 0.8 x close) amplifies the thin-margined model's liquidations
    m = rep.comparison.set_index("model").loc["m"]
    assert m["amplification"] > 1.0 and m["max_rounds_per_day"] >= 2
    assert feedback_pair(plain) is None and not feedback_on(plain) and feedback_on(CFG)


def test_market_scale_by_hand(runs):
    """book_usd = sum |collateral| + |perp| per asset; OI = 0.5 x the trailing 30-day mean volume before t."""
    fb, _ = runs
    sc = market_scale(fb).set_index("asset")
    book = fb.book
    gross = np.abs(book.collateral).sum(0) + np.abs(book.positions).sum(0)
    vol = fb.panel.volume[:, 0]
    oi = [0.5 * vol[max(0, t - 30) : t].mean() for t in range(fb.start, fb.end + 1)]
    assert sc.loc["A0", "book_usd"] == pytest.approx(gross[0])
    assert sc.loc["A0", "oi_usd_mean"] == pytest.approx(np.mean(oi))
    assert sc.loc["A0", "scale_mean"] == pytest.approx(np.mean(oi) / gross[0])
    assert (sc["oi_to_volume"] == 0.5).all()
    assert scale_check(fb).empty  # no day on record inside a 2021 synthetic window of 130 days


@pytest.mark.realdata
def test_backtest_with_feedback_writes_the_comparison(data_root: Path, tmp_path: Path, capsys):
    from riskmodels.cli import main

    cfg = tmp_path / "fb.toml"
    cfg.write_text("""
[data]
start = "2021-03-01"
end = "2021-06-30"
universe = ["BTC", "ETH", "XRP"]
[book]
accounts = 60
[backtest]
min_history = 60
n_jobs = 1
netting = false
[liquidation]
closeout = "impact"
feedback = true
[[models]]
name = "fixed_haircut"
label = "flat"
params = { imf = 0.05, mmf = 0.03, haircut = 0.10 }
""")
    out = tmp_path / "out"
    rc = main(["backtest", "--config", str(cfg), "--data", str(data_root), "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "with vs without feedback" in text
    comp = pd.read_csv(out / "feedback.csv")
    assert list(comp["model"]) == ["flat"]
    for col in ("liquidations", "liquidations_feedback", "bad_debt", "bad_debt_feedback", "amplification",
                "oi_to_volume"):
        assert col in comp.columns
    scale = pd.read_csv(out / "feedback_scale.csv")
    rec = scale[scale["kind"] == "record"]
    assert list(rec["day"]) == ["2021-05-18"]  # BTC OI on record before 19 May 2021
    assert rec["ratio"].iloc[0] == pytest.approx(rec["model_oi_usd"].iloc[0] / 24.68e9)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["feedback"][0]["model"] == "flat"
    assert (out / "feedback_days.csv").is_file()


def test_report_section(runs):
    from riskmodels.report.builtin import ensure_registered
    from riskmodels.report.document import Para, TableBlock
    from riskmodels.report.feedback_section import build_feedback
    from riskmodels.report.sections import ReportContext, registered_sections

    ensure_registered()
    assert "feedback" in [s.key for s in registered_sections()]
    fb, plain = runs
    blocks = build_feedback(ReportContext(result=fb, settings={}, as_of=fb.end))
    names = [b.name for b in blocks if isinstance(b, TableBlock)]
    assert names[:2] == ["feedback_comparison", "feedback_scale"]
    table = blocks[1].table.to_frame().set_index("model")
    assert table.loc["m", "amplification"] == pytest.approx(feedback_pair(fb).comparison.set_index("model")
                                                            .loc["m", "amplification"])
    off = build_feedback(ReportContext(result=plain, settings={}, as_of=plain.end))
    assert len(off) == 1 and isinstance(off[0], Para) and "feedback = true" in off[0].text
