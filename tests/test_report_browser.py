"""The HTML report in a real browser: Debian's chromium, headless, offline, on a file:// URL.

Checks that every embedded figure decodes (``naturalWidth > 0`` for every
``<img>``, read back from the DOM), that the console shows no error, and saves
a non-blank screenshot under the test's temporary directory. Skips when no
chromium is installed (``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]

CHECK = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {n: imgs.length, decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
             widths: imgs.map(function (i) { return i.naturalWidth; })};
  var pre = document.createElement('pre');
  pre.id = 'rm-check';
  pre.textContent = 'RMCHECK' + JSON.stringify(out) + 'RMCHECK';
  document.body.appendChild(pre);
});
</script>
"""


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=180, check=False, env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"})


def _console_errors(stderr: str) -> list[str]:
    """Every console message, uncaught exception and failed load in chromium's log.

    Chromium logs page console messages as ``INFO:CONSOLE...`` lines without
    their level, and the report has no script of its own, so any console
    message at all is a failure (checked by hand: a page calling
    ``console.error("boom")`` logs ``INFO:CONSOLE:2] "boom", source: ...``).
    """
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line or "net::ERR_" in line or "Failed to load resource" in line]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    from test_report import small_config, synthetic_panel

    from riskmodels.backtest.engine import run_backtest
    from riskmodels.report.governance import build_report

    cfg = small_config(accounts=20)
    cfg["report"]["sensitivity"] = {"accounts": 10, "factors": {"cushion": [0.25, 1.0]}}
    res = run_backtest(cfg, synthetic_panel(T=200))
    out = tmp_path_factory.mktemp("browser_report")
    return build_report(res, command="riskmodels report", timestamp="test").write(out)["html"]


def test_every_figure_decodes_and_no_console_error(report_html: Path, tmp_path: Path):
    page = report_html.read_text()
    n_img = page.count("<img ")
    assert n_img == 6
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"))
    run = _chromium(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    m = re.search(r"RMCHECK(\{.*?\})RMCHECK", run.stdout)
    assert m, f"the check script did not run; DOM tail: {run.stdout[-500:]}"
    check = json.loads(m.group(1))
    assert check["n"] == n_img and check["decoded"] == n_img, check
    assert all(w >= 300 for w in check["widths"]), check
    assert _console_errors(run.stderr) == []


def test_screenshot_is_not_blank(report_html: Path, tmp_path: Path):
    shot = tmp_path / "report.png"
    run = _chromium(["--window-size=1200,2400", f"--screenshot={shot}", report_html.as_uri()], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console_errors(run.stderr) == []
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[:2] == (2400, 1200)
    grey = img[..., :3].mean(axis=2)
    assert grey.std() > 0.05  # text, tables and figures, not a blank page
    assert (grey < 0.3).mean() > 0.005  # some dark ink
    assert np.isfinite(grey).all()


PDFTOTEXT = shutil.which("pdftotext")


def test_pdf_keeps_every_column_of_the_comparison(report_html: Path, tmp_path: Path):
    """Printed to PDF by headless Chromium (the print stylesheet), the text of the PDF holds every column name
    of the summary (comparison) table and of the executive table, and every model; wide tables went to
    landscape pages. Text from poppler's pdftotext (apt-get install -y poppler-utils)."""
    if PDFTOTEXT is None:
        pytest.skip("pdftotext is not installed (apt-get install -y poppler-utils)")
    from riskmodels.report.pdf import write_pdf

    pdf = write_pdf(report_html, tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = subprocess.run([PDFTOTEXT, "-raw", str(pdf), "-"], capture_output=True, text=True, timeout=120,
                          check=True).stdout
    words = set(re.findall(r"[A-Za-z0-9_./%-]+", text))
    page = report_html.read_text()
    from test_report import _Tables

    parsed = _Tables()
    parsed.feed(page)
    for caption in ("Summary per margin method", "Methods, findings and proposed changes"):
        table = next(t for t in parsed.tables if t["caption"] == caption)
        header = table["rows"][0]
        missing = [c for c in header if c not in words]
        assert not missing, (caption, missing)
        for row in table["rows"][1:]:
            assert row[0] in text, row[0]
    info = subprocess.run([shutil.which("pdfinfo") or "pdfinfo", "-f", "1", "-l", "200", str(pdf)],
                          capture_output=True, text=True, timeout=60, check=False).stdout
    sizes = re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info)
    assert any(float(w) > float(h) for w, h in sizes), "no landscape page for the wide tables"
