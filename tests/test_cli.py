"""The command line end to end on the real data (small book), and reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskmodels.cli import main

SMALL = """
[data]
universe = ["BTC", "ETH", "SOL"]
start = "2021-06-01"
end = "2022-12-31"
[book]
accounts = 40
seed = 3
[backtest]
min_history = 365
[[models]]
name = "fixed_haircut"
label = "flat"
params = { imf = 0.1, mmf = 0.05 }
[[models]]
name = "scenario_grid"
label = "grid"
params = { recalibration = "monthly" }
"""


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    p = tmp_path / "small.toml"
    p.write_text(SMALL)
    return p


def test_backtest_writes_everything_and_is_reproducible(data_root: Path, small_config: Path, tmp_path: Path, capsys):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    args = ["backtest", "--config", str(small_config), "--data", str(data_root), "--quiet"]
    assert main([*args, "--out", str(out1)]) == 0
    printed = capsys.readouterr().out
    # default: one comparison table within 120 columns, then the paths of the written files
    lines = printed.splitlines()
    assert max(len(ln) for ln in lines) <= 120, max(lines, key=len)
    assert "flat" in printed and "grid" in printed and "kupiec_p" not in printed
    assert f"  {out1 / 'summary.csv'}" in lines and f"  {out1 / 'report.html'}" in lines
    for name in ("summary.csv", "summary.json", "summary.schema.json", "coverage.csv", "procyclicality.csv",
                 "margin_paths.parquet", "liquidations.csv", "report.html"):
        assert (out1 / name).stat().st_size > 0, name
    # -v: every detailed table
    assert main([*args, "--out", str(out2), "-v"]) == 0
    verbose = capsys.readouterr().out
    assert "kupiec_p" in verbose and "peak_to_trough" in verbose
    schema = json.loads((out1 / "summary.schema.json").read_text())["columns"]
    header = (out1 / "summary.csv").read_text().splitlines()[0].split(",")[1:]
    assert set(header) <= set(schema) and schema["bad_debt_bp_per_year"]["unit"].startswith("basis points")
    # same config -> the same numbers, byte for byte
    for name in ("summary.json", "summary.csv", "coverage.csv", "procyclicality.csv", "liquidations.csv"):
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
    summary = json.loads((out1 / "summary.json").read_text())
    assert set(summary["metrics"]) == {"flat", "grid"}
    html = (out1 / "report.html").read_text()
    assert "data:image/png;base64" in html and "Reproducibility" in html


def test_validate_lists_the_known_defects(daily_dir: Path, capsys):
    assert main(["data", "validate", str(daily_dir)]) == 0
    text = capsys.readouterr().out
    for asset in ("SHIB", "UNI", "SUI", "TON", "HYPE", "PEPE", "AVAX"):
        assert asset in text


def test_unknown_model_is_a_clear_error(tmp_path: Path, data_root: Path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[models]]\nname = "nope"\n')
    assert main(["backtest", "--config", str(cfg), "--data", str(data_root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown margin model 'nope'" in err and "fixed_haircut" in err


def test_no_data_runs_offline_on_the_embedded_dataset(tmp_path: Path, monkeypatch, capsys, loopback_only,
                                                      small_config: Path):
    """Issue 24: with no --data, no [data] dir and no RISKMODELS_DATA the backtest runs on the
    embedded dataset, says so on its first line and records its SHA-256 (was: exit 2 asking
    to run `riskmodels data fetch`)."""
    from riskmodels.data.embedded import embedded_info

    monkeypatch.delenv("RISKMODELS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "o"
    assert main(["backtest", "--offline", "--config", str(small_config), "--out", str(out)]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    sha = embedded_info().sha256
    assert "embedded dataset" in first and "offline" in first and sha[:12] in first
    assert "--data DIR" in first and "RISKMODELS_DATA" in first
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["kind"] == "embedded" and summary["data"]["sha256"] == sha
    assert "path" not in summary["data"]  # no install path: identical bytes on every machine
    assert f"sha256 {sha}" in (out / "report.html").read_text()


def test_named_fetch_cache_without_data_says_what_to_run(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("RISKMODELS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["backtest", "--data", "binance", "--out", str(tmp_path / "o")]) == 2
    assert "riskmodels data fetch" in capsys.readouterr().err


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "fixed_haircut" in out and "scenario_grid" in out
