"""``riskmodels backtest`` on a large book: the streamed run and the files it writes.

Streamed when ``--chunk-accounts N``, ``--workers N`` (a Dask LocalCluster)
or ``--scheduler ADDR`` (a Dask cluster) is given, when ``[backtest]
chunk_accounts`` is > 0, or automatically for a book of more than
:data:`~riskmodels.backtest.stream.STREAM_ABOVE` accounts. Written to
``--out`` (atomically, with the manifest): ``summary.csv``, ``summary.json``
(with a ``streamed`` block: chunk size, chunks, backend, workers),
``summary.schema.json``, ``comparison.csv``, ``procyclicality.csv``,
``liquidations.csv``, ``concentration.csv``, ``margin_over_time.csv``,
``pareto.png`` and ``garch_fit_log.csv`` when a GARCH row ran. Not written
(they are per-account panels a stream does not keep): ``margin_paths.parquet``,
``coverage.csv`` (per-account Kupiec / Christoffersen), ``netting.csv`` and
``report.html``; stderr says so.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

from riskmodels.errors import UserError


def streamed_chunk(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    """Accounts per chunk of a streamed run, or 0 for the dense run (see the module docstring)."""
    from riskmodels.backtest.stream import chunk_size

    workers = getattr(args, "workers", None)
    scheduler = getattr(args, "scheduler", None)
    chunk = getattr(args, "chunk_accounts", None)
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: a Dask LocalCluster needs at least 1 worker")
    if workers and scheduler:
        raise UserError("--workers starts a local Dask cluster and --scheduler names an existing one: give one")
    if chunk is not None and chunk < 1:
        raise UserError(f"--chunk-accounts {chunk}: chunks need at least 1 account")
    if chunk:
        return int(chunk)
    b = cfg["book"]
    if b.get("source", "generate") == "generate":
        n = int(b["accounts"])
    else:
        from riskmodels.portfolio import Book

        n = Book.read(b["source"]).n_accounts
    return chunk_size(int(cfg["backtest"].get("chunk_accounts", 0)), n, forced=bool(workers or scheduler))


def backtest_streamed(args: argparse.Namespace, cfg: dict[str, Any], panel: Any, choice: Any, bar: Any, chunk: int,
                      t0: float, jsonable: Callable[[Any], Any], command: str) -> int:
    """Run the streamed comparison and write its files (module docstring); returns the exit code."""
    from riskmodels import __version__
    from riskmodels.backtest.metrics import metrics_schema
    from riskmodels.backtest.report_tables import pareto_png
    from riskmodels.backtest.stream import stream_backtest
    from riskmodels.backtest.topn import write_top_concentration
    from riskmodels.outputs import atomic_output
    from riskmodels.report.console import console_table

    if cfg["backtest"].get("netting", True):
        bar.note("streamed run: the netting table (a distribution across accounts per date) is not computed")
    result = stream_backtest(cfg, panel, chunk_accounts=chunk, workers=getattr(args, "workers", None),
                             scheduler=getattr(args, "scheduler", None), progress=bar, note=bar.note)
    elapsed = time.perf_counter() - t0
    comparison = result.comparison()
    pro = result.procyclicality_table()
    summary = result.summary()
    if args.verbose:
        for table in (summary, comparison, pro):
            print(table)
            print()
    else:
        print(console_table(comparison, width=120, title=f"Margin methods compared: {summary.title}"))
        print()
    with atomic_output(args.out, command=command) as out:
        frame = result.metrics_frame()
        rules = {m: r.mm_rule for m, r in result.results.items()}
        frame.assign(mm_rule=[rules[m] for m in frame.index]).to_csv(out / "summary.csv", float_format="%.10g")
        run = {k: v for k, v in result.run.items() if not k.endswith("_s")}  # no timings: reruns are byte-identical
        body = {
            "config": cfg, "data": choice.as_dict(), "data_fingerprint": panel.fingerprint(), "mm_rule": rules,
            "coverage_verdict": {m: v.to_dict() for m, v in result.verdicts().items()},
            "window": result.window_facts(), "streamed": run,
            "metrics": {m: {k: (None if not math.isfinite(v) else float(v)) for k, v in row.items()}
                        for m, row in frame.to_dict(orient="index").items()},
        }
        (out / "summary.json").write_text(json.dumps(jsonable(body), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        columns = {**metrics_schema(), "mm_rule": {"label": "liquidation rule", "unit": "text", "better": "",
                                                   "tags": "rule", "description": "the maintenance rule of the row"}}
        (out / "summary.schema.json").write_text(json.dumps({"columns": columns}, indent=2, sort_keys=True) + "\n",
                                                 encoding="utf-8")
        comparison.to_frame().to_csv(out / "comparison.csv", index=False, float_format="%.10g")
        pro.to_frame().to_csv(out / "procyclicality.csv", float_format="%.10g")
        result.events().to_csv(out / "liquidations.csv", index=False, float_format="%.10g")
        write_top_concentration(result.top_concentration(), out / "concentration.csv")
        result.margin_over_time().to_csv(out / "margin_over_time.csv", float_format="%.10g")
        pareto_png(comparison, out / "pareto.png")
        logs = result.fit_logs()
        if logs is not None:
            logs.to_csv(out / "garch_fit_log.csv", index=False, float_format="%.10g")
    bar.note(f"riskmodels {__version__}: streamed {result.book.n_accounts:,} accounts in {result.run['chunks']} "
             f"chunks of {chunk:,} on {result.run['backend']}; not written (per-account panels): "
             "margin_paths.parquet, coverage.csv, netting.csv, report.html")
    written = ["summary.csv", "summary.json", "summary.schema.json", "comparison.csv", "procyclicality.csv",
               "liquidations.csv", "concentration.csv", "margin_over_time.csv", "pareto.png",
               *(["garch_fit_log.csv"] if logs is not None else []), "manifest.json"]
    print(f"wrote {len(written)} files to {args.out}/ ({elapsed:.1f} s):")
    for name in written:
        print(f"  {args.out}/{name}")
    return 0
