"""The ``[report]`` settings: defaults, validation, the book's as-of date."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from riskmodels.backtest.result import BacktestResult

__all__ = ["REPORT_DEFAULTS", "SENSITIVITY_METRICS", "as_of_index", "merge_settings", "report_settings"]

#: ``[report]`` settings and their defaults (a config's ``[report]`` table is merged over them)
REPORT_DEFAULTS: dict[str, Any] = {
    "title": "Margin methods compared: risk committee report",
    "as_of": "",  # book snapshot date for recommendations and shocks; "" = last date of the window
    "shocks": [-0.05, -0.10, -0.15, -0.20, -0.30, -0.40, -0.50],
    "leverages": [1, 2, 3, 5, 10, 20, 50],
    "recommend": {
        "source": "auto",  # auto | calibration | explicit | rule | none
        "max_step": 0.03,  # Chaos Labs: +-3% per parameter per proposal
        "step_kind": "absolute",  # absolute (parameter units, e.g. 0.03 = 3 points) | relative
        "target_exception_rate": None,  # None = 1 - backtest.confidence
        "proposals": [],  # [{model = "label", params = {imf = 0.06}}]
        # riskmodels.calibrate searches, one per entry: {model = "label", param = "imf", target = "coverage",
        # value = 0.01, side = "combined", tie = {mmf = 0.6}, bounds = [0.01, 0.5], grid = 11, xtol = 1e-4}
        "calibrate": [],
    },
    "cascade": {  # crash-day replays with price impact (riskmodels.cascade), first model only
        "enabled": True,
        "accounts": 1000,
        "calibration_accounts": 500,
        "calm_days": 8,
        "substeps": 6,
    },
    "sensitivity": {
        "model": "",  # "" = the first model
        "accounts": 200,  # the first N accounts of the book
        "metric": "liquidations_per_account_year",
        "factors": {
            "cushion": [0.25, 1.0],
            "slippage": [0.0005, 0.005],
            "penalty": [0.005, 0.02],
            "reentry_days": [1, 20],
            "scale": [0.8, 1.2],
        },
    },
}

SENSITIVITY_METRICS = ("liquidations_per_account_year", "bad_debt_bp_per_year")

def merge_settings(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict) and k != "factors":
            out[k] = merge_settings(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def report_settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``REPORT_DEFAULTS`` merged with ``cfg["report"]``, validated (errors name the key and valid range)."""
    user = dict((cfg or {}).get("report", {}) or {})
    unknown = sorted(set(user) - set(REPORT_DEFAULTS))
    if unknown:
        raise ValueError(f"[report] has unknown key(s) {unknown}; valid: {sorted(REPORT_DEFAULTS)}")
    s = merge_settings(REPORT_DEFAULTS, user)
    rec = s["recommend"]
    unknown = sorted(set(rec) - set(REPORT_DEFAULTS["recommend"]))
    if unknown:
        raise ValueError(f"[report.recommend] has unknown key(s) {unknown}; valid: "
                         f"{sorted(REPORT_DEFAULTS['recommend'])}")
    if rec["source"] not in ("auto", "calibration", "explicit", "rule", "none"):
        raise ValueError(f"report.recommend.source={rec['source']!r} must be one of auto, calibration, "
                         "explicit, rule, none")
    if not (isinstance(rec["max_step"], int | float) and 0 < float(rec["max_step"]) <= 1):
        raise ValueError(f"report.recommend.max_step={rec['max_step']!r} must be in (0, 1]")
    if rec["step_kind"] not in ("absolute", "relative"):
        raise ValueError(f"report.recommend.step_kind={rec['step_kind']!r} must be 'absolute' or 'relative'")
    p = rec["target_exception_rate"]
    if p is not None and not 0 < float(p) < 1:
        raise ValueError(f"report.recommend.target_exception_rate={p!r} must be in (0, 1)")
    for i, prop in enumerate(rec["proposals"]):
        if not isinstance(prop, Mapping) or "model" not in prop or not isinstance(prop.get("params"), Mapping):
            raise ValueError(f"report.recommend.proposals[{i}] must be {{model = \"label\", params = {{...}}}}")
    for i, spec in enumerate(rec["calibrate"]):
        if not isinstance(spec, Mapping) or "model" not in spec or "param" not in spec:
            raise ValueError(f"report.recommend.calibrate[{i}] must have model = \"label\" and param = \"name\"")
    unknown = sorted(set(s["cascade"]) - set(REPORT_DEFAULTS["cascade"]))
    if unknown:
        raise ValueError(f"[report.cascade] has unknown key(s) {unknown}; valid: {sorted(REPORT_DEFAULTS['cascade'])}")
    sen = s["sensitivity"]
    if int(sen["accounts"]) < 1:
        raise ValueError(f"report.sensitivity.accounts={sen['accounts']} must be >= 1")
    if sen["metric"] not in SENSITIVITY_METRICS:
        raise ValueError(f"report.sensitivity.metric={sen['metric']!r} must be one of {SENSITIVITY_METRICS}")
    known = set(REPORT_DEFAULTS["sensitivity"]["factors"])
    for k, v in sen["factors"].items():
        if k not in known:
            raise ValueError(f"report.sensitivity.factors.{k}: unknown factor; valid: {sorted(known)}")
        if not (isinstance(v, Sequence) and len(v) == 2):
            raise ValueError(f"report.sensitivity.factors.{k}={v!r} must be [low, high]")
    shocks = np.asarray(s["shocks"], dtype=float)
    if shocks.size == 0 or not ((shocks > -1) & (shocks < 0)).all():
        raise ValueError(f"report.shocks={s['shocks']} must be non-empty and each in (-1, 0)")
    lev = np.asarray(s["leverages"], dtype=float)
    if lev.size == 0 or not (lev > 0).all() or not (np.diff(lev) > 0).all():
        raise ValueError(f"report.leverages={s['leverages']} must be increasing and > 0")
    return s


def as_of_index(result: BacktestResult, settings: Mapping[str, Any]) -> int:
    a = settings.get("as_of") or ""
    if not a:
        return result.end
    t = result.panel.date_index(a, side="right") - 1  # last date <= as_of
    if not result.start <= t <= result.end:
        d0, d1 = result.panel.dates[result.start].date(), result.panel.dates[result.end].date()
        raise ValueError(f"report.as_of={a!r} must be inside the backtest window {d0}..{d1}")
    return t
