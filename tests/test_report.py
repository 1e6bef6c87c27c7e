"""The governance report: each section's numbers against the BacktestResult, HTML = Markdown, byte-identical reruns."""

from __future__ import annotations

import html.parser
import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.backtest.engine import run_backtest, run_models
from riskmodels.backtest.report_tables import coverage_table
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.cli import main
from riskmodels.config import default_config, merge, validate_config
from riskmodels.data.panel import PricePanel
from riskmodels.margin.haircut import FixedHaircut
from riskmodels.portfolio import Book
from riskmodels.report import charts
from riskmodels.report import governance as gov
from riskmodels.report.cli import load_report_config

ASSETS = ("BTC", "ETH", "SOL")


def synthetic_close(T: int = 330, seed: int = 11) -> np.ndarray:
    """Seeded fat-tailed log random walk (t with 3 d.o.f., 4% daily scale) with a -35% day at t=250 (or the last day)."""
    rng = np.random.default_rng(seed)
    r = 0.04 * rng.standard_t(3, size=(T, len(ASSETS))) / np.sqrt(3.0)
    r[0] = 0.0
    r[min(250, T - 1)] = np.log(0.65)
    return 100.0 * np.exp(np.cumsum(r, axis=0))


def synthetic_panel(T: int = 330, seed: int = 11, start: str = "2021-01-01") -> PricePanel:
    close = synthetic_close(T, seed)
    opn = np.vstack([close[:1], close[:-1]])
    high = np.maximum(opn, close) * 1.02
    low = np.minimum(opn, close) * 0.98
    dates = pd.date_range(start, periods=T, freq="D")
    return PricePanel(dates, ASSETS, opn, high, low, close, np.ones_like(close))


def small_config(accounts: int = 40) -> dict:
    cfg = merge(default_config(), {
        "data": {"universe": list(ASSETS), "start": "2021-01-01", "end": "", "policy": "truncate"},
        "book": {"accounts": accounts, "seed": 5, "collateral_share": [0.0, 0.5]},
        "backtest": {"min_history": 60},
    })
    cfg["models"] = [
        {"name": "fixed_haircut", "label": "flat", "params": {"imf": 0.08, "mmf": 0.04}},
        {"name": "deribit_pm", "label": "pm", "params": {"price_range": 0.16}},
    ]
    validate_config(cfg)
    cfg["report"] = {"sensitivity": {"accounts": accounts, "factors": {"cushion": [0.25, 1.0], "scale": [0.8, 1.2]}},
                     "cascade": {"enabled": False}}
    return cfg


@pytest.fixture(scope="module")
def result():
    return run_backtest(small_config(), synthetic_panel())


@pytest.fixture(scope="module")
def report(result):
    return gov.build_report(result, config_text="# test config", command="riskmodels report --out x",
                            timestamp="2000-01-01 00:00 UTC", commit="test")


# ---------------------------------------------------------------------------
# 1. summary
# ---------------------------------------------------------------------------


def test_summary_numbers_are_the_backtest_metrics(result, report):
    s = report.tables["summary"].to_frame().set_index("model")
    m = result.metrics_frame()
    assert list(s.index) == result.models
    for col in ("mean_im_per_notional", "p95_im_per_notional", "implied_max_leverage",
                "liquidations_per_account_year", "bad_debt_bp_per_year", "breach_rate"):
        np.testing.assert_array_equal(s[col].to_numpy(), m[col].to_numpy(), err_msg=col)
    cov = coverage_table(result).to_frame()
    cov = cov[cov["side"] == "combined"].set_index("model")
    # the book-level verdict (backtest/verdict.py), not the pooled diagnostic of the coverage table
    assert list(s["coverage_verdict"]) == [result.verdicts()[m].verdict for m in result.models]
    assert list(s["coverage_zone"]) == list(cov.loc[result.models, "tl_zone"])


