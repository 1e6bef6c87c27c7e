"""Loaders: file formats, symbols, malformed files, panels from real and hand-made files."""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.data import DEFAULT_UNIVERSE, DataError, DataQualityWarning, load_files, load_panel
from riskmodels.data.loaders import (
    BINANCE_KLINE_COLUMNS,
    interval_from_filename,
    symbol_from_filename,
    validate_directory,
)

ROWS = pd.DataFrame(
    {
        "datetime": ["2024-01-01", "2024-01-02", "2024-01-03"],
        "open": [100.0, 101.0, 99.0],
        "high": [102.0, 103.0, 100.0],
        "low": [99.0, 100.5, 97.0],
        "close": [101.0, 99.0, 98.5],
        "volume": [10.0, 11.0, 12.0],
    }
)


def expected_frame() -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(ROWS["datetime"]), name="timestamp").as_unit("ns")
    out = ROWS.set_index(idx)
    return out.drop(columns="datetime")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- symbols
@pytest.mark.parametrize(
    ("name", "symbol", "interval"),
    [
        ("BTC-USD_1d.csv", "BTC", "1d"),
        ("ETH-USD_1h.parquet", "ETH", "1h"),
        ("BTCUSDT-1d-2024-01.csv", "BTC", "1d"),
        ("SOLFDUSD-1h-2025-01-05.csv", "SOL", "1h"),
        ("ETHUSDC-15m-2024-03.csv", "ETH", "15m"),
        ("doge.csv", "DOGE", None),
        ("XRP_1d.pq", "XRP", "1d"),
    ],
)
def test_symbol_and_interval_from_file_name(name: str, symbol: str, interval: str | None) -> None:
    """File-name rules of the issue: ``BTC-USD_1d.csv`` -> BTC, ``BTCUSDT-1d-2024-01.csv`` -> BTC."""
    assert symbol_from_filename(name) == symbol
    assert interval_from_filename(name) == interval


# --------------------------------------------------------------------------- formats
def test_columns_any_order_any_case_extra_columns(tmp_path: Path) -> None:
    df = ROWS.rename(columns=str.upper)[["VOLUME", "CLOSE", "DATETIME", "LOW", "HIGH", "OPEN"]]
    df.insert(2, "Adj Close", 1.0)
    df.insert(0, "note", "x")
    df = df.rename(columns={"DATETIME": "Date", "HIGH": "High"})
    df.to_csv(tmp_path / "ABC-USD_1d.csv", index=False)
    frames = load_files(tmp_path)
    assert list(frames) == ["ABC"]
    pd.testing.assert_frame_equal(frames["ABC"], expected_frame(), check_freq=False)
    assert frames["ABC"].attrs["interval"] == "1d"


@pytest.mark.parametrize("time_name", ["datetime", "date", "timestamp", "time", "Open_Time"])
def test_time_column_aliases(tmp_path: Path, time_name: str) -> None:
    ROWS.rename(columns={"datetime": time_name}).to_csv(tmp_path / "X.csv", index=False)
    frames = load_files([tmp_path / "X.csv"])
    assert frames["X"].index.equals(expected_frame().index)


def test_timezone_aware_times_are_converted_to_utc(tmp_path: Path) -> None:
    df = ROWS.copy()
    df["datetime"] = ["2024-01-01T02:00:00+02:00", "2024-01-02T02:00:00+02:00", "2024-01-03T02:00:00+02:00"]
    df.to_csv(tmp_path / "X-USD_1d.csv", index=False)
    idx = load_files(tmp_path)["X"].index
    assert list(idx) == list(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]))


def test_parquet_round_trip(tmp_path: Path) -> None:
    ROWS.assign(datetime=pd.to_datetime(ROWS["datetime"])).to_parquet(tmp_path / "AAA-USD_1d.parquet", index=False)
    # a Parquet file with the times in its index instead of a column
    expected_frame().to_parquet(tmp_path / "BBB-USD_1d.parquet")
    frames = load_files(tmp_path)
    for sym in ("AAA", "BBB"):
        pd.testing.assert_frame_equal(frames[sym], expected_frame(), check_freq=False)


def _kline_rows(times: list[int]) -> list[list[object]]:
    rows = []
    for i, t in enumerate(times):
        o = 100.0 + i
        rows.append([t, o, o + 2, o - 1, o + 1, 5.0 + i, t + 86_399_999, 500.0, 42, 2.0, 200.0, 0])
    return rows


