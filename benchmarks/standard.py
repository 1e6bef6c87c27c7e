"""The standard benchmark (issues 7 and 23): riskmodels against the best plain implementation.

Workload: the clean 18-asset universe of the shared data (default config,
``policy="truncate"``), daily bars, evaluation from 2018-01-01 to the last
date, ``--accounts`` (1,000) seeded accounts from the default config's book
(cross-margined multi-asset collateral and perps, 10% isolated), the four
methods with the default config's parameters (``haircut dYdX-like``,
``SPAN grid``, ``HS VaR 99% 2d``, ``GARCH-t VaR 99%``) under the default
liquidation policy (declared ``maintenance_ratio = 1/1.1``), for each: fit,
constant-notional margin path, coverage backtest (IM vs 2-day loss) and the
account simulation with liquidations; then the statistics. The
isolated-margin netting path (``netting``) is not part of the workload.

Configurations, each in its own subprocess (fresh interpreter), each run
``--repeat`` times (median reported):

* ``engine`` serial / parallel: riskmodels end to end as a user runs it
  (load, ``run_models`` with ``n_jobs`` = 1 / 2, statistics tables);
* ``reasonable`` serial / parallel: ``benchmarks/reference/vectorised.py``
  (numpy over accounts, pandas rolling quantile, arch on the same 20-day warm
  refit schedule, no numba; parity-tested in
  ``tests/test_benchmark_reasonable.py``), the four models one after another
  or split over 2 processes (costliest first); the benchmark also checks
  that its liquidation and coverage counts equal riskmodels';
* ``stages`` (once): riskmodels, models one after another in one process,
  every stage timed (wall and CPU) beside its physical bound
  (``benchmarks/bounds.py``, derived in ``benchmarks/README.md``);
* ``scale`` (once, ``--scale`` accounts, 0 = skip): the parallel engine,
  time and peak memory of the process tree;
* ``loop`` (``--loop``, once): the old per-account loop reference of issue 7,
  extrapolated from ``--ref-accounts`` accounts with daily GARCH refits: a
  second column, never the headline.

``--json FILE`` writes ``{"accounts", "total_s", "reasonable_s",
"ratio_vs_reasonable", "stages": {name: {"s", "bound_s"}}, "scale":
{"accounts", "total_s", "peak_gib"}, "machine", "load"}`` (serial figures;
``total_s`` and ``reasonable_s`` are medians), then ``"parallel"`` (the same
on 2 processes), ``"loop_reference"``, ``"targets"`` and the raw runs. The
load average is sampled every 5 s through the whole run; the machine block
has the CPU model, the BLAS (threadpoolctl) and the measured rates.

Targets (checked here, never by unit tests): ``ratio_vs_reasonable >= 10``
at 10,000 accounts (``--accounts 10000``); every stage within 3x of its
bound.

Usage::

    python benchmarks/standard.py --data ../shared/data --json standard.json
    python benchmarks/standard.py --accounts 10000 --scale 0 --json standard-10k.json
    python benchmarks/standard.py --repeat 1 --scale 0 --skip-reasonable   # riskmodels only, quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._harness import LoadSampler, TreeRSS, cpu_seconds, machine, rss_bytes, spawn  # noqa: E402
from benchmarks._standard_doc import STAGES, STANDARD_LABELS, report, summarise  # noqa: E402


def _setup(data: str, accounts: int) -> tuple[Any, Any, dict[str, Any], int, int, float]:
    from riskmodels.backtest.engine import backtest_window, build_book
    from riskmodels.config import load_config
    from riskmodels.data.loaders import load_panel

    cfg = load_config(None, {"book": {"accounts": accounts}, "backtest": {"netting": False}})
    cfg["models"] = [m for m in cfg["models"] if m.get("label") in STANDARD_LABELS]
    if len(cfg["models"]) != 4:
        raise SystemExit(f"the default config lacks one of the standard models {STANDARD_LABELS}")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(data, assets=cfg["data"]["universe"], policy=cfg["data"]["policy"], interval="1d")
    load = time.perf_counter() - t0
    start, end = backtest_window(panel, cfg)
    book = build_book(cfg, panel.assets)
    return panel, book, cfg, start, end, load


# ------------------------------------------------------------------ workers
def worker_stages(data: str, accounts: int) -> dict[str, Any]:
    """riskmodels, models one after another, every stage timed."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from riskmodels.backtest.coverage import coverage_backtest, realised_loss
    from riskmodels.backtest.engine import build_models
    from riskmodels.backtest.mm_rule import apply_rule
    from riskmodels.backtest.report_tables import coverage_table, procyclicality_table
    from riskmodels.backtest.result import BacktestResult, ModelResult
    from riskmodels.backtest.simulation import simulate_accounts
    from riskmodels.config import liquidation_policy
    from riskmodels.margin.base import account_eligibility

    panel, book, cfg, start, end, load = _setup(data, accounts)
    models = build_models(cfg)
    bt = cfg["backtest"]
    need = max([int(bt["min_history"]), *(m.min_history for m in models)])
    asset_ok = panel.eligible(need)
    in_window = np.zeros(panel.n_dates, dtype=bool)
    in_window[start : end + 1] = True
    eligible = account_eligibility(asset_ok, book) & in_window[:, None]
    policy = liquidation_policy(cfg)
    stages = {s: 0.0 for s in STAGES}
    cpu = {s: 0.0 for s in STAGES}
    stages["load"] = load
    memory = {"load": rss_bytes()}
    per_model: dict[str, dict[str, float]] = {}
    results = {}
    t0, c0 = time.perf_counter(), time.process_time()
    loss = realised_loss(panel, book, int(bt["mpor"]))  # shared by the models, as in the engine
    stages["coverage"] += time.perf_counter() - t0
    cpu["coverage"] += time.process_time() - c0
    for m in models:
        tm: dict[str, float] = {}
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore")
            for stage in ("fit", "path", "coverage", "simulation"):
                t0, c0 = time.perf_counter(), time.process_time()
                if stage == "fit":
                    fitted = apply_rule(m.fit(panel), policy.maintenance_ratio)  # as the engine runs it
                elif stage == "path":
                    path = fitted.path(book, eligible).window(start, end)  # as the engine keeps it
                elif stage == "coverage":
                    cov = coverage_backtest(panel, book, path, int(bt["mpor"]), on=bt.get("coverage_on", "initial"),
                                            loss=loss)
                else:
                    sim = simulate_accounts(fitted, book, policy, start=start, end=end, asset_ok=asset_ok)
                tm[stage] = time.perf_counter() - t0
                tm[stage + "_cpu"] = time.process_time() - c0
                stages[stage] += tm[stage]
                cpu[stage] += tm[stage + "_cpu"]
                memory[stage] = rss_bytes()
        per_model[m.label] = tm
        results[m.label] = ModelResult(m, path, cov, sim, book.gross_notional,
                                       {k: v for k, v in tm.items() if not k.endswith("_cpu")})
    t0, c0 = time.perf_counter(), time.process_time()
    result = BacktestResult(panel, book, results, cfg, start, end)
    coverage_table(result)
    procyclicality_table(result)
    result.metrics_frame()
    stages["statistics"] = time.perf_counter() - t0
    cpu["statistics"] = time.process_time() - c0
    memory["statistics"] = rss_bytes()
    return {"kind": "stages", "accounts": accounts, "stages": stages, "cpu": cpu, "per_model": per_model,
            "dims": {"T": panel.n_dates, "Te": end - start + 1, "A": len(panel.assets), "P": book.n_accounts},
            "memory": memory, "peak_rss": rss_bytes(),
            "liquidations": {k: len(r.simulation.liquidations) for k, r in results.items()}}




