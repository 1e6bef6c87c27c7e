"""The loader reads the files users actually have (issue 24 item 3): small fixtures of each
layout, written here (tmp_path), never the shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.cli import main
from riskmodels.data.compare import compare_closes, compare_sources
from riskmodels.data.loaders import load_files, load_panel, validate_directory
from riskmodels.data.options import LoaderOptions
from riskmodels.data.validate import DataError

DAYS = pd.date_range("2024-01-01", periods=30, freq="D")


def bars(n: int = 30, seed: int = 0) -> pd.DataFrame:
    """Seeded OHLCV with consistent high/low, indexed 0..n-1."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))
    opn = np.r_[close[0], close[:-1]]
    return pd.DataFrame({"open": opn, "high": np.maximum(opn, close) * 1.01,
                         "low": np.minimum(opn, close) * 0.99, "close": close,
                         "volume": rng.integers(1, 1000, n).astype(float)})


def write(path: Path, time_col: str, times, df: pd.DataFrame | None = None, **rename) -> Path:
    df = (bars() if df is None else df).rename(columns=rename)
    df.insert(0, time_col, times)
    df.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ time columns
@pytest.mark.parametrize("col", ["day", "date", "Date", "time", "timestamp", "open_time",
                                 "Open Time", "unix", "ts"])
def test_recognised_time_names(tmp_path, col):
    write(tmp_path / "BTC-USD_1d.csv", col, DAYS.strftime("%Y-%m-%d"))
    df = load_files(tmp_path)["BTC"]
    assert (df.index == DAYS).all()


SECONDS = (DAYS - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)


@pytest.mark.parametrize("scale", [1, 1_000, 1_000_000])
def test_unix_seconds_milliseconds_microseconds(tmp_path, scale):
    stamps = np.asarray(SECONDS, dtype=np.int64) * scale
    assert stamps[0] == 1704067200 * scale  # 2024-01-01 is 1704067200 s after the epoch
    write(tmp_path / "ETH-USD_1d.csv", "timestamp", stamps)
    assert (load_files(tmp_path)["ETH"].index == DAYS).all()


def test_epoch_numbers_written_as_text(tmp_path):
    """A text column of digits (e.g. from a JSON export) is read as epoch numbers."""
    from riskmodels.data.loaders import _parse_times

    text = pd.Series([str(v) for v in np.asarray(SECONDS, dtype=np.int64) * 1000], dtype=object)
    idx = _parse_times(tmp_path / "x.csv", text, True)
    assert (idx == DAYS).all()


def test_iso_with_z_and_zero_offset_is_utc(tmp_path):
    write(tmp_path / "BTC-USD_1d.csv", "datetime", DAYS.strftime("%Y-%m-%dT%H:%M:%SZ"))
    rep = validate_directory(tmp_path, min_length=1)
    assert rep.ok and (load_files(tmp_path)["BTC"].index == DAYS).all()


# ------------------------------------------------------------------ column map
def test_column_map_argument_and_config(tmp_path):
    df = bars().rename(columns={"close": "Close Price", "volume": "Vol (BTC)"})
    df.insert(0, "Date(UTC)", DAYS.strftime("%Y-%m-%d"))
    df["close"] = 1.0  # a decoy column the map must override
    df.to_csv(tmp_path / "BTC-USD_1d.csv", index=False)
    cmap = {"date": "Date(UTC)", "close": "close price", "volume": "Vol (BTC)"}
    got = load_files(tmp_path, columns=cmap)["BTC"]
    np.testing.assert_array_equal(got["close"].to_numpy(), bars()["close"].to_numpy())
    np.testing.assert_array_equal(got["volume"].to_numpy(), bars()["volume"].to_numpy())
    opts = LoaderOptions.from_config({"columns": cmap})
    panel = load_panel(tmp_path, min_length=1, **opts.kwargs())
    np.testing.assert_array_equal(panel.close[:, 0], bars()["close"].to_numpy())


