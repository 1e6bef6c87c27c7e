"""The standard benchmark: the whole comparison, timed against a plain reference.

Workload (issue 7): the clean 18-asset universe of the shared data (default
config, ``policy="truncate"``), daily bars, evaluation from 2018-01-01 to the
last date, ``--accounts`` (1,000) seeded accounts from the default config's
book (cross-margined multi-asset collateral and perps, 10% isolated), the
four methods with the default config's parameters (``haircut dYdX-like``,
``SPAN grid``, ``HS VaR 99% 2d``, ``GARCH-t VaR 99%``), for each: fit,
constant-notional margin path, coverage backtest (IM vs 2-day loss) and the
account simulation with liquidations; then the statistics tables
(``coverage_table``, ``procyclicality_table``). The isolated-margin netting
path (``netting``) is not part of the workload.

Every configuration runs in its own subprocess, which reports wall times
and its peak resident memory: for the engine runs the peak of the summed
RSS of the process and its model workers (sampled every 0.1 s, what the
machine must hold at once), for the others ``ru_maxrss``:

* ``stages``: riskmodels, one model after another in one process (BLAS on 1
  thread, as the engine runs each model), timed per stage;
* ``engine``: riskmodels end to end as a user runs it, ``run_models`` with
  the models in 2 processes, plus the statistics: the headline time on 2
  cores; repeated ``--repeat`` times (median reported), and once at
  ``--scale`` accounts for the scaling and memory targets;
* ``reference``: the plain pandas/arch implementation of
  ``benchmarks/reference`` on the first ``--ref-accounts`` accounts of the
  same book, GARCH refitted on riskmodels' 20-day schedule. Extrapolation
  (stated in the output): per-account stages (path, coverage, simulation,
  statistics) scale linearly with accounts, ``x accounts / ref_accounts``;
  the GARCH fit is charged as a **daily** refit, ``(mean seconds of an arch
  fit on --garch-sample random (asset, day) windows) x (number of asset-days
  to fit)`` plus the reference's filtering and correlation time.

Targets (checked here, never by unit tests): total >= 50x faster than the
reference; under 30 s on 2 cores; ``--scale`` accounts cost at most 10x the
time of 1,000 (time per account); peak memory under 4 GiB at ``--scale``.

Usage::

    python benchmarks/standard.py --data ../shared/data --json standard.json
    python benchmarks/standard.py --skip-reference --repeat 1    # riskmodels only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STANDARD_LABELS = ("haircut dYdX-like", "SPAN grid", "HS VaR 99% 2d", "GARCH-t VaR 99%")
STAGES = ("load", "fit", "path", "coverage", "simulation", "statistics")
GIB = 1024**3


def _rss_bytes() -> int:
    """Peak RSS of this process and its finished children (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) * 1024


class TreeRSS:
    """Peak of the summed RSS of this process and all its descendants, sampled every ``every`` s.

    ``ru_maxrss`` gives each process's own peak; while the model processes
    run, the parent and both workers hold memory at once, so the machine needs
    the sum. Pages shared between processes (libraries) count once per
    process: an upper bound. Linux ``/proc`` only (0 elsewhere).
    """

    def __init__(self, every: float = 0.1) -> None:
        import threading

        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                    parents[int(d)] = int(stat[stat.rindex(")") + 2 :].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, frontier = {os.getpid()}, [os.getpid()]
        while frontier:
            kids = [p for p, pp in parents.items() if pp in frontier and p not in tree]
            tree.update(kids)
            frontier = kids
        total = 0
        for pid in tree:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page
            except (OSError, ValueError, IndexError):
                continue
        return total

    def _run(self) -> None:
        if not Path("/proc/self/statm").exists():
            return
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self._every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


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
    stages["load"] = load
    memory = {"load": _rss_bytes()}
    per_model: dict[str, dict[str, float]] = {}
    results = {}
    t0 = time.perf_counter()
    loss = realised_loss(panel, book, int(bt["mpor"]))  # shared by the models, as in the engine
    stages["coverage"] += time.perf_counter() - t0
    for m in models:
        tm: dict[str, float] = {}
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore")
            for stage in ("fit", "path", "coverage", "simulation"):
                t0 = time.perf_counter()
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
                stages[stage] += tm[stage]
                memory[stage] = _rss_bytes()
        per_model[m.label] = tm
        results[m.label] = ModelResult(m, path, cov, sim, book.gross_notional, tm)
    t0 = time.perf_counter()
    result = BacktestResult(panel, book, results, cfg, start, end)
    coverage_table(result)
    procyclicality_table(result)
    result.metrics_frame()
    stages["statistics"] = time.perf_counter() - t0
    memory["statistics"] = _rss_bytes()
    return {"kind": "stages", "accounts": accounts, "stages": stages, "per_model": per_model,
            "memory": memory, "peak_rss": _rss_bytes(),
            "liquidations": {k: len(r.simulation.liquidations) for k, r in results.items()}}


def worker_engine(data: str, accounts: int, n_jobs: int) -> dict[str, Any]:
    """riskmodels end to end: run_models in ``n_jobs`` processes + statistics."""
    from riskmodels.backtest.engine import build_models, run_models
    from riskmodels.backtest.report_tables import coverage_table, procyclicality_table
    from riskmodels.config import liquidation_policy

    sampler = TreeRSS()
    t_all = time.perf_counter()
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
            "statistics": stats, "total": total, "peak_rss_process": _rss_bytes(), "peak_rss": sampler.stop(),
            "liquidations": {k: len(r.simulation.liquidations) for k, r in result.results.items()}}


