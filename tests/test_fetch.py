"""`riskmodels data fetch` against a fake Binance public-data archive on 127.0.0.1.

The archive layout, kline CSV columns and CHECKSUM format follow the
binance/binance-public-data README ("Klines": ``<base_url>/data/spot/monthly/
klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<year>-<month>.zip``, the
12-column kline table, "The timestamp for SPOT Data from January 1st 2025
onwards will be in microseconds"; "CHECKSUM": ``sha256sum -c`` files beside
each ZIP). Prices are synthetic (seeded random walks), never the shared data.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.data import fetch as F
from riskmodels.data.resolve import (
    DataNotFoundError,
    default_cache_dir,
    has_price_data,
    resolve_data_dir,
)

TODAY = date(2024, 3, 4)  # Jan and Feb 2024 are complete months; Mar 1-3 come as daily files
FAST = {"backoff": 0.001, "timeout": 5.0, "today": TODAY}


# --------------------------------------------------------------------------- fake archive


@dataclass
class Archive:
    root: Path
    url: str
    requests: list[str] = field(default_factory=list)
    faults: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, suffix: str) -> int:
        return sum(r.endswith(suffix) for r in self.requests)


def _make_handler(arc: Archive) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            with arc.lock:
                arc.requests.append(path)
                queue = arc.faults.get(path)
                fault = queue.pop(0) if queue else None
            f = arc.root / path.lstrip("/")
            if fault == "500":
                self.send_error(500, "injected")
                return
            if fault == "drop":  # connection dropped before any response
                self.close_connection = True
                return
            if not f.is_file():
                self.send_error(404, "Not Found")
                return
            body = f.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault == "truncate":  # connection dropped mid-body
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(F.ENV_FETCH_URL, raising=False)
    root = tmp_path / "archive"
    root.mkdir()
    arc = Archive(root, "")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(arc))
    server.daemon_threads = True
    arc.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    guard = threading.Timer(60.0, server.shutdown)  # stops itself if a test hangs
    guard.daemon = True
    guard.start()
    try:
        yield arc
    finally:
        guard.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)


def synthetic_bars(first: str, n: int, seed: int, freq: str = "D") -> pd.DataFrame:
    """Seeded random-walk OHLCV bars, values rounded to 8 decimals like the archive."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))
    opn = np.r_[close[0], close[:-1]]
    high = np.maximum(opn, close) * 1.01
    low = np.minimum(opn, close) * 0.99
    vol = rng.uniform(1, 1000, n)
    df = pd.DataFrame({"datetime": pd.date_range(first, periods=n, freq=freq),
                       "open": opn, "high": high, "low": low, "close": close, "volume": vol})
    for c in F.FIELDS:
        df[c] = [float(f"{x:.8f}") for x in df[c]]
    return df


