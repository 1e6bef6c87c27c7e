"""Validator blind spots of issue 15 (item 5), table-driven: each bad file is refused by
``riskmodels data validate --strict`` with exit 1 and a message that names the defect and
the remedy; the clean file passes. Fixtures are written here (tmp_path)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.cli import main
from riskmodels.data.loaders import load_panel
from riskmodels.data.timegrid import grid_defects
from riskmodels.data.validate import DataError

N = 40


def ohlcv(n: int = N) -> pd.DataFrame:
    close = 100 * np.exp(np.cumsum(np.full(n, 0.01) * np.where(np.arange(n) % 3, 1, -1)))
    opn = np.r_[close[0], close[:-1]]
    return pd.DataFrame({"open": opn, "high": np.maximum(opn, close) * 1.01,
                         "low": np.minimum(opn, close) * 0.99, "close": close,
                         "volume": np.full(n, 5.0)})


def csv(times, df: pd.DataFrame | None = None) -> str:
    df = ohlcv(len(times)) if df is None else df
    df.insert(0, "datetime", list(times))
    return df.to_csv(index=False)


DAILY = pd.date_range("2024-01-01", periods=N, freq="D")
HOURLY = pd.date_range("2024-01-01", periods=N, freq="h")


def _inf(d: Path) -> None:
    df = ohlcv()
    df.loc[7, "close"] = np.inf
    df.loc[7, "high"] = np.inf
    (d / "AAA-USD_1d.csv").write_text(csv(DAILY.strftime("%Y-%m-%d"), df))


def _offset(d: Path) -> None:
    (d / "AAA-USD_1d.csv").write_text(csv(DAILY.strftime("%Y-%m-%dT00:00:00+05:00")))


def _offset_hourly(d: Path) -> None:
    (d / "AAA-USD_1h.csv").write_text(csv(HOURLY.strftime("%Y-%m-%d %H:00:00+05:30")))


def _spacing(d: Path) -> None:
    times = list(DAILY.strftime("%Y-%m-%d %H:%M:%S"))
    times.insert(11, "2024-01-11 00:01:26")  # 86 s after the 2024-01-11 bar
    (d / "AAA-USD_1d.csv").write_text(csv(times))


def _daily_named_hourly(d: Path) -> None:
    (d / "AAA-USD_1h.csv").write_text(csv(DAILY.strftime("%Y-%m-%d")))


def _hourly_named_daily(d: Path) -> None:
    (d / "AAA-USD_1d.csv").write_text(csv(HOURLY.strftime("%Y-%m-%d %H:%M:%S")))


def _large(d: Path) -> None:
    (d / "AAA-USD_1d.csv").write_text(csv(DAILY.strftime("%Y-%m-%d")))
    (d / "cfg.toml").write_text("[data]\nmax_file_mb = 0.001\n")  # 1,048 bytes


def _gzip(d: Path) -> None:
    (d / "AAA-USD_1d.csv").write_bytes(gzip.compress(csv(DAILY.strftime("%Y-%m-%d")).encode()))


def _nul(d: Path) -> None:
    (d / "AAA-USD_1d.csv").write_bytes(bytes(4096))


def _empty_date(d: Path) -> None:
    text = csv(DAILY.strftime("%Y-%m-%d"))
    lines = text.splitlines()
    lines[6] = "," + lines[6].split(",", 1)[1]  # line 7: the date cell empty
    (d / "AAA-USD_1d.csv").write_text("\n".join(lines) + "\n")


def _trailing_empty_row(d: Path) -> None:
    (d / "AAA-USD_1d.csv").write_text(csv(DAILY.strftime("%Y-%m-%d")) + ",,,,,\n")


def _clean(d: Path) -> None:
    (d / "AAA-USD_1d.csv").write_text(csv(DAILY.strftime("%Y-%m-%d")))


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], None]
    code: int
    words: tuple[str, ...]
    extra: tuple[str, ...] = ()


CASES = [
    Case("inf price", _inf, 1, ("infinite_price", "inf high/close", "2024-01-08", "fix the rows")),
    Case("+05:00 offset, daily", _offset, 1,
         ("misaligned", "off the 1d UTC grid", "19:00 UTC", "+05:00", "UTC open time")),
    Case("+05:30 offset, hourly", _offset_hourly, 1, ("misaligned", "1h UTC grid", "+05:30")),
    Case("bars 86 s apart", _spacing, 1,
         ("short_spacing", "closer than one 1d interval", "(86 s)", "2024-01-11 00:01")),
    Case("daily file named _1h", _daily_named_hourly, 1,
         ("interval_mismatch", "the file name says 1h bars", "1d apart", "rename the file")),
    Case("daily file named _1h, run at 1d", _daily_named_hourly, 1,
         ("skipped_file", "its name says 1h, so a run at 1d skips it", "interval_mismatch"),
         ("--interval", "1d")),
    Case("hourly file named _1d", _hourly_named_daily, 1,
         ("interval_mismatch", "the file name says 1d bars", "1h apart")),
    Case("file over max_file_mb", _large, 1,
         ("unreadable", "over the limit of 1,048 bytes", "max_file_mb")),
    Case("gzip named .csv", _gzip, 1, ("unreadable", "gzip-compressed", "gunzip")),
    Case("NUL bytes", _nul, 1, ("unreadable", "binary")),
    Case("empty date cell", _empty_date, 1, ("unreadable", "empty timestamp at line 7", "give every row its date")),
    Case("trailing ,,,,, row", _trailing_empty_row, 1, ("unreadable", f"empty timestamp at line {N + 2}")),
    Case("clean", _clean, 0, ("1 file(s), 0 unreadable", "0 errors")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_strict_names_the_defect(case: Case, tmp_path: Path, capsys):
    case.make(tmp_path)
    args = ["data", "validate", str(tmp_path), "--strict", *case.extra]
    if (tmp_path / "cfg.toml").exists():
        args += ["--config", str(tmp_path / "cfg.toml")]
    assert main(args) == case.code
    captured = capsys.readouterr()
    out = captured.out
    for w in case.words:
        assert w in out, f"{w!r} not in:\n{out}"
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("case", [c for c in CASES if c.code and not c.extra
                                  and c.make not in (_large,)], ids=lambda c: c.name)
def test_loading_refuses_the_same_files(case: Case, tmp_path: Path):
    """The backtest's loader (policy 'error') refuses each bad file with the same words."""
    case.make(tmp_path)
    with pytest.raises(DataError) as e:
        load_panel(tmp_path, min_length=1)
    msg = str(e.value)
    named = [w for w in case.words if w in msg]
    assert len(named) >= 2 or (case.words[0] == "unreadable" and named), (case.words, msg)


