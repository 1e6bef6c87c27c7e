"""Sweeps: the declared grid, resume after an interruption, identical results on every backend."""

from __future__ import annotations

import argparse
import copy
import itertools
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.sweep import (
    EXAMPLE_SWEEP_TOML,
    PanelSpec,
    SweepResult,
    cached_panel,
    parse_sweep,
    run_sweep,
    sweep,
)

SYNTH = PanelSpec.synthetic(300, n_assets=3, seed=5, start="2018-01-01")

DOC = {
    "data": {"universe": [], "start": "2018-06-01"},
    "book": {"accounts": 20, "collateral_assets": ["S0"]},
    "backtest": {"min_history": 30, "mpor": 2},
    "sweep": {
        "model": "fixed_haircut",
        "params": {"mmf": 0.03},
        "grid": {"model": {"haircut": [0.05, 0.2], "imf": [0.05, 0.1]}, "liquidation": {"cushion": [0.0, 1.0]}},
    },
}
N_POINTS = 8


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """An uninterrupted in-process run of DOC (shared by several tests)."""
    return sweep(DOC, out=tmp_path_factory.mktemp("full"), data=SYNTH, backend="serial")


class Interrupt(Exception):
    pass


# ----------------------------------------------------------------- the grid
def test_example_grid_is_the_declared_cartesian_product() -> None:
    spec = parse_sweep(tomllib.loads(EXAMPLE_SWEEP_TOML))
    assert spec.axis_names == ["model.haircut", "model.imf", "liquidation.cushion"]
    assert spec.size == 3 * 2 * 3
    pts = spec.points("fp")
    expected = list(itertools.product([0.05, 0.10, 0.20], [0.05, 0.10], [0.0, 0.5, 1.0]))
    assert [tuple(p.values.values()) for p in pts] == expected  # last axis fastest
    assert [p.index for p in pts] == list(range(18))
    assert len({p.key for p in pts}) == 18
    assert [p.key for p in spec.points("fp")] == [p.key for p in pts]  # stable
    p0 = pts[0].config
    assert p0["models"] == [{"name": "fixed_haircut", "label": "haircut",
                             "params": {"mmf": 0.03, "haircut": 0.05, "imf": 0.05}}]
    assert p0["liquidation"]["cushion"] == 0.0 and p0["book"]["accounts"] == 200
    # the key covers the base config and the data
    doc2 = tomllib.loads(EXAMPLE_SWEEP_TOML)
    doc2["book"]["accounts"] = 201
    assert parse_sweep(doc2).points("fp")[0].key != pts[0].key
    assert spec.points("other-data")[0].key != pts[0].key


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ({"modle": {"haircut": [0.1]}}, "namespace"),
        ({"model": {"haircut": 0.1}}, "list"),
        ({"model": {"haircut": [0.1, 1.5]}}, "haircut"),
        ({"book": {"acounts": [10]}}, "unknown key"),
        ({"data": {"universe": [["BTC"]]}}, "data.start"),
        ({"model": {"haircut": [0.1, 0.1]}}, "repeats"),
        ({}, "at least one axis"),
    ],
)
def test_bad_grids_fail_before_running(grid: dict, match: str) -> None:
    doc = copy.deepcopy(DOC)
    doc["sweep"]["grid"] = grid
    with pytest.raises(ValueError, match=match):
        parse_sweep(doc)


def test_table_valued_axis_is_shown_as_json_and_table_writes_to_parquet(tmp_path: Path) -> None:
    doc = copy.deepcopy(DOC)
    doc["sweep"]["grid"] = {"model": {"haircut": [0.1, {"S0": 0.05, "default": 0.2}]}}
    res = sweep(doc, out=tmp_path / "s", data=SYNTH, backend="serial")
    assert list(res.table["model.haircut"]) == ["0.1", '{"S0": 0.05, "default": 0.2}']
    res.table.to_parquet(tmp_path / "t.parquet")  # one type per column
    assert pd.read_parquet(tmp_path / "t.parquet").equals(res.table)


# ----------------------------------------------------------------- resume
def test_interrupted_sweep_resumes_to_the_same_table(tmp_path: Path, full_run: SweepResult) -> None:
    """A sweep that dies after 3 points keeps them (one Parquet file each); the rerun computes
    only the other 5 and the final table equals an uninterrupted run's, value for value.
    """
    full = full_run
    assert full.computed == N_POINTS and len(full.table) == N_POINTS

    seen: list[int] = []

    def die_after_three(row: dict) -> None:
        seen.append(row["point"])
        if len(seen) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        sweep(DOC, out=tmp_path / "cut", data=SYNTH, backend="serial", on_point=die_after_three)
    assert len(list((tmp_path / "cut" / "points").glob("*.parquet"))) == 3
    assert not list((tmp_path / "cut" / "points").glob(".*"))  # no half-written files
    resumed = sweep(DOC, out=tmp_path / "cut", data=SYNTH, backend="serial")
    assert resumed.computed == 5
    pd.testing.assert_frame_equal(resumed.table, full.table, check_exact=True)
    assert list(full.table["point"]) == list(range(8))
    again = sweep(DOC, out=tmp_path / "cut", data=SYNTH, backend="serial")
    assert again.computed == 0