def test_24h_tails_from_the_event_list(result, report):
    """Daily bad debt and liquidated notional re-derived from ``result.events()`` with pandas (groupby date)."""
    s = report.tables["summary"].to_frame().set_index("model")
    ev = result.events()
    ev = ev[ev["trigger"] != "delisted"]
    days = result.panel.dates[result.start: result.end + 1]
    for label in result.models:
        e = ev[ev["model"] == label]
        bad = e.groupby("date")["bad_debt"].sum().reindex(days, fill_value=0.0).to_numpy()
        liq = e.groupby("date")["notional"].sum().reindex(days, fill_value=0.0).to_numpy()
        assert s.loc[label, "bad_debt_p95_24h_usd"] == pytest.approx(np.percentile(bad, 95), rel=1e-12, abs=1e-9)
        assert s.loc[label, "bad_debt_p99_24h_usd"] == pytest.approx(np.percentile(bad, 99), rel=1e-12, abs=1e-9)
        assert s.loc[label, "liquidations_at_risk_usd"] == pytest.approx(np.percentile(liq, 95), rel=1e-12)
        assert s.loc[label, "worst_day_bad_debt_usd"] == pytest.approx(bad.max(), rel=1e-12, abs=1e-9)
    assert (s["liquidations_at_risk_usd"] > 0).all()  # the synthetic crash liquidates accounts


def test_daily_totals_hand_example():
    """Events on days 2, 2 and 5 of a 10-day window with bad debt 1, 2, 4: daily [0,0,3,0,0,4,0,0,0,0].

    P95 by linear interpolation (Hyndman & Fan type 7, numpy's default): sorted
    values have 0 at ranks 0..7, 3 at 8, 4 at 9; position 0.95 x 9 = 8.55, so
    3 + 0.55 x (4 - 3) = 3.55.
    """
    from riskmodels.backtest.simulation import EVENT_DTYPE

    ev = np.zeros(3, dtype=EVENT_DTYPE)
    ev["t"] = [12, 12, 15]
    ev["bad_debt"] = [1.0, 2.0, 4.0]
    sim = types.SimpleNamespace(liquidations=ev, events=ev)
    daily = charts.daily_totals(sim, "bad_debt", 10, 19)  # type: ignore[arg-type]
    np.testing.assert_array_equal(daily, [0, 0, 3, 0, 0, 4, 0, 0, 0, 0])
    assert np.percentile(daily, 95) == pytest.approx(3.55)


def test_insurance_fund_and_distance_to_liquidation(result):
    m = result.metrics_frame()
    for label in result.models:
        sim = result.results[label].simulation
        path = charts.insurance_fund_path(sim, result.start, result.end)
        assert path["bad_debt"].iloc[-1] == pytest.approx(m.loc[label, "bad_debt_usd"], rel=1e-12)
        assert path["penalties"].iloc[-1] == pytest.approx(float(sim.liquidations["penalty"].sum()), rel=1e-12)
        assert (np.diff(path["bad_debt"]) >= 0).all() and (np.diff(path["penalties"]) >= 0).all()
        d = charts.distance_to_liquidation(sim, result.start, result.end)
        # an account open at a close survived the close check (equity >= maintenance); float32 storage
        assert d.size == int((sim.is_open[result.start: result.end + 1]
                              & (sim.maintenance[result.start: result.end + 1] > 0)).sum())
        assert d.min() >= -1e-5


# ---------------------------------------------------------------------------
# 2. recommendations
# ---------------------------------------------------------------------------


def test_cap_step_chaos_labs_example():
    """Chaos Labs caps a change at 3 points per proposal: CRV LT 58 -> 55 (METHODOLOGY 2.6)."""
    assert gov.cap_step(0.58, 0.50, 0.03) == pytest.approx(0.55)
    assert gov.cap_step(0.58, 0.56, 0.03) == pytest.approx(0.56)  # inside the cap: the target itself
    assert gov.cap_step(0.05, 0.10, 0.03, "relative") == pytest.approx(0.0515)
    assert gov.cap_step(0.05, 0.01, 0.03, "relative") == pytest.approx(0.0485)
    with pytest.raises(ValueError, match="kind"):
        gov.cap_step(0.1, 0.2, 0.03, "percent")
    with pytest.raises(ValueError, match="max_step"):
        gov.cap_step(0.1, 0.2, 0.0)


