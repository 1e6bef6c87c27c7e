"""The console script's exit (riskmodels.cli.entry): exit handlers run, output is flushed, the code is main's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
    import atexit, sys, threading
    from pathlib import Path
    from riskmodels import cli
    marker = Path(sys.argv[1])
    atexit.register(lambda: marker.write_text("handler ran"))
    sys.stdout.write("unflushed line without newline")  # left in the buffer: entry() must flush it
    sys.argv = ["riskmodels", *sys.argv[2:]]
    cli.entry()
    marker.write_text("entry returned")  # never reached: entry() ends the process
"""


def _run(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], str]:
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent(SCRIPT))
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(script), str(marker), *argv], capture_output=True, text=True, env=env,
                       timeout=120)
    return p, marker.read_text() if marker.exists() else ""


def test_entry_runs_the_exit_handlers_flushes_and_keeps_mains_code(tmp_path: Path) -> None:
    p, marker = _run(tmp_path, "models")
    assert p.returncode == 0
    assert marker == "handler ran"
    assert p.stdout.startswith("unflushed line without newline")
    assert "haircut" in p.stdout.lower() or "fixed_haircut" in p.stdout  # the command's own output


def test_entry_returns_a_failed_commands_code(tmp_path: Path) -> None:
    p, marker = _run(tmp_path, "backtest", "--config", str(tmp_path / "missing.toml"))
    assert p.returncode == 2
    assert "config file not found" in p.stderr and "Traceback" not in p.stderr
    assert marker == "handler ran"


def test_console_script_and_module_run_use_entry() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'riskmodels = "riskmodels.cli:entry"' in text
    assert (ROOT / "riskmodels" / "cli.py").read_text().rstrip().endswith("entry()")