def worker_loop(data: str, accounts: int, ref_accounts: int, garch_sample: int) -> dict[str, Any]:
    """The plain reference on the first ``ref_accounts`` accounts, extrapolated to ``accounts``."""
    from benchmarks.reference import (
        GarchRef,
        HaircutRef,
        HistoricalRef,
        SpanRef,
        run_model,
        time_daily_refits,
    )
    from riskmodels.config import liquidation_policy

    panel, book, cfg, start, end, load = _setup(data, accounts)
    sub = book.subset(range(min(ref_accounts, book.n_accounts)))
    params = {m["label"]: m.get("params", {}) for m in cfg["models"]}
    hc, sp, hs, ga = (params[k] for k in STANDARD_LABELS)
    refs = {
        STANDARD_LABELS[0]: HaircutRef(haircut=hc["haircut"], imf=hc["imf"], mmf=hc["mmf"]),
        STANDARD_LABELS[1]: SpanRef(quantile=sp["psr_quantile"], horizon=sp["psr_horizon"], lookback=sp["psr_lookback"],
                                    floor=sp["psr_floor"], im_multiplier=sp["im_multiplier"]),
        STANDARD_LABELS[2]: HistoricalRef(confidence=hs["confidence"], horizon=hs["horizon"], window=hs["window"]),
        STANDARD_LABELS[3]: GarchRef(horizon=ga["horizon"], refit_every=ga["refit_every"]),
    }
    if sp.get("recalibration") != "monthly" or ga.get("dist") != "t" or ga.get("vol") != "garch":
        raise SystemExit("the reference implements the default config's SPAN (monthly) and GARCH(1,1)-t only")
    pol = liquidation_policy(cfg)
    policy = {"cushion": pol.cushion, "slippage": pol.slippage, "penalty": pol.penalty, "reentry_days": pol.reentry_days}
    bt = cfg["backtest"]
    factor = accounts / sub.n_accounts
    measured = {s: 0.0 for s in STAGES}
    measured["load"] = load
    per_model = {}
    daily = {}
    for label, ref in refs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = run_model(ref, panel, sub.collateral, sub.positions, sub.isolated, start, end,
                            min_history=int(bt["min_history"]), mpor=int(bt["mpor"]), policy=policy)
        tm = dict(out["timings"])
        if isinstance(ref, GarchRef):
            per_fit, n_daily, n_sampled = time_daily_refits(panel, garch_sample, seed=0)
            daily = {"schedule_fits": ref.n_fits, "schedule_fit_seconds": ref.fit_seconds,
                     "seconds_per_fit": per_fit, "daily_fits": n_daily, "sampled": n_sampled}
            tm["fit_schedule"] = tm["fit"]
            tm["fit"] = tm["fit"] - ref.fit_seconds + per_fit * n_daily
        per_model[label] = tm
        for s in ("fit", "path", "coverage", "simulation", "statistics"):
            measured[s] += tm[s]
    extrap = {s: measured[s] * (factor if s in ("path", "coverage", "simulation", "statistics") else 1.0)
              for s in STAGES}
    return {"kind": "reference", "accounts": accounts, "ref_accounts": sub.n_accounts, "factor": factor,
            "measured": measured, "stages": extrap, "per_model": per_model, "garch_daily_refit": daily,
            "peak_rss": rss_bytes()}


