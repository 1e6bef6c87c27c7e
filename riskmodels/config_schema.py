"""The config schema: every section and key a riskmodels TOML file may hold, and its type.

One schema serves every command (``backtest``, ``report``, ``cascade``,
``calibrate``, ``sweep``): :func:`check_document` checks a user's TOML
document before it is merged over the default, so a typo or a wrong type
stops the run before any work, with a message naming the file (and line),
the section, the key, the value and the remedy.

Where the keys come from
------------------------
* ``[data]``, ``[book]``, ``[backtest]``, ``[calibrate]``, ``[sweep]``: the
  annotated classes below (one line per key: ``name: hint``).
* ``[liquidation]``: the fields of :class:`~riskmodels.backtest.simulation.LiquidationPolicy`
  (a field added there is a key here); its ``__post_init__`` checks ranges.
* ``[[models]] params``: the model class's constructor signature (type hints
  and names) through the registry; its ``__init__`` checks ranges.
* ``[cascade]`` and ``[report]``: the types of their defaults
  (:data:`~riskmodels.cascade.cli.CASCADE_DEFAULTS`, :data:`~riskmodels.report.governance.REPORT_DEFAULTS`).

Adding a key: add one annotated line to the section's class (or a field to
the dataclass it derives from). Adding a section: a class here and one entry
in :data:`SECTION_SCHEMAS` (and the name in ``config.SECTIONS``).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from riskmodels.errors import UserError
from riskmodels.schema import (
    Date,
    Length,
    Pattern,
    Range,
    SubTable,
    check_table,
    check_value,
    hints_from_defaults,
    hints_of,
    line_of,
    unknown_key,
)

Unit = Annotated[float, Range(0, 1)]
Prob = Annotated[float, Range(0, 1, lo_open=True, hi_open=True)]
PosInt = Annotated[int, Range(1)]
NonNegInt = Annotated[int, Range(0)]


class DataKeys:
    """``[data]``: where the prices are and which of them the run uses."""

    dir: str
    interval: Annotated[str, Pattern(r"[1-9][0-9]*[smhdw]", "1d, 1h, 15m or 1w")]
    universe: list[str]
    start: Date
    end: Date
    policy: Literal["error", "drop_asset", "truncate"]
    columns: dict  # checked whole by riskmodels.data.options.LoaderOptions
    symbols: dict
    name_pattern: str
    max_file_mb: float


class BookKeys:
    """``[book]``: the generated (seeded) book, or a book file."""

    source: str
    accounts: PosInt
    seed: NonNegInt
    positions_per_account: Annotated[list[PosInt], Length(2)]
    group_size: Annotated[list[PosInt], Length(2)]  # related accounts per group, [lo, hi] (stress Cover-N)
    long_probability: Unit
    median_notional: Annotated[float, Range(0, lo_open=True)]
    isolated_share: Unit
    collateral_share: Annotated[list[Unit], Length(2)]
    collateral_assets: list[str]


class BacktestKeys:
    """``[backtest]``: the comparison's settings."""

    mpor: Literal[1, 2, 3, 5, 10]
    min_history: NonNegInt
    coverage_on: Literal["initial", "maintenance"]
    confidence: Prob
    netting: bool
    n_jobs: PosInt
    chunk_accounts: NonNegInt  # streamed run in chunks of this many accounts; 0 = automatic (riskmodels.backtest.stream)


class TargetKeys:
    kind: Literal["coverage", "kupiec", "liquidations", "bad_debt"]
    value: Annotated[float, Range(0)]
    level: Prob
    side: Literal["combined", "long", "short", "worst"]


class CalibrateKeys:
    """``[calibrate]``: the least-capital search (see ``riskmodels calibrate --help``)."""

    model: str
    param: str
    per_asset: bool
    assets: list[str]
    book: str
    params: dict
    tie: dict[str, float]
    bounds: Annotated[list[float], Length(2)]
    values: list[float]
    integer: bool
    increasing: bool
    grid: Annotated[int, Range(2)]
    xtol: Annotated[float, Range(0, lo_open=True)]
    max_iter: PosInt
    mpor: Literal[1, 2, 3, 5, 10]
    min_history: NonNegInt
    coverage_on: Literal["initial", "maintenance"]
    adv_fraction: Annotated[float, Range(0, lo_open=True)]
    adv_window: PosInt
    target: TargetKeys