def test_column_map_errors_name_the_key_or_the_file(tmp_path):
    write(tmp_path / "BTC-USD_1d.csv", "day", DAYS.strftime("%Y-%m-%d"))
    with pytest.raises(ValueError, match=r"\[data\] columns: unknown key 'clse'.*close"):
        LoaderOptions.from_config({"columns": {"clse": "x"}})
    with pytest.raises(DataError, match=r"BTC-USD_1d\.csv: the column map says close = 'Last'.*day"):
        load_files(tmp_path, columns={"close": "Last"})


# ------------------------------------------------------------------ asset names
def test_asset_from_a_map_or_a_pattern(tmp_path):
    write(tmp_path / "bitcoin.csv", "date", DAYS.strftime("%Y-%m-%d"))
    write(tmp_path / "eth_daily.csv", "date", DAYS.strftime("%Y-%m-%d"))
    assert set(load_files(tmp_path, symbols={"bitcoin.csv": "BTC", "eth_daily.csv": "ETH"})) \
        == {"BTC", "ETH"}
    with pytest.raises(DataError, match=r"bitcoin\.csv.*does not match name_pattern"):
        load_files(tmp_path, name_pattern=r"(?P<asset>[a-z]+)_daily")
    rep = validate_directory(tmp_path, name_pattern=r"(?P<asset>[a-z]+)_daily", min_length=1)
    assert {f.path.name: f.status for f in rep.files} == {"bitcoin.csv": "unreadable",
                                                          "eth_daily.csv": "ok"}
    (tmp_path / "bitcoin.csv").rename(tmp_path / "btc_daily.csv")
    panel = load_panel(tmp_path, name_pattern=r"(?P<asset>[a-z]+)_daily", assets=["ETH", "BTC"],
                       min_length=1)
    assert panel.assets == ("ETH", "BTC")
    with pytest.raises(ValueError, match=r"\[data\] name_pattern.*group named asset"):
        LoaderOptions(name_pattern=r"[a-z]+_daily")


def test_two_files_for_one_asset_are_an_error_naming_both(tmp_path):
    write(tmp_path / "BTC-USD_1d.csv", "date", DAYS.strftime("%Y-%m-%d"))
    b = bars(seed=1)
    b.insert(0, "datetime", DAYS)
    b.to_parquet(tmp_path / "btc.parquet")
    for call in (lambda: load_files(tmp_path), lambda: load_panel(tmp_path, assets=["BTC"])):
        with pytest.raises(DataError, match=r"two files map to asset BTC: .*BTC-USD_1d\.csv and "
                                            r".*btc\.parquet"):
            call()
    rep = validate_directory(tmp_path, min_length=1)
    assert [d.kind for d in rep.errors] == ["duplicate_asset"]


def test_dated_archive_pieces_are_one_series(tmp_path):
    write(tmp_path / "BTCUSDT-1d-2024-01.csv", "open_time", DAYS[:15].strftime("%Y-%m-%d"),
          bars().iloc[:15])
    write(tmp_path / "BTCUSDT-1d-2024-02.csv", "open_time", DAYS[15:].strftime("%Y-%m-%d"),
          bars().iloc[15:].reset_index(drop=True))
    df = load_files(tmp_path)["BTC"]
    assert len(df) == 30 and (df.index == DAYS).all()


