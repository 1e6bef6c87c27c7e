"""The account simulation's two paths on the default workload: numpy loop vs numba kernels (issue 23).

For every row of the default config (real data, 1,000 accounts, the
engine's window and eligibility), the same fitted model is simulated by
:func:`~riskmodels.backtest.simulation_numpy.simulate_numpy` and by
:func:`~riskmodels.backtest.simulation_fast.simulate_fast`, one after the
other in this process (numba and BLAS on one thread); prints CPU seconds of
each and whether the events, open flags, equities and maintenances agree::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/simulation_paths.py --data ../shared/data [LABEL ...]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numba
import numpy as np
from _harness import default_panel  # the script folder is on sys.path (python benchmarks/...)

from riskmodels.backtest.engine import backtest_window, build_book, build_models
from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.backtest.simulation_fast import simulate_fast
from riskmodels.backtest.simulation_numpy import simulate_numpy
from riskmodels.config import default_config, liquidation_policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", "../shared/data"))
    ap.add_argument("labels", nargs="*", help="substrings of the rows to run (default: all)")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    numba.set_num_threads(1)
    cfg = default_config()
    panel = default_panel(a.data, cfg)
    start, end = backtest_window(panel, cfg)
    book = build_book(cfg, panel.assets)
    policy = liquidation_policy(cfg)
    models = build_models(cfg)
    ok = panel.eligible(max([int(cfg["backtest"]["min_history"]), *(m.min_history for m in models)]))
    print(f"load average {os.getloadavg()[0]:.2f}")
    for m in models:
        if a.labels and not any(w in m.label for w in a.labels):
            continue
        fitted = apply_rule(m.fit(panel), policy.maintenance_ratio)
        c0 = time.process_time()
        x = simulate_numpy(fitted, book, policy, start, end, ok)
        c1 = time.process_time()
        y = simulate_fast(fitted, book, policy, start, end, ok)
        c2 = time.process_time()
        same = len(x.events) == len(y.events) and all(
            np.array_equal(x.events[k], y.events[k]) for k in ("account", "t", "trigger"))
        states = (np.array_equal(x.is_open, y.is_open) and np.array_equal(x.equity, y.equity, equal_nan=True)
                  and np.array_equal(x.maintenance, y.maintenance, equal_nan=True))
        print(f"{m.label:38s} numpy {c1 - c0:6.2f} s  kernels {c2 - c1:6.2f} s  events {len(x.events):6d}  "
              f"same events {same}  same daily states {states}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
