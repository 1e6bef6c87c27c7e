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
    """A one-line progress indicator on stderr (silent when ``quiet``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def __call__(self, what: str, i: int, n: int) -> None:
        if self.quiet:
            return
        width = 24
        done = int(width * i / max(n, 1))
        bar = "#" * done + "." * (width - done)
        msg = f"[{bar}] {i}/{n} {what}  ({time.perf_counter() - self.t0:5.1f} s)"
        if self.tty:
            sys.stderr.write("\r" + msg.ljust(100))
            if i >= n:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(msg + "\n")
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


def _backtest_command(args: argparse.Namespace) -> str:
    return "riskmodels backtest" + (f" --config {args.config}" if args.config else "")


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
    from riskmodels.outputs import atomic_output, check_target
    from riskmodels.report.html import write_summary_html

    overrides: dict[str, Any] = {}
    if args.accounts:
        overrides.setdefault("book", {})["accounts"] = args.accounts
    if args.start:
        overrides.setdefault("data", {})["start"] = args.start
    out = check_target(args.out)  # an existing file or a foreign folder fails before any work
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
    summary = result.summary()
    cov = coverage_table(result)
    pro = procyclicality_table(result)
    comparison = comparison_summary(result, cov, pro)
    netting = netting_table(result)
    print(summary)
    print()
    print(comparison)
    print()
    print(cov)
    print()
    print(pro)
    if netting is not None:
        print()
        print(netting)
    with atomic_output(out, command=_backtest_command(args)) as out:
        frame = result.metrics_frame()
        frame.to_csv(out / "summary.csv", float_format="%.10g")
        (out / "summary.json").write_text(
            json.dumps(
                {
                    "config": cfg,
                    "data_fingerprint": panel.fingerprint(),
                    "metrics": {
                        m: {k: (None if not math.isfinite(v) else float(v)) for k, v in row.items()}
                        for m, row in frame.to_dict(orient="index").items()
                    },
                },
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
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
            "command": _backtest_command(args),
        }
        write_summary_html(
            result,
            out / "report.html",
            extra_tables=[t for t in (comparison, cov, pro, netting) if t is not None],
            images={"Pareto: capital vs liquidations": out / "pareto.png"},
            provenance=provenance,
            config_text=config_text,
        )
    out = Path(args.out)  # the staging folder is now in place here
    for name, r in result.results.items():
        bar.note(f"  {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items()))
    bar.note(
        f"wrote {out}/summary.csv, summary.json, comparison.csv, coverage.csv, procyclicality.csv, "
        f"netting.csv, margin_paths.parquet, liquidations.csv, pareto.png, report.html ({elapsed:.1f} s)"
    )
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


def cmd_config(args: argparse.Namespace) -> int:
    from riskmodels.config import default_config_text

    print(default_config_text())
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
    b.add_argument("--data", help="price data directory (else $RISKMODELS_DATA, else the fetch cache)")
    b.add_argument("--out", default="riskmodels-out", help="output directory (default: ./riskmodels-out)")
    b.add_argument("--accounts", type=int, help="number of generated accounts (overrides the config)")
    b.add_argument("--start", help="first date of the evaluation window (overrides the config)")
    b.add_argument("--offline", action="store_true", help="never download data; say what to run instead")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    b.set_defaults(func=cmd_backtest)

    d = sub.add_parser("data", help="price data: validate or fetch")
    dsub = d.add_subparsers(dest="data_command", required=True)
    v = dsub.add_parser("validate", help="list every defect in a directory of price files")
    v.add_argument("dir", help="directory of OHLCV files (or one with crypto-daily/)")
    v.add_argument("--strict", action="store_true", help="exit 1 when any error-severity defect is found")
    v.set_defaults(func=cmd_validate)
    if full or command == "data":
        from riskmodels.data.fetch import add_fetch_parser

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
    c = sub.add_parser("config", help="print the default config (TOML)")
    c.set_defaults(func=cmd_config)
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


if __name__ == "__main__":
    sys.exit(main())
