"""Cost of the size terms: the default backtest with and without impact close-out + concentration add-on.

Target (issue 16): with ``[liquidation] closeout = "impact"`` and every model
wrapped in the ``concentration`` add-on (linear law), the default backtest is
at most 20% slower than the default (flat close-out, no add-on). Both runs use
the same config, book, window and processes; each runs ``--repeat`` times in
this process, alternating, and the medians are compared. The load average is
printed beside the times (the machine is shared).

    python benchmarks/size.py --data ../shared/data                 # the default backtest
    python benchmarks/size.py --accounts 200 --models "haircut dYdX-like" "HS VaR 99% 2d" --repeat 1
    python benchmarks/size.py --feedback      # issue 17 item 3: impact + feedback vs the default (target <= 2x)

With ``--feedback`` a third run is timed: impact close-out without feedback, so the
ratio of the feedback run is given against both the default and the same close-out
without the cross-account feedback. The feedback run includes the price-taker
baseline simulation the engine keeps for the with / without comparison
(``ModelResult.baseline_simulation``). CPU time (this process and its worker
processes, ``resource.getrusage``) is printed beside the wall time.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskmodels.backtest.engine import run_backtest  # noqa: E402
from riskmodels.config import default_config, validate_config  # noqa: E402
from riskmodels.data.loaders import load_panel  # noqa: E402


def with_size_terms(cfg: dict, law: str = "linear") -> dict:
    """The same config with impact close-out and every model wrapped in the concentration add-on."""
    out = copy.deepcopy(cfg)
    out["liquidation"]["closeout"] = "impact"
    out["models"] = [
        {"name": "concentration", "label": (m.get("label") or m["name"]) + " +conc",
         "params": {"inner": {"name": m["name"], **m.get("params", {})}, "law": law}}
        for m in cfg["models"]
    ]
    return out


def with_feedback(cfg: dict) -> dict:
    """The same config with impact close-out and endogenous cascades (no add-on)."""
    out = copy.deepcopy(cfg)
    out["liquidation"]["closeout"] = "impact"
    out["liquidation"]["feedback"] = True
    return out


def with_impact(cfg: dict) -> dict:
    """The same config with impact close-out only (the feedback run's close-out, no feedback)."""
    out = copy.deepcopy(cfg)
    out["liquidation"]["closeout"] = "impact"
    return out


def cpu_seconds() -> float:
    """User + system CPU of this process and of its reaped children (the model workers)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--models", nargs="*", help="labels of the default config's models to keep (default: all)")
    ap.add_argument("--start", default=None, help="evaluation start (default: the config's)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--law", default="linear", choices=["linear", "sqrt", "tiers"])
    ap.add_argument("--feedback", action="store_true", help="time impact + feedback instead (target <= 2x)")
    ap.add_argument("--json", help="write the timings here")
    args = ap.parse_args(argv)

    cfg = default_config()
    cfg["book"]["accounts"] = args.accounts
    cfg["backtest"]["n_jobs"] = args.n_jobs
    if args.start:
        cfg["data"]["start"] = args.start
    if args.models:
        cfg["models"] = [m for m in cfg["models"] if m.get("label") in set(args.models)]
        if not cfg["models"]:
            ap.error(f"no model of the default config is labelled {args.models}")
    validate_config(cfg)
    sized = with_feedback(cfg) if args.feedback else with_size_terms(cfg, args.law)
    limit = 2.0 if args.feedback else 1.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(Path(args.data), assets=cfg["data"]["universe"], policy=cfg["data"]["policy"])
    variants = [("default", cfg), ("size terms", sized)]  # "size terms" = the variant timed
    if args.feedback:
        variants.insert(1, ("impact only", with_impact(cfg)))
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    cpu: dict[str, list[float]] = {name: [] for name, _ in variants}
    loads = []
    figures = {}
    for _ in range(args.repeat):
        for name, c in variants:
            loads.append(Path("/proc/loadavg").read_text().split()[0])
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run_backtest(c, panel)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(cpu_seconds() - c0)
            figures[name] = res.metrics_frame()[["mean_im_per_notional", "liquidations_per_account_year",
                                                 "bad_debt_bp_per_year"]].round(6).to_dict(orient="index")
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio = med["size terms"] / med["default"]
    print(f"accounts {args.accounts}, models {len(cfg['models'])}, n_jobs {args.n_jobs}, repeat {args.repeat}")
    for name in times:
        print(f"{name:11s} wall {med[name]:.1f} s  cpu {med_cpu[name]:.1f} s   runs {[round(x, 1) for x in times[name]]}")
    print(f"ratio {ratio:.3f} wall, {med_cpu['size terms'] / med_cpu['default']:.3f} cpu (target <= {limit:.2f}): "
          f"{'met' if ratio <= limit else 'NOT met'}; load averages {loads}")
    if args.feedback:
        print(f"feedback vs impact only: {med['size terms'] / med['impact only']:.3f} wall, "
              f"{med_cpu['size terms'] / med_cpu['impact only']:.3f} cpu")
    for name, fig in figures.items():
        print(name)
        for model, row in fig.items():
            print(f"  {model:32s} " + "  ".join(f"{k} {v:.6g}" for k, v in row.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "cpu": cpu, "median": med, "median_cpu": med_cpu,
                                               "ratio": ratio, "loadavg": loads,
                                               "figures": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