def kline_csv(bars: pd.DataFrame, unit: str = "ms", header: bool = False) -> str:
    """The 12-column kline CSV of the archive for ``bars``."""
    epoch_ms = (bars["datetime"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    scale = 1000 if unit == "us" else 1
    lines = []
    if header:
        lines.append("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                     "taker_buy_volume,taker_buy_quote_volume,ignore")
    for t, row in zip(epoch_ms, bars.itertuples(index=False), strict=True):
        lines.append(",".join([
            str(t * scale), f"{row.open:.8f}", f"{row.high:.8f}", f"{row.low:.8f}",
            f"{row.close:.8f}", f"{row.volume:.8f}", str((t + 86_399_999) * scale),
            f"{row.volume * row.close:.8f}", "42", f"{row.volume / 2:.8f}", "1.0", "0",
        ]))  # fmt: skip
    return "\n".join(lines) + "\n"


def publish(arc: Archive, pair: str, period: str, bars: pd.DataFrame, *, interval: str = "1d",
            unit: str = "ms", header: bool = False, bad_checksum: bool = False) -> str:
    """Write ``<pair>-<interval>-<period>.zip`` and its CHECKSUM; return the ZIP's URL path."""
    kind = "daily" if len(period) == 10 else "monthly"
    name = f"{pair}-{interval}-{period}"
    rel = f"data/spot/{kind}/klines/{pair}/{interval}/{name}.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.csv", kline_csv(bars, unit, header))
    blob = buf.getvalue()
    digest = hashlib.sha256(blob + (b"x" if bad_checksum else b"")).hexdigest()
    target = arc.root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(blob)
    Path(f"{target}.CHECKSUM").write_text(f"{digest}  {name}.zip\n")
    return "/" + rel


def publish_span(arc: Archive, pair: str, bars: pd.DataFrame, skip: tuple[str, ...] = (),
                 **kw) -> None:
    """Monthly files for Jan/Feb 2024, daily files for 2024-03-01..03."""
    for month in ("2024-01", "2024-02"):
        part = bars[bars["datetime"].dt.strftime("%Y-%m") == month]
        if len(part) and month not in skip:
            publish(arc, pair, month, part, **kw)
    for day in ("2024-03-01", "2024-03-02", "2024-03-03"):
        part = bars[bars["datetime"].dt.strftime("%Y-%m-%d") == day]
        if len(part) and day not in skip:
            publish(arc, pair, day, part, **kw)


@pytest.fixture
def bars_a() -> pd.DataFrame:
    return synthetic_bars("2024-01-01", 63, seed=1)  # 2024-01-01 .. 2024-03-03


@pytest.fixture
def bars_b() -> pd.DataFrame:
    return synthetic_bars("2024-02-01", 32, seed=2)  # listed 2024-02-01 .. 2024-03-03


def no_partials(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.name.endswith(".part")]


def assert_bars_equal(path: Path, bars: pd.DataFrame) -> None:
    got = pd.read_parquet(path)
    assert list(got.columns) == ["datetime", "open", "high", "low", "close", "volume"]
    assert got["datetime"].dt.tz is None
    assert (got["datetime"] == bars["datetime"].to_numpy()).all()
    for c in F.FIELDS:
        np.testing.assert_allclose(got[c].to_numpy(), bars[c].to_numpy(), rtol=1e-15, atol=0)


# --------------------------------------------------------------------------- fetch


def test_full_fetch_writes_parquet(archive, tmp_path, bars_a, bars_b):
    publish_span(archive, "AAAUSDT", bars_a)
    publish_span(archive, "BBBUSDT", bars_b, unit="us", header=True)  # µs times + header row
    dest = tmp_path / "out"
    lines: list[str] = []
    rep = F.fetch(["AAA", "bbb"], start="2024-01-01", dest=dest, base_url=archive.url,
                  progress=lines.append, **FAST)
    assert rep.ok and rep.end == date(2024, 3, 3)
    a, b = rep.symbols["AAA"], rep.symbols["BBB"]
    assert (a.fetched, a.skipped, a.missing, a.failed) == (5, 0, [], [])
    assert (b.fetched, len(b.missing)) == (4, 1)
    assert b.missing[0].endswith("/data/spot/monthly/klines/BBBUSDT/1d/BBBUSDT-1d-2024-01.zip")
    assert any("data starts 2024-02-01" in m for m in b.messages)
    assert_bars_equal(dest / "AAA-USD_1d.parquet", bars_a)
    assert_bars_equal(dest / "BBB-USD_1d.parquet", bars_b)
    assert (a.rows, str(a.first.date()), str(a.last.date())) == (63, "2024-01-01", "2024-03-03")
    assert a.bytes_downloaded > 0
    assert no_partials(dest) == []
    assert has_price_data(dest)
    assert any("AAAUSDT" in line for line in lines)
    table = rep.table()
    assert "AAAUSDT" in table and "BBBUSDT" in table and "2/2 symbols usable" in table


def test_rerun_downloads_nothing(archive, tmp_path, bars_a, bars_b):
    publish_span(archive, "AAAUSDT", bars_a)
    publish_span(archive, "BBBUSDT", bars_b)
    dest = tmp_path / "out"
    F.fetch(["AAA", "BBB"], start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    assert len(archive.requests) > 0
    archive.requests.clear()
    rep = F.fetch(["AAA", "BBB"], start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    assert archive.requests == []  # cached ZIPs and the cached 404 of BBB 2024-01
    assert rep.fetched == 0 and rep.skipped == 9 and rep.ok
    assert_bars_equal(dest / "AAA-USD_1d.parquet", bars_a)


def test_rerun_fetches_only_new_days(archive, tmp_path, bars_a):
    """A day published after the first run is the only file downloaded by the next run."""
    publish_span(archive, "AAAUSDT", bars_a.iloc[:62])  # up to 03-02
    dest = tmp_path / "out"
    r1 = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    assert r1.symbols["AAA"].rows == 62 and len(r1.symbols["AAA"].missing) == 1
    publish(archive, "AAAUSDT", "2024-03-03", bars_a.iloc[62:])
    archive.requests.clear()
    r2 = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    assert sorted(archive.requests) == sorted([
        "/data/spot/daily/klines/AAAUSDT/1d/AAAUSDT-1d-2024-03-03.zip.CHECKSUM",
        "/data/spot/daily/klines/AAAUSDT/1d/AAAUSDT-1d-2024-03-03.zip",
    ])
    assert (r2.symbols["AAA"].fetched, r2.symbols["AAA"].skipped) == (1, 4)
    assert_bars_equal(dest / "AAA-USD_1d.parquet", bars_a)


def test_checksum_mismatch_retried_then_reported(archive, tmp_path, bars_a):
    publish_span(archive, "AAAUSDT", bars_a, skip=("2024-02",))
    feb = bars_a[bars_a["datetime"].dt.month == 2]
    zpath = publish(archive, "AAAUSDT", "2024-02", feb, bad_checksum=True)
    dest = tmp_path / "out"
    rep = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, max_retries=2,
                  **FAST)
    assert archive.hits(zpath) == 3  # first attempt + 2 retries
    (fail,) = rep.symbols["AAA"].failed
    assert fail.url == archive.url + zpath
    assert "checksum mismatch" in fail.reason and "3 attempts" in fail.reason
    assert not (dest / ".cache/AAAUSDT/1d/AAAUSDT-1d-2024-02.zip").exists()
    assert no_partials(dest) == []
    assert f"FAILED {archive.url}{zpath}" in rep.table()
    # the good months are still usable; February is absent, not stored
    got = pd.read_parquet(dest / "AAA-USD_1d.parquet")
    assert len(got) == 63 - 29 and not (got["datetime"].dt.month == 2).any()
    assert rep.ok


def test_transient_faults_recover(archive, tmp_path, bars_a):
    """Dropped connection, truncated body and HTTP 500 on first attempts: retried, then stored."""
    publish_span(archive, "AAAUSDT", bars_a)
    jan = "/data/spot/monthly/klines/AAAUSDT/1d/AAAUSDT-1d-2024-01.zip"
    feb = "/data/spot/monthly/klines/AAAUSDT/1d/AAAUSDT-1d-2024-02.zip"
    archive.faults[jan] = ["truncate", "drop"]
    archive.faults[feb + ".CHECKSUM"] = ["500"]
    dest = tmp_path / "out"
    rep = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, max_retries=3,
                  **FAST)
    a = rep.symbols["AAA"]
    assert a.failed == [] and a.fetched == 5
    assert archive.hits(jan) == 3
    assert_bars_equal(dest / "AAA-USD_1d.parquet", bars_a)
    assert no_partials(dest) == []


def test_interrupted_download_leaves_no_partial_file(archive, tmp_path, bars_a):
    publish_span(archive, "AAAUSDT", bars_a)
    jan = "/data/spot/monthly/klines/AAAUSDT/1d/AAAUSDT-1d-2024-01.zip"
    archive.faults[jan] = ["truncate"] * 10
    dest = tmp_path / "out"
    rep = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, max_retries=1,
                  **FAST)
    (fail,) = rep.symbols["AAA"].failed
    assert fail.url == archive.url + jan and "2 attempts" in fail.reason
    assert not (dest / ".cache/AAAUSDT/1d/AAAUSDT-1d-2024-01.zip").exists()
    assert no_partials(dest) == []
    # resume: the next run (no fault) fetches only the missing month
    archive.faults.clear()
    archive.requests.clear()
    rep2 = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    assert archive.requests == [jan + ".CHECKSUM", jan]
    assert rep2.symbols["AAA"].fetched == 1
    assert_bars_equal(dest / "AAA-USD_1d.parquet", bars_a)


def test_stale_partial_from_killed_process_is_removed(archive, tmp_path, bars_a):
    publish_span(archive, "AAAUSDT", bars_a)
    cache = tmp_path / "out/.cache/AAAUSDT/1d"
    cache.mkdir(parents=True)
    (cache / ".AAAUSDT-1d-2024-01.zip.abc.part").write_bytes(b"half a zip")
    F.fetch("AAA", start="2024-01-01", dest=tmp_path / "out", base_url=archive.url, **FAST)
    assert no_partials(tmp_path / "out") == []


def test_unknown_symbol_is_named(archive, tmp_path, bars_a, capsys):
    publish_span(archive, "AAAUSDT", bars_a)
    dest = tmp_path / "out"
    rep = F.fetch(["AAA", "ZZZ"], start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    z = rep.symbols["ZZZ"]
    assert rep.ok and not z.usable and z.path is None
    # Jan, Feb monthly; Feb 29 (probe for a not-yet-published Feb file); Mar 1-3 daily
    assert len(z.missing) == 6 and z.failed == []
    assert any("not in the archive" in m and "ZZZUSDT" in m for m in z.messages)
    assert "ZZZUSDT: not in the archive" in rep.table()
    assert not (dest / "ZZZ-USD_1d.parquet").exists()
    only = F.fetch(["ZZZ"], start="2024-01-01", dest=tmp_path / "o2", base_url=archive.url,
                   **FAST)
    assert not only.ok


def test_range_without_data_is_named(archive, tmp_path, bars_a):
    publish_span(archive, "AAAUSDT", bars_a)
    rep = F.fetch("AAA", start="2023-06-01", end="2023-07-31", dest=tmp_path / "out",
                  base_url=archive.url, **FAST)
    (msg,) = rep.symbols["AAA"].messages
    assert "2023-06-01" in msg and "2023-07-31" in msg and "AAAUSDT" in msg
    assert not rep.ok


def test_404_for_one_day_inside_range(archive, tmp_path, bars_a):
    publish_span(archive, "AAAUSDT", bars_a, skip=("2024-03-02",))
    rep = F.fetch("AAA", start="2024-01-01", dest=tmp_path / "out", base_url=archive.url,
                  **FAST)
    a = rep.symbols["AAA"]
    assert a.failed == [] and a.rows == 62
    url = archive.url + "/data/spot/daily/klines/AAAUSDT/1d/AAAUSDT-1d-2024-03-02.zip"
    assert a.missing == [url]
    assert any("1 missing 1d bar" in m for m in a.messages)
    assert any("inside the data range" in m and url in m for m in a.messages)


def test_month_gap_before_last_complete_month(archive, tmp_path):
    """A 404 for an old month is reported and cached (not asked again)."""
    bars = synthetic_bars("2023-12-01", 31 + 31 + 29, seed=3)
    for month in ("2023-12", "2024-02"):
        publish(archive, "AAAUSDT", month, bars[bars["datetime"].dt.strftime("%Y-%m") == month])
    jan = "/data/spot/monthly/klines/AAAUSDT/1d/AAAUSDT-1d-2024-01.zip"
    rep = F.fetch("AAA", start="2023-12-01", end="2024-02-29", dest=tmp_path / "out",
                  base_url=archive.url, **FAST)
    a = rep.symbols["AAA"]
    assert a.missing == [archive.url + jan] and a.rows == 31 + 29
    assert any("31 missing 1d bar" in m for m in a.messages)
    archive.requests.clear()
    F.fetch("AAA", start="2023-12-01", end="2024-02-29", dest=tmp_path / "out",
            base_url=archive.url, **FAST)
    assert archive.requests == []


def test_last_complete_month_falls_back_to_daily_files(archive, tmp_path, bars_a):
    """Feb's monthly file is not published yet on Mar 4: Feb's daily files are used."""
    publish_span(archive, "AAAUSDT", bars_a, skip=("2024-02",))
    for d in pd.date_range("2024-02-01", "2024-02-29"):
        publish(archive, "AAAUSDT", f"{d:%Y-%m-%d}", bars_a[bars_a["datetime"] == d])
    dest = tmp_path / "out"
    rep = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    a = rep.symbols["AAA"]
    assert a.fetched == 1 + 29 + 3 and a.missing == [] and a.failed == []
    assert_bars_equal(dest / "AAA-USD_1d.parquet", bars_a)
    # once the monthly file appears, it replaces the daily ones in the cache
    publish(archive, "AAAUSDT", "2024-02", bars_a[bars_a["datetime"].dt.month == 2])
    rep2 = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    assert rep2.symbols["AAA"].fetched == 1
    assert not list((dest / ".cache/AAAUSDT/1d").glob("AAAUSDT-1d-2024-02-??.zip"))
    assert_bars_equal(dest / "AAA-USD_1d.parquet", bars_a)


def test_hourly_interval(archive, tmp_path):
    bars = synthetic_bars("2024-03-01", 48, seed=4, freq="h")
    publish(archive, "AAAUSDT", "2024-03-01", bars.iloc[:24], interval="1h")
    publish(archive, "AAAUSDT", "2024-03-02", bars.iloc[24:], interval="1h", unit="us")
    rep = F.fetch("AAA", start="2024-03-01", end="2024-03-02", interval="1h",
                  dest=tmp_path / "out", base_url=archive.url, **FAST)
    assert rep.symbols["AAA"].rows == 48
    assert_bars_equal(tmp_path / "out/AAA-USD_1h.parquet", bars)


def test_base_url_from_environment(archive, tmp_path, bars_a, monkeypatch):
    publish_span(archive, "AAAUSDT", bars_a)
    monkeypatch.setenv(F.ENV_FETCH_URL, archive.url)
    rep = F.fetch("AAA", start="2024-01-01", dest=tmp_path / "out", **FAST)
    assert rep.ok and rep.base_url == archive.url


# --------------------------------------------------------------------------- parsing units


def _zip(csv: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("X-1d-2025-01.csv", csv)
    return buf.getvalue()


@pytest.mark.parametrize("header", [False, True])
def test_read_kline_zip_ms_and_us(header):
    """2024-01-01T00:00Z = 19723 days after the epoch = 1_704_067_200_000 ms;
    2025-01-01T00:00Z = 20089 days = 1_735_689_600_000_000 µs (README: µs from 2025)."""
    assert 19723 * 86_400_000 == 1_704_067_200_000
    head = "open_time,open,high,low,close,volume,a,b,c,d,e,f\n" if header else ""
    csv = head + (
        "1704067200000,1.5,2.0,1.0,1.75,10.0,1704153599999,17.5,3,5.0,8.75,0\n"
        "1735689600000000,2.5,3.0,2.0,2.25,20.0,1735775999999999,45.0,4,10.0,22.5,0\n"
    )
    df = F.read_kline_zip(_zip(csv))
    assert list(df.columns) == ["datetime", "open", "high", "low", "close", "volume"]
    assert list(df["datetime"]) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2025-01-01")]
    assert df["close"].tolist() == [1.75, 2.25] and df["volume"].tolist() == [10.0, 20.0]


def test_read_kline_zip_rejects_bad_content():
    with pytest.raises(ValueError, match="one CSV"):
        F.read_kline_zip(_empty_zip())
    with pytest.raises(ValueError):
        F.read_kline_zip(_zip("1704067200000,abc,2,1,1.5,10,0,0,0,0,0,0\n"))


def _empty_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "no csv")
    return buf.getvalue()


def test_merge_klines_dedups_exact_rows_and_rejects_conflicts():
    a = synthetic_bars("2024-01-01", 3, seed=0)
    merged = F.merge_klines([a.iloc[[2, 1]], a, a.iloc[[0]]])
    pd.testing.assert_frame_equal(merged, a.reset_index(drop=True))
    b = a.iloc[[1]].copy()
    b["close"] += 1.0
    with pytest.raises(F.KlineConflictError, match="2024-01-02"):
        F.merge_klines([a, b])


def test_conflicting_pieces_reported_not_written(archive, tmp_path, bars_a):
    """Two cached files that disagree on a day: the symbol reports the date, no Parquet."""
    publish_span(archive, "AAAUSDT", bars_a)
    dest = tmp_path / "out"
    F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    clash = bars_a.iloc[[1]].copy()
    clash["close"] *= 2
    extra = io.BytesIO()
    with zipfile.ZipFile(extra, "w") as zf:
        zf.writestr("AAAUSDT-1d-2023-12.csv", kline_csv(clash))
    (dest / ".cache/AAAUSDT/1d/AAAUSDT-1d-2023-12.zip").write_bytes(extra.getvalue())
    (dest / "AAA-USD_1d.parquet").unlink()
    rep = F.fetch("AAA", start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    a = rep.symbols["AAA"]
    assert not a.usable and any("2024-01-02" in m for m in a.messages)
    assert not (dest / "AAA-USD_1d.parquet").exists()


def test_parse_checksum():
    """SHA-256("abc") = ba7816bf...f20015ad (FIPS 180-2, appendix B.1)."""
    d = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hashlib.sha256(b"abc").hexdigest() == d
    assert F.parse_checksum(f"{d}  X-1d-2024-01.zip\n", "X-1d-2024-01.zip") == d
    assert F.parse_checksum(d.upper(), "X.zip") == d
    with pytest.raises(ValueError, match="malformed"):
        F.parse_checksum("<html>404</html>", "X.zip")
    with pytest.raises(ValueError, match=r"expected 'X\.zip'"):
        F.parse_checksum(f"{d}  Y.zip", "X.zip")


def test_plan_matches_documented_urls():
    """The README's example: .../data/spot/monthly/klines/BNBUSDT/1m/BNBUSDT-1m-2019-01.zip."""
    (p,) = F.plan_pieces("BNBUSDT", "1m", date(2019, 1, 5), date(2019, 1, 20), date(2019, 3, 1))
    assert p.url == "https://data.binance.vision/data/spot/monthly/klines/BNBUSDT/1m/BNBUSDT-1m-2019-01.zip"
    pieces = F.plan_pieces("BTCUSDT", "1d", date(2023, 12, 15), date(2024, 3, 2), TODAY, "http://m/")
    assert [p.filename for p in pieces] == [
        "BTCUSDT-1d-2023-12.zip", "BTCUSDT-1d-2024-01.zip", "BTCUSDT-1d-2024-02.zip",
        "BTCUSDT-1d-2024-03-01.zip", "BTCUSDT-1d-2024-03-02.zip",
    ]
    assert pieces[-1].url == "http://m/data/spot/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2024-03-02.zip"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"interval": "5m"}, "interval"),
    ({"max_retries": -1}, "max_retries"),
    ({"backoff": -1.0}, "backoff"),
    ({"timeout": 0}, "timeout"),
    ({"start": "2024-03-05", "end": "2024-03-01"}, "start"),
    ({"start": "yesterday"}, "start"),
    ({"symbols": ["BTC/USDT"]}, "symbols"),
    ({"base_url": "ftp://mirror"}, "base_url"),
    ({"quote": "US-DT"}, "quote"),
])  # fmt: skip
def test_bad_parameters_name_themselves(tmp_path, kwargs, match):
    args = {"symbols": ["BTC"], "start": "2024-01-01", "dest": tmp_path, "base_url": "http://x",
            "today": TODAY, **kwargs}
    with pytest.raises(ValueError, match=match):
        F.fetch(**args)


