"""The ``riskmodels`` command line.

Sub-commands: ``backtest`` (the main job), ``data validate``, ``data fetch``,
``models`` (registered margin methods), ``config`` (print the default config).
Progress is printed here, on stderr; the library itself never prints.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from riskmodels import __version__
from riskmodels.calibrate import add_calibrate_parser
from riskmodels.cascade.cli import add_cascade_parser
from riskmodels.data.fetch import add_fetch_parser
from riskmodels.report.cli import add_report_parser
from riskmodels.sweep import add_sweep_parser


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


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _data_dir(args: argparse.Namespace, cfg: dict[str, Any], bar: ProgressBar) -> Path:
    from riskmodels.data.resolve import resolve_data_dir

    flag = args.data or cfg["data"].get("dir") or None
    return resolve_data_dir(
        flag,
        offline=bool(getattr(args, "offline", False)),
        fetch_if_missing=True,
        progress=bar.note,
    )


def cmd_backtest(args: argparse.Namespace) -> int:
    from riskmodels.backtest.engine import build_models, run_backtest
    from riskmodels.backtest.report_tables import (
        comparison_summary,
        coverage_table,
        netting_table,
        pareto_png,
        procyclicality_table,
    )
    from riskmodels.config import load_config
    from riskmodels.data.loaders import load_panel
    from riskmodels.report.html import write_summary_html

    overrides: dict[str, Any] = {}
    if args.accounts:
        overrides.setdefault("book", {})["accounts"] = args.accounts
    if args.start:
        overrides.setdefault("data", {})["start"] = args.start
    cfg = load_config(args.config, overrides)
    build_models(cfg)  # an unknown model or bad parameter fails before any data is read
    bar = ProgressBar(args.quiet)
    data_dir = _data_dir(args, cfg, bar)
    bar.note(f"riskmodels {__version__}: loading prices from {data_dir}")
    t0 = time.perf_counter()
    panel = load_panel(
        data_dir,
        assets=cfg["data"]["universe"] or None,
        policy=cfg["data"].get("policy", "error"),
        interval=cfg["data"].get("interval", "1d"),
    )
    result = run_backtest(cfg, panel, progress=bar)
    elapsed = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
    frame = result.metrics_frame()
    frame.to_csv(out / "summary.csv", float_format="%.10g")
    (out / "summary.json").write_text(
        json.dumps(
            {
                "config": cfg,
                "data_fingerprint": panel.fingerprint(),
                "metrics": {
                    m: {k: (None if not np.isfinite(v) else float(v)) for k, v in row.items()}
                    for m, row in frame.to_dict(orient="index").items()
                },
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
        encoding="utf-8",
    )
    from riskmodels.backtest.metrics import metrics_schema

    (out / "summary.schema.json").write_text(json.dumps({"columns": metrics_schema()}, indent=2, sort_keys=True)
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
    result.margin_paths().to_parquet(out / "margin_paths.parquet", compression="zstd", index=False)
    result.events().to_csv(out / "liquidations.csv", index=False, float_format="%.10g")
    from riskmodels.config import default_config_text

    config_text = Path(args.config).read_text() if args.config else default_config_text()
    provenance = {
        "riskmodels": __version__,
        "commit": _git_commit(),
        "data_dir": str(data_dir),
        "data_fingerprint": panel.fingerprint(),
        "files_sha256": dict(sorted(panel.sources.items())),
        "seed": cfg["book"]["seed"],
        "command": "riskmodels backtest" + (f" --config {args.config}" if args.config else ""),
    }
    write_summary_html(
        result,
        out / "report.html",
        extra_tables=[t for t in (comparison, cov, pro, netting) if t is not None],
        images={"Pareto: capital vs liquidations": out / "pareto.png"},
        provenance=provenance,
        config_text=config_text,
    )
    if args.verbose:
        for name, r in result.results.items():
            bar.note(f"  {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items()))
    written = ["summary.csv", "summary.json", "summary.schema.json", "comparison.csv", "coverage.csv",
               "procyclicality.csv", *(["netting.csv"] if netting is not None else []), "margin_paths.parquet",
               "liquidations.csv", *(["garch_fit_log.csv"] if logs is not None else []), "pareto.png", "report.html"]
    print(f"wrote {len(written)} files to {out}/ ({elapsed:.1f} s):")
    for name in written:
        print(f"  {out / name}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from riskmodels.data.loaders import validate_directory

    report = validate_directory(args.dir)
    print(report)
    return 1 if args.strict and report.errors else 0


def cmd_models(args: argparse.Namespace) -> int:
    from riskmodels import margin

    for name in margin.available():
        cls = margin.base._REGISTRY[name]
        print(f"{name:20s} {cls.__name__:20s} {cls.summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="riskmodels", description="Compare margin methods on real crypto price history."
    )
    p.add_argument("--version", action="version", version=f"riskmodels {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backtest", help="run the comparison of margin methods (the main job)")
    b.add_argument("--config", help="TOML config (default: the embedded config; see `riskmodels config`)")
    b.add_argument("--data", help="price data directory (else $RISKMODELS_DATA, else the fetch cache)")
    b.add_argument("--out", default="riskmodels-out", help="output directory (default: ./riskmodels-out)")
    b.add_argument("--accounts", type=int, help="number of generated accounts (overrides the config)")
    b.add_argument("--start", help="first date of the evaluation window (overrides the config)")
    b.add_argument("--offline", action="store_true", help="never download data; say what to run instead")
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
    add_fetch_parser(dsub)

    add_cascade_parser(sub)
    add_report_parser(sub)
    add_calibrate_parser(sub)
    add_sweep_parser(sub)

    m = sub.add_parser("models", help="list the registered margin methods")
    m.set_defaults(func=cmd_models)
    from riskmodels.config_examples import add_config_arguments
    from riskmodels.config_examples import cmd_config as _cmd_config

    c = sub.add_parser("config", help="print the default config, or write a commented example (--example NAME)")
    add_config_arguments(c)
    c.set_defaults(func=_cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"riskmodels: error: {msg}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = previous


if __name__ == "__main__":
    sys.exit(main())
