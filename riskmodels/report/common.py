"""Helpers shared by the report's sections: a model's config spec, settings flattening, JSON values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from riskmodels.backtest.result import BacktestResult

__all__ = ["exception_rate", "flat_items", "fmt_setting", "jsonable", "refit_model", "spec_of"]


def spec_of(result: BacktestResult, label: str) -> tuple[str, dict[str, Any]]:
    """Registry name and constructor parameters of a model (from the config when it has them)."""
    model = result.results[label].model
    for spec in result.config.get("models", []) or []:
        if (spec.get("label") or spec["name"]) == label:
            return str(spec["name"]), dict(spec.get("params", {}))
    return str(type(model).name), {}


def exception_rate(result: BacktestResult, settings: Mapping[str, Any]) -> float:
    p = settings["recommend"].get("target_exception_rate")
    if p is None:
        p = 1.0 - float(result.config.get("backtest", {}).get("confidence", 0.99))
    return float(p)

def refit_model(result: BacktestResult, label: str, params: Mapping[str, Any]) -> Any:
    """The model of ``label`` rebuilt with ``params`` overriding its config parameters, fitted on the panel."""
    import riskmodels.margin  # noqa: F401  (registers the built-in models)
    from riskmodels.margin import base as margin_base

    name, spec = spec_of(result, label)
    spec.update(params)
    model = margin_base.get(name, label=label, **spec)
    return model.fit(result.panel)

def flat_items(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k in sorted(d):
        v = d[k]
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out += flat_items(v, key + ".")
        else:
            out.append((key, v))
    return out


def fmt_setting(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(fmt_setting(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {fmt_setting(v[k])}" for k in sorted(v)) + "}"
    return str(v)

def jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, np.generic):
        return v.item()
    return v
