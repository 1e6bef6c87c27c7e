"""`riskmodels data fetch` fails fast without a network and refuses oversized files (issues 24, 15).

Every server here is a tiny ``http.server`` on 127.0.0.1 and the ``loopback_only`` guard
fails any other connection. The archive layout and CHECKSUM format follow the
binance/binance-public-data README (see tests/test_fetch.py).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import time
import zipfile
from datetime import date
from pathlib import Path

import pytest

from riskmodels.cli import main
from riskmodels.data import fetch as F
from riskmodels.data.fetch_guard import ArchiveUnreachable, SizeLimitError, read_zip_member

pytestmark = pytest.mark.usefixtures("loopback_only", "no_proxy")


@pytest.fixture
def no_proxy(monkeypatch):
    """urllib would send even 127.0.0.1 requests through a configured proxy."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)

TODAY = date(2024, 2, 10)  # January 2024 is the one complete month asked for
PAIR, NAME = "AAAUSDT", "AAAUSDT-1d-2024-01.zip"
PATH = f"/data/spot/monthly/klines/{PAIR}/1d/{NAME}"
WORDS = ("embedded dataset", "--data", "RISKMODELS_DATA")


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kline_zip(rows: int = 31, pad: int = 0) -> bytes:
    """A monthly 1d kline ZIP for January 2024 (ms open times); ``pad`` zero bytes of
    trailing padding make a CSV that expands far beyond the ZIP's size."""
    lines = []
    for d in range(rows):
        t = 1704067200000 + d * 86_400_000
        lines.append(f"{t},100,101,99,100.5,10,{t + 86_399_999},1000,5,1,100,0")
    text = "\n".join(lines) + "\n" + " " * pad
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(NAME.replace(".zip", ".csv"), text)
    return buf.getvalue()