class HeatmapKeys:
    metric: str
    x: str
    y: str


class SweepKeys:
    """``[sweep]``: the declared grid (see ``riskmodels sweep --help``)."""

    model: str
    label: str
    params: dict
    grid: dict
    heatmap: HeatmapKeys


class ModelKeys:
    """One ``[[models]]`` entry."""

    name: str
    label: str
    params: dict


def class_schema(cls: type) -> dict[str, Any]:
    """``key -> hint`` of an annotated class; an annotated class as a hint becomes a sub-table."""
    out: dict[str, Any] = {}
    for k, h in typing.get_type_hints(cls, include_extras=True).items():
        out[k] = SubTable(class_schema(h)) if isinstance(h, type) and h.__module__ == __name__ else h
    return out


def liquidation_schema() -> dict[str, Any]:
    from riskmodels.backtest.simulation import LiquidationPolicy

    s = hints_of(LiquidationPolicy)
    if "reentry_days" in s:  # 0, -1 or "never" = never re-open (config.liquidation_policy)
        s["reentry_days"] = int | Literal["never"]
    if "maintenance_ratio" in s:  # "model" = every model's own MM (config.liquidation_policy)
        s["maintenance_ratio"] = float | Literal["model"]
    return s


def cascade_schema() -> dict[str, Any]:
    from riskmodels.cascade.cli import CASCADE_DEFAULTS

    s = hints_from_defaults(CASCADE_DEFAULTS)
    s.update(start=Date, impact_params=dict, universe=list[str], close_factor=float, permanent=float)
    return s


def report_schema() -> dict[str, Any]:
    from riskmodels.report.governance import REPORT_DEFAULTS

    s = hints_from_defaults(REPORT_DEFAULTS)
    s.update(as_of=Date, shocks=list[float], leverages=list[float])
    rec = dict(s["recommend"].schema)
    rec.update(target_exception_rate=float | None, max_step=float, proposals=list[dict], calibrate=list[dict])
    s["recommend"] = SubTable(rec)
    sen = dict(s["sensitivity"].schema)
    sen["factors"] = SubTable({k: Annotated[list[float], Length(2)]
                               for k in REPORT_DEFAULTS["sensitivity"]["factors"]})
    s["sensitivity"] = SubTable(sen)
    return s


#: section name -> a function returning its schema (key -> hint); ``models`` is checked by :func:`check_models`
class MarketKeys:
    """``[market]``: which kind of book the run simulates."""

    kind: Literal["margin", "lending"]


def _check_lending(table: Any, where: str) -> Any:
    """``[lending]`` is checked whole by :meth:`riskmodels.lending.config.LendingConfig.from_dict`
    (nested per-asset, e-mode, generator, impact and recommender tables, each a dataclass)."""
    from riskmodels.lending.config import LendingConfig

    try:
        LendingConfig.from_dict(dict(table) if isinstance(table, Mapping) else table)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where}: [lending] {exc}") from None
    return table


def _check_stress(table: Any, where: str) -> Any:
    """``[stress]`` (and its ``[[stress.scenarios]]``) checked by :class:`riskmodels.stress.config.StressConfig`."""
    from riskmodels.stress.config import StressConfig

    try:
        StressConfig.from_dict(dict(table) if isinstance(table, Mapping) else table)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        raise UserError(f"{where}: {msg if msg.startswith('[stress') else '[stress] ' + msg}") from None
    return table


#: Sections whose nested structure is checked by their own validated dataclasses.
SECTION_CHECKERS: dict[str, Callable[[Any, str], Any]] = {"lending": _check_lending, "stress": _check_stress}

def options_schema() -> dict[str, Any]:
    """``[options]``: :class:`riskmodels.instruments.book_config.OptionsKeys` (vol source and strategy generator)."""
    from riskmodels.instruments.book_config import OptionsKeys, ProxyKeys

    s = dict(typing.get_type_hints(OptionsKeys, include_extras=True))
    s["proxy"] = SubTable(dict(typing.get_type_hints(ProxyKeys, include_extras=True)))
    return s


SECTION_SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "market": lambda: class_schema(MarketKeys),
    "data": lambda: class_schema(DataKeys),
    "book": lambda: class_schema(BookKeys),
    "backtest": lambda: class_schema(BacktestKeys),
    "liquidation": liquidation_schema,
    "cascade": cascade_schema,
    "calibrate": lambda: class_schema(CalibrateKeys),
    "sweep": lambda: class_schema(SweepKeys),
    "report": report_schema,
    "options": options_schema,
}


