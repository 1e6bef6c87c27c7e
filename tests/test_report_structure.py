"""Structure of the report package: module sizes, no import cycle, the section registry, units and formats,
the console table, findings for every model, the executive summary's rule, citations and chart styles."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest._testresult import Table
from riskmodels.report import charts
from riskmodels.report import governance as gov
from riskmodels.report.console import console_table
from riskmodels.report.document import Para
from riskmodels.report.executive import recommended_method
from riskmodels.report.sections import register_section, registered_sections, unregister_section
from riskmodels.report.sources import REFERENCES, cited_keys
from riskmodels.units import fmt_pvalue, fmt_unit, unit_of

REPORT_DIR = Path(gov.__file__).parent
ROOT = REPORT_DIR.parents[1]


def _modules() -> list[Path]:
    return sorted(p for p in REPORT_DIR.glob("*.py") if p.name != "__init__.py")


# ---------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------


def test_no_report_module_over_500_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in _modules()}
    assert max(sizes.values()) <= 500, sizes


def test_report_imports_form_no_cycle():
    """Module-level imports among riskmodels.report.* (ast, not executed) form a directed acyclic graph."""
    graph: dict[str, set[str]] = {}
    for p in _modules():
        name = f"riskmodels.report.{p.stem}"
        deps = set()
        for node in ast.parse(p.read_text()).body:  # top level only: function-local imports run later
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                deps |= {m for m in mods if m.startswith("riskmodels.report.")}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("riskmodels.report.")}
        graph[name] = {d for d in deps if d != name and d in {f"riskmodels.report.{q.stem}" for q in _modules()}}
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        if state.get(n) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*stack, n])}")
        if state.get(n) == 2:
            return
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            visit(d, [*stack, n])
        state[n] = 2

    for n in sorted(graph):
        visit(n, [])
    assert graph["riskmodels.report.markdown"] <= {"riskmodels.report.document"}  # the old cycle is gone


def test_former_cycle_pair_imports_alone():
    """markdown.py and governance.py used to import each other; each now imports in a fresh interpreter."""
    for mod in ("riskmodels.report.markdown", "riskmodels.report.render_html", "riskmodels.report.governance"):
        run = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True, text=True, timeout=300,
                             cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert run.returncode == 0, (mod, run.stderr[-800:])


# ---------------------------------------------------------------------------
# fixture
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result():
    from test_report import small_config, synthetic_panel

    from riskmodels.backtest.engine import run_backtest

    cfg = small_config(accounts=30)
    cfg["models"] = [*cfg["models"], {"name": "fixed_haircut", "label": "wide", "params": {"imf": 0.6, "mmf": 0.3}}]
    return run_backtest(cfg, synthetic_panel(T=300))


@pytest.fixture(scope="module")
def report(result):
    return gov.build_report(result, command="riskmodels report", timestamp="t", commit="c")


def test_section_registry_slots_a_new_section_in(result):
    register_section("extra_test", "Extra test section", lambda ctx: [Para(f"{len(ctx.result.models)} models")],
                     order=25)
    register_section("skipped_test", "Left out", lambda ctx: None, order=26)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_section("extra_test", "again", lambda ctx: [], order=1)
        rep = gov.build_report(result, timestamp="t", commit="c")
        keys = [s.key for s in rep.sections]
        assert keys.index("summary") + 1 == keys.index("extra_test") == keys.index("recommendations") - 1
        assert "skipped_test" not in keys
        numbered = [s.number for s in rep.sections if not s.appendix]
        assert numbered == list(range(1, len(numbered) + 1))
        assert [s.heading.split(".")[0] for s in rep.sections if s.appendix] == ["Appendix A", "Appendix B"]
        assert rep.section("extra_test").blocks[0].text == "3 models"
    finally:
        unregister_section("extra_test")
        unregister_section("skipped_test")
    assert "extra_test" not in {s.key for s in registered_sections()}


# ---------------------------------------------------------------------------
# units and formats
# ---------------------------------------------------------------------------


def test_units_read_from_column_names():
    cases = {"kupiec_p": "pvalue", "cc_p_sub": "pvalue", "breach_rate": "share", "breach_rate_long": "share",
             "mean_im_per_notional": "share", "inc_30d_rel": "share", "bad_debt_bp_per_year": "bp",
             "bad_debt_usd": "usd", "bad_debt_p95_24h_usd": "usd", "priced_account_days": "count",
             "n": "count", "kupiec_lr": "lr", "model": "", "peak_to_trough": ""}
    assert {c: unit_of(c) for c in cases} == cases


def test_formats_by_unit():
    assert fmt_pvalue(1.772e-156) == "<0.001" and fmt_pvalue(0.000999) == "<0.001"
    assert fmt_pvalue(0.001) == "0.001" and fmt_pvalue(0.045678) == "0.0457" and fmt_pvalue(0.5) == "0.5"
    assert fmt_unit(387984.4, "usd") == "$387,984" and fmt_unit(-1500, "usd") == "-$1,500"
    assert fmt_unit(0.08885, "share") == "8.88%" and fmt_unit(12.345, "bp") == "12.35"
    assert fmt_unit(float("nan"), "usd") == "-" and fmt_unit(12345, "count") == "12,345"


def test_console_table_fits_and_renders_unknown_columns_by_unit():
    """A summary with more columns than fit: the preferred ones first, a new column formatted by its unit,
    the rest named on the last line; every line within the width."""
    frame = pd.DataFrame({
        "model": ["haircut conservative", "a model with a very long label indeed"],
        "mean_im_per_notional": [0.0512, 0.1],
        "implied_max_leverage": [19.5, 10.0],
        "liquidations_per_account_year": [0.3456, 1.2],
        "bad_debt_bp_per_year": [1.234, 0.0],
        "breach_rate": [0.016, 0.0021],
        "coverage_zone": ["red", "green"],
        "coverage_verdict": ["reject", "accept"],
        "priced_account_days": [1234567, 1234567],
        "kupiec_p": [1.772e-156, 0.2],
        "peak_to_trough": [2.5, 1.1],
        "max_30d_increase_rel": [0.31, 0.02],
        "a_new_bad_debt_usd": [1.5e6, 2.0],
    })
    text = console_table(Table(frame, title="t"), width=120)
    lines = text.splitlines()
    assert max(len(ln) for ln in lines) <= 120
    assert "<0.001" in text and "5.12%" in text and "1.60%" in text
    from riskmodels.report.console import format_column

    assert format_column(Table(frame), "priced_account_days") == ["1,234,567"] * 2
    assert format_column(Table(frame), "a_new_bad_debt_usd") == ["$1,500,000", "$2"]
    assert "a model with a very long la~" in text
    assert lines[-1].startswith(tuple(f"{k} more column(s)" for k in range(1, 6)))
    narrow = console_table(Table(frame), width=60)
    assert max(len(ln) for ln in narrow.splitlines()) <= 60 and "model" in narrow.splitlines()[0]


def test_metric_names_carry_units_and_the_schema_describes_them(result):
    from riskmodels.backtest.metrics import metrics_schema

    schema = metrics_schema()
    assert set(result.metrics_frame().columns) == set(schema)
    assert all(v["unit"] for v in schema.values())
    assert "bad_debt_per_notional" not in schema and schema["bad_debt_bp_per_year"]["unit"].startswith("basis")


# ---------------------------------------------------------------------------
# findings for every model
# ---------------------------------------------------------------------------


def test_every_model_gets_a_finding_and_over_coverage_a_capped_cut(result, report):
    """'wide' (imf 60%) is far over the target: a finding of over-coverage and a proposal to lower imf by the
    step cap. Lowering the maintenance rate cannot make an account liquidatable: newly_liquidatable = 0."""
    f = report.tables["findings"].to_frame().set_index("model")
    assert list(f.index) == result.models
    k = {m: gov.scale_factor(result, m, 0.01) for m in result.models}
    for m in result.models:
        want = "under-coverage" if k[m] > 1.05 else ("over-coverage" if k[m] < 0.95 else "in line")
        assert f.loc[m, "finding"] == want
    assert f.loc["wide", "finding"] == "over-coverage"
    rec = report.tables["recommendations"].to_frame()
    wide = rec[rec["model"] == "wide"].set_index("parameter")
    assert wide.loc["imf", "proposed"] == pytest.approx(0.6 - 0.03) and bool(wide.loc["imf", "capped"])
    assert (wide["newly_liquidatable"] == 0).all()
    assert set(rec["finding"]) <= {"under-coverage", "over-coverage", "in line"}


def test_scale_factor_is_inverse_to_a_proportional_margin():
    """Without collateral the flat haircut's margin is imf x notional, so k(imf = c x 0.08) = k(0.08) / c."""
    from test_report import synthetic_panel

    from riskmodels.backtest.engine import run_models
    from riskmodels.backtest.simulation import LiquidationPolicy
    from riskmodels.margin.haircut import FixedHaircut
    from riskmodels.portfolio import Book

    panel = synthetic_panel(T=200, seed=3)
    pos = np.random.default_rng(4).normal(0, 50_000, size=(30, 3))
    book = Book(("BTC", "ETH", "SOL"), np.zeros_like(pos), pos)
    res = run_models(panel, book, [FixedHaircut(imf=0.08, mmf=0.04, label="a"),
                                   FixedHaircut(imf=0.32, mmf=0.16, label="b")], min_history=30, start=0,
                     policy=LiquidationPolicy(cushion=0.5), netting=False)
    assert gov.scale_factor(res, "b", 0.01) == pytest.approx(gov.scale_factor(res, "a", 0.01) / 4, rel=1e-6)


