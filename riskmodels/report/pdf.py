"""PDF writer: the report's HTML page printed by headless Chromium with its print stylesheet.

``chromium --headless --print-to-pdf`` applies the page's ``@media print``
rules and ``@page`` sizes (A4, landscape pages for wide tables), so the PDF
is the same document as the HTML. Chromium is an optional system program
(Debian: ``apt-get install -y chromium``); without it :func:`write_pdf`
raises an error that says so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["chromium_path", "write_pdf"]

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
          "--mute-audio", "--no-pdf-header-footer")


def chromium_path() -> str | None:
    """The Chromium executable on ``PATH`` (``chromium``, ``chromium-browser``, ``google-chrome``), or None."""
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
                None)


def write_pdf(html_path: str | Path, pdf_path: str | Path, *, timeout: float = 180.0) -> Path:
    """Print ``html_path`` (a file) to ``pdf_path`` with headless Chromium; returns ``pdf_path``."""
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("printing the report to PDF needs Chromium; install it (Debian: "
                                "apt-get install -y chromium) or print report.html from any browser")
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="riskmodels-pdf-") as home:
        tmp = Path(home) / "out.pdf"
        run = subprocess.run([exe, *_FLAGS, f"--user-data-dir={home}/profile", f"--print-to-pdf={tmp}",
                              html_path.as_uri()], capture_output=True, text=True, timeout=timeout, check=False,
                             env={"HOME": home, "PATH": "/usr/bin:/bin"})
        if run.returncode != 0 or not tmp.exists():
            raise RuntimeError(f"chromium could not print {html_path} (exit {run.returncode}): "
                               f"{run.stderr.strip()[-500:]}")
        shutil.move(str(tmp), pdf_path)
    return pdf_path