def test_default_universe_matches_readme():
    assert F.DEFAULT_UNIVERSE == tuple(
        "BTC ETH BNB XRP ADA DOGE SOL LINK LTC BCH ETC XLM XMR TRX DOT AVAX NEAR AAVE".split())


# --------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="riskmodels")
    sub = parser.add_subparsers(dest="command")
    data = sub.add_parser("data").add_subparsers(dest="data_command")
    F.add_fetch_parser(data)
    return parser.parse_args(argv)


def test_cli_run_fetch(archive, tmp_path, bars_a, capsys):
    publish_span(archive, "AAAUSDT", bars_a)
    dest = tmp_path / "out"
    args = _cli(["data", "fetch", "--symbols", "AAA,ZZZ", "--start", "2024-01-01", "--end",
                 "2024-02-29", "--dest", str(dest), "--base-url", archive.url])
    assert args.func is F.run_fetch
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert "AAAUSDT" in out and "ZZZUSDT: not in the archive" in out
    assert "[1/2] AAAUSDT" in err
    assert len(pd.read_parquet(dest / "AAA-USD_1d.parquet")) == 60
    args = _cli(["data", "fetch", "--symbols", "ZZZ", "--start", "2024-01-01", "--end",
                 "2024-01-31", "--dest", str(dest), "--base-url", archive.url])
    assert F.run_fetch(args) == 1
    assert "nothing usable" in capsys.readouterr().err
    args = _cli(["data", "fetch", "--symbols", "AAA", "--start", "bad", "--dest", str(dest)])
    assert F.run_fetch(args) == 2