def _at(where: str, section: str | None, key: str) -> str:
    """``file:line: [section]`` (the line when it can be found)."""
    line = line_of(where, section, key) if where and Path(where).is_file() else None
    head = f"{where}:{line}" if line else where
    return f"{head}: [{section}]" if section else head


def model_class(name: Any, where: str) -> type:
    """The registered class of model ``name`` (error suggests the nearest name)."""
    import riskmodels.margin  # noqa: F401  (registers the built-in models)
    from riskmodels.margin import base

    names = base.available()
    if not isinstance(name, str):
        raise UserError(f"{where} name = {name!r} must be a model name in quotes; valid: {', '.join(names)}")
    if name not in base._REGISTRY:
        raise unknown_key(where, name, names, "margin model")
    return base._REGISTRY[name]


def check_params(model: str, params: Any, where: str) -> dict[str, Any]:
    """A model's ``params`` table against its constructor's names and type hints."""
    cls = model_class(model, where)
    return check_table(params, hints_of(cls), f"{where} params")


def check_models(models: Any, where: str) -> list[dict[str, Any]]:
    """``[[models]]``: a list of tables with ``name`` (required), ``label`` and ``params``."""
    if not isinstance(models, list):
        raise UserError(f"{where}: `models` must be a list of [[models]] tables, got {models!r}")
    out = []
    schema = class_schema(ModelKeys)
    heads: list[int] = []
    if where and Path(where).is_file():
        try:
            heads = [n for n, ln in enumerate(Path(where).read_text(encoding="utf-8").splitlines(), 1)
                     if ln.strip().replace(" ", "") == "[[models]]"]
        except (OSError, UnicodeDecodeError):
            heads = []
    for i, spec in enumerate(models):
        w = f"{where}:{heads[i]}: [[models]] #{i + 1}" if i < len(heads) else f"{where}: [[models]] #{i + 1}"
        spec = check_table(spec, schema, w, required=("name",))
        w = f"{w} ({spec.get('label') or spec['name']})"
        model_class(spec["name"], w)
        if "params" in spec:
            spec["params"] = check_params(spec["name"], spec["params"], w)
        out.append(spec)
    return out


def _sweep_extra(sec: dict[str, Any], where: str, schemas: Mapping[str, dict[str, Any]]) -> None:
    """``[sweep]``: fixed params and every grid axis value against the key's hint."""
    model = sec.get("model")
    if model is None:
        return
    hints = hints_of(model_class(model, f"{where} model"))
    if "params" in sec:
        sec["params"] = check_table(sec["params"], hints, f"{where} params ({model})")
    for ns, table in (sec.get("grid") or {}).items():
        space = {"model": hints, **{k: schemas[k] for k in ("book", "liquidation", "backtest", "data")}}.get(ns)
        if space is None or not isinstance(table, Mapping):
            continue  # parse_sweep names the namespace and the layout
        for key, vals in table.items():
            if key not in space:
                raise unknown_key(f"{where[:-1]}.grid.{ns}]", key, list(space))
            if isinstance(vals, list):
                for j, v in enumerate(vals):
                    check_value(v, space[key], f"{where[:-1]}.grid.{ns}] {key}[{j}]")


def _cascade_extra(sec: dict[str, Any], where: str) -> None:
    """``[cascade]``: the impact model's name and its ``impact_params`` against its constructor."""
    from riskmodels.cascade.impact import IMPACT_MODELS

    name = sec.get("impact")
    if name is None:
        if "impact_params" in sec:  # the default impact model's parameters
            from riskmodels.cascade.cli import CASCADE_DEFAULTS

            name = CASCADE_DEFAULTS["impact"]
        else:
            return
    if name not in IMPACT_MODELS:
        raise unknown_key(f"{where} impact", name, list(IMPACT_MODELS), "impact model")
    if "impact_params" in sec:
        sec["impact_params"] = check_table(sec["impact_params"], hints_of(IMPACT_MODELS[name], skip=("self",)),
                                           f"{where} impact_params ({name})")