def test_recommendation_rows_follow_the_rule(result, report):
    rec = report.tables["recommendations"].to_frame()
    assert set(rec["model"]) == {"flat", "pm"}  # both methods have rule scale parameters
    assert set(rec[rec["model"] == "flat"]["parameter"]) == {"imf", "mmf"}
    for r in rec.itertuples(index=False):
        assert abs(r.proposed - r.current) <= 0.03 + 1e-12
        assert r.capped == (abs(r.target - r.current) > 0.03 + 1e-12)
    # the rule's multiplier leaves the target exception rate (1%) of loss / margin above it
    for label in result.models:
        k = gov.scale_factor(result, label, 0.01)
        cov = result.results[label].coverage
        sl = slice(result.start, result.end + 1)
        ok = cov.valid[sl] & (cov.margin[sl] > 0)
        ratio = cov.loss[sl][ok] / cov.margin[sl][ok]
        assert np.mean(ratio > k) <= 0.01 < np.mean(ratio >= k) + 1.0 / ratio.size
        cur = result.results[label].model.params()
        for r in rec[rec["model"] == label].itertuples(index=False):
            assert r.target == pytest.approx(cur[r.parameter] * k, rel=1e-12)


def _no_collateral_result() -> tuple:
    panel = synthetic_panel(T=200, seed=3)
    rng = np.random.default_rng(4)
    pos = rng.normal(0, 50_000, size=(30, 3))
    book = Book(ASSETS, np.zeros_like(pos), pos)
    res = run_models(panel, book, [FixedHaircut(imf=0.08, mmf=0.04, label="flat")], min_history=30, start=0,
                     policy=LiquidationPolicy(cushion=0.5), netting=False)
    return res, book


def test_liquidatable_at_once_by_hand():
    """Without collateral the flat haircut's maintenance is mmf x gross perp notional, so the accounts a
    new mmf makes liquidatable are those with mmf_old x N <= E < mmf_new x N (N, E from the simulation)."""
    res, _ = _no_collateral_result()
    t = res.end
    sim = res.results["flat"].simulation
    r = sim.row(t)
    open_ = sim.is_open[r]
    E = sim.equity[r, open_].astype(float)
    N = sim.maintenance[r, open_].astype(float) / 0.04  # no collateral: maintenance = mmf x gross perp notional
    assert sim.notional_total[r] == pytest.approx(N.sum(), rel=1e-5)
    h = gov.holdings_at(res, "flat", t)
    np.testing.assert_array_equal(h["rows"], np.flatnonzero(open_))
    # reconstructed holdings give back the simulation's maintenance and notional at t
    np.testing.assert_allclose(h["maintenance"], 0.04 * np.abs(h["positions"]).sum(1), rtol=1e-5)
    np.testing.assert_allclose(N, np.abs(h["positions"]).sum(1), rtol=1e-5)
    same = gov.liquidatable_at_once(res, "flat", {"imf": 0.08, "mmf": 0.04}, t)
    assert same["newly_liquidatable"] == 0 and same["open_accounts"] == int(open_.sum())
    counts = []
    for imf, mmf in ((0.08, 0.06), (0.2, 0.1), (0.3, 0.2)):
        want = (E >= 0.04 * N * (1 - 1e-6)) & (E < mmf * N)
        got = gov.liquidatable_at_once(res, "flat", {"imf": imf, "mmf": mmf}, t)
        assert got["newly_liquidatable"] == int(want.sum())
        assert got["newly_liquidatable_notional"] == pytest.approx(N[want].sum(), rel=1e-5)
        assert got["below_new_im"] == int((E < imf * N).sum())
        counts.append(got["newly_liquidatable"])
    assert counts == sorted(counts) and counts[-1] > 0  # a higher maintenance rate catches more accounts


