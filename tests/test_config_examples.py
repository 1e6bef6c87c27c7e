"""``riskmodels config --example NAME``: every shipped example is a valid config for the command it names."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from riskmodels.cli import main
from riskmodels.config import SECTIONS
from riskmodels.config_examples import available_examples, example_text


def test_examples_are_listed_and_commented():
    names = available_examples()
    assert {"default", "calibrate", "sweep"} <= set(names)
    for name in names:
        text = example_text(name)
        assert text.lstrip().startswith("#"), name  # a header that says what the file is for
        assert sum(1 for ln in text.splitlines() if "#" in ln) >= 5, name
        assert set(tomllib.loads(text)) <= set(SECTIONS), name


def test_each_example_is_accepted_by_its_command(tmp_path: Path):
    from riskmodels.calibrate import read_toml
    from riskmodels.config import load_config
    from riskmodels.sweep import parse_sweep

    for name in available_examples():
        path = tmp_path / f"{name}.toml"
        assert main(["config", "--example", name, "--out", str(path)]) == 0
        assert path.read_text() == example_text(name)
        if name == "calibrate":
            cfg, sec = read_toml(path, "calibrate")
            assert sec["model"] == "fixed_haircut" and cfg["backtest"]["mpor"] == 2
        elif name == "sweep":
            assert parse_sweep(tomllib.loads(path.read_text())).size == 18
        elif name == "default":
            assert load_config(path)["book"]["accounts"] == 1000


def test_config_example_errors(tmp_path: Path, capsys):
    assert main(["config", "--example", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no such example" in err and "calibrate" in err and "Traceback" not in err
    out = tmp_path / "x.toml"
    out.write_text("keep")
    assert main(["config", "--example", "sweep", "--out", str(out)]) == 2
    assert out.read_text() == "keep" and "--force" in capsys.readouterr().err
    assert main(["config", "--example", "sweep", "--out", str(out), "--force"]) == 0
    assert out.read_text() == example_text("sweep")


def test_plain_config_prints_the_default(capsys):
    assert main(["config"]) == 0
    assert capsys.readouterr().out == example_text("default")


@pytest.mark.parametrize("name", ["calibrate", "sweep"])
def test_help_shows_the_shipped_example(name, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert example_text(name).splitlines()[2].strip() in capsys.readouterr().out
