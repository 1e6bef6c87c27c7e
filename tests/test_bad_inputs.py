"""Every input a user can get wrong: one line on stderr naming where, what and the remedy; non-zero exit.

Table-driven: each case writes a config (and maybe a book file), runs the CLI
in-process (``main(argv)``), and asserts the exit code, that stderr is one
``riskmodels: error:`` line without a traceback, and the words of the message.
The cases are the ones issue #15 lists (typos, coerced types, raw tracebacks,
errors that named nothing), for ``backtest``, ``report``, ``sweep``,
``calibrate`` and ``cascade``. A few run as real subprocesses (``--debug``).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.cli import main

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ("BTC", "ETH", "SOL")

GOOD_MODEL = '[[models]]\nname = "fixed_haircut"\nlabel = "flat"\nparams = { imf = 0.1, mmf = 0.05 }\n'
SMALL = ('[data]\nuniverse = ["BTC", "ETH", "SOL"]\nstart = "2020-09-01"\npolicy = "error"\n'
         "[book]\naccounts = 20\nseed = 1\n[backtest]\nmin_history = 60\nn_jobs = 1\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean synthetic daily data folder (300 days from 2020-03-01, 3 assets)."""
    root = tmp_path_factory.mktemp("data")
    d = root / "crypto-daily"
    d.mkdir()
    rng = np.random.default_rng(5)
    dates = pd.date_range("2020-03-01", periods=300, freq="D")
    for a in ASSETS:
        close = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(300)))
        opn = np.r_[close[0], close[:-1]]
        f = pd.DataFrame({"datetime": dates.strftime("%Y-%m-%d"), "open": opn,
                          "high": np.maximum(opn, close) * 1.01, "low": np.minimum(opn, close) * 0.99,
                          "close": close, "volume": 1e6})
        f.to_csv(d / f"{a}-USD_1d.csv", index=False)
    return root


def book_csv(text: str) -> str:
    return "account,asset,kind,usd,isolated\n" + text


