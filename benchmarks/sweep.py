"""Benchmark: a 200-point FixedHaircut sweep on the real data, 1 vs 2 worker processes.

Grid: haircut (10 values) x IMF (5) x cushion (4) = 200 points, MMF 0.03,
a generated book of 200 accounts over the clean 18-asset universe, scored
from 2020-01-01. Each worker count runs into a fresh output directory (no
resume), with the default local-process backend. Prints a table and writes
JSON (wall time, seconds per point, speedup, and whether both runs gave the
identical table).

Usage::

    python benchmarks/sweep.py --data ../shared/data --json sweep-benchmark.json
    python benchmarks/sweep.py --points 40      # a quicker, smaller grid

Not part of the test suite (speed is measured here, never in unit tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodels.sweep import sweep

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import LoadSampler, machine


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the sweep's worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def grid_doc(points: int, accounts: int, start: str) -> dict:
    haircuts = [round(float(h), 4) for h in np.linspace(0.02, 0.38, 10)]
    imfs = [0.03, 0.05, 0.08, 0.12, 0.20]
    cushions = [0.0, 0.25, 0.5, 1.0]
    if points < 200:  # smaller grids drop haircut values first
        haircuts = haircuts[: max(1, points // 20)]
    return {
        "data": {"start": start},
        "book": {"accounts": accounts},
        "sweep": {
            "model": "fixed_haircut",
            "label": "haircut",
            "params": {"mmf": 0.03},
            "grid": {"model": {"haircut": haircuts, "imf": imfs}, "liquidation": {"cushion": cushions}},
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="price data directory (default: $RISKMODELS_DATA or ../shared/data)")
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--start", default="2020-01-01")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--json", default="sweep-benchmark.json", help="where to write the JSON results")
    args = ap.parse_args()
    data = args.data or os.environ.get("RISKMODELS_DATA") or str(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    doc = grid_doc(args.points, args.accounts, args.start)
    rows, tables = [], {}
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    sampler = LoadSampler()
    info = machine()
    for w in (int(x) for x in args.workers.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"sweep-bench-{w}-") as out:
            load0, c0 = os.getloadavg()[0], _cpu()
            t0 = time.perf_counter()
            res = sweep(doc, out=out, data=data, backend="processes", workers=w)
            wall = time.perf_counter() - t0
            cpu = _cpu() - c0  # the driver (the sweep's pool workers are not reaped children here)
        tables[w] = res.table
        rows.append({"workers": w, "points": len(res.table), "wall_s": wall, "driver_cpu_s": cpu,
                     "load_avg_1min_before": load0, "load_avg_1min_after": os.getloadavg()[0],
                     "s_per_point": wall / len(res.table), "cpu_s_per_point": float(res.timings.mean())})
        print(f"{w} worker(s): {len(res.table)} points in {wall:.1f} s (driver CPU {cpu:.1f} s)", flush=True)
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup"] = base / r["wall_s"]
    ws = list(tables)
    identical = all(tables[ws[0]].equals(tables[w]) for w in ws[1:])
    frame = pd.DataFrame(rows)
    print()
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"identical tables across worker counts: {identical}")
    report = {
        "benchmark": "riskmodels sweep, FixedHaircut grid",
        "grid": doc["sweep"]["grid"],
        "accounts": args.accounts,
        "start": args.start,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "machine_block": info,
        "load": sampler.stop(),
        "results": rows,
        "identical_tables": bool(identical),
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
