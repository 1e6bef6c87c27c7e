"""Time the default ``riskmodels backtest`` against issue 23's targets (15 s warm, 20 s cold, ``--help`` 0.3 s).

Usage::

    python benchmarks/default_run.py --json default-run.json                 # this tree: 3 warm, 2 cold runs
    python benchmarks/default_run.py --base ../base --repeat 3 --cold 2      # alternated with another checkout

Each run is a fresh ``python -m riskmodels.cli backtest --quiet`` in its own
output folder (the README's main command, on whatever data it chooses:
``RISKMODELS_DATA`` or the embedded dataset). *Warm* runs follow one
discarded run that fills numba's cache; each *cold* run gets an empty
``NUMBA_CACHE_DIR``. CPU is summed over the whole process tree (the CLI, the
pool's forkserver and its workers) with ``perf stat -e task-clock`` when
``perf`` is on the PATH; otherwise from ``/proc`` samples of every
descendant every 50 ms (each process's last sample: up to 50 ms short per
process). With ``--base TREE`` every run of this tree is paired with one of
``TREE`` (base first, alternated, so a drift of the machine's speed hits
both), and the two runs' outputs are compared byte for byte (``report.html``
and ``manifest.json`` carry the commit and timings and are left out). The
machine block and the load average sampled through the run go in the JSON:
timings move with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import LoadSampler, machine

ROOT = Path(__file__).resolve().parents[1]
#: issue 23's targets for the default run, seconds on 2 cores
TARGETS = {"warm_s": 15.0, "cold_s": 20.0, "help_s": 0.3}
#: outputs that hold the commit, the command or the timings: not compared between trees
VOLATILE = ("report.html", "manifest.json")


def _tree_cpu(pid: int, stop: Any, every: float = 0.05) -> float:
    """CPU seconds of ``pid`` and its descendants from ``/proc`` samples until ``stop`` is set."""
    tick = os.sysconf("SC_CLK_TCK")
    last: dict[int, float] = {}
    while True:
        parents: dict[int, int] = {}
        stats: dict[int, list[str]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    s = Path(f"/proc/{d}/stat").read_text()
                except OSError:
                    continue
                f = s[s.rindex(")") + 2 :].split()
                parents[int(d)], stats[int(d)] = int(f[1]), f
        tree, frontier = {pid}, [pid]
        while frontier:
            kids = [p for p, pp in parents.items() if pp in frontier and p not in tree]
            tree.update(kids)
            frontier = kids
        for p in tree & stats.keys():
            last[p] = (int(stats[p][11]) + int(stats[p][12])) / tick  # utime + stime
        if stop.wait(every):
            return sum(last.values())


def run_once(tree: Path | None, out: Path, cache: Path | None) -> dict[str, float]:
    """One default backtest into ``out``: ``{"wall_s", "cpu_s"}`` (``tree``: a checkout put first on the path)."""
    import threading

    out = out.resolve()  # the run starts in out.parent: a relative --out would resolve from there
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = str(cache)
    cmd = [sys.executable, "-m", "riskmodels.cli", "backtest", "--quiet", "--out", str(out)]
    perf = shutil.which("perf")
    with tempfile.NamedTemporaryFile(suffix=".perf", delete=False) as fh:
        perf_out = fh.name
    if perf:
        cmd = [perf, "stat", "-e", "task-clock", "-x", ",", "-o", perf_out, *cmd]
    t0 = time.perf_counter()
    # cwd outside every checkout: ``python -m`` puts the working directory first on sys.path, ahead of
    # PYTHONPATH, so run from a repository root the "base" tree would import that root's riskmodels
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         cwd=out.parent)
    stop = threading.Event()
    box: dict[str, float] = {}
    sampler = None
    if not perf:
        sampler = threading.Thread(target=lambda: box.update(cpu=_tree_cpu(p.pid, stop)), daemon=True)
        sampler.start()
    _, err = p.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    if sampler is not None:
        sampler.join()
    if p.returncode != 0:
        raise SystemExit(f"default_run.py: the backtest failed (exit {p.returncode}):\n{err[-2000:]}")
    if perf:
        line = next(ln for ln in Path(perf_out).read_text().splitlines() if "task-clock" in ln)
        box["cpu"] = float(line.split(",")[0]) / 1000.0
    os.unlink(perf_out)
    return {"wall_s": round(wall, 2), "cpu_s": round(box.get("cpu", float("nan")), 2)}


def help_seconds(tree: Path | None, n: int = 5) -> float:
    """Median wall time of ``riskmodels --help`` (the console script's module run)."""
    env = dict(os.environ, **({"PYTHONPATH": str(tree)} if tree is not None else {}))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "riskmodels.cli", "--help"], env=env, stdout=subprocess.DEVNULL,
                       check=True, cwd=tempfile.gettempdir())  # not a checkout (see run_once)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def differing(a: Path, b: Path) -> list[str]:
    """Output files of two runs that differ (or exist in one only), the volatile ones left out."""
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    return [n for n in names if n not in VOLATILE
            and (not (a / n).is_file() or not (b / n).is_file() or (a / n).read_bytes() != (b / n).read_bytes())]


