"""A whole exchange's book (issue 23 item 3): the streamed run at 100,000 accounts, and its Dask split.

Targets (checked here, never in a unit test): 100,000 accounts x the 18
assets of the default universe x the full daily history on one 2-core
machine in under 10 minutes and 8 GiB (peak of the summed RSS of the run and
its workers); the same run split by accounts over Dask gives the same
numbers, and 2 workers are at least 1.8x faster than 1.

    python benchmarks/scale.py --data ../shared/data --json scale.json
    python benchmarks/scale.py --accounts 20000 --models "haircut dYdX-like" --skip-single --dask-accounts 10000

Each configuration runs in its own subprocess (so its peak memory and CPU
time are its own): ``single`` (the streamed run on ``--n-jobs`` local
processes), ``dask-1`` and ``dask-2`` (a Dask LocalCluster of 1 and 2
worker processes on ``--dask-accounts`` accounts). Reported per run: wall
seconds, CPU seconds (the process and every worker it reaped), peak GiB of
the summed RSS sampled every 0.2 s, the 1-minute load average every 5 s, and
the chunk count; the Dask runs' summaries are compared with each other
(they must be identical). The machine is shared: read every time beside its
load and CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _harness import GIB, LoadSampler, TreeRSS, machine  # noqa: E402


def _config(accounts: int, models: list[str] | None, chunk: int, n_jobs: int, start: str) -> dict[str, Any]:
    from riskmodels.config import default_config

    cfg = default_config()
    cfg["book"]["accounts"] = int(accounts)
    cfg["data"]["start"] = start  # "" = the full history
    cfg["backtest"]["chunk_accounts"] = int(chunk)
    cfg["backtest"]["n_jobs"] = int(n_jobs)
    cfg["backtest"]["netting"] = False
    if models:
        keep = [m for m in cfg["models"] if m["label"] in models]
        if len(keep) != len(models):
            raise SystemExit(f"unknown model labels {models}; the default config has "
                             f"{[m['label'] for m in cfg['models']]}")
        cfg["models"] = keep
    return cfg


def worker(a: argparse.Namespace) -> dict[str, Any]:
    """One configuration, in this (sub)process: run, measure, summarise."""
    warnings.simplefilter("ignore")
    from riskmodels.backtest.stream import stream_backtest
    from riskmodels.data.loaders import load_panel

    cfg = _config(a.accounts, a.models, a.chunk, a.n_jobs, a.start)
    rss, load = TreeRSS(0.2), LoadSampler(5.0)
    t0 = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    panel = load_panel(a.data, assets=cfg["data"]["universe"], policy="truncate")
    res = stream_backtest(cfg, panel, workers=a.workers or None)
    frame = res.metrics_frame()
    verdicts = {k: v.verdict for k, v in res.verdicts().items()}
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = rss.stop()
    samples = load.stop()
    return {
        "accounts": a.accounts, "assets": panel.n_assets, "dates": res.end - res.start + 1,
        "window": [str(res.dates[0].date()), str(res.dates[-1].date())],
        "models": list(res.models), "chunk_accounts": a.chunk, "chunks": res.run["chunks"],
        "backend": res.run["backend"], "total_s": wall, "fit_s": res.run["fit_s"], "chunks_s": res.run["chunks_s"],
        "cpu_s": (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) + kids.ru_utime + kids.ru_stime,
        "peak_gib": peak / GIB, "load": samples,
        "metrics": json.loads(frame.to_json(orient="index", double_precision=15)), "verdicts": verdicts,
        "per_model_s": {k: r.agg.timings for k, r in res.results.items()},
    }


def _spawn(a: argparse.Namespace, **over: Any) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    args = {"accounts": a.accounts, "chunk": a.chunk, "n_jobs": a.n_jobs, "workers": 0, **over}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--data", a.data, "--start", a.start,
           "--accounts", str(args["accounts"]), "--chunk", str(args["chunk"]), "--n-jobs", str(args["n_jobs"]),
           "--workers", str(args["workers"]), "--worker-out", out]
    if a.models:
        cmd += ["--models", *a.models]
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    res = json.loads(Path(out).read_text())
    os.unlink(out)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=5_000)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--start", default="", help='first date of the window ("" = the full history)')
    ap.add_argument("--models", nargs="*", help="labels of the default config's models (default: all nine)")
    ap.add_argument("--dask-accounts", type=int, default=100_000, help="accounts of the Dask 1- vs 2-worker runs")
    ap.add_argument("--dask-chunk", type=int, default=2_500)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker_out:
        Path(a.worker_out).write_text(json.dumps(worker(a)))
        return 0
    report: dict[str, Any] = {"machine": machine()}
    if not a.skip_single:
        s = _spawn(a)
        report["single"] = s
        print(f"single machine: {s['accounts']:,} accounts x {s['assets']} assets x {s['dates']:,} dates, "
              f"{len(s['models'])} models, {s['chunks']} chunks on {s['backend']}: {s['total_s']:.0f} s wall, "
              f"{s['cpu_s']:.0f} s CPU, peak {s['peak_gib']:.2f} GiB, load {_load(s)}")
    if not a.skip_dask:
        runs = {}
        for n in (1, 2):
            runs[n] = _spawn(a, accounts=a.dask_accounts, chunk=a.dask_chunk, n_jobs=1, workers=n)
            r = runs[n]
            print(f"dask {n} worker(s): {r['accounts']:,} accounts, {r['chunks']} chunks: {r['total_s']:.0f} s wall "
                  f"({r['chunks_s']:.0f} s in chunks), {r['cpu_s']:.0f} s CPU, peak {r['peak_gib']:.2f} GiB, "
                  f"load {_load(r)}")
        same = runs[1]["metrics"] == runs[2]["metrics"] and runs[1]["verdicts"] == runs[2]["verdicts"]
        report["dask"] = {"1": runs[1], "2": runs[2], "identical": same,
                          "speedup_total": runs[1]["total_s"] / runs[2]["total_s"],
                          "speedup_chunks": runs[1]["chunks_s"] / runs[2]["chunks_s"]}
        print(f"dask 2 vs 1 worker: {report['dask']['speedup_total']:.2f}x end to end, "
              f"{report['dask']['speedup_chunks']:.2f}x on the chunks; results identical: {same}")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _load(r: dict[str, Any]) -> str:
    xs = [x[1] for x in r["load"]]
    return f"{min(xs):.1f}-{max(xs):.1f} (mean {sum(xs) / len(xs):.1f})" if xs else "n/a"


if __name__ == "__main__":
    sys.exit(main())