def test_explicit_proposals_are_capped_and_invalid_ones_reported(result):
    cfg = dict(result.config)
    cfg["report"] = {"recommend": {"proposals": [{"model": "flat", "params": {"mmf": 0.2}},
                                                 {"model": "flat", "params": {"imf": 0.01}}]}}
    res = type(result)(result.panel, result.book, result.results, cfg, result.start, result.end)
    settings = gov.report_settings(cfg)
    props, origin, _ = gov.choose_proposals(res, settings)
    assert "config" in origin and [p.source for p in props] == ["config", "config"]
    tab = gov.recommendation_table(res, props, settings, res.end).to_frame()
    assert tab.loc[0, "proposed"] == pytest.approx(0.07) and bool(tab.loc[0, "capped"])
    # imf 0.08 -> 0.05 with mmf 0.04 is valid; a cut below mmf would be refused by the model
    assert tab.loc[1, "proposed"] == pytest.approx(0.05)
    bad = gov.recommendation_table(res, [gov.Proposal("flat", {"imf": 0.02}, "config")],
                                   gov.report_settings({"report": {"recommend": {"max_step": 0.1}}}), res.end)
    assert "invalid parameters" in bad.to_frame().loc[0, "rationale"]
    with pytest.raises(ValueError, match="not one of"):
        cfg["report"] = {"recommend": {"proposals": [{"model": "nope", "params": {"imf": 0.1}}]}}
        gov.choose_proposals(res, gov.report_settings(cfg))


def test_calibration_proposals_and_absent_modules(result, monkeypatch):
    """A calibration entry runs riskmodels.calibrate on the backtest's own book and window: the proposal's
    target is the calibrated least-capital imf (tie mmf = 0.5 imf), and meeting the coverage target is
    checked here independently on the coverage arrays of a model rebuilt with that value."""
    pytest.importorskip("riskmodels.calibrate")
    cfg = dict(result.config)
    cfg["report"] = {"cascade": {"enabled": False}, "recommend": {"calibrate": [
        {"model": "flat", "param": "imf", "target": "coverage", "value": 0.02, "tie": {"mmf": 0.5},
         "bounds": [0.01, 0.6], "grid": 5, "xtol": 1e-3}]}}
    res = type(result)(result.panel, result.book, result.results, cfg, result.start, result.end)
    settings = gov.report_settings(cfg)
    props, origin, tables = gov.choose_proposals(res, settings)
    assert origin.startswith("calibration") and len(props) == 1 and len(tables) == 1
    imf = props[0].params["imf"]
    assert props[0].params["mmf"] == pytest.approx(0.5 * imf)
    from riskmodels.backtest.coverage import coverage_backtest

    for value, ok in ((imf, True), (imf - 2e-3, False)):
        path = FixedHaircut(imf=value, mmf=0.5 * value, label="x").fit(res.panel).path(res.book, result.results[
            "flat"].path.eligible)
        rate = coverage_backtest(res.panel, res.book, path, 2).breach_rate
        assert (rate <= 0.02) == ok, (value, rate)
    # the module absent: the rule, saying why
    monkeypatch.setitem(sys.modules, "riskmodels.calibrate", None)  # import raises ImportError
    props, origin, _ = gov.choose_proposals(res, settings)
    assert "not available in this version" in origin and {p.source for p in props} == {"rule"}
    with pytest.raises(ValueError, match="not available"):
        gov.choose_proposals(res, gov.report_settings({**cfg, "report": {**cfg["report"], "recommend": {
            **cfg["report"]["recommend"], "source": "calibration"}}}))


def test_cascade_section_states_what_it_has(result, monkeypatch):
    on = gov.report_settings({"report": {}})
    off = gov.report_settings({"report": {"cascade": {"enabled": False}}})
    assert "not run" in gov.cascade_blocks(result, None, off)[0].text
    monkeypatch.setitem(sys.modules, "riskmodels.cascade.replay", None)
    assert "not available in this version" in gov.cascade_blocks(result, None, on)[0].text
    blocks = gov.cascade_blocks(result, [pd.DataFrame({"day": ["2021-05-19"], "liquidated": [3]})], on)
    assert isinstance(blocks[2], gov.TableBlock) and blocks[2].table.to_frame()["liquidated"].tolist() == [3]


# ---------------------------------------------------------------------------
# 3-9
# ---------------------------------------------------------------------------


def test_backtest_and_procyclicality_sections_are_the_statistics_tables(result, report):
    from riskmodels.backtest.report_tables import procyclicality_table

    pd.testing.assert_frame_equal(report.tables["coverage"].to_frame(), coverage_table(result).to_frame())
    pd.testing.assert_frame_equal(report.tables["procyclicality"].to_frame(),
                                  procyclicality_table(result).to_frame())