def _kline_csv(rows: list[list[object]], header: bool) -> str:
    lines = [",".join(BINANCE_KLINE_COLUMNS)] if header else []
    lines += [",".join(str(v) for v in r) for r in rows]
    return "\n".join(lines) + "\n"


MS_2024_12_30 = 1735516800000  # 2024-12-30T00:00:00Z in epoch milliseconds


@pytest.mark.parametrize("header", [True, False])
def test_binance_kline_ms_and_us(tmp_path: Path, header: bool) -> None:
    """Binance public-data kline CSV (12 columns: open_time, open, high, low, close, volume,
    close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore;
    binance/binance-public-data README): spot files have no header, futures files have one;
    open times are ms, and us for spot data from 2025-01-01."""
    day_ms = 86_400_000
    ms = [MS_2024_12_30, MS_2024_12_30 + day_ms]
    us = [(MS_2024_12_30 + 2 * day_ms) * 1000, (MS_2024_12_30 + 3 * day_ms) * 1000]
    write(tmp_path / "BTCUSDT-1d-2024-12.csv", _kline_csv(_kline_rows(ms), header))
    write(tmp_path / "BTCUSDT-1d-2025-01.csv", _kline_csv(_kline_rows(us), header))
    frames = load_files(tmp_path)
    assert list(frames) == ["BTC"]
    df = frames["BTC"]
    assert list(df.index) == list(pd.date_range("2024-12-30", periods=4, freq="D"))
    assert df["open"].tolist() == [100.0, 101.0, 100.0, 101.0]
    assert df["close"].tolist() == [101.0, 102.0, 101.0, 102.0]
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert df.attrs["interval"] == "1d"
    assert len(df.attrs["files"]) == 2


def test_caller_symbols(tmp_path: Path) -> None:
    ROWS.to_csv(tmp_path / "a.csv", index=False)
    ROWS.to_csv(tmp_path / "b.csv", index=False)
    assert list(load_files(tmp_path, symbols=["X", "Y"])) == ["X", "Y"]
    assert list(load_files(tmp_path, symbols={"b.csv": "WHY"})) == ["A", "WHY"]
    with pytest.raises(ValueError, match="symbols has 1 entries but there are 2 files"):
        load_files(tmp_path, symbols=["X"])


# --------------------------------------------------------------------------- malformed
def test_empty_file(tmp_path: Path) -> None:
    p = write(tmp_path / "E-USD_1d.csv", "")
    with pytest.raises(DataError, match=r"E-USD_1d\.csv.*empty"):
        load_files([p])


def test_header_only(tmp_path: Path) -> None:
    p = write(tmp_path / "E-USD_1d.csv", "datetime,open,high,low,close,volume\n")
    with pytest.raises(DataError, match=r"E-USD_1d\.csv.*no data rows"):
        load_files([p])


def test_missing_column(tmp_path: Path) -> None:
    p = tmp_path / "M-USD_1d.csv"
    ROWS.drop(columns="low").to_csv(p, index=False)
    with pytest.raises(DataError, match=r"M-USD_1d\.csv: missing column\(s\) \['low'\]"):
        load_files([p])


def test_text_in_price_column(tmp_path: Path) -> None:
    p = tmp_path / "T-USD_1d.csv"
    df = ROWS.astype({"close": object})
    df.loc[1, "close"] = "n/a!"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"T-USD_1d\.csv: text 'n/a!' in price/volume column 'close' at line 3"):
        load_files([p])


def test_duplicate_header_row(tmp_path: Path) -> None:
    text = ROWS.to_csv(index=False)
    lines = text.splitlines()
    p = write(tmp_path / "D-USD_1d.csv", "\n".join([*lines[:3], lines[0], *lines[3:]]) + "\n")
    with pytest.raises(DataError, match=r"D-USD_1d\.csv: repeated header row at line 4"):
        load_files([p])


def test_headerless_file_that_is_not_binance(tmp_path: Path) -> None:
    p = write(tmp_path / "N.csv", "1700000000000,1,2,0.5,1.5,3\n")
    with pytest.raises(DataError, match=r"N\.csv: no header row and 6 columns"):
        load_files([p])


