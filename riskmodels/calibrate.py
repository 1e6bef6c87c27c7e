"""Calibration: the least-capital parameter of a margin method that meets a target.

A risk team does not only compare margin methods, it chooses their
parameters. :func:`calibrate` searches one parameter of one method (a
collateral haircut, an IMF, a VaR confidence level, a scan-range floor...)
for the value that meets a **target** with the **least capital**, either per
asset (each asset on its own single-asset book) or jointly (one value for a
multi-asset book).

Targets (:class:`Target`)
-------------------------
``coverage``
    Breach rate <= ``value`` (default 1%): the share of (date, account)
    cells where the realised loss over the margin period of risk (MPOR)
    exceeds the margin (:mod:`riskmodels.backtest.coverage`). ``side`` picks
    the combined rate, the long or short side, or the worst of the two.
``kupiec``
    The Kupiec (1995) proportion-of-failures test at exception probability
    ``value`` is not rejected *on the too-many-exceptions side* at
    significance ``level``: a value is infeasible when ``x / n > p`` and the
    test rejects. Too few exceptions (over-margining) is not a coverage
    failure, and without this one-sided reading the least-capital value of a
    two-sided test is simply the lower edge of its acceptance band. For
    ``mpor > 1`` the test runs on the h non-overlapping sub-samples with the
    Bonferroni bound (:func:`riskmodels.backtest.stats.coverage_tests`).
    Single-account books only (per-asset mode), since the test assumes one
    series of independent observations.
``liquidations``
    Liquidations per account-year <= ``value`` (account simulation with the
    :class:`~riskmodels.backtest.simulation.LiquidationPolicy`).
``bad_debt``
    Bad debt <= ``value`` as a **fraction** of perp notional held for a year
    (``0.0001`` = 1 bp/yr; the ``bad_debt_bp_per_year`` metric is in bp).

Capital is ``mean_im_per_notional`` (mean initial margin / gross notional).

Size (``adv_fraction``)
-----------------------
``adv_fraction = f`` rescales every account of the book (per-asset or joint)
so that its largest holding is ``f`` x the asset's average daily USD volume
of the ``adv_window`` days before the scored window
(:func:`riskmodels.book_sizing.scale_to_adv`). Size changes the answer only
through size-dependent terms: the close-out impact (``[liquidation] closeout
= "impact"``) and concentration add-ons (``concentration`` models); with a
flat close-out and a homogeneous model a warning says the size is inert.
A ``bad_debt`` target on a larger book then needs a larger margin rate.

Search
------
The parameter is scanned on a grid of ``grid`` points over ``bounds`` (or on
explicit ``values``). The target metric is checked for **monotonicity** along
the grid, ordered from least to most capital (``increasing=True``: a larger
parameter means more capital, e.g. haircut, IMF, confidence, psr_floor,
extreme_multiplier). When it is monotone (non-increasing in capital) and the
parameter is continuous, monotone bisection between the last infeasible and
the first feasible grid point keeps the invariant ``lo`` infeasible, ``hi``
feasible until ``hi - lo <= xtol`` and returns ``hi``: a value that meets the
target, with ``bracket = (lo, hi)`` showing that ``xtol`` less does not.
(Backtest metrics are step functions of the parameter on a finite sample, so
a sign-change root finder such as Brent's method may stop on the infeasible
side of a jump; bisection never does.) When the metric is **not** monotone,
or the parameter is discrete (``values``, e.g. a lookback in days), the
result is the least-capital feasible grid point and ``monotone`` is False
with the grid points that break monotonicity in ``note``.

Worked example: for a flat haircut ``h`` on a constant-notional long spot
position, the margin is ``h x`` and the h-day loss ``-x r``, so the breach
rate is ``#{-r_t > h} / n`` and the least ``h`` with breach rate <= ``p`` is
the ``(floor(p n) + 1)``-th largest h-day loss, i.e. the empirical
``(1 - p)`` quantile of the loss. The calibration returns it within
``xtol``.

Example::

    from riskmodels.calibrate import Target, calibrate
    res = calibrate(panel, "fixed_haircut", "haircut", Target("coverage", 0.01),
                    per_asset=True, book="collateral", mpor=2)
    print(res)                 # asset, value, achieved, capital, iterations, monotone...
    FixedHaircut(haircut=res.params())   # {asset: haircut}

Command line (``riskmodels calibrate --config FILE [--data DIR] [--out DIR]``);
the TOML file may hold the backtest sections (``[data]``, ``[book]``,
``[backtest]``, ``[liquidation]``; merged over the default config) and one
``[calibrate]`` section, see :data:`EXAMPLE_CALIBRATE_TOML`.

Modules: this one holds the configuration and the ``riskmodels calibrate`` command
line; :func:`calibrate` is in :mod:`riskmodels.calibrate_run`, the search (books,
bisection, :class:`CalibrationResult`) in :mod:`riskmodels.calibrate_search` and
:class:`Target` with its checks in :mod:`riskmodels.calibrate_targets`. Their names
are importable from here too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from riskmodels.backtest.engine import build_book
from riskmodels.calibrate_run import DEFAULT_BOUNDS as DEFAULT_BOUNDS
from riskmodels.calibrate_run import calibrate
from riskmodels.calibrate_search import BOOK_KINDS, CalibrationResult, single_asset_book
from riskmodels.calibrate_search import CalibrationRow as CalibrationRow
from riskmodels.calibrate_search import ModelFactory as ModelFactory
from riskmodels.calibrate_search import _search as _search
from riskmodels.calibrate_targets import SIDES as SIDES
from riskmodels.calibrate_targets import TARGET_KINDS, Target
from riskmodels.calibrate_targets import _Eval as _Eval
from riskmodels.data.panel import PricePanel
from riskmodels.portfolio import Book

# Re-exported (`x as x`) from the modules that now hold them: riskmodels.lending.recommend
# imports _Eval and _search from here.
__all__ = [
    "BOOK_KINDS",
    "EXAMPLE_CALIBRATE_TOML",
    "TARGET_KINDS",
    "CalibrationResult",
    "Target",
    "add_calibrate_parser",
    "calibrate",
    "run_calibrate",
    "single_asset_book",
]

#: the commented example shipped as riskmodels/configs/calibrate.toml (``riskmodels config --example calibrate``)
EXAMPLE_CALIBRATE_TOML = (files("riskmodels") / "configs" / "calibrate.toml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- config + CLI
CALIBRATE_KEYS = {
    "model", "param", "per_asset", "assets", "book", "params", "tie", "bounds", "values", "integer",
    "increasing", "grid", "xtol", "max_iter", "mpor", "min_history", "coverage_on", "target",
    "adv_fraction", "adv_window",
}


def read_toml(path: str | Path, section: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(base config, section)``: the backtest sections merged over the default config, and ``[section]``."""
    from riskmodels.config import SECTIONS, default_config, merge, read_toml, validate_config

    doc = read_toml(path)
    return parse_doc(doc, section, SECTIONS, default_config, merge, validate_config, str(path))