def test_multiplier_bound_is_respected_and_said():
    """An over-covered method whose im_multiplier is already 1 (its lower bound) gets no cut below 1."""
    from riskmodels.report.recommend import _bounds

    assert _bounds("historical_var", "im_multiplier") == (1.0, float("inf"))
    assert _bounds("scenario_grid", "im_multiplier") == (1.0, 2.0)
    assert _bounds("fixed_haircut", "imf") == (0.0, float("inf"))


def test_recommended_method_rule():
    s = pd.DataFrame({"model": ["a", "b", "c"], "mean_im_per_notional": [0.05, 0.08, 0.2],
                      "implied_max_leverage": [20, 12.5, 5], "liquidations_per_account_year": [1.0, 0.5, 0.1],
                      "breach_rate": [0.03, 0.009, 0.001], "coverage_zone": ["red", "green", "green"]})
    f = pd.DataFrame({"model": ["a", "b", "c"], "k": [1.8, 0.98, 0.5],
                      "finding": ["under-coverage", "in line", "over-coverage"]})
    best, sentence = recommended_method(s, f)
    assert best == "b" and "1 other method" in sentence  # a is under-covered; b needs less capital than c
    f2 = f.assign(k=[1.8, 1.3, 1.2], finding=["under-coverage"] * 3)
    best, sentence = recommended_method(s, f2)
    assert best is None and "least under-covered is c" in sentence


