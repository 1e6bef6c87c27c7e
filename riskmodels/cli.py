"""The ``riskmodels`` command line.

Sub-commands: ``backtest`` (the main job), ``data validate``, ``data fetch``,
``models`` (registered margin methods), ``config`` (print the default config).
Progress is printed here, on stderr; the library itself never prints.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from riskmodels import __version__

# sub-commands whose parser lives in their own module: imported only when that
# sub-command is run (``riskmodels --help`` must not import numpy, pandas, scipy);
# the help line is repeated here for the top-level listing (tests/test_cli_lazy.py
# checks it against the module's own)
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "cascade": ("riskmodels.cascade.cli", "add_cascade_parser",
                "liquidation cascades with price impact on a real crash day"),
    "report": ("riskmodels.report.cli", "add_report_parser",
               "backtest and write the governance report (HTML + Markdown)"),
    "calibrate": ("riskmodels.calibrate", "add_calibrate_parser",
                  "least-capital parameter that meets a coverage/liquidation target"),
    "sweep": ("riskmodels.sweep", "add_sweep_parser",
              "run a declared grid of backtests (resumable; local processes or Dask)"),
    "stress": ("riskmodels.stress.cli", "add_stress_parser",
               "stress scenarios, Cover-1 / Cover-2 and reverse stress on one date"),
}


def _lazy_adder(name: str) -> Any:
    import importlib

    module, func, _ = LAZY_COMMANDS[name]
    return getattr(importlib.import_module(module), func)


def _command_of(argv: list[str] | None) -> str | None:
    """The sub-command named on the command line (first token that is not an option)."""
    for tok in sys.argv[1:] if argv is None else argv:
        if not tok.startswith("-"):
            return tok
    return None


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the terminal as one line each: the message names asset, dates and remedy."""
    return f"warning [{category.__name__}]: {message}\n"


class ProgressBar:
    """A one-line progress bar on stderr when it is a terminal (silent when ``quiet`` or redirected)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def __call__(self, what: str, i: int, n: int) -> None:
        if self.quiet or not self.tty:  # a bar only on a terminal; logs and pipes get the result alone
            return
        width = 24
        done = int(width * i / max(n, 1))
        bar = "#" * done + "." * (width - done)
        msg = f"[{bar}] {i}/{n} {what}  ({time.perf_counter() - self.t0:5.1f} s)"
        sys.stderr.write("\r" + msg[:100].ljust(100))
        if i >= n:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def note(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


def _jsonable(obj: Any) -> Any:
    """``obj`` with NaN / inf floats as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, list | tuple | dict | str):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _data_choice(args: argparse.Namespace, cfg: dict[str, Any]):  # -> DataChoice
    from riskmodels.data.resolve import choose_data

    return choose_data(args.data, cfg["data"].get("dir") or None,
                       interval=cfg["data"].get("interval", "1d"))


def _data_dir(args: argparse.Namespace, cfg: dict[str, Any], bar: ProgressBar) -> Path:
    """The chosen price folder (see :func:`_data_choice`), named on stderr."""
    choice = _data_choice(args, cfg)
    bar.note(f"riskmodels {__version__}: {choice.describe()}")
    return choice.path


def _backtest_command(args: argparse.Namespace) -> str:
    return "riskmodels backtest" + (f" --config {args.config}" if args.config else "")


#: priced cells up to which ``margin_paths.parquet`` is built in memory in a thread (~3 bytes a cell)
BACKGROUND_PATH_CELLS = 30_000_000


def _margin_paths_parquet(result: Any) -> memoryview:
    """``margin_paths.parquet`` (zstd) as bytes: every model's margin path, one row per priced cell.

    Written from the path arrays as Arrow (:mod:`riskmodels.backtest.paths_parquet`): what
    ``pd.read_parquet`` gives equals ``result.margin_paths()``.
    """
    from riskmodels.backtest.paths_parquet import margin_paths_parquet

    return margin_paths_parquet(result)


def _margin_paths_future(result: Any) -> Any:
    """A zero-argument function returning :func:`_margin_paths_parquet` (it re-raises its error).

    The margin-path table of the default backtest (18 million rows) takes
    ~1.4 s of CPU to build and compress, in numpy and pyarrow, which
    release the GIL: in a worker thread it overlaps the statistics and tables
    the main thread computes meanwhile (the file's bytes are the same). Above
    :data:`BACKGROUND_PATH_CELLS` priced cells (~90 MB of parquet held in
    memory) it is built when written, in this thread, as before.
    """
    from concurrent.futures import ThreadPoolExecutor

    cells = sum(int(r.path.eligible.sum()) for r in result.results.values())
    if cells > BACKGROUND_PATH_CELLS:
        return lambda: _margin_paths_parquet(result)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskmodels-output")
    future = pool.submit(_margin_paths_parquet, result)
    pool.shutdown(wait=False)  # the thread ends when its one task is done
    return future.result