def worker_engine(data: str, accounts: int, n_jobs: int) -> dict[str, Any]:
    """riskmodels end to end: load, run_models in ``n_jobs`` processes, the statistics tables."""
    from riskmodels.backtest.engine import build_models, run_models
    from riskmodels.backtest.report_tables import coverage_table, procyclicality_table
    from riskmodels.config import liquidation_policy

    sampler = TreeRSS()
    t_all, c_all = time.perf_counter(), cpu_seconds()
    panel, book, cfg, start, end, load = _setup(data, accounts)
    bt = cfg["backtest"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_models(panel, book, build_models(cfg), mpor=int(bt["mpor"]), min_history=int(bt["min_history"]),
                            start=start, end=end, policy=liquidation_policy(cfg), config=cfg, netting=False,
                            n_jobs=n_jobs)
    run = time.perf_counter() - t0
    t0 = time.perf_counter()
    coverage_table(result)
    procyclicality_table(result)
    result.metrics_frame()
    stats = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    return {"kind": "engine", "accounts": accounts, "n_jobs": n_jobs, "load": load, "models": run,
            "statistics": stats, "total": total, "cpu": cpu_seconds() - c_all,
            "peak_rss_process": rss_bytes(), "peak_rss": sampler.stop(),
            "liquidations": {k: len(r.simulation.liquidations) for k, r in result.results.items()},
            "coverage": {k: [r.coverage.n_obs, r.coverage.n_exceptions] for k, r in result.results.items()}}


def _reasonable_models(cfg: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.reference.vectorised import VGarch, VHaircut, VHistorical, VSpan

    params = {m["label"]: m.get("params", {}) for m in cfg["models"]}
    hc, sp, hs, ga = (params[k] for k in STANDARD_LABELS)
    if sp.get("recalibration") != "monthly" or ga.get("dist") != "t" or ga.get("vol") != "garch":
        raise SystemExit("the reference implements the default config's SPAN (monthly) and GARCH(1,1)-t only")
    return {
        STANDARD_LABELS[0]: VHaircut(haircut=hc["haircut"], imf=hc["imf"], mmf=hc["mmf"]),
        STANDARD_LABELS[1]: VSpan(quantile=sp["psr_quantile"], horizon=sp["psr_horizon"], lookback=sp["psr_lookback"],
                                  floor=sp["psr_floor"], im_multiplier=sp["im_multiplier"]),
        STANDARD_LABELS[2]: VHistorical(confidence=hs["confidence"], horizon=hs["horizon"], window=hs["window"]),
        STANDARD_LABELS[3]: VGarch(horizon=ga["horizon"], refit_every=ga["refit_every"]),
    }


def _reasonable_one(data: str, accounts: int, labels: list[str]) -> dict[str, Any]:
    """The reasonable reference on ``labels`` (load included), with the statistics it reports."""
    import numpy as np

    from benchmarks.reference.backtest import kupiec, peak_to_trough
    from benchmarks.reference.vsim import run_model
    from riskmodels.backtest.engine import build_models
    from riskmodels.config import liquidation_policy

    t_all, c_all = time.perf_counter(), cpu_seconds()
    panel, book, cfg, start, end, load = _setup(data, accounts)
    bt = cfg["backtest"]
    need = max([int(bt["min_history"]), *(m.min_history for m in build_models(cfg))])
    pol = liquidation_policy(cfg)
    policy = {"cushion": pol.cushion, "slippage": pol.slippage, "penalty": pol.penalty, "reentry_days": pol.reentry_days}
    b = book.align(panel.assets)
    refs = _reasonable_models(cfg)
    out: dict[str, Any] = {"load": load, "per_model": {}, "liquidations": {}, "coverage": {}, "garch_fits": None}
    for label in labels:
        ref = refs[label]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = run_model(ref, panel, b.collateral, b.positions, b.isolated, start, end, need=need,
                            mpor=int(bt["mpor"]), ratio=pol.maintenance_ratio, policy=policy)
        t0, c0 = time.perf_counter(), time.process_time()
        kupiec(res["n_obs"], res["n_exceptions"], 1.0 - float(bt.get("confidence", 0.99)))
        im = res["initial"][start : end + 1]
        peak_to_trough(np.where(np.isfinite(im), im, 0.0).sum(axis=1))
        res["timings"]["statistics"], res["cpu"]["statistics"] = time.perf_counter() - t0, time.process_time() - c0
        out["per_model"][label] = {"s": res["timings"], "cpu_s": res["cpu"]}
        out["liquidations"][label] = int(res["simulation"].events["t"].size)
        out["coverage"][label] = [res["n_obs"], res["n_exceptions"]]
        if hasattr(ref, "n_fits"):
            out["garch_fits"] = ref.n_fits
    out["total"], out["cpu"] = time.perf_counter() - t_all, cpu_seconds() - c_all
    return out


def worker_reasonable(data: str, accounts: int, n_jobs: int) -> dict[str, Any]:
    """The reasonable reference end to end, its models serially or split over ``n_jobs`` processes."""
    t_all, c_all = time.perf_counter(), cpu_seconds()
    if n_jobs <= 1:
        parts = [_reasonable_one(data, accounts, list(STANDARD_LABELS))]
    else:  # costliest first (GARCH, then HS VaR), greedy by the serial cost shares measured at 1,000 accounts
        import multiprocessing as mp

        groups = [[STANDARD_LABELS[3]], [STANDARD_LABELS[2], STANDARD_LABELS[1], STANDARD_LABELS[0]]][:n_jobs]
        with mp.get_context("spawn").Pool(len(groups)) as pool:
            parts = pool.starmap(_reasonable_one, [(data, accounts, g) for g in groups])
    res: dict[str, Any] = {"kind": "reasonable", "accounts": accounts, "n_jobs": n_jobs, "per_model": {},
                           "liquidations": {}, "coverage": {}}
    for p in parts:
        for k in ("per_model", "liquidations", "coverage"):
            res[k].update(p[k])
        if p["garch_fits"] is not None:
            res["garch_fits"] = p["garch_fits"]
    res["total"], res["cpu"] = time.perf_counter() - t_all, cpu_seconds() - c_all
    res["load"] = max(p["load"] for p in parts)
    return res


# ------------------------------------------------------------------- driver
def _repeat(label: str, n: int, args: list[str]) -> list[dict[str, Any]]:
    runs = []
    for i in range(n):
        print(f"{label} run {i + 1}/{n} ...", flush=True)
        runs.append(spawn(Path(__file__).resolve(), args))
    return runs


def _bounds(stages: dict[str, Any] | None, rates: dict[str, float], garch_fits: int | None,
            accounts: int) -> dict[str, Any]:
    from benchmarks.bounds import Workload, stage_bounds

    d = stages["dims"] if stages else {"T": Workload.T, "Te": Workload.Te, "A": Workload.A, "P": accounts}
    w = Workload(T=d["T"], Te=d["Te"], A=d["A"], P=d["P"], **({"n_fits": garch_fits} if garch_fits else {}))
    return {"workload": w.__dict__, "stages": stage_bounds(rates, w)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--json", default="standard-benchmark.json", help="where to write the JSON results")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each end-to-end configuration (median)")
    ap.add_argument("--scale", type=int, default=10000, help="accounts of the scaling run (0 = skip)")
    ap.add_argument("--skip-reasonable", action="store_true", help="time riskmodels only")
    ap.add_argument("--skip-parallel", action="store_true", help="serial configurations only")
    ap.add_argument("--skip-stages", action="store_true", help="no per-stage run (the bounds are still computed)")
    ap.add_argument("--loop", action="store_true", help="also run the old loop reference (second column)")
    ap.add_argument("--ref-accounts", type=int, default=50, help="accounts the loop reference really runs")
    ap.add_argument("--garch-sample", type=int, default=40, help="arch fits timed for the loop's daily refits")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes of the parallel configurations")
    ap.add_argument("--worker", choices=("stages", "engine", "reasonable", "loop"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "stages":
            res = worker_stages(args.data, args.accounts)
        elif args.worker == "engine":
            res = worker_engine(args.data, args.accounts, args.n_jobs)
        elif args.worker == "reasonable":
            res = worker_reasonable(args.data, args.accounts, args.n_jobs)
        else:
            res = worker_loop(args.data, args.accounts, args.ref_accounts, args.garch_sample)
        Path(args.worker_out).write_text(json.dumps(res))
        return 0
    return drive(args)


def drive(args: argparse.Namespace) -> int:
    """Run every configuration, write the JSON, print the summary."""
    from benchmarks.bounds import measure_rates

    load_sampler = LoadSampler()
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_average_at_start']}", flush=True)
    info["rates"] = measure_rates()
    acc = ["--data", args.data, "--accounts", str(args.accounts)]
    stages = None
    if not args.skip_stages:
        print(f"stages @ {args.accounts} accounts ...", flush=True)
        stages = spawn(Path(__file__).resolve(), ["--worker", "stages", *acc])
    runs: dict[str, list[dict[str, Any]]] = {}
    jobs = [1] if args.skip_parallel else [1, args.n_jobs]
    for nj in jobs:
        runs[f"engine_{nj}"] = _repeat(f"riskmodels n_jobs={nj}", args.repeat,
                                       ["--worker", "engine", "--n-jobs", str(nj), *acc])
        if not args.skip_reasonable:
            runs[f"reasonable_{nj}"] = _repeat(f"reasonable reference n_jobs={nj}", args.repeat,
                                               ["--worker", "reasonable", "--n-jobs", str(nj), *acc])
    scale = None
    if args.scale:
        print(f"riskmodels @ {args.scale} accounts, n_jobs={args.n_jobs} ...", flush=True)
        scale = spawn(Path(__file__).resolve(), ["--worker", "engine", "--n-jobs", str(args.n_jobs), "--data",
                                                 args.data, "--accounts", str(args.scale)])
    loop = None
    if args.loop:
        print(f"loop reference on {args.ref_accounts} accounts (extrapolated) ...", flush=True)
        loop = spawn(Path(__file__).resolve(), ["--worker", "loop", *acc, "--ref-accounts", str(args.ref_accounts),
                                                "--garch-sample", str(args.garch_sample)])
    fits = next((r.get("garch_fits") for k, rs in runs.items() if k.startswith("reasonable") for r in rs), None)
    bounds = _bounds(stages, info["rates"], fits, args.accounts)
    doc = summarise(args, info, stages, runs, scale, loop, bounds, load_sampler.stop())
    Path(args.json).write_text(json.dumps(doc, indent=2))
    report(doc, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
