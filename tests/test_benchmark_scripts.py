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