def _calibrate_extra(sec: dict[str, Any], where: str) -> None:
    model, param = sec.get("model"), sec.get("param")
    if model is None:
        return
    hints = hints_of(model_class(model, f"{where} model"))
    if param is not None and param not in hints:
        raise unknown_key(f"{where} param", param, list(hints), f"parameter of {model}")
    if "params" in sec:
        sec["params"] = check_table(sec["params"], hints, f"{where} params ({model})")


def check_document(doc: Mapping[str, Any], where: str = "config", *, sections: tuple[str, ...] | None = None
                   ) -> dict[str, Any]:
    """Check a whole TOML document (as parsed) against the schema; return it normalised.

    ``where`` is the file name (or ``"config"``); every error names it, the
    section, the key (and the line when the file can be read), the value and
    the remedy. ``sections``: the valid section names (default: ``config.SECTIONS``).
    Values are normalised (TOML native dates become ``"YYYY-MM-DD"``); nothing
    is filled in: defaults are merged afterwards by :func:`riskmodels.config.load_config`.
    """
    from riskmodels.config import SECTIONS

    valid = tuple(sections or SECTIONS)
    if not isinstance(doc, Mapping):
        raise UserError(f"{where}: a config must be a TOML document of [section] tables")
    out: dict[str, Any] = {}
    schemas: dict[str, dict[str, Any]] = {}

    def schema(name: str) -> dict[str, Any]:
        if name not in schemas:
            schemas[name] = SECTION_SCHEMAS[name]()
        return schemas[name]

    for name, table in doc.items():
        if name not in valid:
            raise unknown_key(where, name, list(valid), "section")
        if name == "models":
            out[name] = check_models(table, where)
            continue
        if name in SECTION_CHECKERS:
            out[name] = SECTION_CHECKERS[name](table, where)
            continue
        if name not in SECTION_SCHEMAS:  # a section another module declares without a schema yet
            out[name] = table
            continue
        sch = schema(name)
        if not isinstance(table, Mapping):
            raise UserError(f"{where}: `{name}` must be a [{name}] table, got {table!r}")
        for key in table:
            if key == "models":
                raise UserError(f"{_at(where, name, key)}: `models` is not a key of [{name}]; margin models are "
                                "[[models]] tables at the top level of the file, each with a `name`")
            if key not in sch:
                raise unknown_key(_at(where, name, key), key, list(sch))
        w = f"{where}: [{name}]"
        try:
            sec = check_table(table, sch, w)
        except UserError as exc:
            key = str(exc).split("]", 1)[1].split()[0].split("[")[0] if "]" in str(exc) else ""
            line = line_of(where, name, key) if key and Path(where).is_file() else None
            if line:
                raise UserError(str(exc).replace(f"{where}: ", f"{where}:{line}: ", 1)) from None
            raise
        if name == "liquidation":
            _check_policy(sec, w)
        elif name == "data":
            _data_extra(sec, w)
        elif name == "sweep":
            _sweep_extra(sec, w, {k: schema(k) for k in ("book", "liquidation", "backtest", "data")})
        elif name == "calibrate":
            _calibrate_extra(sec, w)
        elif name == "cascade":
            _cascade_extra(sec, w)
        out[name] = sec
    return out


def _data_extra(sec: dict[str, Any], where: str) -> None:
    """``[data]`` loader keys (column map, asset names, size limit) by :class:`LoaderOptions`."""
    from riskmodels.data.options import LoaderOptions

    keys = ("columns", "symbols", "name_pattern", "max_file_mb")
    if any(k in sec for k in keys):
        try:
            LoaderOptions(**{k: sec[k] for k in keys if k in sec})
        except (ValueError, TypeError) as exc:
            head = where[: -len(": [data]")] if where.endswith(": [data]") else where
            raise UserError(f"{head}: {exc}") from None


def _check_policy(sec: dict[str, Any], where: str) -> None:
    """Ranges of ``[liquidation]`` by the policy's own checks (before any work)."""
    from riskmodels.backtest.simulation import LiquidationPolicy

    liq = dict(sec)
    if liq.get("reentry_days") in (0, -1, "never"):
        liq["reentry_days"] = None
    if liq.get("maintenance_ratio") == "model":
        liq["maintenance_ratio"] = None
    try:
        LiquidationPolicy(**liq)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where} {exc}") from None


__all__ = ["SECTION_CHECKERS", "SECTION_SCHEMAS", "check_document", "check_models", "check_params", "class_schema", "model_class"]
