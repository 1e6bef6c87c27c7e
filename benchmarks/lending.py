"""Benchmark: the lending simulation, 10,000 borrowers x 18 assets x the full daily history.

    python benchmarks/lending.py --data ../shared/data [--accounts 10000] [--json lending.json]

Workload: the default config's clean 18-asset universe plus the stablecoin
``USD`` (19 reserves, Aave v3.3 rules, gas $5), the whole daily history
(2014-09-17 .. 2025-02-20), 10,000 seeded borrowers (the documented
generator: entry uniform over the history, mean holding 180 days, 15%
shorts against USD, 30% with two collaterals).

Timed (median of ``--repeat`` runs after a warm-up that compiles numba):
* riskmodels ``simulate`` with no impact, and with the square-root impact law;
* the plain-numpy implementation of the same rules
  (``benchmarks/reference/lending_numpy.py``, vectorised over accounts, up to
  20 liquidation rounds per date), with no impact (its scope).
Wall and process CPU seconds are both reported (on a loaded shared machine
the CPU time is the comparable figure). Parity (no impact): the largest difference of the close health
factors and of the daily deficits between the two. The load average is
printed beside the timings (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference.lending_numpy import simulate_numpy

from riskmodels.cascade.impact import NoImpact, SquareRootImpact
from riskmodels.config import default_config
from riskmodels.data.loaders import load_panel
from riskmodels.lending.generate import BorrowerGenerator
from riskmodels.lending.market import LendingMarket
from riskmodels.lending.simulate import DAY_COLUMNS, market_prices, simulate


def workload(data: str, accounts: int):
    universe = default_config()["data"]["universe"]
    panel = load_panel(data, assets=universe, policy="truncate")
    assets = {"USD": dict(ltv=0.75, lt=0.78, lb=1.05)}
    for a in universe:
        major = a in ("BTC", "ETH")
        assets[a] = dict(ltv=0.75 if major else 0.55, lt=0.80 if major else 0.65, lb=1.05 if major else 1.10)
    market = LendingMarket(assets, gas_usd=5.0)
    mp = market_prices(panel, market.names)
    pos = BorrowerGenerator(accounts=accounts, seed=7).generate(market, mp, 0, panel.n_dates - 1)
    return panel, market, mp, pos


CPU: dict[str, float] = {}


def _median_time(fn, repeat, name=""):
    """Median wall seconds of ``repeat`` runs (and the median CPU seconds of this process in ``CPU[name]``)."""
    ts, cs = [], []
    out = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    CPU[name] = float(np.median(cs))
    return float(np.median(ts)), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", "../shared/data"))
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    panel, market, mp, pos = workload(args.data, args.accounts)
    setup = time.perf_counter() - t0
    T = panel.n_dates
    small = BorrowerGenerator(accounts=50, seed=1).generate(market, mp, 0, T - 1)
    simulate(market, panel, small, NoImpact(), prices=mp)  # compile / load the numba cache
    t_none, r_none = _median_time(lambda: simulate(market, panel, pos, NoImpact(), prices=mp), args.repeat,
                                  "riskmodels_no_impact")
    t_sqrt, r_sqrt = _median_time(lambda: simulate(market, panel, pos, SquareRootImpact(), prices=mp), args.repeat,
                                  "riskmodels_sqrt_impact")
    out = {
        "accounts": args.accounts, "assets": len(market.names), "dates": T,
        "first_date": str(panel.dates[0].date()), "last_date": str(panel.dates[-1].date()),
        "setup_s": setup, "riskmodels_no_impact_s": t_none, "riskmodels_sqrt_impact_s": t_sqrt,
        "liquidations_no_impact": len(r_none.events), "liquidations_sqrt": len(r_sqrt.events),
        "loadavg_before": open("/proc/loadavg").read().split()[:3],
    }
    if not args.skip_reference:
        p = market.arrays()

        def ref():
            return simulate_numpy(p, mp.close, mp.low, mp.high, pos.coll_q, pos.debt_q, pos.entry, pos.exit, 0,
                                  T - 1, gas=market.gas_usd)

        t_ref, (hf_ref, def_ref) = _median_time(ref, max(1, min(args.repeat, 2)), "numpy_reference_no_impact")
        hf = r_none.hf.astype(np.float64)
        both = np.isfinite(hf) & np.isfinite(hf_ref)
        out.update({
            "numpy_reference_no_impact_s": t_ref,
            "speedup_vs_numpy": t_ref / t_none,
            "parity_max_abs_hf": float(np.max(np.abs(hf[both] - hf_ref[both]) / np.maximum(1.0, np.abs(hf_ref[both])))),
            "parity_same_open_cells": bool((np.isnan(hf) == np.isnan(hf_ref)).all()),
            "parity_max_abs_deficit_usd": float(np.max(np.abs(
                r_none.daily[:, :, DAY_COLUMNS.index("deficit_usd")] - def_ref))),
        })
    out["cpu_s"] = CPU  # the process's own CPU time: the figure to read when the shared machine is loaded
    out["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
