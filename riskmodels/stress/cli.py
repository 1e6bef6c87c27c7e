"""``riskmodels stress --date D``: the scenario table of the config's book on one date, with Cover-1 / Cover-2.

Wiring (in :mod:`riskmodels.cli`)::

    from riskmodels.stress.cli import add_stress_parser
    add_stress_parser(sub)

Each model is fitted on the prices up to ``D`` only (the panel is cut at
``D``), so nothing after the date can reach the table. Options come from the
config's ``[stress]`` table (:class:`riskmodels.stress.config.StressConfig`).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd


def add_stress_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add the ``stress`` sub-command to ``riskmodels``' sub-parsers."""
    s = subparsers.add_parser("stress", help="stress scenarios, Cover-1 / Cover-2 and reverse stress on one date")
    s.add_argument("--date", required=True, help="date of the book, YYYY-MM-DD (the last trading date <= it)")
    s.add_argument("--config", help="TOML config (backtest sections + optional [stress])")
    s.add_argument("--data", help="price data directory (else $RISKMODELS_DATA, else the fetch cache)")
    s.add_argument("--model", action="append", help="model label to stress (repeatable; default: every model)")
    s.add_argument("--out", help="also write scenarios.csv, stress_table.csv, cover.csv, reverse_stress.csv, "
                   "stress_accounts.csv here")
    s.add_argument("--offline", action="store_true", help="never download data")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(func=run_stress)
    return s


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


def run_stress(args: argparse.Namespace) -> int:
    from riskmodels.backtest.engine import build_book, build_models
    from riskmodels.config import load_config
    from riskmodels.data.loaders import load_panel
    from riskmodels.data.resolve import resolve_data_dir
    from riskmodels.margin.base import account_eligibility
    from riskmodels.stress.config import StressConfig
    from riskmodels.stress.run import stress_date, write_files
    from riskmodels.stress.scenarios import ScenarioHistory

    try:
        date = pd.Timestamp(args.date)
    except ValueError:
        raise ValueError(f"--date {args.date!r} is not a date; use YYYY-MM-DD") from None
    cfg = load_config(args.config)
    scfg = StressConfig.from_dict(cfg.get("stress"))
    models = build_models(cfg)
    if args.model:
        labels = {m.label for m in models}
        bad = [m for m in args.model if m not in labels]
        if bad:
            raise ValueError(f"--model {bad}: no such model label in the config; labels: {sorted(labels)}")
        models = [m for m in models if m.label in set(args.model)]
    flag = args.data or cfg["data"].get("dir") or None
    data_dir = resolve_data_dir(flag, offline=bool(args.offline), fetch_if_missing=True,
                                progress=lambda s: _say(args.quiet, s))
    t0 = time.perf_counter()
    panel = load_panel(data_dir, assets=cfg["data"]["universe"] or None, policy=cfg["data"].get("policy", "error"),
                       interval=cfg["data"].get("interval", "1d"))
    universe = tuple(cfg["data"]["universe"]) or panel.assets
    panel = panel.select(universe).loc(end=date)
    if panel.n_dates == 0:
        raise ValueError(f"--date {date.date()}: the data has no prices on or before it")
    t = panel.n_dates - 1
    book = build_book(cfg, panel.assets)
    bt = cfg["backtest"]
    need = max([int(bt["min_history"]), *(m.min_history for m in models)])
    ok = account_eligibility(panel.eligible(need)[t: t + 1], book)[0]
    margins = {}
    for i, model in enumerate(models):
        _say(args.quiet, f"[{i + 1}/{len(models)}] {model.label}: fitting on prices up to {panel.dates[t].date()}")
        fitted = model.fit(panel)
        m = np.full(book.n_accounts, np.nan)
        if ok.any():
            req = fitted.account_requirement(t, book.collateral[ok], book.positions[ok], book.isolated[ok])
            m[ok] = getattr(req, scfg.margin)
        margins[model.label] = m
    history = ScenarioHistory(panel, scfg.library(int(bt["mpor"])))
    res = stress_date(book, history, t, margins, scfg)
    print(res)
    if args.out:
        files = write_files(args.out, res.frames())
        _say(args.quiet, f"wrote {args.out}/: {', '.join(files)} ({time.perf_counter() - t0:.1f} s)")
    return 0
