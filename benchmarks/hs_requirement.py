"""Simulation stage of the four HS-based default rows: two source trees, CPU seconds and event parity (issue 23e).

Runs the account simulation of "HS VaR 99% 2d", "FHS VaR 99% 2d" and the two
APC rows around HS (the default config, its 1,000-account book, the real
data) once per source tree, each in its own subprocess with
``PYTHONPATH=<tree>`` (BLAS and numba on one thread, as the engine runs a
model), alternating trees ``--repeat`` times so that machine load hits both
alike. Prints the CPU seconds (``time.process_time`` of the simulation
alone) with the load average sampled before each run, and whether the
liquidation events of the trees are identical (every field; the recorded
maintenance compared bitwise and within 1e-12 relative).

Typical use, the old commit exported next to the worktree::

    git archive 3600220 | tar -x -C /tmp/base
    RISKMODELS_DATA=/path/to/data python benchmarks/hs_requirement.py /tmp/base . --repeat 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROWS = ("HS VaR 99% 2d", "FHS VaR 99% 2d", "HS VaR 99% 2d + EMIR 25% buffer", "HS VaR 99% 2d + 25% stressed weight")

CHILD = r'''
import os, sys, time
import numpy as np
from riskmodels.backtest.engine import backtest_window, build_book, build_models
from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.backtest.simulation import simulate_accounts
from riskmodels.config import default_config, liquidation_policy
from riskmodels.data.loaders import load_panel
from riskmodels.data.options import LoaderOptions

out, rows = sys.argv[1], sys.argv[2].split("|")
cfg = default_config()
d = cfg["data"]
panel = load_panel(os.environ["RISKMODELS_DATA"], assets=d["universe"] or None, policy=d.get("policy", "error"),
                   interval=d["interval"], end=d.get("end") or None, **LoaderOptions.from_config(d).kwargs())
panel = panel.select(tuple(d["universe"]) or panel.assets)
start, end = backtest_window(panel, cfg)
book = build_book(cfg, panel.assets)
policy = liquidation_policy(cfg)
models = build_models(cfg)
asset_ok = panel.eligible(max([int(cfg["backtest"]["min_history"]), *(m.min_history for m in models)]))
res = {}
for m in models:
    if m.label not in rows:
        continue
    f = apply_rule(m.fit(panel), policy.maintenance_ratio)
    simulate_accounts(f, book, policy, start=start, end=start + 5, asset_ok=asset_ok)  # compile / load caches
    t0 = time.process_time()
    sim = simulate_accounts(f, book, policy, start=start, end=end, asset_ok=asset_ok)
    res["cpu " + m.label] = np.array(time.process_time() - t0)
    res["ev " + m.label] = sim.events
np.savez(out, **res)
'''


def run(tree: str, out: str) -> dict[str, np.ndarray]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    # cwd away from any source tree: ``python -c`` puts the working directory before PYTHONPATH
    subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD + "\nprint(__import__('riskmodels').__file__)",
                    out, "|".join(ROWS)], env=env, check=True, cwd=os.path.dirname(out))
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def same_events(a: np.ndarray, b: np.ndarray) -> tuple[bool, float]:
    """Every field equal except the recorded maintenance, and its largest relative difference."""
    if a.shape != b.shape:
        return False, np.inf
    ok = all(np.array_equal(a[f], b[f], equal_nan=True) for f in a.dtype.names if f != "maintenance")
    x, y = a["maintenance"], b["maintenance"]
    fin = np.isfinite(x) & np.isfinite(y)
    ok &= np.array_equal(np.isfinite(x), np.isfinite(y))
    rel = float(np.max(np.abs(x[fin] - y[fin]) / np.abs(x[fin]), initial=0.0))
    return ok, rel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if "RISKMODELS_DATA" not in os.environ:
        sys.exit("set RISKMODELS_DATA to the price data")
    times: dict[str, dict[str, list[float]]] = {"before": {r: [] for r in ROWS}, "after": {r: [] for r in ROWS}}
    loads: list[float] = []
    last: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, tree in (("before", args.before), ("after", args.after)):
                loads.append(os.getloadavg()[0])
                res = run(tree, os.path.join(tmp, f"{name}{i}.npz"))
                last[name] = res
                for r in ROWS:
                    times[name][r].append(float(res["cpu " + r]))
    print(f"load average (1 min) before each run: {', '.join(f'{x:.2f}' for x in loads)}")
    print(f"{'row':40s} {'before CPU-s':>14s} {'after CPU-s':>14s}  events identical (max rel. MM diff)")
    for r in ROWS:
        ok, rel = same_events(last["before"]["ev " + r], last["after"]["ev " + r])
        b, a = min(times["before"][r]), min(times["after"][r])
        print(f"{r:40s} {b:14.2f} {a:14.2f}  {ok} ({rel:.1e}, {len(last['after']['ev ' + r])} events)")


if __name__ == "__main__":
    main()