# ------------------------------------------------------------------ validate every file
def test_validate_reports_every_file_including_unreadable(tmp_path, capsys):
    write(tmp_path / "AAA-USD_1d.csv", "date", DAYS.strftime("%Y-%m-%d"))
    (tmp_path / "BBB-USD_1d.csv").write_text("date,open,high,low,close,volume\n")
    (tmp_path / "CCC-USD_1d.csv").write_bytes(b"\x1f\x8b\x08\x00" + bytes(50))
    write(tmp_path / "DDD-USD_1d.csv", "date", DAYS.strftime("%Y-%m-%d"), bars(seed=2))
    rep = validate_directory(tmp_path, min_length=1)
    status = {f.path.name: f.status for f in rep.files}
    assert status == {"AAA-USD_1d.csv": "ok", "BBB-USD_1d.csv": "unreadable",
                      "CCC-USD_1d.csv": "unreadable", "DDD-USD_1d.csv": "ok"}
    msgs = {d.asset: d.message for d in rep.by_kind("unreadable")}
    assert "no data rows" in msgs["BBB"] and "gzip" in msgs["CCC"]
    assert main(["data", "validate", str(tmp_path), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "4 file(s), 2 unreadable" in out and "DDD-USD_1d.csv" in out


# ------------------------------------------------------------------ --against
def test_against_finds_end_of_day_stamps_and_the_disagreement(tmp_path, capsys):
    """OTHER stamps the close of day D on D+1 and differs by a known factor on one day."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    base = bars(60, seed=5)
    write(a_dir / "BTC-USD_1d.csv", "date", pd.date_range("2024-01-01", periods=60).strftime("%Y-%m-%d"), base)
    other = base.copy()
    other.loc[10, "close"] *= 1.02  # +2 % on the bar that A stamps 2024-01-11
    other.loc[:, "close"] *= np.where(np.arange(60) % 2 == 0, 1.0001, 0.9999)  # +-1 bp noise
    other["high"] = np.maximum(other["high"], other["close"])
    other["low"] = np.minimum(other["low"], other["close"])
    write(b_dir / "BTC-USD_1d.csv", "date", pd.date_range("2024-01-02", periods=60).strftime("%Y-%m-%d"), other)
    cmp = compare_sources(a_dir, b_dir, max_lag=3)
    row = cmp.table.iloc[0]
    assert row["best_lag"] == 1 and row["overlap"] == 60
    # independent: at lag 1 the ratios are the noise factors, and 1.02 x 1.0001 on one day
    assert row["median_pct"] == pytest.approx(0.01, rel=1e-6)
    assert row["max_pct"] == pytest.approx((1.02 * 1.0001 - 1) * 100, rel=1e-9)
    assert pd.Timestamp(row["max_on"]) == pd.Timestamp("2024-01-11")
    assert row["median_pct_lag0"] > 100 * row["median_pct"]
    assert "later" in row["verdict"]
    assert main(["data", "validate", str(a_dir), "--against", str(b_dir)]) == 0
    assert "end-of-bar stamps" in capsys.readouterr().out


def test_compare_same_source_is_lag_zero_and_exact():
    s = pd.Series(bars(40)["close"].to_numpy(), index=pd.date_range("2024-01-01", periods=40))
    row = compare_closes(s, s, pd.Timedelta(days=1))
    assert row["best_lag"] == 0 and row["median_pct"] == 0 and row["max_pct"] == 0
    assert compare_closes(s, s.iloc[:5], pd.Timedelta(days=1))["best_lag"] is None


def test_backtest_refuses_a_bad_loader_key_before_any_work(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\ncolumns = { clse = "Close" }\n')
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "[data] columns: unknown key 'clse'" in err and "close" in err
    assert not (tmp_path / "o").exists()




@settings(max_examples=40, deadline=None)
@given(k=st.integers(-3, 3), seed=st.integers(0, 2**31 - 1), noise=st.floats(0, 1e-3))
def test_compare_recovers_any_stamp_lag(k, seed, noise):
    """OTHER = the same closes stamped k bars later, with relative noise << daily moves."""
    rng = np.random.default_rng(seed)
    n = 120
    close = 100 * np.exp(np.cumsum(0.03 * rng.standard_normal(n)))
    a = pd.Series(close, index=pd.date_range("2024-01-01", periods=n))
    b = pd.Series(close * (1 + noise * rng.uniform(-1, 1, n)), index=a.index + pd.Timedelta(days=k))
    row = compare_closes(a, b, pd.Timedelta(days=1), max_lag=3)
    assert row["best_lag"] == k and row["overlap"] == n
    # + 1e-12 percent: the rounding of the close ratio (a few ulps) when the noise is ~1e-15
    assert row["max_pct"] <= noise * 100 * (1 + 1e-9) + 1e-12