def test_load_panel_refuses_a_file_over_the_limit(tmp_path: Path):
    _clean(tmp_path)
    with pytest.raises(DataError, match=r"over the limit of 1,000 bytes"):
        load_panel(tmp_path, max_bytes=1000)


def test_misaligned_and_inf_truncate_to_the_clean_tail(tmp_path: Path):
    """Under policy 'truncate' an inf row is cut like a NaN row (nothing NaN reaches a model)."""
    _inf(tmp_path)
    with pytest.warns(UserWarning, match="AAA truncated: starts on 2024-01-09"):
        panel = load_panel(tmp_path, policy="truncate", min_length=1)
    assert np.isfinite(panel.close).all() and panel.dates[0] == pd.Timestamp("2024-01-09")


# ------------------------------------------------------------------ invariants of the grid check



@settings(max_examples=60, deadline=None)
@given(n=st.integers(10, 200), seed=st.integers(0, 2**31 - 1), drop=st.floats(0, 0.3),
       shift_h=st.integers(0, 23))
def test_grid_flags_exactly_the_shifted_daily_series(n, seed, drop, shift_h):
    """Midnight daily stamps with up to 30 % of days missing never raise a grid defect (the
    gap check owns missing days); shifting every stamp by 1-23 h flags every bar misaligned."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", periods=n, freq="D")
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(np.arange(1, n - 1), size=int(drop * n), replace=False)] = False
    idx = pd.DatetimeIndex(days[keep]).as_unit("ns") + pd.Timedelta(hours=shift_h)
    out, mismatch = grid_defects("A", idx, pd.Timedelta(days=1), "1d", "the file name")
    assert not mismatch
    kinds = {d.kind: d.count for d in out}
    assert kinds == ({} if shift_h == 0 else {"misaligned": len(idx)})