def test_bad_timestamp(tmp_path: Path) -> None:
    df = ROWS.copy()
    df.loc[2, "datetime"] = "yesterday"
    df.to_csv(tmp_path / "B.csv", index=False)
    with pytest.raises(DataError, match=r"B\.csv: cannot read the timestamp 'yesterday' at line 4"):
        load_files(tmp_path)


def test_missing_directory_and_no_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=r"nope.*--data DIR.*RISKMODELS_DATA"):
        load_panel(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no OHLCV files.*empty.*RISKMODELS_DATA"):
        load_files(tmp_path / "empty")


def test_unknown_asset_names_the_available_ones(tmp_path: Path) -> None:
    ROWS.to_csv(tmp_path / "AAA-USD_1d.csv", index=False)
    with pytest.raises(DataError, match=r"no file for asset\(s\) \['ZZZ'\].*available: \['AAA'\]"):
        load_panel(tmp_path, assets=["ZZZ"])


# --------------------------------------------------------------------------- panels
def _series(dates: pd.DatetimeIndex, start: float = 100.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c = start * np.exp(np.cumsum(0.01 * rng.standard_normal(len(dates))))
    o = np.r_[start, c[:-1]]
    return pd.DataFrame({"datetime": dates.strftime("%Y-%m-%d"), "open": o,
                         "high": np.maximum(o, c) * 1.01, "low": np.minimum(o, c) * 0.99,
                         "close": c, "volume": 1.0})


def test_ragged_panel_from_misaligned_files(tmp_path: Path) -> None:
    _series(pd.date_range("2024-01-01", periods=30)).to_csv(tmp_path / "OLD-USD_1d.csv", index=False)
    _series(pd.date_range("2024-01-11", periods=10), seed=1).to_csv(tmp_path / "NEW-USD_1d.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        panel = load_panel(tmp_path, min_length=5)
    assert panel.assets == ("NEW", "OLD")
    assert panel.n_dates == 30
    new = panel.frame("close")["NEW"]
    assert new.loc[:"2024-01-10"].isna().all() and new.loc["2024-01-21":].isna().all()
    assert new.loc["2024-01-11":"2024-01-20"].notna().all()
    # NEW stops 10 days before OLD: reported, not hidden
    stale = panel.quality.by_kind("stale")
    assert [(d.asset, d.first, d.count) for d in stale] == [("NEW", pd.Timestamp("2024-01-20"), 10)]
    assert panel.sources["OLD"] == hashlib.sha256((tmp_path / "OLD-USD_1d.csv").read_bytes()).hexdigest()


def test_start_end_window_is_inclusive_and_validated_after_cut(tmp_path: Path) -> None:
    df = _series(pd.date_range("2024-01-01", periods=40))
    df.loc[5, "close"] = 0.0  # a defect before the window
    df.to_csv(tmp_path / "W-USD_1d.csv", index=False)
    with pytest.raises(DataError, match="nonpositive_price"):
        load_panel(tmp_path)
    panel = load_panel(tmp_path, start="2024-01-10", end="2024-01-20", min_length=5)
    assert panel.dates[0] == pd.Timestamp("2024-01-10") and panel.dates[-1] == pd.Timestamp("2024-01-20")


def test_list_of_files_and_asset_order(tmp_path: Path) -> None:
    _series(pd.date_range("2024-01-01", periods=20)).to_csv(tmp_path / "AAA-USD_1d.csv", index=False)
    _series(pd.date_range("2024-01-01", periods=20), seed=2).to_csv(tmp_path / "BBB-USD_1d.csv", index=False)
    panel = load_panel([tmp_path / "AAA-USD_1d.csv", tmp_path / "BBB-USD_1d.csv"], min_length=5)
    assert panel.assets == ("AAA", "BBB")
    panel = load_panel(tmp_path, assets=["BBB", "AAA"], min_length=5)
    assert panel.assets == ("BBB", "AAA")


def test_mixed_interval_folder_defaults_to_daily(tmp_path: Path) -> None:
    _series(pd.date_range("2024-01-01", periods=20)).to_csv(tmp_path / "AAA-USD_1d.csv", index=False)
    hourly = _series(pd.date_range("2024-01-01", periods=48, freq="h"))
    hourly["datetime"] = pd.date_range("2024-01-01", periods=48, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    hourly.to_csv(tmp_path / "AAA-USD_1h.csv", index=False)
    with pytest.warns(DataQualityWarning, match=r"skipped 1 file.*AAA-USD_1h\.csv"):
        assert load_panel(tmp_path, min_length=5).n_dates == 20
    with pytest.warns(DataQualityWarning, match=r"skipped 1 file.*AAA-USD_1d\.csv"):
        assert load_panel(tmp_path, interval="1h", min_length=5).n_dates == 48


# --------------------------------------------------------------------------- real data
def test_real_daily_files_load_fast(daily_dir: Path) -> None:
    """The 28 daily files load well under 2 s (measured about 0.25 s on a 2-core machine)."""
    t0 = time.perf_counter()
    frames = load_files(daily_dir)
    elapsed = time.perf_counter() - t0
    assert len(frames) == 28
    assert elapsed < 2.0, f"loading 28 daily files took {elapsed:.2f} s"
    btc = frames["BTC"]
    assert btc.index[0] == pd.Timestamp("2014-09-17") and btc.index[-1] == pd.Timestamp("2025-02-20")
    assert btc.attrs["sha256"] == hashlib.sha256((daily_dir / "BTC-USD_1d.csv").read_bytes()).hexdigest()


def test_default_universe_error_policy_names_avax_and_aave(daily_dir: Path) -> None:
    with pytest.raises(DataError) as info:
        load_panel(daily_dir.parent, assets=DEFAULT_UNIVERSE)
    msg = str(info.value)
    assert "AVAX gap" in msg and "2020-07-15..2020-09-21" in msg
    assert "AAVE nonpositive_price" in msg and "AAVE splice" in msg
    assert "policy='truncate'" in msg


def test_default_universe_loads_under_truncate(daily_dir: Path) -> None:
    """The documented CLI default: policy='truncate' starts AVAX after its 69-day gap and
    AAVE after its listing-day artefact (open = low = 0 on 2020-10-02, x100 on 2020-10-03)."""
    with pytest.warns(DataQualityWarning) as rec:
        panel = load_panel(daily_dir.parent, assets=DEFAULT_UNIVERSE, policy="truncate")
    msgs = sorted(str(w.message) for w in rec)
    assert len(msgs) == 2
    assert msgs[0].startswith("AAVE truncated: starts on 2020-10-04")
    assert msgs[1].startswith("AVAX truncated: starts on 2020-09-22")
    assert panel.assets == DEFAULT_UNIVERSE
    close = panel.frame("close")
    assert close["AVAX"].first_valid_index() == pd.Timestamp("2020-09-22")
    assert close["AAVE"].first_valid_index() == pd.Timestamp("2020-10-04")
    assert close["BTC"].first_valid_index() == pd.Timestamp("2014-09-17")
    assert panel.dates[-1] == pd.Timestamp("2025-02-20")
    assert set(panel.sources) == set(DEFAULT_UNIVERSE)
    # the same universe from 2020-10-04 on is clean under the strict default
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        strict = load_panel(daily_dir.parent, assets=DEFAULT_UNIVERSE, start="2020-10-04")
    assert strict.quality.ok


def test_hourly_files_load(data_root: Path) -> None:
    """25 hourly files; every one misses the bar 2025-01-02 14:00 (README: one gap per file)."""
    hourly = data_root / "crypto-hourly"
    if not hourly.is_dir():
        pytest.skip("crypto-hourly is missing")
    frames = load_files(hourly, interval="1h")
    assert len(frames) == 25
    assert all(df.attrs["interval"] == "1h" for df in frames.values())
    rep = validate_directory(data_root, interval="1h")
    gaps = rep.by_kind("gap")
    assert {d.asset for d in gaps} == set(frames)
    assert sum(d.first == pd.Timestamp("2025-01-02 14:00") and d.count == 1 for d in gaps) == 25
    with pytest.warns(DataQualityWarning):
        panel = load_panel(data_root, interval="1h", assets=["BTC", "ETH"], max_fill=1)
    assert panel.n_dates == 2304  # 2303 rows + the filled hour
    filled = panel.quality.by_kind("gap_filled")
    assert [d.asset for d in filled] == ["BTC", "ETH"]
    t = panel.date_index("2025-01-02 14:00")
    assert panel.volume[t].tolist() == [0.0, 0.0]
    np.testing.assert_array_equal(panel.close[t], panel.close[t - 1])