# (id, command, config text, book file (name, content) or None, extra argv, expected exit, words in the message)
CASES = [
    ("typo-backtest-key", "backtest", "[backtest]\nmpr = 5\n", None, [], 2, ["[backtest]", "'mpr'", "did you mean 'mpor'"]),
    ("typo-book-key", "backtest", "[book]\nacounts = 100\n", None, [], 2, ["[book]", "did you mean 'accounts'"]),
    ("typo-models-key", "backtest", '[[models]]\nname = "ewma"\nparmas = { horizon = 2 }\n', None, [], 2,
     ["[[models]] #1", "did you mean 'params'"]),
    ("models-under-backtest", "backtest", "[backtest]\nmodels = []\n", None, [], 2,
     ["`models` is not a key of [backtest]", "[[models]] tables"]),
    ("no-models", "backtest", "models = []\n", None, [], 2, ["lists no models", "[[models]]"]),
    ("string-bool-intraday", "backtest", '[liquidation]\nintraday = "false"\n', None, [], 2,
     ["[liquidation] intraday", "must be a boolean", "write false without quotes"]),
    ("string-bool-netting", "backtest", '[backtest]\nnetting = "false"\n', None, [], 2,
     ["[backtest] netting", "must be a boolean"]),
    ("float-mpor", "backtest", "[backtest]\nmpor = 2.5\n", None, [], 2, ["mpor = 2.5", "one of 1, 2, 3, 5, 10"]),
    ("float-for-int-param", "backtest", '[[models]]\nname = "historical_var"\nparams = { window = 250.0 }\n',
     None, [], 2, ["window = 250.0", "must be an integer", "write 250"]),
    ("tz-start", "backtest", '[data]\nstart = "2021-06-01T00:00:00+05:00"\n', None, [], 2,
     ["[data] start", "time zone", 'write "2021-06-01"']),
    ("tz-start-flag", "backtest", "", None, ["--start", "2021-06-01T00:00+05:00"], 2, ["start", "time zone"]),
    ("string-cushion", "backtest", '[liquidation]\ncushion = "0.5"\n', None, [], 2,
     ["[liquidation] cushion", "must be a number"]),
    ("negative-cushion", "backtest", "[liquidation]\ncushion = -0.5\n", None, [], 2, ["cushion", ">= 0"]),
    ("misspelled-model-param", "backtest", '[[models]]\nname = "ewma"\nparams = { horizn = 2 }\n', None, [], 2,
     ["params", "'horizn'", "did you mean 'horizon'"]),
    ("model-param-range", "backtest", '[[models]]\nname = "fixed_haircut"\nparams = { imf = 1.5 }\n', None, [], 2,
     ["imf", "valid range"]),
    ("unknown-model", "backtest", '[[models]]\nname = "ewmaa"\n', None, [], 2,
     ["unknown margin model 'ewmaa'", "did you mean 'ewma'"]),
    ("models-without-name", "backtest", '[[models]]\nlabel = "x"\n', None, [], 2, ["[[models]] #1", "needs `name`"]),
    ("confidence-range", "backtest", "[backtest]\nconfidence = 1.5\n", None, [], 2,
     ["confidence = 1.5", "valid range (0, 1)"]),
    ("unknown-section", "backtest", "[bakctest]\nmpor = 2\n", None, [], 2,
     ["unknown section 'bakctest'", "did you mean 'backtest'"]),
    ("bad-toml", "backtest", "[backtest\nmpor = 2\n", None, [], 2, ["not valid TOML", "line 1"]),
    ("list-range", "backtest", "[book]\ncollateral_share = [0.0, 1.8]\n", None, [], 2,
     ["collateral_share[1] = 1.8", "[0, 1]"]),
    ("literal-choice", "backtest", '[backtest]\ncoverage_on = "initail"\n', None, [], 2,
     ["coverage_on", '"initial", "maintenance"']),
    ("header-only-book", "backtest", "", ("book.csv", "account,asset,kind,usd\n"), [], 2,
     ["book.csv", "no holdings"]),
    ("empty-book", "backtest", "", ("book.csv", ""), [], 2, ["book.csv", "empty"]),
    ("isolated-no", "backtest", "", ("book.csv", book_csv("a,BTC,position,1000,no\n")), [], 2,
     ["line 2", "isolated = 'no'", "true or false"]),
    ("isolated-blank", "backtest", "", ("book.csv", book_csv("a,BTC,position,1000,false\na,ETH,position,5,\n")),
     [], 2, ["line 3", "isolated = ''", "true or false"]),
    ("empty-usd-cell", "backtest", "", ("book.csv", book_csv("a,BTC,position,,false\n")), [], 2,
     ["line 2", "usd = ''", "finite number"]),
    ("ragged-row", "backtest", "", ("book.csv", book_csv("a,BTC,position,100,false,7,8\n")), [], 2,
     ["book.csv", "line 2", "7 cells, the header 5"]),
    ("unknown-kind", "backtest", "", ("book.csv", book_csv("a,BTC,perp,100,false\n")), [], 2,
     ["line 2", "kind = 'perp'", "collateral, position or cash"]),
    ("negative-collateral", "backtest", "", ("book.csv", book_csv("a,BTC,collateral,-5,false\n")), [], 2,
     ["line 2", "negative"]),
    ("binary-book", "backtest", "", ("book.csv", b"\x00\x01\x02" * 100), [], 2, ["book.csv", "binary"]),
    ("gzip-book", "backtest", "", ("book.csv", gzip.compress(b"account,asset,kind,usd\na,BTC,position,1\n")),
     [], 2, ["book.csv", "gzip-compressed", "gunzip"]),
    ("cp1252-book", "backtest", "", ("book.csv", "account,asset,kind,usd\n\u2018a\u2019,BTC,position,1\n"
                                     .encode("cp1252")), [], 2, ["book.csv", "not UTF-8"]),
    ("toml-book-string-bool", "backtest", "",
     ("book.toml", '[[account]]\nid = "a"\nisolated = "no"\npositions = { BTC = 100 }\n'), [], 2,
     ["book.toml", "isolated", "must be a boolean"]),
    ("toml-book-typo", "backtest", "", ("book.toml", '[[account]]\nid = "a"\npostions = { BTC = 100 }\n'), [], 2,
     ["book.toml", "did you mean 'positions'"]),
    ("report-typo", "report", "[backtest]\nmpr = 5\n", None, [], 2, ["did you mean 'mpor'"]),
    ("report-section-typo", "report", "[report]\ntitel = \"x\"\n", None, [], 2, ["[report]", "did you mean 'title'"]),
    ("report-nested-type", "report", "[report.recommend]\nmax_step = \"0.1\"\n", None, [], 2,
     ["max_step", "must be a number"]),
    ("cascade-type", "cascade", '[cascade]\naccounts = "5"\n', None, [], 2, ["[cascade] accounts", "integer"]),
    ("cascade-impact-name", "cascade", '[cascade]\nimpact = "sqrtt"\n', None, [], 2,
     ["unknown impact model 'sqrtt'", "did you mean 'sqrt'"]),
    ("cascade-impact-param", "cascade", '[cascade]\nimpact_params = { Yy = 0.7 }\n', None, [], 2,
     ["impact_params (sqrt)", "did you mean 'Y'"]),
    ("sweep-typo", "sweep", '[book]\nacounts = 5\n[sweep]\nmodel = "fixed_haircut"\n'
     "[sweep.grid.model]\nimf = [0.1]\n", None, [], 2, ["did you mean 'accounts'"]),
    ("sweep-grid-type", "sweep", '[sweep]\nmodel = "fixed_haircut"\n[sweep.grid.backtest]\nmpor = [2, 2.5]\n',
     None, [], 2, ["mpor[1] = 2.5", "one of 1, 2, 3, 5, 10"]),
    ("sweep-model-param", "sweep", '[sweep]\nmodel = "fixed_haircut"\n[sweep.grid.model]\nimff = [0.1]\n', None,
     [], 2, ["'imff'", "did you mean 'imf'"]),
    ("calibrate-param", "calibrate", '[calibrate]\nmodel = "fixed_haircut"\nparam = "imff"\n', None, [], 2,
     ["[calibrate] param", "did you mean 'imf'"]),
    ("calibrate-type", "calibrate", '[calibrate]\nmodel = "fixed_haircut"\nparam = "imf"\ngrid = 5.5\n', None,
     [], 2, ["grid = 5.5", "integer"]),
    ("nothing-to-evaluate", "backtest", "[backtest]\nmin_history = 5000\n", None, [], 2,
     ["nothing to evaluate", "min_history", "2020-"]),
]