def cmd_backtest(args: argparse.Namespace) -> int:
    from riskmodels.backtest.pool_start import prestart

    pooled = prestart(args)  # the model pool's forkserver imports the engine while this process does (pool_start.py)
    from riskmodels.backtest.engine import build_models, run_backtest
    from riskmodels.backtest.report_tables import (
        comparison_summary,
        coverage_table,
        netting_table,
        pareto_png,
        precompute_row,
        procyclicality_table,
    )
    from riskmodels.config import load_config
    from riskmodels.data.loaders import load_panel
    from riskmodels.outputs import atomic_output, check_target
    from riskmodels.report.html import write_summary_html
    from riskmodels.workers import tune_allocator

    tune_allocator()  # this process exits when the run ends: freed memory is kept for reuse (workers.py)
    overrides: dict[str, Any] = {}
    if args.accounts:
        overrides.setdefault("book", {})["accounts"] = args.accounts
    if args.start:
        overrides.setdefault("data", {})["start"] = args.start
    out = check_target(args.out)  # an existing file or a foreign folder fails before any work
    cfg = load_config(args.config, overrides)
    from riskmodels.lending.config import is_lending

    if is_lending(cfg):
        from riskmodels.lending.cli import backtest_lending

        return backtest_lending(args, cfg, ProgressBar(args.quiet), _data_dir)
    build_models(cfg)  # an unknown model or bad parameter fails before any data is read
    from riskmodels.data.options import LoaderOptions

    loader_options = LoaderOptions.from_config(cfg["data"]).kwargs()  # checked before any work
    bar = ProgressBar(args.quiet)
    choice = _data_choice(args, cfg)
    data_dir = choice.path
    bar.note(f"riskmodels {__version__}: {choice.describe()}")
    t0 = time.perf_counter()
    panel = load_panel(
        data_dir,
        assets=cfg["data"]["universe"] or None,
        policy=cfg["data"].get("policy", "error"),
        interval=cfg["data"].get("interval", "1d"),
        end=cfg["data"].get("end") or None,  # quality policies decide on data up to the window's end only
        **loader_options,
    )
    from riskmodels.backtest.stream_cli import backtest_streamed, streamed_chunk

    chunk = streamed_chunk(args, cfg)  # a large book, --chunk-accounts, --workers or --scheduler: streamed
    if chunk:
        return backtest_streamed(args, cfg, panel, choice, bar, chunk, t0, _jsonable, _backtest_command(args))
    from riskmodels.backtest.pool_start import ImportOnFirstCall

    # the tail's imports (matplotlib, ...) in a thread once the models run (pool_start.py); with the pool's
    # server started above, from now: this process then waits for the server to finish its imports
    tail = ImportOnFirstCall(bar)
    if pooled:
        tail.start()
    # the rows' netting and procyclicality parts as each row arrives (report_tables.precompute_row)
    result = run_backtest(cfg, panel, progress=tail, on_result=precompute_row)
    from riskmodels.backtest.feedback_report import comparison_table, feedback_pair

    fb = feedback_pair(result, progress=bar)  # None unless [liquidation] feedback = true (issue 17)
    fb_table = comparison_table(fb) if fb is not None else None
    elapsed = time.perf_counter() - t0
    paths_parquet = _margin_paths_future(result)  # built while the tables below are computed
    summary = result.summary()
    cov = coverage_table(result)
    pro = procyclicality_table(result)
    comparison = comparison_summary(result, cov, pro)
    netting = netting_table(result)
    from riskmodels.report.console import console_table

    if args.verbose:
        for table in (summary, comparison, cov, pro, netting):
            if table is not None:
                print(table)
                print()
    else:
        print(console_table(comparison, width=120, title=f"Margin methods compared: {summary.title}"))
        print()
    if fb_table is not None:
        print(fb_table)
        print()
    with atomic_output(out, command=_backtest_command(args)) as out:
        frame = result.metrics_frame()
        rules = {m: r.mm_rule for m, r in result.results.items()}
        verdicts = {m: v.to_dict() for m, v in result.verdicts().items()}
        vol_source = getattr(result, "vol_source", None)  # books with options: "proxy: ..." or "file: ..."
        extra_cols = {} if vol_source is None else {"vol_source": vol_source}
        frame.assign(mm_rule=[rules[m] for m in frame.index], **extra_cols).to_csv(out / "summary.csv",
                                                                                  float_format="%.10g")
        (out / "summary.json").write_text(
            json.dumps(
                _jsonable({
                    "config": cfg,
                    "data": choice.as_dict(),
                    "data_fingerprint": panel.fingerprint(),
                    "mm_rule": rules,
                    "coverage_verdict": verdicts,
                    "window": result.window_facts(),
                    **extra_cols,
                    **({"feedback": fb.comparison.to_dict(orient="records")} if fb is not None else {}),
                    "metrics": {
                        m: {k: (None if not math.isfinite(v) else float(v)) for k, v in row.items()}
                        for m, row in frame.to_dict(orient="index").items()
                    },
                }),
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        from riskmodels.backtest.metrics import metrics_schema

        columns = {**metrics_schema(), "mm_rule": {
            "label": "liquidation rule", "unit": "text", "better": "", "tags": "rule",
            "description": "the maintenance rule the row ran under: MM = ratio x IM (declared, "
                           "[liquidation] maintenance_ratio) or the method's own MMF/IMF"}}
        if vol_source is not None:
            columns["vol_source"] = {"label": "implied-vol source", "unit": "text", "better": "", "tags": "options",
                                     "description": "where the option marks' implied vols come from: "
                                                    "'proxy: ...' (from prices) or 'file: ...'"}
        (out / "summary.schema.json").write_text(json.dumps({"columns": columns}, indent=2, sort_keys=True)
                                                 + "\n", encoding="utf-8")
        logs = result.fit_logs()
        if logs is not None:
            logs.to_csv(out / "garch_fit_log.csv", index=False, float_format="%.10g")
        cov.to_frame().to_csv(out / "coverage.csv", float_format="%.10g")
        comparison.to_frame().to_csv(out / "comparison.csv", index=False, float_format="%.10g")
        pareto_png(comparison, out / "pareto.png")
        if netting is not None:
            netting.to_frame().to_csv(out / "netting.csv", index=False, float_format="%.10g")
        pro.to_frame().to_csv(out / "procyclicality.csv", float_format="%.10g")
        (out / "margin_paths.parquet").write_bytes(paths_parquet())
        from riskmodels.backtest.report_tables import events_csv_text

        # pandas' bytes (riskmodels.csv_fast, ~6x faster), the rows' parts formatted as they arrived
        (out / "liquidations.csv").write_text(events_csv_text(result), encoding="utf-8", newline="")
        fb_files = fb.write(out) if fb is not None else []
        from riskmodels.backtest.topn import top_concentration, write_top_concentration

        write_top_concentration(top_concentration(result), out / "concentration.csv")
        from riskmodels.backtest.options_path import instruments_frame

        instruments = instruments_frame(result)  # books with options: per instrument type (spot/perp/option)
        instruments_table = None
        if instruments is not None:
            from riskmodels.backtest.options_path import InstrumentsTable

            instruments.to_csv(out / "instruments.csv", index=False, float_format="%.10g")
            instruments_table = InstrumentsTable(instruments)
        from riskmodels.config import default_config_text

        config_text = Path(args.config).read_text() if args.config else default_config_text()
        provenance = {
            "riskmodels": __version__,
            "commit": _git_commit(),
            "data_dir": str(data_dir),
            "dataset": choice.label(),
            "data_fingerprint": panel.fingerprint(),
            "files_sha256": dict(sorted(panel.sources.items())),
            "seed": cfg["book"]["seed"],
            "command": _backtest_command(args),
        }
        write_summary_html(
            result,
            out / "report.html",
            extra_tables=[t for t in (comparison, fb_table, cov, pro, netting, instruments_table) if t is not None],
            images={"Pareto: capital vs liquidations": out / "pareto.png"},
            provenance=provenance,
            config_text=config_text,
        )
        stress_files = ""
        if cfg.get("stress", {}).get("enabled"):
            from riskmodels.stress import StressConfig, backtest_stress

            backtest_stress(result, StressConfig.from_dict(cfg["stress"])).write(out / "stress")
            stress_files = ", stress/"
    out = Path(args.out)  # the staging folder is now in place here
    if args.verbose:
        for name, r in result.results.items():
            bar.note(f"  {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items()))
    written = ["summary.csv", "summary.json", "summary.schema.json", "comparison.csv", "coverage.csv",
               "procyclicality.csv", *(["netting.csv"] if netting is not None else []), "margin_paths.parquet",
               "liquidations.csv", "concentration.csv", *(["garch_fit_log.csv"] if logs is not None else []),
               *(["instruments.csv"] if instruments is not None else []),
               *fb_files,
               "pareto.png", "report.html", *(["stress/"] if stress_files else []), "manifest.json"]
    print(f"wrote {len(written)} files to {out}/ ({elapsed:.1f} s):")
    for name in written:
        print(f"  {out / name}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from riskmodels.data.validate_cli import run_validate

    return run_validate(args)


def cmd_models(args: argparse.Namespace) -> int:
    from riskmodels import margin

    for name in margin.available():
        cls = margin.base._REGISTRY[name]
        print(f"{name:20s} {cls.__name__:20s} {cls.summary}")
    return 0


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` only the sub-command it names imports its module.

    With ``argv`` given, sub-commands other than the one it names get a stub
    parser (name and help line only), so ``riskmodels --help`` stays fast;
    ``build_parser()`` without ``argv`` builds every parser in full.
    """
    command = _command_of(argv) if argv is not None else None
    full = argv is None
    p = argparse.ArgumentParser(
        prog="riskmodels", description="Compare margin methods on real crypto price history."
    )
    p.add_argument("--version", action="version", version=f"riskmodels {__version__}")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backtest", help="run the comparison of margin methods (the main job)")
    b.add_argument("--config", help="TOML config (default: the embedded config; see `riskmodels config`)")
    b.add_argument("--data", help="price data: a folder, 'embedded' or 'binance' (the fetch cache); default: [data] dir, "
                        "else $RISKMODELS_DATA, else the embedded dataset")
    b.add_argument("--out", default="riskmodels-out", help="output directory (default: ./riskmodels-out)")
    b.add_argument("--accounts", type=int, help="number of generated accounts (overrides the config)")
    b.add_argument("--start", help="first date of the evaluation window (overrides the config)")
    b.add_argument("--offline", action="store_true", help="never download data (always true: runs never download; kept for scripts)")
    b.add_argument("--chunk-accounts", type=int, help="stream the book in chunks of this many accounts "
                   "(overrides [backtest] chunk_accounts; README \"Large books\")")
    b.add_argument("--workers", type=int, help="stream the book over a Dask LocalCluster of N worker processes")
    b.add_argument("--scheduler", help="stream the book over the Dask cluster at this address (tcp://host:8786)")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    b.add_argument("-v", "--verbose", action="store_true",
                   help="print every table (summary, comparison, coverage tests, procyclicality, netting) and timings")
    b.set_defaults(func=cmd_backtest)

    d = sub.add_parser("data", help="price data: validate or fetch")
    dsub = d.add_subparsers(dest="data_command", required=True)
    v = dsub.add_parser("validate", help="list every defect in a directory of price files")
    v.add_argument("dir", help="directory of OHLCV files (or one with crypto-daily/)")
    v.add_argument("--strict", action="store_true", help="exit 1 when any error-severity defect is found")
    v.set_defaults(func=cmd_validate)
    if full or command == "data":
        from riskmodels.data.fetch import add_fetch_parser
        from riskmodels.data.validate_cli import add_validate_arguments

        add_validate_arguments(v)

        add_fetch_parser(dsub)
    else:
        dsub.add_parser("fetch", help="download spot klines from Binance's public data archive (no API key)")

    for name, (_, _, help_line) in LAZY_COMMANDS.items():
        if full or command == name:
            _lazy_adder(name)(sub)
        else:
            sub.add_parser(name, help=help_line)

    m = sub.add_parser("models", help="list the registered margin methods")
    m.set_defaults(func=cmd_models)
    from riskmodels.config_examples import add_config_arguments
    from riskmodels.config_examples import cmd_config as _cmd_config

    c = sub.add_parser("config", help="print the default config, or write a commented example (--example NAME)")
    add_config_arguments(c)
    c.set_defaults(func=_cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        from riskmodels.failures import run_guarded

        return run_guarded(args.func, args, debug=bool(getattr(args, "debug", False)))
    finally:
        warnings.formatwarning = previous


def entry() -> None:
    """The ``riskmodels`` console script: :func:`main`, then an exit without the interpreter's teardown.

    After the command returns, the exit handlers run (``atexit``: logging,
    temporary folders, multiprocessing's finalizers) and stdout / stderr are
    flushed, then the process ends with ``os._exit``: the teardown it skips
    (module globals and every object freed one by one) took 0.3 s of the
    default backtest's 17 s, freeing the results' ~1 GB of arrays that the
    kernel releases at once anyway (``benchmarks/README.md``, session 10).
    A normal exit is kept when a non-daemon thread still runs, or where
    this CPython lacks ``atexit._run_exitfuncs``. Tests call :func:`main`.
    """
    import atexit
    import os
    import threading

    code = main()
    run_exit = getattr(atexit, "_run_exitfuncs", None)
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if run_exit is None or busy:
        sys.exit(code)
    run_exit()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be written
            pass
    os._exit(int(code or 0))


if __name__ == "__main__":
    entry()
