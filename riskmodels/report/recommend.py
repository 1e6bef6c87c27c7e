"""Parameter proposals: the proportional rule, calibration, explicit proposals, the step cap.

Every model gets a finding (:func:`coverage_findings`): over-coverage (the
model asks for more margin than the target exception rate needs) is a
finding as much as under-coverage, and both lead to a capped proposal when
the method has a scale parameter (:data:`RULE_PARAMETERS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report.common import exception_rate, spec_of

__all__ = ["IN_LINE", "PARAMETER_BOUNDS", "RULE_PARAMETERS", "Proposal", "calibration_proposals", "cap_step",
           "choose_proposals", "coverage_findings", "rule_proposals", "scale_factor"]

#: scale parameters of each method for the proportional rule (requirement ~ proportional to them)
RULE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "fixed_haircut": ("imf", "mmf"),
    "deribit_pm": ("price_range",),
    # initial = im_multiplier x maintenance: exact for the initial margin, the maintenance margin is unchanged
    "scenario_grid": ("im_multiplier",),
    "historical_var": ("im_multiplier",),
    "filtered_hs": ("im_multiplier",),
    "age_weighted_hs": ("im_multiplier",),
    "ewma": ("im_multiplier",),
    "garch": ("im_multiplier",),
}

#: admissible range of a rule parameter (the model's own constructor check), per method or for all
PARAMETER_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("scenario_grid", "im_multiplier"): (1.0, 2.0),
    ("*", "im_multiplier"): (1.0, float("inf")),
}

#: |k - 1| below this is "in line with the target" (the margin is within 5% of what the target needs)
IN_LINE = 0.05


@dataclass(frozen=True)
class Proposal:
    """A parameter change for one model (``params``: the target values before the step cap)."""

    model: str
    params: Mapping[str, float]
    source: str
    rationale: str = ""


def cap_step(current: float, target: float, max_step: float, kind: str = "absolute") -> float:
    """``target`` limited to ``current +- max_step`` (absolute) or ``current x (1 +- max_step)`` (relative).

    Chaos Labs caps each parameter change at +-3% per proposal [ChaosLabs-Aave];
    applied to margin fractions that is 3 percentage points by default.
    """
    if not max_step > 0:
        raise ValueError(f"max_step={max_step} must be > 0")
    if kind == "absolute":
        lo, hi = current - max_step, current + max_step
    elif kind == "relative":
        lo, hi = current * (1 - max_step), current * (1 + max_step)
        lo, hi = min(lo, hi), max(lo, hi)
    else:
        raise ValueError(f"kind={kind!r} must be 'absolute' or 'relative'")
    return float(min(max(target, lo), hi))

def scale_factor(result: BacktestResult, label: str, p: float) -> float:
    """``k = Q_{1-p}(L / M)``: the uniform multiplier of the margin that leaves an exception rate p.

    Over the window's valid (date, account) cells with margin M > 0 and MPOR
    loss L (the coverage backtest's arrays), the share of cells with
    ``L > k M`` is p (up to interpolation). k > 1: the margin is too low for
    the target; k < 1: it can come down.
    """
    cov = result.results[label].coverage
    sl = cov.rows(result.start, result.end)
    L, M, ok = cov.loss[sl], cov.margin[sl], cov.valid[sl]
    ok = ok & (M > 0)
    if not ok.any():
        return float("nan")
    return float(np.quantile(L[ok] / M[ok], 1.0 - p, method="higher"))


def _bounds(name: str, key: str) -> tuple[float, float]:
    return PARAMETER_BOUNDS.get((name, key), PARAMETER_BOUNDS.get(("*", key), (0.0, float("inf"))))


def _rule_keys(result: BacktestResult, label: str) -> tuple[str, ...]:
    """The rule parameters of a model that move its covered margin (im_multiplier only moves the initial)."""
    name, _ = spec_of(result, label)
    current = result.results[label].model.params()
    keys = tuple(k for k in RULE_PARAMETERS.get(name, ())
                 if isinstance(current.get(k), int | float) and not isinstance(current.get(k), bool))
    on = str(result.config.get("backtest", {}).get("coverage_on", "initial"))
    if on == "maintenance":
        keys = tuple(k for k in keys if k != "im_multiplier")
    return keys


def coverage_findings(result: BacktestResult, settings: Mapping[str, Any]) -> Table:
    """One finding per model: breach rate against the target, the multiplier k, and what it means.

    ``k`` is :func:`scale_factor`: the uniform multiplier of the covered margin
    that leaves the target exception rate. ``finding`` is ``under-coverage``
    when ``k > 1 + IN_LINE`` (the margin is too low for the target),
    ``over-coverage`` when ``k < 1 - IN_LINE`` (the margin could come down),
    else ``in line``; ``lever`` names the rule parameters a proposal moves, or
    says why there is none.
    """
    p = exception_rate(result, settings)
    rows = []
    for label in result.models:
        cov = result.results[label].coverage
        k = scale_factor(result, label, p)
        rate = float(cov.breach_rate)
        if not np.isfinite(k):
            finding = "n/a (no priced cell)"
        elif k > 1 + IN_LINE:
            finding = "under-coverage"
        elif k < 1 - IN_LINE:
            finding = "over-coverage"
        else:
            finding = "in line"
        name, _ = spec_of(result, label)
        keys = _rule_keys(result, label)
        if keys:
            cur = result.results[label].model.params()
            lever = ", ".join(keys)
            at = [key for key in keys if (k < 1 and cur[key] <= _bounds(name, key)[0])
                  or (k > 1 and cur[key] >= _bounds(name, key)[1])]
            if at and finding != "in line":
                lever += f" (at its bound {', '.join(f'{key} = {cur[key]:g}' for key in at)}: no change possible)"
        else:
            lever = f"none: {name} has no parameter the requirement is proportional to"
        rows.append({"model": label, "breach_rate": rate, "target_rate": p, "k": k, "finding": finding,
                     "lever": lever})
    return Table(pd.DataFrame(rows, columns=["model", "breach_rate", "target_rate", "k", "finding", "lever"]),
                 title=f"Coverage findings (target exception rate {p:.2%} over the MPOR)",
                 notes=[f"k = Q(1-p) of MPOR loss / margin over the window's priced cells: the multiplier of the "
                        f"covered margin that leaves the target rate p; 'in line' when |k - 1| < {IN_LINE:g}."],
                 formats={"breach_rate": "{:.2%}", "target_rate": "{:.2%}", "k": "{:.3f}"})


def rule_proposals(result: BacktestResult, settings: Mapping[str, Any]) -> list[Proposal]:
    """The documented proportional rule, for every method with a scale parameter (:data:`RULE_PARAMETERS`).

    Each scale parameter is multiplied by :func:`scale_factor` (exact when the
    requirement is proportional to it, as the initial margin is to
    ``im_multiplier``; first-order otherwise, e.g. with collateral haircuts or
    position tiers) and kept inside the parameter's admissible range
    (:data:`PARAMETER_BOUNDS`). Over-coverage (k < 1) gives a proposal to
    lower the margin, under-coverage (k > 1) one to raise it. Methods in line
    with the target (``|k - 1| < IN_LINE``), at the bound of their parameter,
    or without a scale parameter get no proposal (their finding says so).
    """
    p = exception_rate(result, settings)
    out = []
    for label in result.models:
        name, _ = spec_of(result, label)
        keys = _rule_keys(result, label)
        if not keys:
            continue
        current = result.results[label].model.params()
        k = scale_factor(result, label, p)
        if not np.isfinite(k) or abs(k - 1.0) < IN_LINE:
            continue  # in line with the target: the finding says so, no change is proposed
        target = {}
        for key in keys:
            lo, hi = _bounds(name, key)
            target[key] = float(min(max(float(current[key]) * k, lo), hi))
        if all(np.isclose(target[key], float(current[key])) for key in keys):
            continue  # every parameter already at its bound: the finding's lever says so
        clipped = [key for key in keys if not np.isclose(target[key], float(current[key]) * k)]
        note = f"k = Q(1-{p:g}) of MPOR loss / margin = {k:.3f}"
        if clipped:
            note += f"; target kept inside the admissible range of {', '.join(clipped)}"
        out.append(Proposal(label, target, "rule", note))
    return out


def calibration_proposals(result: BacktestResult, settings: Mapping[str, Any]
                          ) -> tuple[list[Proposal] | None, str, list[Table]]:
    """Proposals from :func:`riskmodels.calibrate.calibrate`, one per ``report.recommend.calibrate`` entry.

    Each entry searches one parameter of one model jointly on the backtest's
    book, window, MPOR, liquidation policy and the model's other config
    parameters (held fixed), for the least capital that meets its target.
    Returns ``(None, why, [])`` when there is no entry or no calibration
    module, else the proposals, a sentence, and the calibration tables.
    """
    specs = list(settings["recommend"]["calibrate"])
    if not specs:
        return None, "no [report.recommend] calibrate entries", []
    try:
        from riskmodels.calibrate import Target, calibrate  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None, "the calibration module (riskmodels.calibrate) is not available in this version", []
    bt = result.config.get("backtest", {})
    d0, d1 = result.panel.dates[result.start], result.panel.dates[result.end]
    props, tables = [], []
    for spec in specs:
        label = str(spec["model"])
        if label not in result.results:
            raise ValueError(f"report.recommend.calibrate: model {label!r} is not one of {result.models}")
        name, params = spec_of(result, label)
        param = str(spec["param"])
        tie = {str(k): float(v) for k, v in dict(spec.get("tie", {})).items()}
        fixed = {k: v for k, v in params.items() if k != param and k not in tie}
        target = Target(str(spec.get("target", "coverage")), float(spec.get("value", 0.01)),
                        side=str(spec.get("side", "combined")))
        kw: dict[str, Any] = {k: spec[k] for k in ("grid", "xtol", "max_iter") if k in spec}
        if "bounds" in spec:
            kw["bounds"] = tuple(float(b) for b in spec["bounds"])
        cres = calibrate(result.panel, name, param, target, per_asset=False, book=result.book, fixed=fixed,
                         tie=tie, mpor=int(bt.get("mpor", 2)), min_history=int(bt.get("min_history", 0)),
                         start=d0, end=d1, policy=result.results[label].simulation.policy,
                         coverage_on=str(bt.get("coverage_on", "initial")), **kw)
        row = cres.rows[0]
        ties = dict(cres.settings.get("tie", tie))
        new = {param: float(row.value), **{k: float(r) * float(row.value) for k, r in sorted(ties.items())}}
        props.append(Proposal(label, new, "calibration",
                              f"calibrate: {target}; achieved {row.achieved:.4g}; met {row.met}; "
                              f"monotone {row.monotone}"))
        t = cres.table()
        t.title = f"{label}: {t.title}"
        tables.append(t)
    return props, "riskmodels.calibrate (least capital meeting each target)", tables


def choose_proposals(result: BacktestResult, settings: Mapping[str, Any]
                     ) -> tuple[list[Proposal], str, list[Table]]:
    """Proposals per ``report.recommend.source``, a sentence saying where they came from, and evidence tables.

    ``auto``: the config's explicit proposals if any, else the calibration
    entries when :mod:`riskmodels.calibrate` exists, else the proportional rule.
    """
    rec = settings["recommend"]
    src = rec["source"]
    explicit = [Proposal(str(pr["model"]), {str(k): float(v) for k, v in dict(pr["params"]).items()}, "config",
                         str(pr.get("rationale", "explicit proposal in [report.recommend]")))
                for pr in rec["proposals"]]
    for pr in explicit:
        if pr.model not in result.results:
            raise ValueError(f"report.recommend.proposals: model {pr.model!r} is not one of {result.models}")
    if src == "none":
        return [], "no recommendation requested (report.recommend.source = 'none')", []
    if src == "explicit" or (src == "auto" and explicit):
        return explicit, "proposals listed in the config ([report.recommend] proposals)", []
    if src in ("calibration", "auto"):
        props, why, tables = calibration_proposals(result, settings)
        if props is not None:
            return props, f"calibration: {why}", tables
        if src == "calibration":
            raise ValueError(f"report.recommend.source = 'calibration' but {why}")
        return rule_proposals(result, settings), f"proportional rule ({why})", []
    return rule_proposals(result, settings), "proportional rule (report.recommend.source = 'rule')", []
