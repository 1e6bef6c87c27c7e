"""Benchmark: one crash day (19 May 2021), 100,000 accounts, 24 sub-steps.

Run: ``python benchmarks/cascade.py [--data DIR] [--accounts N] [--substeps S]``.
Prints wall time of seeding and of each replay variant, rounds, and peak
resident memory (getrusage ru_maxrss). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings
from pathlib import Path

from riskmodels.cascade.engine import CascadeParams
from riskmodels.cascade.impact import SquareRootImpact
from riskmodels.cascade.population import LeverageMixture, seed_population
from riskmodels.cascade.replay import CRASH_DAYS, replay_day
from riskmodels.data.loaders import load_panel
from riskmodels.margin import get


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--substeps", type=int, default=24)
    ap.add_argument("--day", default="2021-05-19")
    a = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(a.data, assets=["BTC", "ETH", "BNB", "XRP", "ADA", "DOGE", "SOL", "LINK", "LTC"],
                           policy="truncate", start="2019-01-01")
    f = get("fixed_haircut", imf=0.05, mmf=0.03, haircut=0.1).fit(panel)
    t = panel.date_index(a.day)
    day = next((d for d in CRASH_DAYS if d.date == a.day), None)
    # the mixture calibrated by `riskmodels cascade` on 30 calm days (seed 11)
    mix = LeverageMixture(high_long=0.066, high_short=0.060)
    t0 = time.perf_counter()
    pop = seed_population(f, t, n_accounts=a.accounts, mixture=mix, seed=1)
    t1 = time.perf_counter()
    params = CascadeParams(insurance_fund=1e8, slippage=0.002)
    rep = replay_day(f, pop, t, impact=SquareRootImpact(0.7), params=params, n_substeps=a.substeps, day=day)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"day {a.day}: {a.accounts:,} accounts x {panel.n_assets} assets, {a.substeps} sub-steps")
    print(f"seeding {t1 - t0:.2f} s; replay A+B+C (with fixed points) {t2 - t1:.2f} s; peak RSS {peak / 2**20:.0f} MiB")
    for v in "ABC":
        r = getattr(rep, v)
        print(f"  {v}: rounds {r.n_rounds} (max {r.max_rounds_per_substep} per sub-step), "
              f"accounts liquidated {int(r.liquidated.sum()):,}, liq/OI {r.liquidation_rates()['total']:.3f}")


if __name__ == "__main__":
    main()
