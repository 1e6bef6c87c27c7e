"""``riskmodels report --config FILE --out DIR``: backtest, then write the governance report.

Wiring (in :mod:`riskmodels.cli`)::

    from riskmodels.report.cli import add_report_parser
    add_report_parser(sub)          # sets func=run_report

Writes ``DIR/report.html`` (self-contained), ``DIR/report.md`` with
``DIR/figures/*.png``, and ``DIR/tables/*.csv`` (every table's raw numbers);
with ``--pdf`` also ``DIR/report.pdf`` (headless Chromium, the print stylesheet).
The config may carry a ``[report]`` table (:data:`~riskmodels.report.settings.REPORT_DEFAULTS`).
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from riskmodels.report.settings import report_settings


def load_report_config(path: str | Path | None, overrides: dict[str, Any] | None = None
                       ) -> tuple[dict[str, Any], str]:
    """The backtest config with its ``[report]`` table, and the config text as written.

    The default config is merged with the file (tables key by key, lists
    replace) exactly as :func:`riskmodels.config.load_config` does; the
    ``[report]`` table is taken out before the backtest sections are
    validated and validated by :func:`~riskmodels.report.governance.report_settings`.
    """
    from riskmodels import config as rmcfg

    if path is None:
        text = rmcfg.default_config_text()
        user = tomllib.loads(text)
        where = "the default config"
    else:
        from riskmodels.config_schema import check_document

        user = check_document(rmcfg.read_toml(path), str(path))
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    report = user.pop("report", {})
    unknown = sorted(set(user) - set(rmcfg.SECTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {unknown}; valid sections: {[*rmcfg.SECTIONS, 'report']}")
    cfg = rmcfg.merge(rmcfg.default_config(), user)
    if overrides:
        cfg = rmcfg.merge(cfg, overrides)
    rmcfg.validate_config(cfg)
    cfg["report"] = report
    report_settings(cfg)  # validates [report]
    return cfg, text


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    r = subparsers.add_parser(
        "report",
        help="backtest and write the governance report (HTML + Markdown)",
        description="Run the backtest a config describes and write the report a risk committee votes on: "
                    "report.html (self-contained, prints to PDF), report.md with figures/*.png, tables/*.csv.",
    )
    r.add_argument("--config", help="TOML config (default: the embedded config); may have a [report] table")
    r.add_argument("--data", help="price data directory (else $RISKMODELS_DATA, else the fetch cache)")
    r.add_argument("--out", default="riskmodels-report", help="output directory (default: ./riskmodels-report)")
    r.add_argument("--accounts", type=int, help="number of generated accounts (overrides the config)")
    r.add_argument("--start", help="first date of the evaluation window (overrides the config)")
    r.add_argument("--offline", action="store_true", help="never download data; say what to run instead")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r.add_argument("--pdf", action="store_true",
                   help="also print report.html to report.pdf with headless Chromium (apt-get install -y chromium)")
    r.set_defaults(func=run_report)
    return r


def _command(args: argparse.Namespace, data_dir: Path) -> str:
    parts = ["riskmodels", "report"]
    if args.config:
        parts += ["--config", str(args.config)]
    parts += ["--data", str(data_dir)]
    if args.accounts:
        parts += ["--accounts", str(args.accounts)]
    if args.start:
        parts += ["--start", str(args.start)]
    parts += ["--out", str(args.out)]
    return " ".join(parts)


def run_report(args: argparse.Namespace) -> int:
    """Entry point of ``riskmodels report``; returns the exit code."""
    from riskmodels import __version__
    from riskmodels.backtest.engine import build_models, run_backtest
    from riskmodels.data.loaders import load_panel
    from riskmodels.data.resolve import resolve_data_dir
    from riskmodels.report.governance import build_report

    quiet = bool(getattr(args, "quiet", False))

    def note(msg: str) -> None:
        if not quiet:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    overrides: dict[str, Any] = {}
    if getattr(args, "accounts", None):
        overrides.setdefault("book", {})["accounts"] = args.accounts
    if getattr(args, "start", None):
        overrides.setdefault("data", {})["start"] = args.start
    from riskmodels.outputs import atomic_output, check_target

    check_target(args.out)  # an existing file or a foreign folder fails before any work
    cfg, text = load_report_config(args.config, overrides)
    build_models(cfg)  # an unknown model or a bad parameter fails before any data is read
    flag = args.data or cfg["data"].get("dir") or None
    data_dir = resolve_data_dir(flag, offline=bool(getattr(args, "offline", False)), fetch_if_missing=True,
                                progress=note)
    note(f"riskmodels {__version__}: loading prices from {data_dir}")
    t0 = time.perf_counter()
    from riskmodels.data.options import LoaderOptions

    panel = load_panel(data_dir, assets=cfg["data"]["universe"] or None, policy=cfg["data"].get("policy", "error"),
                       interval=cfg["data"].get("interval", "1d"), end=cfg["data"].get("end") or None,
                       **LoaderOptions.from_config(cfg["data"]).kwargs())

    def progress(what: str, i: int, n: int) -> None:
        note(f"  backtest {i}/{n}: {what} ({time.perf_counter() - t0:.1f} s)")

    result = run_backtest(cfg, panel, progress=progress)
    report = build_report(result, config_text=text, command=_command(args, Path(data_dir)), data_dir=data_dir,
                          progress=lambda s: note(f"  report: {s} ({time.perf_counter() - t0:.1f} s)"))
    with atomic_output(args.out, command=_command(args, Path(data_dir))) as stage:
        staged = report.write(stage)
        if getattr(args, "pdf", False):
            from riskmodels.report.pdf import write_pdf

            staged["pdf"] = write_pdf(staged["html"], stage / "report.pdf")
        logs = result.fit_logs()
        if logs is not None:
            staged["garch_fit_log"] = stage / "garch_fit_log.csv"
            logs.to_csv(staged["garch_fit_log"], index=False, float_format="%.10g")
    paths = {k: Path(args.out) / Path(v).name for k, v in staged.items()}
    written = [str(paths[k]) for k in ("html", "markdown", "pdf", "garch_fit_log") if k in paths]
    note(f"wrote {', '.join(written)}, {Path(args.out) / 'figures'}/, "
         f"{Path(args.out) / 'tables'}/ ({time.perf_counter() - t0:.1f} s)")
    return 0