def worker_reference(data: str, accounts: int, ref_accounts: int, garch_sample: int) -> dict[str, Any]:
    """The plain reference on the first ``ref_accounts`` accounts, extrapolated to ``accounts``."""
    sys.path.insert(0, str(ROOT))
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
            "peak_rss": _rss_bytes()}


# ------------------------------------------------------------------- driver
def _spawn(args: list[str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    cmd = [sys.executable, str(Path(__file__).resolve()), *args, "--worker-out", out]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    res = json.loads(Path(out).read_text())
    res["subprocess_wall"] = time.perf_counter() - t0
    os.unlink(out)
    return res


def machine() -> dict[str, Any]:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "")
    except OSError:
        model = ""
    import numpy as np

    try:  # the BLAS actually loaded (OpenBLAS/MKL, its kernel and threads): it moves every matrix product
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        blas = []
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas, "platform": platform.platform(), "date": time.strftime("%Y-%m-%d"),
            "load_average_at_start": os.getloadavg()}


class LoadSampler:
    """``[seconds since start, 1-minute load average]`` every ``every`` seconds, on a thread.

    Ratios measured under load are only comparable with the load beside them.
    """

    def __init__(self, every: float = 5.0) -> None:
        import threading

        self.samples: list[list[float]] = []
        self._t0 = time.perf_counter()
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.samples.append([round(time.perf_counter() - self._t0, 1), os.getloadavg()[0]])
            if self._stop.wait(self._every):
                return

    def stop(self) -> list[list[float]]:
        self._stop.set()
        self._thread.join()
        self.samples.append([round(time.perf_counter() - self._t0, 1), os.getloadavg()[0]])
        return self.samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--json", default="standard-benchmark.json", help="where to write the JSON results")
    ap.add_argument("--skip-reference", action="store_true", help="time riskmodels only")
    ap.add_argument("--scale", type=int, default=10000, help="accounts of the scaling run (0 = skip)")
    ap.add_argument("--ref-accounts", type=int, default=50, help="accounts the reference really runs")
    ap.add_argument("--garch-sample", type=int, default=40, help="arch fits timed for the daily-refit extrapolation")
    ap.add_argument("--repeat", type=int, default=3, help="engine runs at --accounts (median reported)")
    ap.add_argument("--n-jobs", type=int, default=2, help="model processes of the engine runs")
    ap.add_argument("--worker", choices=("stages", "engine", "reference"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "stages":
            res = worker_stages(args.data, args.accounts)
        elif args.worker == "engine":
            res = worker_engine(args.data, args.accounts, args.n_jobs)
        else:
            res = worker_reference(args.data, args.accounts, args.ref_accounts, args.garch_sample)
        Path(args.worker_out).write_text(json.dumps(res))
        return 0

    base = ["--data", args.data, "--n-jobs", str(args.n_jobs)]
    info = machine()
    load_sampler = LoadSampler()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_average_at_start']}", flush=True)
    print(f"stages @ {args.accounts} accounts ...", flush=True)
    stages = _spawn(["--worker", "stages", "--accounts", str(args.accounts), *base])
    engines = []
    for i in range(max(1, args.repeat)):
        print(f"engine run {i + 1}/{args.repeat} @ {args.accounts} accounts ...", flush=True)
        engines.append(_spawn(["--worker", "engine", "--accounts", str(args.accounts), *base]))
    engine_total = statistics.median(e["total"] for e in engines)
    scale = None
    if args.scale:
        print(f"engine @ {args.scale} accounts ...", flush=True)
        scale = _spawn(["--worker", "engine", "--accounts", str(args.scale), *base])
    ref = None
    if not args.skip_reference:
        print(f"reference on {args.ref_accounts} accounts (extrapolated to {args.accounts}) ...", flush=True)
        ref = _spawn(["--worker", "reference", "--accounts", str(args.accounts), "--ref-accounts",
                      str(args.ref_accounts), "--garch-sample", str(args.garch_sample), *base])

    rows = []
    st = stages["stages"]
    for s in (*STAGES, "total"):
        rm_t = sum(st.values()) if s == "total" else st[s]
        rf_t = (sum(ref["stages"].values()) if s == "total" else ref["stages"][s]) if ref else None
        rows.append({"stage": s, "riskmodels_s": rm_t, "reference_s": rf_t,
                     "ratio": (rf_t / rm_t) if rf_t and rm_t > 0 else None,
                     "riskmodels_peak_rss_gib": (stages["peak_rss"] if s == "total" else stages["memory"].get(s, 0)) / GIB})
    targets = {}
    if ref:
        ratio = sum(ref["stages"].values()) / engine_total
        targets["ratio_vs_reference >= 50"] = {"value": ratio, "met": ratio >= 50}
    targets["total_2_cores < 30 s"] = {"value": engine_total, "met": engine_total < 30}
    if scale:
        k = scale["total"] / engine_total
        # at most linear in accounts: 10,000 accounts at most 10x the time of 1,000
        targets[f"time({args.scale}) / time({args.accounts}) <= {args.scale / args.accounts:g}"] = {
            "value": k, "met": k <= args.scale / args.accounts}
        targets[f"peak_memory_{args.scale} < 4 GiB"] = {"value": scale["peak_rss"] / GIB,
                                                         "met": scale["peak_rss"] < 4 * GIB}
    # the issue-23 schema keys (``reasonable_s`` and the stage bounds need the plain reference: not yet here)
    doc = {"accounts": args.accounts, "total_s": engine_total,
           "stages": {s: {"s": st[s], "bound_s": None} for s in STAGES},
           "scale": ({"accounts": args.scale, "total_s": scale["total"], "peak_gib": scale["peak_rss"] / GIB}
                     if scale else None),
           "load": load_sampler.stop(),
           "machine": info, "table": rows, "stages_run": stages, "engine_runs": engines,
           "engine_total_median": engine_total, "scale_run": scale, "reference": ref, "targets": targets}
    Path(args.json).write_text(json.dumps(doc, indent=2))

    print()
    print(f"Standard benchmark: 18 assets, {args.accounts} accounts, 4 methods ({info['date']})")
    head = f"{'stage':<12}{'riskmodels s':>14}{'reference s':>14}{'ratio':>9}{'peak RSS GiB':>14}"
    print(head)
    print("-" * len(head))
    for r in rows:
        rf = f"{r['reference_s']:14.1f}" if r["reference_s"] is not None else f"{'-':>14}"
        ra = f"{r['ratio']:9.0f}" if r["ratio"] is not None else f"{'-':>9}"
        print(f"{r['stage']:<12}{r['riskmodels_s']:14.2f}{rf}{ra}{r['riskmodels_peak_rss_gib']:14.2f}")
    print()
    runs = ", ".join(f"{e['total']:.1f}" for e in engines)
    print(f"riskmodels end to end, models in {args.n_jobs} processes: median {engine_total:.1f} s "
          f"of {len(engines)} runs ({runs}); "
          f"peak RSS {max(e['peak_rss'] for e in engines) / GIB:.2f} GiB")
    if scale:
        print(f"@ {args.scale} accounts: {scale['total']:.1f} s ({scale['total'] / args.scale * 1e3:.2f} ms/account vs "
              f"{engine_total / args.accounts * 1e3:.2f} ms/account at {args.accounts}), "
              f"peak RSS {scale['peak_rss'] / GIB:.2f} GiB")
    if ref:
        d = ref["garch_daily_refit"]
        print(f"reference: measured on {ref['ref_accounts']} accounts, per-account stages x {ref['factor']:.0f}; "
              f"GARCH fit = daily refit extrapolated: {d['seconds_per_fit'] * 1e3:.0f} ms/fit (mean of "
              f"{d['sampled']} sampled) x {d['daily_fits']} asset-days")
    for name, t in targets.items():
        print(f"target {name}: {t['value']:.2f} -> {'met' if t['met'] else 'NOT met'}")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