# --------------------------------------------------------------------------- resolve


def _with_prices(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "BTC-USD_1d.csv").write_text("datetime,open,high,low,close,volume\n")
    return d


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    monkeypatch.delenv("RISKMODELS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_resolve_order_flag_config_env_embedded(clean_env, tmp_path, monkeypatch):
    """Issue 24: --data, then [data] dir, then RISKMODELS_DATA, then the embedded dataset;
    a fetch cache or ./data with prices is never picked up unless named."""
    from riskmodels.data.embedded import EMBEDDED_DIR
    from riskmodels.data.resolve import choose_data

    flag = _with_prices(tmp_path / "flag")
    conf = _with_prices(tmp_path / "conf")
    env = _with_prices(tmp_path / "env")
    cache = _with_prices(tmp_path / "xdg/riskmodels")
    _with_prices(clean_env / "data")  # ./data with prices: ignored unless named
    monkeypatch.setenv("RISKMODELS_DATA", str(env))
    assert choose_data(str(flag), str(conf)).path == flag
    assert choose_data(None, str(conf)).origin == "[data] dir"
    assert choose_data(None, "").path == env
    assert resolve_data_dir(None) == env
    monkeypatch.delenv("RISKMODELS_DATA")
    got = choose_data(None, "")
    assert (got.path, got.kind, got.origin) == (EMBEDDED_DIR, "embedded", "default")
    assert resolve_data_dir(None, offline=False, fetch_if_missing=True) == EMBEDDED_DIR
    assert default_cache_dir() == cache
    assert choose_data("binance").path == cache
    assert choose_data("./data").path == Path("data")
    monkeypatch.setenv("RISKMODELS_DATA", "embedded")
    assert choose_data(None).kind == "embedded"


def test_resolve_accepts_crypto_daily_layout(clean_env, tmp_path):
    root = tmp_path / "shared"
    (root / "crypto-daily").mkdir(parents=True)
    assert resolve_data_dir(root, offline=True, fetch_if_missing=False) == root


def test_resolve_empty_fetch_cache_names_the_command(clean_env):
    with pytest.raises(DataNotFoundError) as e:
        resolve_data_dir("binance")
    msg = str(e.value)
    assert "`riskmodels data fetch`" in msg and "embedded dataset" in msg


def test_resolve_embedded_is_daily_only(clean_env):
    from riskmodels.data.resolve import choose_data

    with pytest.raises(DataNotFoundError, match=r"daily \(1d\) only.*--data DIR"):
        choose_data(None, None, interval="1h")


def test_resolve_bad_flag_or_env_is_an_error(clean_env, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="--data"):
        resolve_data_dir(str(empty), offline=False, fetch_if_missing=True)
    monkeypatch.setenv("RISKMODELS_DATA", str(empty))
    with pytest.raises(DataNotFoundError, match="RISKMODELS_DATA"):
        resolve_data_dir(None, offline=False, fetch_if_missing=True)


def test_resolve_never_downloads(clean_env, monkeypatch):
    """The old fallback fetched the universe when no data was found; now nothing is fetched."""
    def no_fetch(**kw):
        raise AssertionError("resolution must never download")

    monkeypatch.setattr(F, "fetch", no_fetch)
    lines: list[str] = []
    got = resolve_data_dir(None, offline=False, fetch_if_missing=True, progress=lines.append)
    assert got.name == "embedded" and "embedded dataset" in lines[0]


def test_fetched_cache_loads_into_equal_price_panel(archive, tmp_path, bars_a, bars_b):
    """Issue 8 evidence: the fetched Parquet cache, read by the project's loader, gives a
    PricePanel equal to the generated prices (BBB NaN before its listing: ragged start)."""
    loaders = pytest.importorskip("riskmodels.data.loaders")
    publish_span(archive, "AAAUSDT", bars_a)
    publish_span(archive, "BBBUSDT", bars_b, unit="us")
    dest = tmp_path / "out"
    F.fetch(["AAA", "BBB"], start="2024-01-01", dest=dest, base_url=archive.url, **FAST)
    panel = loaders.load_panel(dest, interval="1d", min_length=1)
    assert panel.assets == ("AAA", "BBB")
    assert (panel.dates == pd.DatetimeIndex(bars_a["datetime"])).all()
    for name in F.FIELDS:
        got = getattr(panel, name)
        np.testing.assert_allclose(got[:, 0], bars_a[name].to_numpy(), rtol=1e-15, atol=0)
        np.testing.assert_allclose(got[31:, 1], bars_b[name].to_numpy(), rtol=1e-15, atol=0)
        assert np.isnan(got[:31, 1]).all()
