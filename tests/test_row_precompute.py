"""Per-row netting and procyclicality parts computed as rows arrive (report_tables.precompute_row, engine on_result)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_panel

from riskmodels.backtest import report_tables
from riskmodels.backtest.engine import run_models
from riskmodels.backtest.procyclicality import netting_summary, procyclicality
from riskmodels.backtest.report_tables import netting_table, precompute_row, procyclicality_table
from riskmodels.margin import FixedHaircut, HistoricalVaR
from riskmodels.portfolio import generate_book


def _run(n_jobs: int, on_result=None):
    panel = random_walk_panel(260, 3, seed=5, vol=0.05)
    book = generate_book(panel.assets, 150, seed=2)
    models = [FixedHaircut(imf=0.05, mmf=0.03, label="flat"), HistoricalVaR(window=60, label="hs"),
              FixedHaircut(imf=0.1, mmf=0.05, label="thick")]
    return run_models(panel, book, models, start=80, min_history=60, n_jobs=n_jobs, on_result=on_result)


def _reference_tables(result):
    """The two tables as the loops over the rows compute them (no per-row parts kept)."""
    dates = result.panel.dates[result.start : result.end + 1]
    net, pro = [], []
    for name, r in result.results.items():
        sl = r.path.rows(result.start, result.end)
        net.append(netting_summary(r.netting_benefit[sl], dates, name=name).to_frame())
        im = np.where(r.path.eligible[sl], r.path.initial[sl], np.nan)
        f = procyclicality(im, dates, notional=np.broadcast_to(r.gross_notional[None, :], im.shape),
                           name=name).to_frame().drop(columns=["model"], errors="ignore")
        f.insert(0, "model", name)
        pro.append(f)
    return pd.concat(net, ignore_index=True), pd.concat(pro, ignore_index=True)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_hooked_run_gives_the_tables_of_the_row_loops(n_jobs):
    calls = []

    def hook(label, r, panel, start, end):
        calls.append((label, start, end))
        precompute_row(label, r, panel, start, end)

    result = _run(n_jobs, hook)
    assert sorted(c[0] for c in calls) == ["flat", "hs", "thick"]
    assert {c[1:] for c in calls} == {(result.start, result.end)}
    for r in result.results.values():  # the parts are kept for every row ...
        assert len(report_tables._ROW_TABLES[r]) == 3
    net, pro = _reference_tables(result)
    pd.testing.assert_frame_equal(netting_table(result).to_frame(), net)  # ... and are the same numbers
    pd.testing.assert_frame_equal(procyclicality_table(result).to_frame(), pro)


def test_kept_parts_follow_replaced_paths():
    result = _run(1, precompute_row)
    r = next(iter(result.results.values()))
    before = procyclicality_table(result).to_frame()
    r.path = replace(r.path, initial=r.path.initial * 2)  # other arrays: the kept part is not reused
    del r.__dict__["netting_benefit"]
    net, pro = _reference_tables(result)
    pd.testing.assert_frame_equal(procyclicality_table(result).to_frame(), pro)
    pd.testing.assert_frame_equal(netting_table(result).to_frame(), net)
    assert not procyclicality_table(result).to_frame().equals(before)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_liquidations_csv_from_the_rows_parts_is_pandas_text(n_jobs):
    from riskmodels.backtest.report_tables import events_csv_text

    result = _run(n_jobs, precompute_row)
    events = result.events()
    assert len(events) > 0 and events["model"].nunique() >= 2
    # a row without events (other dtypes) is in the mix: the table is then formatted whole, the same text
    want = events.to_csv(index=False, float_format="%.10g")
    assert events_csv_text(result) == want
    name = next(iter(result.results))
    r = result.results[name]
    sim = replace(r.simulation, events=r.simulation.events[:0])
    object.__setattr__(r, "simulation", sim)
    assert events_csv_text(result) == result.events().to_csv(index=False, float_format="%.10g")


def test_liquidations_csv_joined_from_parts_when_the_dtypes_agree():
    from riskmodels.backtest import report_tables as rt
    from riskmodels.backtest.report_tables import events_csv_text

    result = _run(1, precompute_row)
    parts = [rt._row_events_csv(r, n, result.panel, result.start, result.end) for n, r in result.results.items()]
    assert all(b for _, _, b in parts)  # every row has events: the joined path is the one taken
    assert events_csv_text(result) == result.events().to_csv(index=False, float_format="%.10g")
