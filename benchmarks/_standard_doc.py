"""The standard benchmark's JSON document (issue 23 schema) and its printed summary."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from benchmarks._harness import GIB

STANDARD_LABELS = ("haircut dYdX-like", "SPAN grid", "HS VaR 99% 2d", "GARCH-t VaR 99%")
STAGES = ("load", "fit", "path", "coverage", "simulation", "statistics")
BOUND_STAGES = ("fit", "path", "coverage", "simulation", "statistics")


def _median(runs: list[dict[str, Any]], key: str = "total") -> float:
    return float(statistics.median(r[key] for r in runs))


def _parity(engine: dict[str, Any], reasonable: dict[str, Any]) -> dict[str, bool]:
    return {k: engine["liquidations"].get(k) == reasonable["liquidations"].get(k)
            and list(engine["coverage"].get(k, [])) == list(reasonable["coverage"].get(k, [])) for k in STANDARD_LABELS}


def _config(runs: dict[str, list[dict[str, Any]]], nj: int) -> dict[str, Any] | None:
    eng = runs.get(f"engine_{nj}")
    if not eng:
        return None
    rea = runs.get(f"reasonable_{nj}")
    total = _median(eng)
    out: dict[str, Any] = {"n_jobs": nj, "total_s": total, "total_cpu_s": _median(eng, "cpu"),
                           "runs_s": [r["total"] for r in eng]}
    if rea:
        rs = _median(rea)
        out.update({"reasonable_s": rs, "reasonable_cpu_s": _median(rea, "cpu"), "ratio_vs_reasonable": rs / total,
                    "reasonable_runs_s": [r["total"] for r in rea], "parity": _parity(eng[0], rea[0])})
    return out


def _nulls(o: Any) -> Any:
    """NaN (a stage not measured) as JSON null: strict parsers reject NaN tokens."""
    if isinstance(o, dict):
        return {k: _nulls(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_nulls(v) for v in o]
    return None if isinstance(o, float) and o != o else o


def summarise(args: argparse.Namespace, info: dict[str, Any], stages: dict[str, Any] | None, runs: dict[str, list[Any]],
              scale: dict[str, Any] | None, loop: dict[str, Any] | None, bounds: dict[str, Any],
              load: list[list[float]]) -> dict[str, Any]:
    """The issue-23 document: the serial headline keys first, then parallel, loop, targets, raw runs."""
    serial = _config(runs, 1) or {}
    par = _config(runs, args.n_jobs) if not args.skip_parallel else None
    bst = bounds["stages"]
    if stages is None:  # --skip-stages: the bounds alone
        nan = float("nan")
        stages = {"stages": dict.fromkeys(STAGES, nan), "cpu": dict.fromkeys(STAGES, nan), "per_model": {},
                  "liquidations": {}}
    stage_doc = {s: {"s": stages["stages"][s], "bound_s": bst[s]["bound_s"] if s in bst else None}
                 for s in STAGES}
    ratio_rm = serial.get("ratio_vs_reasonable")
    targets: dict[str, Any] = {}
    if ratio_rm is not None:
        targets["ratio_vs_reasonable >= 10 (serial)"] = {"value": ratio_rm, "met": ratio_rm >= 10,
                                                         "accounts": args.accounts}
    if par and par.get("ratio_vs_reasonable") is not None:
        targets[f"ratio_vs_reasonable >= 10 ({args.n_jobs} processes)"] = {
            "value": par["ratio_vs_reasonable"], "met": par["ratio_vs_reasonable"] >= 10, "accounts": args.accounts}
    for s in BOUND_STAGES:
        r = stages["stages"][s] / bst[s]["bound_s"] if bst[s]["bound_s"] else None
        rc = stages["cpu"][s] / bst[s]["bound_s"] if bst[s]["bound_s"] else None
        targets[f"{s} within 3x of its bound"] = {"value": r, "value_cpu": rc, "met": r is not None and r <= 3}
    targets = {k: v for k, v in targets.items() if v["value"] == v["value"]}  # NaN: stage not measured
    loop_doc = None
    if loop:
        lt = sum(loop["stages"].values())
        loop_doc = {"total_s": lt, "ratio_vs_loop": lt / serial["total_s"] if serial else None,
                    "stages": loop["stages"], "note": "per-account loops, extrapolated from "
                    f"{loop['ref_accounts']} accounts, GARCH refitted daily; the loop reference keeps every "
                    "model's own MM (no declared rule): a second column, never the headline", "run": loop}
    return _nulls({
        "accounts": args.accounts,
        "total_s": serial.get("total_s"),
        "reasonable_s": serial.get("reasonable_s"),
        "ratio_vs_reasonable": ratio_rm,
        "stages": stage_doc,
        "scale": ({"accounts": scale["accounts"], "total_s": scale["total"], "peak_gib": scale["peak_rss"] / GIB,
                   "n_jobs": scale["n_jobs"], "cpu_s": scale["cpu"]} if scale else None),
        "machine": info,
        "load": load,
        "serial": serial,
        "parallel": par,
        "loop_reference": loop_doc,
        "stages_detail": {"cpu_s": stages["cpu"], "per_model": stages["per_model"], "bounds": bounds,
                          "liquidations": stages["liquidations"]},
        "targets": targets,
        "repeat": args.repeat,
        "runs": runs,
    })


def report(doc: dict[str, Any], path: str) -> None:
    m = doc["machine"]
    r = m["rates"]
    print()
    print(f"Standard benchmark: 18 assets, {doc['accounts']} accounts, 4 methods ({m['date']}, {m['cpu']}, "
          f"{m['cores']} cores; load {min(x[1] for x in doc['load']):.1f}-{max(x[1] for x in doc['load']):.1f})")
    print(f"rates: F {r['F_flops'] / 1e9:.1f} GFLOP/s, E {r['E_ops'] / 1e9:.2f} Gop/s, B {r['B_bytes'] / 1e9:.1f} GB/s, "
          f"L {r['L_step_s'] * 1e9:.2f} ns, X {r['X_logs'] / 1e9:.2f} Glog/s")
    print(f"{'stage':<12}{'wall s':>9}{'CPU s':>9}{'bound s':>9}{'wall/bound':>12}")
    for s, v in doc["stages"].items():
        b = v["bound_s"]
        cpu = doc["stages_detail"]["cpu_s"].get(s, float("nan"))
        if v["s"] is None:
            print(f"{s:<12}{'-':>9}{'-':>9}" + (f"{b:9.3f}" if b else f"{'-':>9}"))
            continue
        ratio = f"{v['s'] / b:12.1f}" if b else f"{'-':>12}"
        print(f"{s:<12}{v['s']:9.2f}{cpu:9.2f}" + (f"{b:9.3f}" if b else f"{'-':>9}") + ratio)
    for name in ("serial", "parallel"):
        c = doc.get(name)
        if not c:
            continue
        line = f"{name} (n_jobs={c['n_jobs']}): riskmodels {c['total_s']:.1f} s (CPU {c['total_cpu_s']:.1f})"
        if "reasonable_s" in c:
            line += (f", reasonable {c['reasonable_s']:.1f} s (CPU {c['reasonable_cpu_s']:.1f}), ratio "
                     f"{c['ratio_vs_reasonable']:.2f}x, same liquidations and coverage counts: "
                     f"{all(c['parity'].values())}")
        print(line)
    if doc["scale"]:
        s = doc["scale"]
        print(f"@ {s['accounts']} accounts: {s['total_s']:.1f} s, peak {s['peak_gib']:.2f} GiB")
    if doc["loop_reference"]:
        lr = doc["loop_reference"]
        print(f"loop reference (second column): {lr['total_s']:.0f} s, {lr['ratio_vs_loop']:.0f}x")
    for name, t in doc["targets"].items():
        v = "-" if t["value"] is None else f"{t['value']:.2f}"
        print(f"target {name}: {v} -> {'met' if t['met'] else 'NOT met'}")
    print(f"JSON: {path}")