# ---------------------------------------------------------------------------
# citations, assumptions, charts
# ---------------------------------------------------------------------------


def test_every_citation_is_public_or_shipped(report):
    page = report.to_html()
    for word in ("METHODOLOGY", "CRASH_DAYS.md"):
        assert word not in page
    keys = cited_keys(page) - {"data", "book", "backtest", "liquidation", "models"}  # config section names
    assert keys and keys <= set(REFERENCES), keys - set(REFERENCES)
    for key, (_, where) in REFERENCES.items():
        if where.startswith("http"):
            assert re.fullmatch(r"https://[\w./%-]+(\?[\w=&.-]+)?", where), key
        elif where.startswith("riskmodels/"):
            assert (ROOT / where.split(" ")[0]).is_file(), key
        else:
            assert where == "journal article", key
    from riskmodels.docs import available_docs, read_doc

    assert {"references", "crash_days"} <= set(available_docs())
    assert all(f"**{k}**" in read_doc("references") for k in REFERENCES if k != "crash_days")


def test_assumptions_highlight_exactly_the_non_defaults(result, report):
    from riskmodels.config import default_config

    full = report.tables["assumptions"].to_frame()
    dflt = default_config()
    row = full[full["assumption"] == "data.start"].iloc[0]
    assert row["value"] == "2021-01-01" and row["default"] == dflt["data"]["start"] and row["non_default"]
    assert not full[full["assumption"] == "liquidation.penalty"].iloc[0]["non_default"]
    # the wide haircut's imf differs from FixedHaircut's constructor default (0.05)
    assert full[full["assumption"] == "fixed_haircut.imf"]["non_default"].all()
    html_rows = report.to_html().split("id='t-assumptions'>")[1].split("</table>")[0].count("<tr class='hl'>")
    assert html_rows == int(full["non_default"].sum())