class Server:
    """Serves one ZIP and its CHECKSUM; ``script`` lists status codes to answer first."""

    def __init__(self, body: bytes, script: list[int] | None = None,
                 content_length: int | None = None) -> None:
        self.body, self.script = body, list(script or [])
        self.content_length = content_length
        self.hits: list[tuple[str, int]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == PATH + ".CHECKSUM":
                    code, data = 200, f"{hashlib.sha256(server.body).hexdigest()}  {NAME}\n".encode()
                elif self.path == PATH:
                    code = server.script.pop(0) if server.script else 200
                    data = server.body if code == 200 else b"busy"
                else:
                    code, data = 404, b"not found"
                server.hits.append((self.path, code))
                self.send_response(code)
                n = server.content_length if (self.path == PATH and code == 200
                                              and server.content_length) else len(data)
                self.send_header("Content-Length", str(n))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def zip_hits(self) -> list[int]:
        return [c for p, c in self.hits if p == PATH]

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _fetch(url: str, dest: Path, **kw):  # type: ignore[no-untyped-def]
    opts = {"start": "2024-01-01", "end": "2024-01-31", "today": TODAY, "backoff": 0.01,
            "timeout": 5.0, "workers": 2}
    opts.update(kw)
    return F.fetch(["AAA"], dest=dest, base_url=url, **opts)


# ------------------------------------------------------------------ fail fast
def test_closed_port_stops_at_once_naming_the_alternatives(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ArchiveUnreachable) as e:
        _fetch(f"http://127.0.0.1:{closed_port()}", tmp_path, backoff=5.0)
    assert time.perf_counter() - t0 < 10
    for w in (*WORDS, "127.0.0.1", "without retrying"):
        assert w in str(e.value)


def test_unreachable_mid_run_is_not_retried(tmp_path):
    """Past the probe (skipped here), a refused connection still stops everything at
    once: with 4 retries and 5 s backoff a retry would take > 10 s."""
    t0 = time.perf_counter()
    with pytest.raises(ArchiveUnreachable):
        F.fetch(["AAA", "BBB", "CCC"], dest=tmp_path, start="2023-01-01", end="2024-01-31",
                base_url=f"http://127.0.0.1:{closed_port()}", today=TODAY, backoff=5.0,
                max_retries=4, check_network=False)
    assert time.perf_counter() - t0 < 10


def test_unresolvable_host_stops_at_once(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ArchiveUnreachable, match=r"data\.binance\.vision.*embedded dataset"):
        _fetch("https://data.binance.vision", tmp_path)  # the guard makes DNS fail
    assert time.perf_counter() - t0 < 10


def test_connect_that_hangs_is_cut_by_the_probe_timeout(tmp_path):
    """A listener whose backlog is full drops SYNs, so a connect hangs (as to a black-holed
    address); the probe gives up after PROBE_TIMEOUT and the fetch stops."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fill = []
    try:
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fill.append(c)
        time.sleep(0.2)
        t0 = time.perf_counter()
        with pytest.raises(ArchiveUnreachable, match="timed out"):
            _fetch(f"http://127.0.0.1:{port}", tmp_path)
        assert time.perf_counter() - t0 < 10
    finally:
        for c in fill:
            c.close()
        srv.close()


def test_cli_fetch_offline_exits_1_within_10_s(tmp_path, capsys):
    t0 = time.perf_counter()
    code = main(["data", "fetch", "--symbols", "BTC", "ETH", "--dest", str(tmp_path),
                 "--base-url", f"http://127.0.0.1:{closed_port()}"])
    assert code == 1 and time.perf_counter() - t0 < 10
    err = capsys.readouterr().err
    assert all(w in err for w in WORDS) and "Traceback" not in err


# ------------------------------------------------------------------ retries
@pytest.mark.parametrize("status", [503, 429, 500])
def test_transient_answer_is_retried_then_fetched(tmp_path, status):
    with Server(kline_zip(), script=[status]) as srv:
        rep = _fetch(srv.url, tmp_path)
    assert srv.zip_hits() == [status, 200]
    assert rep.symbols["AAA"].fetched == 1 and rep.symbols["AAA"].rows == 31


@pytest.mark.parametrize("status", [403, 400])
def test_other_client_errors_are_not_retried(tmp_path, status):
    with Server(kline_zip(), script=[status]) as srv:
        rep = _fetch(srv.url, tmp_path)
    assert srv.zip_hits() == [status]
    assert rep.symbols["AAA"].failed and f"HTTP {status}" in rep.symbols["AAA"].failed[0].reason


# ------------------------------------------------------------------ size limits
def _cache(dest: Path) -> list[Path]:
    return sorted((dest / ".cache" / PAIR / "1d").glob("*.zip"))


def test_decompression_bomb_is_refused_and_never_cached(tmp_path):
    bomb = kline_zip(pad=3 * 2**20)  # a ~3 kB ZIP whose CSV expands to 3 MiB
    assert len(bomb) < 20_000
    with Server(bomb) as srv:
        rep = _fetch(srv.url, tmp_path, max_bytes=2**20)
        again = _fetch(srv.url, tmp_path, max_bytes=2**20)
    reason = rep.symbols["AAA"].failed[0].reason
    assert "refused" in reason and "1,048,576" in reason and "not cached" in reason
    assert _cache(tmp_path) == []
    assert again.symbols["AAA"].skipped == 0 and again.symbols["AAA"].failed  # asked again
    assert srv.zip_hits() == [200, 200]  # once per run: refusal is not retried


def test_download_over_the_limit_is_refused_by_its_length(tmp_path):
    with Server(kline_zip(), content_length=5 * 2**20) as srv:
        rep = _fetch(srv.url, tmp_path, max_bytes=2**20)
    reason = rep.symbols["AAA"].failed[0].reason
    assert "refused" in reason and "over the limit" in reason
    assert _cache(tmp_path) == []


def test_the_same_file_within_the_limit_is_fetched(tmp_path):
    with Server(kline_zip(pad=3 * 2**20)) as srv:
        rep = _fetch(srv.url, tmp_path, max_bytes=8 * 2**20)
    assert rep.symbols["AAA"].fetched == 1 and len(_cache(tmp_path)) == 1


def test_read_zip_member_refuses_by_the_declared_size_and_accepts_below():
    bomb = kline_zip(pad=2_000_000)
    with pytest.raises(SizeLimitError, match=r"declares 2,00\d,\d{3} bytes uncompressed.*limit 1,000,000"):
        read_zip_member(bomb, max_bytes=1_000_000)
    name, data = read_zip_member(bomb, max_bytes=3_000_000)
    assert name.endswith(".csv") and len(data) > 2_000_000