def test_assumptions_list_every_model_parameter(result, report):
    a = report.tables["assumptions"].to_frame()
    for label in result.models:
        model = result.results[label].model
        listed = set(a[a["area"] == f"model: {label}"]["assumption"])
        assert listed == {f"{type(model).name}.{k}" for k in model.params()}
    row = a[a["assumption"] == "backtest.mpor"].iloc[0]
    assert row["value"] == "2" and "EMIR" in row["source"]
    assert "Chaos Labs" in a[a["assumption"] == "report.recommend.max_step"].iloc[0]["source"]


def test_crash_days_from_the_event_list(result, report):
    """Four crash days of 2021 fall in the synthetic window; counts re-derived from ``result.events()``."""
    c = report.tables["crash_days"].to_frame()
    assert set(c["date"]) == {d for d in gov.CRASH_DAYS if "2021-01-02" <= d <= "2021-11-26"}
    ev = result.events()
    for r in c.itertuples(index=False):
        e = ev[(ev["model"] == r.model) & (ev["date"] == pd.Timestamp(r.date)) & (ev["trigger"] != "delisted")]
        assert r.liquidations == len(e)
        assert r.bad_debt == pytest.approx(e["bad_debt"].sum(), abs=1e-9)


def test_sensitivity_base_is_the_backtest(result, report):
    """With the whole book, the sensitivity base run is the backtest's own simulation: same metric."""
    sens = report.tables["sensitivity"]
    base = result.metrics_frame().loc["flat"]
    assert f"liquidations_per_account_year = {base['liquidations_per_account_year']:.4g}" in sens.title
    f = sens.to_frame()
    assert f["factor"].iloc[0] in {"cushion", "scale x (imf, mmf)"} and len(f) == 2
    row = f[f["factor"] == "cushion"].iloc[0]
    # more cushion -> fewer liquidations (monotone in the opening equity)
    assert row["liquidations_per_account_year_high"] <= base["liquidations_per_account_year"] \
        <= row["liquidations_per_account_year_low"]


def test_shock_grid_hand_example():
    """One long 100k perp, no collateral, leverage 5: equity 20k. A -30% gap leaves 20k - 30k = -10k, and
    closing 70k of notional at 0.2% slippage costs 140: bad debt 10,140 = 10.14% of notional. A -10% gap
    leaves 10k > 180 of slippage: no bad debt. A short position gains: no bad debt."""
    panel = synthetic_panel(T=5)
    book = Book(ASSETS, np.zeros((2, 3)), np.array([[100_000.0, 0, 0], [0, -100_000.0, 0]]))
    g = charts.shock_grid(panel, book, 4, [-0.1, -0.3], [5.0], slippage=0.002)
    assert g.loc[5.0, -0.1] == 0.0
    assert g.loc[5.0, -0.3] == pytest.approx(10_140 / 200_000)
    with pytest.raises(ValueError, match="leverages"):
        charts.shock_grid(panel, book, 4, [-0.1], [0.0])


def test_data_quality_none_for_synthetic_panel(report):
    text = " ".join(b.text for b in report.section("data_quality").blocks if isinstance(b, gov.Para))
    assert "no quality report" in text


def test_report_settings_errors_name_the_key():
    with pytest.raises(ValueError, match=r"max_step=2 must be in \(0, 1\]"):
        gov.report_settings({"report": {"recommend": {"max_step": 2}}})
    with pytest.raises(ValueError, match="unknown key"):
        gov.report_settings({"report": {"colour": "red"}})
    with pytest.raises(ValueError, match="shocks"):
        gov.report_settings({"report": {"shocks": [0.1]}})
    with pytest.raises(ValueError, match=r"sensitivity\.factors\.leverage"):
        gov.report_settings({"report": {"sensitivity": {"factors": {"leverage": [1, 2]}}}})


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------


