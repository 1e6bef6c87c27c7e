"""APC wrapper cost against its inner model (issue 23, item 4: at most 2x).

Two workloads, each run interleaved (inner, wrapper, inner, wrapper, ...) so
that machine load hits both alike; the ratio is the median of the per-pair
ratios, quoted with CPU seconds (``resource.getrusage``, this process: all
runs are serial, numba and BLAS on one thread) and the load average sampled
before every pair.

* ``--workload sim`` (default): the account simulation alone on a seeded
  synthetic panel (no data needed), as measured since issue 23, with BLAS on
  one thread as the engine runs it.
* ``--workload row``: the whole comparison row the default backtest runs
  (fit, margin path, isolated path, simulation; ``run_models`` with one
  model, ``n_jobs = 1``) on the default config's universe, window and
  1,000-account book; needs ``--data`` (or ``$RISKMODELS_DATA``).

``--json FILE`` writes every pair's times and the medians::

    PYTHONPATH=. python benchmarks/apc.py --accounts 150 --dates 1500 --repeat 3
    PYTHONPATH=. python benchmarks/apc.py --workload row --data $RISKMODELS_DATA --repeat 3 --json apc.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from _harness import default_panel  # the script folder is on sys.path (python benchmarks/...)
from threadpoolctl import threadpool_limits

from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.data.panel import PricePanel
from riskmodels.margin.apc import Buffer25, LookbackFloor, SpeedLimit, StressWeight25
from riskmodels.margin.base import MarginModel
from riskmodels.margin.historical import DEFAULT_STRESS_WINDOWS, HistoricalVaR
from riskmodels.portfolio import Book


def synthetic(T: int, A: int, P: int, seed: int = 0) -> tuple[PricePanel, Book]:
    rng = np.random.default_rng(seed)
    r = 0.03 * rng.standard_normal((T, A)) * np.where(np.arange(T)[:, None] % 400 < 60, 2.5, 1.0)
    r[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    opn = np.vstack([close[:1], close[:-1]])
    dates = pd.date_range("2015-01-01", periods=T, freq="D")
    pan = PricePanel(dates, tuple(f"A{j}" for j in range(A)), opn, np.maximum(opn, close) * 1.02,
                     np.minimum(opn, close) * 0.98, close, np.ones_like(close))
    coll = np.abs(rng.normal(1e4, 5e3, (P, A))) * (rng.random((P, A)) < 0.5)
    pos = rng.normal(0.0, 2e4, (P, A)) * (rng.random((P, A)) < 0.5)
    return pan, Book(pan.assets, coll, pos)


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float, dict[str, float]]:
    """Wall and CPU seconds of ``fn()``, and the stage timings of a backtest row (wall, s)."""
    w, c = time.perf_counter(), _cpu()
    res = fn()
    wall, cpu = time.perf_counter() - w, _cpu() - c
    results = getattr(res, "results", None)
    stages = dict(next(iter(results.values())).timings) if results else {}
    return wall, cpu, stages


def sim_runner(a: argparse.Namespace) -> tuple[Callable[[MarginModel], Callable[[], object]], dict]:
    pan, book = synthetic(a.dates, a.assets, a.accounts)

    def runner(model: MarginModel) -> Callable[[], object]:
        def run() -> object:
            with threadpool_limits(1, user_api="blas"):  # as the engine runs every model
                return simulate_accounts(model.fit(pan), book, LiquidationPolicy(), start=500)

        return run

    return runner, {"workload": "sim", "accounts": a.accounts, "assets": a.assets, "dates": a.dates}


def row_runner(a: argparse.Namespace) -> tuple[Callable[[MarginModel], Callable[[], object]], dict]:
    from riskmodels.backtest.engine import backtest_window, build_book, run_models
    from riskmodels.config import default_config, liquidation_policy

    cfg = default_config()
    if a.accounts_row:
        cfg["book"]["accounts"] = a.accounts_row
    panel = default_panel(a.data, cfg)
    start, end = backtest_window(panel, cfg)
    book = build_book(cfg, panel.assets)
    bt = cfg["backtest"]

    def runner(model: MarginModel) -> Callable[[], object]:
        return lambda: run_models(panel, book, [model], mpor=int(bt["mpor"]), min_history=int(bt["min_history"]),
                                  start=start, end=end, policy=liquidation_policy(cfg), config=cfg,
                                  netting=bool(bt.get("netting", True)), n_jobs=1)

    return runner, {"workload": "row", "accounts": book.n_accounts, "assets": panel.n_assets,
                    "dates": end - start + 1, "panel_dates": panel.n_dates}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", choices=("sim", "row"), default="sim")
    ap.add_argument("--accounts", type=int, default=150, help="sim: accounts")
    ap.add_argument("--accounts-row", type=int, default=0, help="row: accounts (default: the config's 1,000)")
    ap.add_argument("--assets", type=int, default=6)
    ap.add_argument("--dates", type=int, default=1500)
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", ""))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="wrapper names to run (default: all)")
    ap.add_argument("--inner", nargs="*", help="inner models to run: HS, FHS (default: both)")
    ap.add_argument("--json", help="write the measurements here")
    a = ap.parse_args()
    hs = HistoricalVaR(confidence=0.99, horizon=2, window=500, label="HS VaR 99% 2d")
    fhs = HistoricalVaR(confidence=0.99, horizon=2, window=500, method="fhs", label="FHS VaR 99% 2d")
    if a.workload == "row":
        runner, meta = row_runner(a)
        windows = DEFAULT_STRESS_WINDOWS
    else:
        runner, meta = sim_runner(a)
        windows = (("2015-03-01", "2015-05-01"),)
    pairs = [
        ("HS", hs, Buffer25(hs)),
        ("FHS", fhs, Buffer25(fhs)),
        ("HS", hs, SpeedLimit(hs)),
        ("FHS", fhs, SpeedLimit(fhs)),
        ("HS", hs, StressWeight25(hs, stress_windows=windows)),
        ("FHS", fhs, StressWeight25(fhs, stress_windows=windows)),
        ("HS", hs, LookbackFloor(hs)),
    ]
    pairs = [p for p in pairs if (not a.only or p[2].name in a.only) and (not a.inner or p[0] in a.inner)]
    # compile / load every kernel (numba cache) once before timing: the first call of a parallel kernel
    # in a process costs seconds, which is the cold-cache cost, not the model's
    for m in {id(x): x for p in pairs for x in p[1:]}.values():
        timed(runner(m))
    meta = {**meta, "cpu": cpu_model(), "cores": os.cpu_count(), "load_before": list(os.getloadavg())}
    print(meta)
    out: dict = {"meta": meta, "pairs": []}
    for inner_name, inner, wrap in pairs:
        rows = []
        for _ in range(a.repeat):
            load = os.getloadavg()[0]
            wi, ci, si = timed(runner(inner))
            ww, cw, sw = timed(runner(wrap))
            rows.append({"inner_s": wi, "inner_cpu_s": ci, "wrapper_s": ww, "wrapper_cpu_s": cw, "load1": load,
                         "inner_stages_s": si, "wrapper_stages_s": sw})
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0] if not k.endswith("stages_s")}
        ratio = float(np.median([r["wrapper_s"] / r["inner_s"] for r in rows]))
        ratio_cpu = float(np.median([r["wrapper_cpu_s"] / r["inner_cpu_s"] for r in rows]))
        out["pairs"].append({"wrapper": wrap.name, "inner": inner_name, "runs": rows, "median": med,
                             "ratio": ratio, "ratio_cpu": ratio_cpu})
        print(f"{wrap.name:>18s} around {inner_name:<4s} inner {med['inner_s']:7.2f} s ({med['inner_cpu_s']:6.2f} CPU)  "
              f"wrapper {med['wrapper_s']:7.2f} s ({med['wrapper_cpu_s']:6.2f} CPU)  ratio {ratio:5.2f} "
              f"(CPU {ratio_cpu:5.2f})  load {med['load1']:.1f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
