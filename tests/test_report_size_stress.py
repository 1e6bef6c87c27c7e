"""The report's "Concentration of risk" and "Stress tests" sections (riskmodels.report.size_stress)."""

from __future__ import annotations

import numpy as np
import pytest
from test_report import small_config, synthetic_panel

from riskmodels.backtest.engine import run_backtest
from riskmodels.report import governance as gov


@pytest.fixture(scope="module")
def stressed():
    cfg = small_config(accounts=30)
    cfg["stress"] = {"enabled": True}
    result = run_backtest(cfg, synthetic_panel(T=300))
    return result, gov.build_report(result, command="riskmodels report", timestamp="t", commit="c")


def test_concentration_section_shares_match_a_hand_count(stressed):
    result, report = stressed
    frame = report.tables["concentration"].to_frame()
    assert set(frame["model"]) == set(result.models)
    # independent: the 10 largest accounts by gross notional, their share of gross notional
    r = next(iter(result.results.values()))
    gross = np.asarray(r.gross_notional, dtype=float)
    top = np.argsort(-gross, kind="stable")[:10]
    row = frame[(frame["model"] == result.models[0]) & (frame["group"].astype(str).str.contains("10"))]
    share_cols = [c for c in frame.columns if "notional" in c and "share" in c and "liquidated" not in c]
    assert share_cols, frame.columns
    assert float(row[share_cols[0]].iloc[0]) == pytest.approx(gross[top].sum() / gross.sum(), rel=1e-9)


def test_stress_section_renders_when_enabled_and_says_how_otherwise(stressed):
    result, report = stressed
    keys = [s.key for s in report.sections]
    assert keys.index("backtests") < keys.index("stress") < keys.index("crash_days")
    tab = report.tables["stress_summary"].to_frame()
    assert list(tab["model"]) == list(result.models)
    assert "cover_fund" in report.figures
    plain = gov.build_report(run_backtest(small_config(accounts=20), synthetic_panel(T=300)),
                             command="x", timestamp="t", commit="c")
    assert "stress_summary" not in plain.tables
    assert "enabled = true" in plain.to_markdown("figures")