# ----------------------------------------------------------------- backends
def test_dask_local_cluster_matches_local_processes(tmp_path: Path) -> None:
    """The same 4 points on a 2-process pool and on a Dask LocalCluster (2 worker processes,
    started here) give identical tables (and equal an in-process run)."""
    from dask.distributed import LocalCluster

    doc = copy.deepcopy(DOC)
    doc["sweep"]["grid"] = {"model": {"haircut": [0.05, 0.2]}, "liquidation": {"cushion": [0.0, 1.0]}}
    local = sweep(doc, out=tmp_path / "proc", data=SYNTH, backend="processes", workers=2)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        dask = sweep(doc, out=tmp_path / "dask", data=SYNTH, backend="dask", scheduler=cluster.scheduler_address)
    finally:
        cluster.close()
    serial = sweep(doc, out=tmp_path / "serial", data=SYNTH, backend="serial")
    pd.testing.assert_frame_equal(local.table, dask.table, check_exact=True)
    pd.testing.assert_frame_equal(local.table, serial.table, check_exact=True)


def test_worker_cache_refuses_changed_data() -> None:
    panel, _fp = cached_panel(SYNTH)
    assert cached_panel(SYNTH)[0] is panel  # loaded once per process
    with pytest.raises(RuntimeError, match="changed"):
        cached_panel(SYNTH, "0" * 64)


# ----------------------------------------------------------------- frontier and heatmap
def test_frontier_is_the_non_dominated_set_and_heatmap_is_the_mean(tmp_path: Path, full_run: SweepResult) -> None:
    res = full_run
    t = res.table
    x = t["mean_im_per_notional"].to_numpy()
    y = t["liquidations_per_account_year"].to_numpy()
    dominated = [
        any((x[j] <= x[i]) and (y[j] <= y[i]) and ((x[j] < x[i]) or (y[j] < y[i])) for j in range(len(t)))
        for i in range(len(t))
    ]  # brute force O(n^2) definition
    expected = sorted(t.loc[~np.array(dominated), "point"])
    assert sorted(res.frontier()["point"]) == expected
    pv = res.pivot("liquidations_per_account_year", "model.haircut", "liquidation.cushion")
    for (c, h), v in t.groupby(["liquidation.cushion", "model.haircut"])["liquidations_per_account_year"]:
        assert pv.loc[c, h] == pytest.approx(v.mean())
    png = res.heatmap(tmp_path / "hm.png", x="model.haircut", y="liquidation.cushion")
    fr = res.frontier_chart(tmp_path / "fr.png")
    assert png.stat().st_size > 1000 and fr.stat().st_size > 1000
    assert "Pareto front" in str(res)


@pytest.mark.realdata
def test_cli_sweep_on_real_data(daily_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        '[data]\nuniverse = ["BTC", "ETH"]\nstart = "2024-09-01"\n[book]\naccounts = 10\n'
        '[sweep]\nmodel = "fixed_haircut"\n[sweep.grid.model]\nhaircut = [0.05, 0.3]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = argparse.Namespace(config=str(cfg), data=str(daily_dir.parent), out=str(out), workers=None,
                              scheduler=None, local_cluster=False, serial=True, quiet=True)
    assert run_sweep(args) == 0
    table = pd.read_parquet(out / "sweep.parquet")
    assert list(table["model.haircut"]) == [0.05, 0.3]
    # more haircut, more capital, never fewer breaches avoided
    assert table["mean_im_per_notional"].is_monotonic_increasing
    assert table["breach_rate"].iloc[1] <= table["breach_rate"].iloc[0]
    for f in ("sweep.csv", "frontier.csv", "frontier.png", "heatmap.png"):
        assert (out / f).exists()
    assert "Pareto front" in capsys.readouterr().out


def test_dask_sweep_200_accounts_points_run_serially(tmp_path: Path) -> None:
    """Issue 23: with ``backtest.n_jobs = 2`` and 200 accounts a point used to start its own pool
    (the accounts split in two chunks), which crashed on Dask ("daemonic processes are not
    allowed to have children"). Points now run their models serially: the Dask table equals
    the in-process one."""
    from dask.distributed import LocalCluster

    doc = copy.deepcopy(DOC)
    doc["book"]["accounts"] = 200
    doc["backtest"]["n_jobs"] = 2
    doc["sweep"]["grid"] = {"model": {"haircut": [0.05, 0.2]}}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           host="127.0.0.1")
    try:
        dask = sweep(doc, out=tmp_path / "dask", data=SYNTH, backend="dask", scheduler=cluster.scheduler_address)
    finally:
        cluster.close()
    serial = sweep(doc, out=tmp_path / "serial", data=SYNTH, backend="serial")
    assert len(dask.table) == 2
    pd.testing.assert_frame_equal(dask.table.drop(columns="seconds", errors="ignore"),
                                  serial.table.drop(columns="seconds", errors="ignore"), check_exact=True)
