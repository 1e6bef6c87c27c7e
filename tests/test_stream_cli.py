"""``riskmodels backtest`` streamed (README "Large books"): the same summary file as the dense run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskmodels.cli import main

CONFIG = """
[data]
dir = "embedded"
universe = ["BTC", "ETH", "SOL", "XRP"]
start = "2022-01-01"
[book]
accounts = 130
seed = 3
[backtest]
netting = false
n_jobs = 1
[[models]]
name = "fixed_haircut"
label = "haircut"
params = { imf = 0.05, mmf = 0.03, haircut = 0.10 }
[[models]]
name = "historical_var"
label = "HS"
params = { confidence = 0.99, horizon = 2, window = 250 }
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("stream_cli")
    cfg = d / "c.toml"
    cfg.write_text(CONFIG)
    assert main(["backtest", "--config", str(cfg), "--out", str(d / "dense"), "--quiet"]) == 0
    assert main(["backtest", "--config", str(cfg), "--out", str(d / "streamed"), "--quiet",
                 "--chunk-accounts", "40"]) == 0
    return d / "dense", d / "streamed"


def test_streamed_summary_file_equals_the_dense_one(runs):
    dense, streamed = runs
    assert (dense / "summary.csv").read_text() == (streamed / "summary.csv").read_text()
    a, b = (json.loads((p / "summary.json").read_text()) for p in runs)
    assert a["coverage_verdict"] == b["coverage_verdict"]
    assert a["metrics"] == b["metrics"]
    assert b["streamed"]["chunks"] == 4 and b["streamed"]["chunk_accounts"] == 40
    assert (dense / "concentration.csv").read_text() == (streamed / "concentration.csv").read_text()


def test_streamed_run_writes_its_files_with_a_manifest(runs):
    _, streamed = runs
    names = {p.name for p in streamed.iterdir()}
    assert {"summary.csv", "summary.json", "comparison.csv", "procyclicality.csv", "liquidations.csv",
            "concentration.csv", "margin_over_time.csv", "pareto.png", "manifest.json"} <= names
    assert "margin_paths.parquet" not in names


@pytest.mark.parametrize("flags", [["--workers", "0"], ["--chunk-accounts", "0"],
                                   ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]])
def test_bad_stream_flags_are_user_errors(tmp_path, flags, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet", *flags]) != 0
    err = capsys.readouterr().err
    assert "--workers" in err or "--chunk-accounts" in err
    assert "Traceback" not in err


def test_unreachable_scheduler_is_a_user_error(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet",
                 "--scheduler", "tcp://127.0.0.1:9"]) != 0
    err = capsys.readouterr().err
    assert "--scheduler tcp://127.0.0.1:9" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
