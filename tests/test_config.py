"""Config loading: defaults, merging, named errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskmodels.config import default_config, liquidation_policy, load_config, merge


def test_default_config_is_the_issue_default():
    cfg = load_config()
    assert cfg["book"]["accounts"] == 1000
    assert cfg["backtest"]["mpor"] == 2
    assert cfg["data"]["start"] == "2018-01-01"
    assert len(cfg["data"]["universe"]) == 18
    assert {m["name"] for m in cfg["models"]} >= {"fixed_haircut", "scenario_grid"}


def test_merge_tables_key_by_key_and_lists_replace():
    base = {"a": {"x": 1, "y": 2}, "models": [1, 2]}
    assert merge(base, {"a": {"y": 3}, "models": [9]}) == {"a": {"x": 1, "y": 3}, "models": [9]}
    assert base == {"a": {"x": 1, "y": 2}, "models": [1, 2]}


def test_user_file_overrides(tmp_path: Path):
    p = tmp_path / "c.toml"
    p.write_text("[book]\naccounts = 7\n[liquidation]\nreentry_days = 0\n")
    cfg = load_config(p)
    assert cfg["book"]["accounts"] == 7 and cfg["book"]["seed"] == default_config()["book"]["seed"]
    assert liquidation_policy(cfg).reentry_days is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[bogus]\nx = 1\n", "unknown section"),
        ("[backtest]\nmpor = 4\n", "mpor"),
        ("[liquidation]\nslipage = 0.1\n", "unknown key"),
        ("[book]\naccounts = 0\n", "accounts"),
        ("[backtest\n", "not valid TOML"),
    ],
)
def test_bad_configs_are_named(tmp_path: Path, text: str, match: str):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_config(p)


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        load_config(tmp_path / "nope.toml")