class _Tables(html.parser.HTMLParser):
    """Every <table> shown on screen: caption and rows of cell texts (stdlib parser, entities decoded).

    Tables inside ``<div class='print-parts'>`` (the print-only column groups of a wide table) are
    collected separately in ``print_tables``.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.print_tables: list[dict] = []
        self._screen: list[dict] = self.tables
        self._div_depth = 0
        self._print_at: int | None = None
        self.imgs: list[str] = []
        self.h2: list[str] = []
        self._cell: list[str] | None = None
        self._cap = False
        self._h2 = False

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            self._div_depth += 1
            if "print-parts" in (dict(attrs).get("class") or ""):
                self._print_at = self._div_depth
                self.tables = self.print_tables
        if tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._cap = True
        elif tag == "img":
            self.imgs.append(dict(attrs)["src"])
        elif tag == "h2":
            self._h2 = True
            self.h2.append("")

    def handle_endtag(self, tag):
        if tag == "div":
            if self._print_at == self._div_depth:
                self._print_at = None
                self.tables = self._screen
            self._div_depth -= 1
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "caption":
            self._cap = False
        elif tag == "h2":
            self._h2 = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._cap:
            self.tables[-1]["caption"] += data
        elif self._h2:
            self.h2[-1] += data


def markdown_tables(md: str) -> list[dict]:
    """Tables of GitHub Markdown: the ``**title**`` line before them and the cells (``\\|`` unescaped)."""
    out = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("| ") and i + 1 < len(lines) and re.fullmatch(r"\|(-+:?\|)+", lines[i + 1].replace(
                "---:", "---")):
            title = lines[i - 2][2:-2] if i >= 2 and lines[i - 2].startswith("**") else ""
            rows = []
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                if j != i + 1:
                    cells = re.split(r"(?<!\\)\|", lines[j].strip())[1:-1]
                    # highlighted rows have their first cell in bold
                    rows.append([re.sub(r"^\*\*(.*)\*\*$", r"\1", c.strip()).replace("\\|", "|") for c in cells])
                j += 1
            out.append({"caption": title, "rows": rows})
            i = j
        else:
            i += 1
    return out


def test_html_and_markdown_carry_the_same_tables_and_figures(report, tmp_path):
    paths = report.write(tmp_path)
    page = paths["html"].read_text()
    md = paths["markdown"].read_text()
    p = _Tables()
    p.feed(page)
    mt = markdown_tables(md)
    assert len(p.tables) == len(mt) == len(report.tables)
    for h, m in zip(p.tables, mt, strict=True):
        assert h["caption"] == m["caption"]
        assert h["rows"] == m["rows"]
    # the summary's displayed numbers are its formats applied to the result's numbers
    summ = next(t for t in p.tables if t["caption"] == "Summary per margin method")
    col = summ["rows"][0].index("mean_im_per_notional")
    assert summ["rows"][1][col] == f"{report.tables['summary'].to_frame().loc[0, 'mean_im_per_notional']:.2%}"
    # figures: embedded in the page, files beside the Markdown, same set
    names = sorted(report.figures)
    assert names == sorted(["pareto", "insurance_fund", "distance_to_liquidation", "margin_over_time", "tornado",
                            "shock_heatmap"])
    assert len(p.imgs) == len(names) and all(s.startswith("data:image/png;base64,") for s in p.imgs)
    linked = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert sorted(linked) == [f"figures/{n}.png" for n in names]
    for link in linked:
        assert (tmp_path / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # 15 sections: the feedback section (issue 17) says so in one line when feedback is off
    assert p.h2 == [s.heading for s in report.sections] and len(p.h2) == 15
    assert [ln for ln in md.splitlines() if ln.startswith("## ")] == [f"## {h}" for h in p.h2]
    assert "@media print" in page and "<script" not in page
    # no external resource (the references appendix cites public addresses as text only)
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)


# ---------------------------------------------------------------------------
# CLI end to end, byte-identical reruns
# ---------------------------------------------------------------------------

CLI_CONFIG = """
[data]
universe = ["BTC", "ETH", "SOL"]
start = "2021-01-01"
policy = "truncate"
[book]
accounts = 30
seed = 9
[backtest]
min_history = 60
[[models]]
name = "fixed_haircut"
label = "flat"
params = { imf = 0.08, mmf = 0.04 }
[report]
leverages = [2, 5, 10]
[report.sensitivity]
accounts = 10
factors = { cushion = [0.25, 1.0] }
[report.cascade]
enabled = false
"""


def write_csv_dir(root: Path) -> Path:
    """OHLCV CSV files of the synthetic panel; SOL's first open is 0 (an error defect the truncate policy cuts)."""
    d = root / "crypto-daily"
    d.mkdir(parents=True)
    p = synthetic_panel(T=300)
    for j, a in enumerate(ASSETS):
        f = pd.DataFrame({"datetime": p.dates.strftime("%Y-%m-%d"), "open": p.open[:, j], "high": p.high[:, j],
                          "low": p.low[:, j], "close": p.close[:, j], "volume": p.volume[:, j]})
        if a == "SOL":
            f.loc[0, ["open", "low"]] = 0.0
        f.to_csv(d / f"{a}-USD_1d.csv", index=False)
    return root


