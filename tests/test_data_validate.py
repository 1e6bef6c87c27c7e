"""Validation: every defect kind on hand-made frames, the README defects on the real files,
the QualityReport API and the loader policies."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.data import (
    DataError,
    DataQualityWarning,
    PricePanel,
    QualityReport,
    load_files,
    load_panel,
    validate,
)
from riskmodels.data.loaders import _check_no_holes


def frame(n: int = 300, start: str = "2021-01-01", freq: str = "D", seed: int = 0,
          vol: float = 0.02) -> pd.DataFrame:
    """Clean OHLCV: open = previous close, high/low 1% outside, volume 1."""
    rng = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(vol * rng.standard_normal(n)))
    o = np.r_[100.0, c[:-1]]
    idx = pd.date_range(start, periods=n, freq=freq)
    return pd.DataFrame({"open": o, "high": np.maximum(o, c) * 1.01,
                         "low": np.minimum(o, c) * 0.99, "close": c, "volume": 1.0}, index=idx)


def kinds(report: QualityReport, asset: str = "X") -> list[str]:
    return [d.kind for d in report.by_asset(asset)]


def test_clean_frame_has_no_defects() -> None:
    rep = validate({"X": frame()})
    assert rep.defects == [] and rep.ok
    assert "no defects found" in str(rep)


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [("close", 0.0, "nonpositive_price"), ("low", -1.0, "nonpositive_price"),
     ("open", np.nan, "nan_price"), ("close", np.nan, "nan_price")],
)
def test_bad_prices(column: str, value: float, kind: str) -> None:
    df = frame()
    day = df.index[100]
    df.loc[day, column] = value
    rep = validate({"X": df})
    d = rep.by_kind(kind)
    assert len(d) == 1
    assert (d[0].asset, d[0].first, d[0].last, d[0].count, d[0].severity) == ("X", day, day, 1, "error")
    assert column in d[0].message and "policy='truncate'" in d[0].message


@pytest.mark.parametrize(
    ("edit", "text"),
    [({"high": 0.5}, "high < max(open, close)"), ({"low": 2.0}, "low > min(open, close)")],
)
def test_ohlc_inconsistent(edit: dict[str, float], text: str) -> None:
    df = frame()
    day = df.index[50]
    row = df.loc[day]
    for col, factor in edit.items():
        ref = max(row["open"], row["close"]) if col == "high" else min(row["open"], row["close"])
        df.loc[day, col] = ref * factor
    d = validate({"X": df}).by_kind("ohlc_inconsistent")
    assert len(d) == 1 and d[0].first == day and text in d[0].message


def test_high_below_low() -> None:
    df = frame()
    day = df.index[20]
    df.loc[day, ["open", "close", "high", "low"]] = [10.0, 10.0, 9.0, 11.0]
    d = validate({"X": df}).by_kind("ohlc_inconsistent")
    assert len(d) == 1 and "high < low on 1 rows" in d[0].message


def test_duplicate_and_unsorted_dates() -> None:
    df = frame(30)
    dup = pd.concat([df, df.iloc[[10, 12]]])  # two duplicated rows appended (also unsorted)
    rep = validate({"X": dup}, min_length=0)
    assert kinds(rep) == ["duplicate_dates", "unsorted"]
    d = rep.by_kind("duplicate_dates")[0]
    assert (d.first, d.last, d.count, d.severity) == (df.index[10], df.index[12], 2, "error")
    u = rep.by_kind("unsorted")[0]
    assert u.severity == "warning" and u.first == df.index[10]


def test_unsorted_only_is_a_warning_and_the_panel_is_sorted(tmp_path: Path) -> None:
    df = frame(260)
    df.iloc[::-1].rename_axis("datetime").reset_index().to_csv(tmp_path / "X-USD_1d.csv", index=False)
    panel = load_panel(tmp_path)
    assert panel.dates.is_monotonic_increasing
    np.testing.assert_allclose(panel.close[:, 0], df["close"].to_numpy())
    assert kinds(panel.quality) == ["unsorted"]


def test_daily_gap_one_record_per_gap() -> None:
    df = frame().drop(pd.to_datetime(["2021-02-01", "2021-03-10", "2021-03-11"]))
    gaps = validate({"X": df}).by_kind("gap")
    assert [(g.first, g.last, g.count) for g in gaps] == [
        (pd.Timestamp("2021-02-01"), pd.Timestamp("2021-02-01"), 1),
        (pd.Timestamp("2021-03-10"), pd.Timestamp("2021-03-11"), 2),
    ]
    assert "policy='truncate' starts it on 2021-03-12" in gaps[1].message


def test_hourly_gap_and_interval_inference() -> None:
    df = frame(400, start="2024-01-01", freq="h").drop(pd.Timestamp("2024-01-03 05:00"))
    gaps = validate({"X": df}).by_kind("gap")  # interval inferred from the spacing
    assert [(g.first, g.count) for g in gaps] == [(pd.Timestamp("2024-01-03 05:00"), 1)]
    assert validate({"X": df}, interval="1d").by_kind("gap") == []


def test_zero_volume_is_a_warning() -> None:
    df = frame()
    df.iloc[[3, 4, 90], df.columns.get_loc("volume")] = 0.0
    d = validate({"X": df}).by_kind("zero_volume")
    assert len(d) == 1 and (d[0].count, d[0].severity) == (3, "warning")
    assert (d[0].first, d[0].last) == (df.index[3], df.index[90])


def _jump(df: pd.DataFrame, at: int, factor: float, until: int | None = None) -> pd.DataFrame:
    df = df.copy()
    sl = slice(at, until)
    df.iloc[sl, :4] = df.iloc[sl, :4] * factor
    df.iloc[at, 0] = df.iloc[at - 1, 3]  # open = previous close
    df.iloc[at, 2] = min(df.iloc[at, 0], df.iloc[at, 3]) * 0.99
    df.iloc[at, 1] = max(df.iloc[at, 0], df.iloc[at, 3]) * 1.01
    if until is not None:
        df.iloc[until, 0] = df.iloc[until - 1, 3]
        df.iloc[until, 2] = min(df.iloc[until, 0], df.iloc[until, 3]) * 0.99
        df.iloc[until, 1] = max(df.iloc[until, 0], df.iloc[until, 3]) * 1.01
    return df


def test_splice_never_recovers() -> None:
    """x0.001 from row 150 on: |ln 0.001| = 6.9 > ln 5, not undone -> splice."""
    df = _jump(frame(), 150, 1e-3)
    d = validate({"X": df}).by_kind("splice")
    assert len(d) == 1 and d[0].first == df.index[150] and d[0].severity == "error"
    assert validate({"X": df}).by_kind("bad_tick") == []


def test_bad_tick_reverses() -> None:
    """x10 on row 100 only: +ln 10 then about -ln 10 the next day -> one bad tick."""
    df = _jump(frame(), 100, 10.0, until=101)
    rep = validate({"X": df})
    d = rep.by_kind("bad_tick")
    assert len(d) == 1 and (d[0].first, d[0].last) == (df.index[100], df.index[101])
    assert rep.by_kind("splice") == []


def test_splice_threshold_is_configurable() -> None:
    df = _jump(frame(), 150, 3.0)  # ln 3 = 1.10 < ln 5
    assert validate({"X": df}).by_kind("splice") == []
    assert len(validate({"X": df}, splice_threshold=np.log(2)).by_kind("splice")) == 1
    with pytest.raises(ValueError, match="splice_threshold must be a finite number > 0"):
        validate({"X": df}, splice_threshold=0.0)


def test_short_history_and_stale() -> None:
    rep = validate({"LONG": frame(300), "SHORT": frame(100, seed=1)})
    short = rep.by_kind("short_history")
    assert [(d.asset, d.count) for d in short] == [("SHORT", 100)]
    stale = rep.by_kind("stale")
    assert [(d.asset, d.first, d.last, d.count) for d in stale] == [
        ("SHORT", pd.Timestamp("2021-04-10"), pd.Timestamp("2021-10-27"), 200)]


def test_report_api() -> None:
    df = frame()
    df.iloc[5, 3] = 0.0
    df.iloc[7, 4] = 0.0
    rep = validate({"X": df, "Y": frame(seed=3)})
    tab = rep.to_frame()
    assert list(tab.columns) == ["asset", "kind", "severity", "first", "last", "count", "message"]
    assert len(tab) == len(rep.defects) == 2
    assert [d.kind for d in rep.errors] == ["nonpositive_price"]
    assert [d.kind for d in rep.warnings] == ["zero_volume"]
    assert rep.by_asset("Y") == [] and len(rep.by_asset("X")) == 2
    text = str(rep)
    assert "nonpositive_price" in text and "2021-01-06" in text and "2 assets checked" in text
    html = rep._repr_html_()
    assert "<table>" in html and "nonpositive_price" in html
    assert list(validate({}).to_frame().columns) == list(tab.columns)


# --------------------------------------------------------------------------- policies
def _write(tmp_path: Path, name: str, df: pd.DataFrame) -> None:
    df.rename_axis("datetime").reset_index().to_csv(tmp_path / f"{name}-USD_1d.csv", index=False)


@pytest.fixture
def two_bad(tmp_path: Path) -> Path:
    good = frame(300)
    bad = frame(300, seed=1)
    bad.iloc[40, 3] = np.nan          # NaN close on 2021-02-10
    bad = bad.drop(bad.index[100])    # gap on 2021-04-11
    dup = frame(300, seed=2)
    dup = pd.concat([dup, dup.iloc[[60]]])  # duplicated 2021-03-02
    _write(tmp_path, "GOOD", good)
    _write(tmp_path, "BAD", bad)
    _write(tmp_path, "DUP", dup)
    return tmp_path


def test_policy_error_lists_every_error(two_bad: Path) -> None:
    with pytest.raises(DataError) as info:
        load_panel(two_bad)
    msg = str(info.value)
    assert "3 data error(s) in 2 asset(s) (BAD, DUP)" in msg
    assert "BAD nan_price [error] 2021-02-10" in msg
    assert "BAD gap [error] 2021-04-11" in msg
    assert "DUP duplicate_dates [error] 2021-03-02" in msg


def test_policy_drop_asset(two_bad: Path) -> None:
    with pytest.warns(DataQualityWarning) as rec:
        panel = load_panel(two_bad, policy="drop_asset")
    assert panel.assets == ("GOOD",)
    msgs = sorted(str(w.message) for w in rec)
    assert msgs[0].startswith("BAD dropped from the panel: 2 error defect(s) (gap, nan_price)")
    assert msgs[1].startswith("DUP dropped from the panel")
    assert len(panel.quality.errors) == 3  # the report keeps what was found


def test_policy_truncate_cut_dates(two_bad: Path) -> None:
    with pytest.warns(DataQualityWarning) as rec:
        panel = load_panel(two_bad, policy="truncate")
    msgs = sorted(str(w.message) for w in rec)
    assert msgs[0].startswith("BAD truncated: starts on 2021-04-12 (was 2021-01-01)")
    assert msgs[1].startswith("DUP truncated: starts on 2021-03-03 (was 2021-01-01)")
    close = panel.frame("close")
    assert close["BAD"].first_valid_index() == pd.Timestamp("2021-04-12")
    assert close["DUP"].first_valid_index() == pd.Timestamp("2021-03-03")
    assert close["GOOD"].notna().all()
    ref = frame(300, seed=1)
    np.testing.assert_allclose(close["BAD"].loc["2021-04-12":].to_numpy(),
                               ref["close"].loc["2021-04-12":].to_numpy())


def test_policy_validation(two_bad: Path) -> None:
    with pytest.raises(ValueError, match="policy must be 'error', 'drop_asset' or 'truncate'"):
        load_panel(two_bad, policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_fill must be a whole number of bars >= 0"):
        load_panel(two_bad, max_fill=-1)


def test_max_fill_fills_short_gaps_and_flags_them(tmp_path: Path) -> None:
    df = frame(300).drop(pd.to_datetime(["2021-02-01", "2021-05-01", "2021-05-02"]))
    _write(tmp_path, "X", df)
    with pytest.raises(DataError, match=r"X gap \[error\] 2021-05-01..2021-05-02"), \
            pytest.warns(DataQualityWarning, match="2021-02-01: 1 missing bar"):
        load_panel(tmp_path, max_fill=1)  # the 2-day gap is still an error
    with pytest.warns(DataQualityWarning) as rec:
        panel = load_panel(tmp_path, max_fill=2)
    assert [str(w.message)[:31] for w in rec] == ["X: 2021-02-01: 1 missing bar(s)",
                                                  "X: 2021-05-01..2021-05-02: 2 mi"]
    t = panel.date_index("2021-02-01")
    assert panel.close[t, 0] == panel.close[t - 1, 0] == panel.high[t, 0] == panel.low[t, 0]
    assert panel.volume[t, 0] == 0.0
    assert [d.count for d in panel.quality.by_kind("gap_filled")] == [1, 2]
    assert panel.quality.by_kind("gap") == []


def test_no_nan_inside_a_live_range_is_enforced() -> None:
    c = np.array([[1.0, 1.0], [1.0, np.nan], [1.0, 1.0]])
    ones = np.ones_like(c)
    panel = PricePanel(pd.date_range("2024-01-01", periods=3), ("A", "B"), c, c, c, c, ones)
    with pytest.raises(DataError, match="B has a NaN inside its live range on 2024-01-02"):
        _check_no_holes(panel)
    ragged = np.array([[np.nan, 1.0], [1.0, 1.0], [1.0, np.nan]])
    _check_no_holes(PricePanel(pd.date_range("2024-01-01", periods=3), ("A", "B"),
                               ragged, ragged, ragged, ragged, ragged))


# --------------------------------------------------------------------------- real files
@pytest.fixture(scope="module")
def real_report(daily_dir: Path) -> QualityReport:
    return validate(load_files(daily_dir))


def test_readme_shib(real_report: QualityReport) -> None:
    """README: SHIB close = 0 and open/high/low NaN from 2020-08-01 to 2021-04-15, 16 gaps."""
    nan = real_report.by_asset("SHIB")
    nan_px = [d for d in nan if d.kind == "nan_price"]
    zero = [d for d in nan if d.kind == "nonpositive_price"]
    assert len(nan_px) == 1 and nan_px[0].first == pd.Timestamp("2020-08-01")
    assert nan_px[0].last == pd.Timestamp("2021-04-15")
    assert "open/high/low" in nan_px[0].message
    assert len(zero) == 1 and zero[0].first == pd.Timestamp("2020-08-01")
    assert zero[0].last >= pd.Timestamp("2021-04-15") and "close" in zero[0].message
    gaps = [d for d in nan if d.kind == "gap"]
    assert len(gaps) == 16 and all(d.severity == "error" for d in gaps)


def test_readme_uni_splice(real_report: QualityReport) -> None:
    """README: UNI close 0.598 -> 0.000232 on 2022-10-24 (|log return| > 7)."""
    s = [d for d in real_report.by_asset("UNI") if d.kind == "splice"
         and d.first == pd.Timestamp("2022-10-24")]
    assert len(s) == 1 and "-7.45" in s[0].message


@pytest.mark.parametrize(("asset", "day"), [("SUI", "2024-01-22"), ("TON", "2025-01-19")])
def test_readme_sui_ton_jumps(real_report: QualityReport, asset: str, day: str) -> None:
    """README: SUI x10 in one day on 2024-01-22, TON x9 on 2025-01-19."""
    t = pd.Timestamp(day)
    hits = [d for d in real_report.by_asset(asset) if d.kind in ("splice", "bad_tick")
            and d.first <= t <= d.last]
    assert len(hits) == 1 and hits[0].severity == "error"


def test_readme_hype_stale_pepe_short(real_report: QualityReport) -> None:
    """README: HYPE ends 2024-08-27; PEPE has only 119 days (2022-08-15..2022-12-11)."""
    stale = {d.asset: d for d in real_report.by_kind("stale")}
    assert stale["HYPE"].first == pd.Timestamp("2024-08-27")
    assert stale["HYPE"].last == pd.Timestamp("2025-02-20")
    assert set(stale) == {"HYPE", "PEPE", "SUI"}  # SUI's file also stops, on 2024-06-04
    short = real_report.by_kind("short_history")
    assert [(d.asset, d.count, d.first, d.last) for d in short] == [
        ("PEPE", 119, pd.Timestamp("2022-08-15"), pd.Timestamp("2022-12-11"))]


def test_readme_avax_gap(real_report: QualityReport) -> None:
    """README says "AVAX: one missing day"; the file has one gap, and it is 69 days long
    (rows 2020-07-13 and 2020-07-14, then 2020-09-22 onwards)."""
    gaps = [d for d in real_report.by_asset("AVAX") if d.kind == "gap"]
    assert [(d.first, d.last, d.count) for d in gaps] == [
        (pd.Timestamp("2020-07-15"), pd.Timestamp("2020-09-21"), 69)]


def test_readme_zero_volume(real_report: QualityReport) -> None:
    """README: BGB, HYPE, SUI, TON, UNI, PEPE, AAVE have days with zero volume."""
    zv = {d.asset for d in real_report.by_kind("zero_volume")}
    assert zv == {"BGB", "HYPE", "SUI", "TON", "UNI", "PEPE", "AAVE"}


def test_majors_are_clean(real_report: QualityReport) -> None:
    clean = ["BTC", "ETH", "BNB", "XRP", "ADA", "DOGE", "SOL", "LINK", "LTC", "BCH", "ETC",
             "XLM", "XMR", "TRX", "DOT", "NEAR"]
    assert {d.asset for d in real_report.defects} & set(clean) == set()


def test_validate_directory_matches_all_files(daily_dir: Path) -> None:
    from riskmodels.data import validate_directory

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = validate_directory(daily_dir.parent)
    assert len(rep.assets) == 28 and rep.interval == "1d"
    assert set(rep.error_assets()) == {"AAVE", "AVAX", "SHIB", "SUI", "TON", "UNI"}
