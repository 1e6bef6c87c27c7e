"""Every benchmark command-line script starts: its imports resolve and ``--help`` exits 0.

The benchmarks are run by hand (never timed in the suite), so a module split
that moves a name they import breaks them silently; ``benchmarks/scale.py``
imported the harness names from ``standard.py`` after they had moved to
``_harness.py`` and failed at import until this test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
# the command-line scripts (bounds.py is a module that also prints its rates when run)
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_") and "argparse" in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_help(script: str) -> None:
    r = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                       timeout=120, cwd=BENCH.parent)
    assert r.returncode == 0, f"{script}: {r.stderr[-2000:]}"
    assert "usage" in r.stdout.lower()


def test_default_run_compares_outputs_byte_for_byte_except_the_volatile_files(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import default_run
    finally:
        sys.path.remove(str(BENCH))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for d, extra in ((a, "x"), (b, "y")):
        (d / "same.csv").write_text("1,2\n")
        (d / "report.html").write_text(extra)  # carries the commit and timings: not compared
        (d / "manifest.json").write_text(extra)
    (a / "summary.csv").write_text("0.1\n")
    (b / "summary.csv").write_text("0.10000000000000001\n")  # the same number, other bytes: a difference
    (a / "only_a.csv").write_text("")
    assert default_run.differing(a, b) == ["only_a.csv", "summary.csv"]


def test_default_run_launches_outside_every_checkout(tmp_path: Path, monkeypatch) -> None:
    """``python -m`` puts its working directory ahead of PYTHONPATH: run from a repository root, a
    ``--base`` tree would import the root's riskmodels (found 2026-12-03: base and new timed alike)."""
    sys.path.insert(0, str(BENCH))
    try:
        import default_run
    finally:
        sys.path.remove(str(BENCH))
    seen = {}

    class FakePopen:
        pid, returncode = 0, 0

        def __init__(self, cmd, **kw):
            seen.update(kw, cmd=cmd)

        def communicate(self):
            return "", ""

    monkeypatch.setattr(default_run.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(default_run.shutil, "which", lambda _name: None)
    monkeypatch.setattr(default_run, "_tree_cpu", lambda pid, stop: 0.0)
    monkeypatch.chdir(BENCH.parent)  # invoked from the repository root, as the README shows
    base = tmp_path / "base"
    default_run.run_once(base, tmp_path / "work" / "out", None)
    assert seen["env"]["PYTHONPATH"] == str(base)
    assert Path(seen["cwd"]) == tmp_path / "work" and Path(seen["cwd"]).resolve() != BENCH.parent.resolve()