def _strip_stamp(b: bytes) -> bytes:
    return b"\n".join(ln for ln in b.split(b"\n") if gov.TIMESTAMP_PREFIX.encode() not in ln)


def _manifest_sans_pages(m: dict) -> dict:
    """The manifest with the hash and size of the two timestamped pages removed (everything else kept)."""
    return {**m, "files": {k: v for k, v in m["files"].items() if k not in ("report.html", "report.md")}}


def test_cli_report_is_byte_identical_on_rerun(tmp_path, capsys):
    data = write_csv_dir(tmp_path / "data")
    cfg = tmp_path / "small.toml"
    cfg.write_text(CLI_CONFIG)
    out = tmp_path / "out"
    args = ["report", "--config", str(cfg), "--data", str(data), "--out", str(out), "--quiet"]
    with pytest.warns(Warning, match="SOL truncated"):
        assert main(args) == 0
    first = tmp_path / "first"
    shutil.copytree(out, first)
    with pytest.warns(Warning, match="SOL truncated"):
        assert main(args) == 0
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert Path("report.html") in files and Path("report.md") in files and Path("figures/tornado.png") in files
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for rel in files:
        a, b = (first / rel).read_bytes(), (out / rel).read_bytes()
        if rel.name == "manifest.json":  # hashes the timestamped pages: equal but for their two hashes
            import json

            ma, mb = json.loads(a), json.loads(b)
            assert set(ma["files"]) == set(mb["files"])
            a, b = json.dumps(_manifest_sans_pages(ma)).encode(), json.dumps(_manifest_sans_pages(mb)).encode()
        if rel.suffix in (".html", ".md"):
            assert a.count(gov.TIMESTAMP_PREFIX.encode()) == 1, rel
            a, b = _strip_stamp(a), _strip_stamp(b)
        assert a == b, rel
    page = (out / "report.html").read_text()
    # reproducibility: the config as written, the one command, every file's sha256
    assert "params = { imf = 0.08, mmf = 0.04 }" in page.replace("&quot;", '"')
    assert f"riskmodels report --config {cfg} --data {data / 'crypto-daily'}" in page or \
        f"riskmodels report --config {cfg} --data {data}" in page
    files_csv = pd.read_csv(out / "tables" / "data_files.csv")
    import hashlib

    for r in files_csv.itertuples(index=False):
        want = hashlib.sha256((data / "crypto-daily" / f"{r.asset}-USD_1d.csv").read_bytes()).hexdigest()
        assert r.sha256 == want
    # data quality: SOL's defect and the cut
    q = pd.read_csv(out / "tables" / "data_quality.csv")
    sol = q[(q["asset"] == "SOL") & (q["severity"] == "error")]
    assert len(sol) >= 1 and sol["action"].str.startswith("history cut: asset used from 2021-01-02").all()


def test_load_report_config_keeps_the_report_table(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(CLI_CONFIG)
    cfg, text = load_report_config(p)
    assert text == CLI_CONFIG and cfg["report"]["leverages"] == [2, 5, 10] and cfg["book"]["accounts"] == 30
    p.write_text(CLI_CONFIG + "\n[colour]\nx = 1\n")
    with pytest.raises(ValueError, match="unknown section"):
        load_report_config(p)
    p.write_text(CLI_CONFIG.replace("accounts = 10", "accounts = 0"))
    with pytest.raises(ValueError, match=r"sensitivity\.accounts"):
        load_report_config(p)