def parse_doc(doc: dict[str, Any], section: str, sections: Sequence[str], default_config: Callable[[], dict],
              merge: Callable[..., dict], validate: Callable[[dict], None], where: str = "config"
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    from riskmodels.config_schema import check_document

    doc = check_document(doc, where, sections=tuple(sections))
    if section not in doc:
        raise ValueError(f"{where}: no [{section}] section")
    sec = doc.pop(section)
    unknown = set(doc) - set(sections)
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {sorted(unknown)}; valid: {[*sections, section]}")
    cfg = merge(default_config(), doc)
    validate(cfg)
    return cfg, sec


def calibrate_from_config(cfg: dict[str, Any], sec: dict[str, Any], panel: PricePanel,
                          progress: Callable[[str, int, int], None] | None = None) -> CalibrationResult:
    """Run the ``[calibrate]`` section ``sec`` on ``panel`` with the base config ``cfg``."""
    from riskmodels.config import liquidation_policy

    unknown = set(sec) - CALIBRATE_KEYS
    if unknown:
        raise ValueError(f"[calibrate] has unknown key(s) {sorted(unknown)}; valid: {sorted(CALIBRATE_KEYS)}")
    for k in ("model", "param"):
        if k not in sec:
            raise ValueError(f"[calibrate] needs `{k}`")
    tgt = dict(sec.get("target", {"kind": "coverage"}))
    bad = set(tgt) - {"kind", "value", "level", "side"}
    if bad:
        raise ValueError(f"[calibrate.target] has unknown key(s) {sorted(bad)}; valid: kind, value, level, side")
    target = Target(**tgt)
    universe = tuple(cfg["data"]["universe"]) or panel.assets
    panel = panel.select(universe)
    per_asset = bool(sec.get("per_asset", True))
    book: Book | str = sec.get("book", "collateral") if per_asset else build_book(cfg, panel.assets)
    bt = cfg["backtest"]
    return calibrate(
        panel, sec["model"], sec["param"], target, per_asset=per_asset, assets=sec.get("assets") or None,
        book=book, fixed=sec.get("params"), tie=sec.get("tie"),
        bounds=tuple(sec["bounds"]) if "bounds" in sec else None, values=sec.get("values"),
        integer=bool(sec.get("integer", False)), increasing=bool(sec.get("increasing", True)),
        grid=int(sec.get("grid", 11)), xtol=float(sec.get("xtol", 1e-4)), max_iter=int(sec.get("max_iter", 60)),
        mpor=int(sec.get("mpor", bt["mpor"])), min_history=int(sec.get("min_history", 0)),
        start=cfg["data"].get("start") or None, end=cfg["data"].get("end") or None,
        policy=liquidation_policy(cfg), coverage_on=sec.get("coverage_on", bt.get("coverage_on", "initial")),
        progress=progress,
        adv_fraction=float(sec["adv_fraction"]) if "adv_fraction" in sec else None,
        adv_window=int(sec.get("adv_window", 30)),
    )


def add_calibrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``riskmodels calibrate`` to an argparse sub-parser collection."""
    c = subparsers.add_parser("calibrate", help="least-capital parameter that meets a coverage/liquidation target",
                              description=EXAMPLE_CALIBRATE_TOML, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--config", required=True, help="TOML file with a [calibrate] section (see the example above)")
    c.add_argument("--data", help="price data directory (else $RISKMODELS_DATA, else the fetch cache)")
    c.add_argument("--out", default="riskmodels-calibrate", help="output directory (default ./riskmodels-calibrate)")
    c.add_argument("--offline", action="store_true", help="never download data")
    c.add_argument("--quiet", action="store_true", help="no progress on stderr")
    c.set_defaults(func=run_calibrate)
    return c


def _stderr_progress(quiet: bool) -> Callable[[str, int, int], None]:
    t0 = time.perf_counter()

    def show(msg: str, i: int, n: int) -> None:
        if not quiet:
            sys.stderr.write(f"[{i}/{n}] {msg}  ({time.perf_counter() - t0:.1f} s)\n")
            sys.stderr.flush()

    return show


def load_config_panel(args: argparse.Namespace, cfg: dict[str, Any], note: Callable[[str], None]) -> PricePanel:
    """The panel a CLI config describes (``--data`` > config > env > cache)."""
    from riskmodels.data.loaders import load_panel
    from riskmodels.data.resolve import resolve_data_dir

    flag = getattr(args, "data", None) or cfg["data"].get("dir") or None
    data_dir = resolve_data_dir(flag, offline=bool(getattr(args, "offline", False)), fetch_if_missing=True,
                                progress=note)
    note(f"loading prices from {data_dir}")
    from riskmodels.data.options import LoaderOptions

    return load_panel(data_dir, assets=cfg["data"]["universe"] or None, policy=cfg["data"].get("policy", "error"),
                      interval=cfg["data"].get("interval", "1d"), end=cfg["data"].get("end") or None,
                      **LoaderOptions.from_config(cfg["data"]).kwargs())


def run_calibrate(args: argparse.Namespace) -> int:
    """``riskmodels calibrate``: print the table, write calibration.csv/json and grid.csv to ``--out``.

    Returns 0, or 1 when the target is not met anywhere in the search range for some asset.
    """
    from riskmodels.outputs import atomic_output, check_target

    check_target(args.out)
    cfg, sec = read_toml(args.config, "calibrate")
    quiet = bool(getattr(args, "quiet", False))
    bar = _stderr_progress(quiet)

    def note(msg: str) -> None:
        if not quiet:
            sys.stderr.write(msg + "\n")

    panel = load_config_panel(args, cfg, note)
    res = calibrate_from_config(cfg, sec, panel, progress=bar)
    print(res)
    out = Path(args.out)
    with atomic_output(out, command=f"riskmodels calibrate --config {args.config}") as stage:
        res.to_frame().to_csv(stage / "calibration.csv", index=False, float_format="%.10g")
        res.grid.to_csv(stage / "grid.csv", index=False, float_format="%.10g")
        params = res.params()
        (stage / "calibration.json").write_text(
            json.dumps({"model": res.model, "param": res.param, "target": str(res.target), "monotone": res.monotone,
                        "values": params, "data_fingerprint": panel.fingerprint(), "settings": res.settings},
                       indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    note(f"wrote {out}/calibration.csv, calibration.json, grid.csv")
    return 0 if all(r.met for r in res.rows) else 1