def _median(runs: list[dict[str, float]], key: str) -> float | None:
    return round(statistics.median(r[key] for r in runs), 2) if runs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="warm runs per tree (after one discarded warm-up)")
    ap.add_argument("--cold", type=int, default=2, help="runs per tree with an empty numba cache")
    ap.add_argument("--base", type=Path, help="another checkout to alternate with (its outputs are compared)")
    ap.add_argument("--json", type=Path, help="write the result here (atomically)")
    args = ap.parse_args(argv)
    if args.base is not None and not (args.base / "riskmodels" / "cli.py").is_file():
        ap.error(f"--base {args.base}: no riskmodels/cli.py there; give the root of a riskmodels checkout")
    trees: dict[str, Path | None] = {"new": ROOT}
    if args.base is not None:
        trees = {"base": args.base.resolve(), "new": ROOT}
    doc: dict[str, Any] = {"machine": machine(), "targets": TARGETS,
                           "data": os.environ.get("RISKMODELS_DATA") or "embedded dataset (no RISKMODELS_DATA)",
                           "cpu_source": "perf stat task-clock" if shutil.which("perf") else "/proc samples"}
    load = LoadSampler(every=2.0)
    work = Path(tempfile.mkdtemp(prefix="riskmodels-default-run-"))
    try:
        runs: dict[str, dict[str, list[dict[str, float]]]] = {k: {"warm": [], "cold": []} for k in trees}
        diffs: list[list[str]] = []
        for name, tree in trees.items():  # fills numba's cache for each tree (its own __pycache__)
            run_once(tree, work / f"warmup-{name}", None)
            shutil.rmtree(work / f"warmup-{name}")
        for kind, n in (("warm", args.repeat), ("cold", args.cold)):
            for i in range(n):
                outs = {}
                for name, tree in trees.items():
                    cache = Path(tempfile.mkdtemp(prefix="nb-", dir=work)) if kind == "cold" else None
                    outs[name] = work / f"{kind}-{name}-{i}"
                    r = run_once(tree, outs[name], cache)
                    if cache is not None:
                        shutil.rmtree(cache)
                    r["load"] = round(os.getloadavg()[0], 2)
                    runs[name][kind].append(r)
                    print(f"{kind} {name}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, load {r['load']}",
                          flush=True)
                if "base" in outs:
                    diffs.append(differing(outs["base"], outs["new"]))
                for out in outs.values():  # each run starts from the same disk state (no earlier outputs)
                    shutil.rmtree(out)
        doc["runs"] = runs
        doc["help_s"] = {name: help_seconds(tree) for name, tree in trees.items()}
        doc["median"] = {name: {kind: {"wall_s": _median(r, "wall_s"), "cpu_s": _median(r, "cpu_s")}
                                for kind, r in by.items()} for name, by in runs.items()}
        if args.base is not None:
            doc["outputs_differing"] = sorted({n for d in diffs for n in d})
        new = doc["median"]["new"]
        doc["met"] = {"warm": new["warm"]["wall_s"] is not None and new["warm"]["wall_s"] < TARGETS["warm_s"],
                      "cold": new["cold"]["wall_s"] is not None and new["cold"]["wall_s"] < TARGETS["cold_s"],
                      "help": doc["help_s"]["new"] < TARGETS["help_s"]}
    finally:
        doc["load"] = load.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: doc[k] for k in ("median", "help_s", "met") if k in doc}, indent=2))
    if args.json is not None:
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
