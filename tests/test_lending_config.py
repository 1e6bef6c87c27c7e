"""Lending parameters, the [lending] config section, the shipped example and the CLI."""

from __future__ import annotations

import tomllib

import pandas as pd
import pytest

from riskmodels.cli import main
from riskmodels.config import example_config_text, example_names, load_config
from riskmodels.lending.config import LendingConfig, is_lending
from riskmodels.lending.market import AssetParams, LendingMarket

USD = {"ltv": 0.75, "lt": 0.78}


@pytest.mark.parametrize("params, match", [
    ({"ltv": 0.85, "lt": 0.80}, r"lending.assets.ETH.ltv=0.85: must satisfy 0 <= ltv <= lt"),
    ({"ltv": 0.8, "lt": 1.0}, r"lending.assets.ETH.lt=1.0"),
    ({"ltv": 0.8, "lt": 0.83, "lb": 1.0}, r"lending.assets.ETH.lb=1.0: must be > 1"),
    ({"ltv": 0.8, "lt": 0.95, "lb": 1.10}, r"lt x lb = 1.0450 must be <= 1"),
    ({"ltv": 0.8, "lt": 0.83, "protocol_fee": 1.5}, r"protocol_fee=1.5"),
    ({"ltv": 0.8, "lt": 0.83, "supply_cap": -1}, r"supply_cap=-1"),
    ({"ltv": 0.8, "lt": 0.83, "bonus": 1.1}, r"unknown key\(s\) \['bonus'\]"),
    ({"ltv": "0.8", "lt": 0.83}, r"ltv='0.8': must be a finite number"),
    ({"lt": 0.83}, r"needs ltv and lt"),
])
def test_bad_parameters_named(params, match):
    with pytest.raises(ValueError, match=match):
        LendingMarket({"USD": USD, "ETH": params})


@pytest.mark.parametrize("kw, match", [
    ({"close_factor": 0.0}, r"lending.close_factor=0.0: must satisfy 0 < close_factor <= 1"),
    ({"close_factor": 1.2}, r"close_factor=1.2"),
    ({"protocol": "compound"}, r"lending.protocol='compound'"),
    ({"gas_usd": -5}, r"lending.gas_usd=-5"),
])
def test_bad_market_keys_named(kw, match):
    with pytest.raises(ValueError, match=match):
        LendingMarket({"USD": USD}, **kw)


def test_morpho_bonus_is_lif():
    m = LendingMarket({"USD": USD, "ETH": {"ltv": 0.86, "lt": 0.86, "lb": 1.3}}, protocol="morpho_blue")
    assert m.assets["ETH"].lb == pytest.approx(1 / (0.3 * 0.86 + 0.7))
    assert m.assets["ETH"].protocol_fee == 0.0


def test_with_params_validates():
    m = LendingMarket({"USD": USD, "ETH": AssetParams(0.8, 0.83)})
    assert m.with_params("ETH", lt=0.85).assets["ETH"].lt == 0.85
    with pytest.raises(ValueError, match="ltv"):
        m.with_params("ETH", lt=0.7)


def test_example_config_parses_and_is_lending():
    assert "lending" in example_names() and "default" in example_names()
    doc = tomllib.loads(example_config_text("lending"))
    assert is_lending(doc)
    lc = LendingConfig.from_dict(doc["lending"])
    assert lc.market.protocol == "aave_v3.3" and lc.recommend is not None
    with pytest.raises(ValueError, match=r"no example config 'nope'; valid: .*lending"):
        example_config_text("nope")


def test_config_errors_name_the_key():
    doc = tomllib.loads(example_config_text("lending"))
    sec = doc["lending"]
    with pytest.raises(ValueError, match=r"\[lending\] has unknown key\(s\) \['colour'\]"):
        LendingConfig.from_dict({**sec, "colour": 1})
    with pytest.raises(ValueError, match=r"lending.generator.accounts=0"):
        LendingConfig.from_dict({**sec, "generator": {"accounts": 0}})
    with pytest.raises(ValueError, match=r"\[lending.generator\] has unknown key"):
        LendingConfig.from_dict({**sec, "generator": {"acounts": 10}})
    with pytest.raises(ValueError, match=r"lending.impact.name='cubic'"):
        LendingConfig.from_dict({**sec, "impact": {"name": "cubic"}})
    with pytest.raises(ValueError, match=r"lending.recommend.target.kind='x'"):
        LendingConfig.from_dict({**sec, "recommend": {"enabled": True, "target": {"kind": "x"}}})
    with pytest.raises(ValueError, match=r"market.kind='options'"):
        is_lending({"market": {"kind": "options"}})


def test_cli_config_example(capsys):
    assert main(["config", "--example", "lending"]) == 0
    assert '[market]\nkind = "lending"' in capsys.readouterr().out
    assert main(["config", "--example", "nope"]) == 2
    assert "'nope': no such example config" in capsys.readouterr().err


def test_cli_backtest_lending_small(tmp_path, data_root, capsys):
    text = example_config_text("lending")
    doc = tomllib.loads(text)
    cfg = tmp_path / "lending.toml"
    small = text.replace('universe = ["BTC", "ETH", "SOL", "LINK", "AVAX", "DOGE"]', 'universe = ["BTC", "ETH"]')
    small = small.replace('start = "2019-01-01"\nend = ""', 'start = "2022-01-01"\nend = "2022-12-31"')
    small = small.replace("enabled = true", "enabled = false")
    for a in ("SOL", "LINK", "AVAX", "DOGE"):
        block = small[small.index(f"[lending.assets.{a}]"):]
        nxt = block.index("\n[", 1)
        small = small.replace(block[: nxt + 1], "")
    cfg.write_text(small)
    out = tmp_path / "out"
    assert main(["backtest", "--config", str(cfg), "--data", str(data_root), "--out", str(out), "--quiet",
                 "--accounts", "150"]) == 0
    hf = pd.read_parquet(out / "health_factors.parquet")
    assert {"date", "account", "health_factor", "toxic"} <= set(hf.columns) and len(hf) > 0
    summ = pd.read_csv(out / "lending_summary.csv").set_index("statistic")
    assert summ.loc["accounts", "value"] == 150
    assert (out / "liquidations.csv").exists() and (out / "lending_assets.csv").exists()
    assert not (out / "recommendations.csv").exists()
    # the governance report beside the outputs: its summary table is the CSV's numbers
    page = (out / "report.md").read_text()
    assert (out / "report.html").exists() and "Market risk over the backtest" in page
    rep = pd.read_csv(out / "tables" / "lending_summary.csv").set_index("statistic")
    assert rep.loc["accounts", "value"] == summ.loc["accounts", "value"]
    assert doc["market"]["kind"] == "lending"
    # a bad parameter fails before any data is read, naming it
    cfg.write_text(small.replace("lt = 0.83", "lt = 1.2"))
    assert main(["backtest", "--config", str(cfg), "--data", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "lending.assets.ETH.lt=1.2" in capsys.readouterr().err


def test_load_config_accepts_lending_sections():
    cfg = load_config(None, {"market": {"kind": "lending"}})
    assert is_lending(cfg)