def _write_case(tmp_path: Path, cfg_text: str, book: tuple[str, str | bytes] | None, command: str) -> Path:
    text = SMALL + GOOD_MODEL
    if book is not None:
        p = tmp_path / book[0]
        (p.write_bytes if isinstance(book[1], bytes) else p.write_text)(book[1])  # type: ignore[operator]
        text = text.replace("[book]\n", f'[book]\nsource = "{p}"\n')
    if "[[models]]" in cfg_text or "models = []" in cfg_text:
        text = text.replace(GOOD_MODEL, "")
    if "models = []" in cfg_text and "[backtest]" not in cfg_text:
        text = cfg_text + text  # a top-level key must come before the first table
        cfg_text = ""
    # a table the base already declares gets the case's lines inside it (TOML forbids declaring it twice)
    rest = []
    for block in ("\n" + cfg_text).split("\n["):
        if not block.strip():
            continue
        head, _, body = ("[" + block).partition("\n")
        if head.startswith("[") and not head.startswith("[[") and f"{head}\n" in text:
            for ln in body.splitlines():  # a key the base sets is replaced, not repeated
                key = ln.split("=")[0].strip()
                text = "\n".join(x for x in text.split("\n") if x.split("=")[0].strip() != key)
            text = text.replace(f"{head}\n", f"{head}\n{body}\n", 1)
        else:
            rest.append(f"{head}\n{body}")
    cfg = tmp_path / "run.toml"
    cfg.write_text(text + "\n".join(rest) + "\n")
    return cfg


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_message(case, tmp_path: Path, data: Path, capsys) -> None:
    _id, command, cfg_text, book, extra, code, words = case
    cfg = _write_case(tmp_path, cfg_text, book, command)
    argv = [command, "--config", str(cfg), "--data", str(data), "--out", str(tmp_path / "out"), "--quiet", *extra]
    if command == "cascade":
        argv = [command, "--config", str(cfg), "--data", str(data), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("riskmodels:")]
    assert len(lines) == 1 and lines[0].startswith("riskmodels: error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "out").exists(), "a failed run leaves no output folder"
    assert not list(tmp_path.glob(".out.*")), "a failed run leaves no temporary folder"


def test_config_errors_name_the_file_and_line(tmp_path: Path, data: Path, capsys) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(SMALL + GOOD_MODEL + "[liquidation]\npenalty = 0.01\nintraday = \"false\"\n")
    assert main(["backtest", "--config", str(cfg), "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    line = SMALL.count("\n") + GOOD_MODEL.count("\n") + 3
    assert f"{cfg}:{line}: [liquidation] intraday" in capsys.readouterr().err


def test_out_naming_an_existing_file_fails_before_work(tmp_path: Path, data: Path, capsys) -> None:
    f = tmp_path / "out.txt"
    f.write_text("keep me")
    assert main(["backtest", "--data", str(data), "--out", str(f), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err and "Traceback" not in err
    assert f.read_text() == "keep me"


def test_out_naming_a_foreign_folder_is_refused(tmp_path: Path, data: Path, capsys) -> None:
    d = tmp_path / "home"
    d.mkdir()
    (d / "thesis.tex").write_text("x")
    assert main(["backtest", "--data", str(data), "--out", str(d), "--quiet"]) == 2
    assert "not an earlier riskmodels result" in capsys.readouterr().err
    assert (d / "thesis.tex").exists()


def test_missing_and_binary_config_files(tmp_path: Path, capsys) -> None:
    assert main(["backtest", "--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "config file not found" in capsys.readouterr().err
    b = tmp_path / "bin.toml"
    b.write_bytes(b"\x91\x92\x00\xff" * 10)
    assert main(["backtest", "--config", str(b), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a UTF-8 text file" in err and str(b) in err


def test_native_toml_date_runs_and_is_recorded_as_text(tmp_path: Path, data: Path, capsys) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(SMALL.replace('start = "2020-09-01"', "start = 2020-09-01") + GOOD_MODEL)
    out = tmp_path / "out"
    assert main(["backtest", "--config", str(cfg), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["config"]["data"]["start"] == "2020-09-01"
    assert (out / "manifest.json").exists()


def test_trailing_empty_rows_of_a_book_are_skipped(tmp_path: Path, data: Path, capsys) -> None:
    book = tmp_path / "book.csv"
    book.write_text(book_csv("a,BTC,position,1000,false\nb,ETH,collateral,500,TRUE\nb,ETH,position,-400,true\n"
                             ",,,,\n,,,,\n"))
    from riskmodels.portfolio import Book

    b = Book.read(book)
    assert b.account_ids == ("a", "b") and b.isolated.tolist() == [False, True]
    assert b.positions.tolist() == [[1000.0, 0.0], [0.0, -400.0]]


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "riskmodels.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)


def test_subprocess_exit_code_and_debug_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text("[backtest]\nmpr = 5\n")
    r = _run(["backtest", "--config", str(cfg), "--out", str(tmp_path / "o")], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "did you mean 'mpor'" in r.stderr
    assert "Traceback" not in r.stderr
    r = _run(["--debug", "backtest", "--config", str(cfg), "--out", str(tmp_path / "o")], tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "UserError" in r.stderr