def test_series_styles_are_distinct_in_greyscale():
    styles = [charts.style(i) for i in range(10)]
    assert len({(str(s["linestyle"]), s["marker"]) for s in styles}) == 10
    assert len({s["marker"] for s in styles}) == 10
    assert {s["color"] for s in styles[:8]} == set(charts.OKABE_ITO)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-2, 2, allow_nan=False), min_size=1, max_size=12), st.floats(0.01, 0.2))
def test_spread_keeps_labels_apart(pos, gap):
    out = charts.spread(pos, gap)
    q = np.sort(out)
    assert (np.diff(q) >= gap - 1e-9).all()
    # order is kept: a label never jumps over another
    assert (np.argsort(out, kind="mergesort") == np.argsort(np.asarray(pos), kind="mergesort")).all() or \
        len(set(pos)) < len(pos)


def test_garch_fit_log_reaches_the_result():
    """The fitted GARCH's estimation log travels back with the model's result (the CLI writes it as
    garch_fit_log.csv): the same refits as fitting the model directly."""
    from test_report import synthetic_panel

    from riskmodels.backtest.engine import run_models
    from riskmodels.backtest.simulation import LiquidationPolicy
    from riskmodels.margin.garch import GarchMargin
    from riskmodels.portfolio import Book

    panel = synthetic_panel(T=420, seed=5)
    book = Book(("BTC", "ETH", "SOL"), np.zeros((4, 3)), np.random.default_rng(1).normal(0, 1e4, (4, 3)))
    model = GarchMargin(refit_every=100, min_history=250, n_jobs=1, label="g")
    res = run_models(panel, book, [model], min_history=250, start=300, policy=LiquidationPolicy(),
                     netting=False)
    log = res.results["g"].fit_log
    want = model.fit(panel).fit_log
    assert log is not None and len(log) == len(want) > 0 and list(log.columns) == list(want.columns)
    # the same refits (the optimiser's last digits depend on the BLAS threads the engine pins to 1)
    pd.testing.assert_frame_equal(log[["asset", "date"]].reset_index(drop=True),
                                  want[["asset", "date"]].reset_index(drop=True))
    both = res.fit_logs()
    assert both is not None and set(both["model"]) == {"g"} and len(both) == len(log)


def test_no_proposal_for_a_method_in_line(result, monkeypatch):
    """A method whose k is within IN_LINE of 1 gets the finding 'in line' and no proposal."""
    from riskmodels.report import recommend

    settings = gov.report_settings(result.config)
    monkeypatch.setattr(recommend, "scale_factor", lambda res, label, p: 1.02 if label == "flat" else 0.5)
    props = {p.model for p in recommend.rule_proposals(result, settings)}
    assert "flat" not in props and {"pm", "wide"} <= props
    f = recommend.coverage_findings(result, settings).to_frame().set_index("model")
    assert f.loc["flat", "finding"] == "in line" and f.loc["wide", "finding"] == "over-coverage"
