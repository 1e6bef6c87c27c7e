"""The declared sweep grid: the ``[sweep]`` section parsed into points.

:func:`parse_sweep` reads ``[sweep]`` (model, label, fixed params, grid axes in
the ``model``/``book``/``liquidation``/``backtest``/``data`` namespaces, heatmap)
into a :class:`SweepSpec`, whose points (:class:`Point`) are the Cartesian product
of the axes; :func:`point_key` is a point's content hash (its resolved config and
the panel fingerprint), the name of its result file.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

AXIS_NAMESPACES = ("model", "book", "liquidation", "backtest", "data")
DATA_AXES = ("start", "end")
SWEEP_KEYS = {"model", "label", "params", "grid", "heatmap"}


# --------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Point:
    """One grid point: its number, key, axis values and full backtest config."""

    index: int
    key: str
    values: dict[str, Any]
    config: dict[str, Any]
    display: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: base config, model, fixed parameters and axes."""

    base: dict[str, Any]
    model: str
    label: str
    params: dict[str, Any]
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    heatmap: dict[str, str] = field(default_factory=dict)

    @property
    def axis_names(self) -> list[str]:
        return [a for a, _ in self.axes]

    @property
    def size(self) -> int:
        return math.prod(len(v) for _, v in self.axes)

    def point_config(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The full backtest config of one point."""
        from riskmodels.config import merge

        over: dict[str, dict[str, Any]] = {}
        params = dict(self.params)
        for name, v in values.items():
            ns, key = name.split(".", 1)
            if ns == "model":
                params[key] = v
            else:
                over.setdefault(ns, {})[key] = v
        cfg = merge(self.base, over)
        cfg["models"] = [{"name": self.model, "label": self.label, "params": _single_threaded(self.model, params)}]
        return cfg

    def points(self, fingerprint: str) -> list[Point]:
        names = self.axis_names
        as_json = {a: _needs_json(v) for a, v in self.axes}
        out = []
        for i, combo in enumerate(itertools.product(*(v for _, v in self.axes))):
            values = dict(zip(names, combo, strict=True))
            cfg = self.point_config(values)
            display = {a: json.dumps(v, sort_keys=True) if as_json[a] else v for a, v in values.items()}
            out.append(Point(i, point_key(cfg, fingerprint), values, cfg, display))
        return out


def _needs_json(values: Sequence[Any]) -> bool:
    """An axis shows as JSON text when a value is a table/list or its values mix text and numbers."""
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int | float):
            kinds.add("number")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            return True
    return len(kinds) > 1


def _single_threaded(model: str, params: dict[str, Any]) -> dict[str, Any]:
    """Add ``n_jobs=1`` for models that parallelise internally (the sweep already does)."""
    import riskmodels.margin  # noqa: F401
    from riskmodels.margin import base

    base.available()
    cls = base._REGISTRY.get(model)
    if cls is not None and "n_jobs" in inspect.signature(cls.__init__).parameters and "n_jobs" not in params:
        return {**params, "n_jobs": 1}
    return params


def point_key(cfg: Mapping[str, Any], fingerprint: str) -> str:
    """16 hex digits of sha256 over the canonical JSON of the config (minus data.dir), the fingerprint
    and the package version (a point computed by another version of the code is not reused)."""
    from riskmodels import __version__

    c = copy.deepcopy(dict(cfg))
    c.get("data", {}).pop("dir", None)
    text = json.dumps({"config": c, "data": fingerprint, "riskmodels": __version__}, sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_sweep(doc: Mapping[str, Any], where: str = "config") -> SweepSpec:
    """Validate a sweep document (the TOML as a dict) into a :class:`SweepSpec`.

    Every point's model and liquidation policy are built here, so a bad grid
    value fails before any work starts, with the model's own error message.
    """
    from riskmodels.backtest.engine import build_models
    from riskmodels.calibrate import parse_doc
    from riskmodels.config import (
        SECTIONS,
        default_config,
        liquidation_policy,
        merge,
        validate_config,
    )

    base, sec = parse_doc(dict(doc), "sweep", SECTIONS, default_config, merge, validate_config, where)
    base.pop("models", None)
    unknown = set(sec) - SWEEP_KEYS
    if unknown:
        raise ValueError(f"[sweep] has unknown key(s) {sorted(unknown)}; valid: {sorted(SWEEP_KEYS)}")
    if "model" not in sec:
        raise ValueError("[sweep] needs `model` (a registered margin model; see `riskmodels models`)")
    grid = sec.get("grid") or {}
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("[sweep.grid] must declare at least one axis, e.g. [sweep.grid.model] haircut = [0.05, 0.1]")
    axes: list[tuple[str, tuple[Any, ...]]] = []
    for ns, table in grid.items():
        if ns not in AXIS_NAMESPACES:
            raise ValueError(f"[sweep.grid.{ns}]: unknown axis namespace; valid: {list(AXIS_NAMESPACES)}")
        if not isinstance(table, Mapping):
            raise ValueError(f"[sweep.grid.{ns}] must be a table of `name = [values]`")
        for key, vals in table.items():
            name = f"{ns}.{key}"
            if not isinstance(vals, list) or not vals:
                raise ValueError(f"grid axis {name} must be a non-empty list of values, got {vals!r}")
            if ns == "data" and key not in DATA_AXES:
                raise ValueError(f"grid axis {name}: only data.start and data.end can vary")
            if ns in ("book", "liquidation", "backtest") and key not in base[ns]:
                raise ValueError(f"grid axis {name}: unknown key; valid: {sorted(base[ns])}")
            if len({json.dumps(v, sort_keys=True) for v in vals}) != len(vals):
                raise ValueError(f"grid axis {name} repeats a value: {vals!r}")
            axes.append((name, tuple(vals)))
    spec = SweepSpec(base, str(sec["model"]), str(sec.get("label") or sec["model"]), dict(sec.get("params", {})),
                     tuple(axes), dict(sec.get("heatmap", {})))
    for combo in itertools.product(*(v for _, v in spec.axes)):  # validate every point up front
        cfg = spec.point_config(dict(zip(spec.axis_names, combo, strict=True)))
        validate_config(cfg)
        liquidation_policy(cfg)
        build_models(cfg)
    for k in ("x", "y"):
        if k in spec.heatmap and spec.heatmap[k] not in spec.axis_names:
            raise ValueError(f"[sweep.heatmap] {k}={spec.heatmap[k]!r} is not an axis; axes: {spec.axis_names}")
    return spec
