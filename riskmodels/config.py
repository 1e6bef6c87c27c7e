"""Backtest configuration: a TOML document, validated, with an embedded default.

A backtest is fully described by its config (data, universe, dates, book,
liquidation policy, models); the CLI and the API take the same document and
the report embeds it. ``riskmodels/configs/default.toml`` is the default; a
user's file is merged over it table by table (a user's ``[[models]]`` list
replaces the default list).
"""

from __future__ import annotations

import copy
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.errors import UserError, UserFileNotFound

SECTIONS = ("data", "book", "backtest", "liquidation", "models", "cascade", "calibrate", "sweep", "report", "market",
            "lending", "stress", "options")


def default_config() -> dict[str, Any]:
    """The embedded default configuration (a fresh copy)."""
    text = files("riskmodels").joinpath("configs/default.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def default_config_text() -> str:
    return files("riskmodels").joinpath("configs/default.toml").read_text(encoding="utf-8")


def example_names() -> list[str]:
    """Names of the example configs shipped in ``riskmodels/configs/`` (``default`` included)."""
    return sorted(p.name[:-5] for p in files("riskmodels").joinpath("configs").iterdir() if p.name.endswith(".toml"))


def example_config_text(name: str) -> str:
    """The shipped example config ``riskmodels/configs/<name>.toml``; an unknown name lists the valid ones."""
    if name not in example_names():
        raise ValueError(f"no example config {name!r}; valid: {', '.join(example_names())}")
    return files("riskmodels").joinpath(f"configs/{name}.toml").read_text(encoding="utf-8")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; lists and scalars replace."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing file or bad TOML raises naming the file."""
    p = Path(path)
    if not p.exists():
        raise UserFileNotFound(f"config file not found: {p}; check the path (`riskmodels config` prints the default)")
    if p.is_dir():
        raise UserError(f"{p}: is a directory; --config takes a TOML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not a UTF-8 text file (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r});"
                        " a config is a TOML text file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{p}: not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Default config, merged with the TOML file at ``path`` and ``overrides``."""
    from riskmodels.config_schema import check_document

    cfg = default_config()
    if path is not None:
        p = Path(path)
        cfg = merge(cfg, check_document(read_toml(p), str(p)))
    if overrides:
        cfg = merge(cfg, check_document(overrides, "command line"))
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the key and the valid values (checks across keys of the merged config).

    Types and ranges of single keys are checked by
    :func:`riskmodels.config_schema.check_document` on the user's file.
    """
    if not cfg.get("models"):
        raise UserError("the config lists no models: add at least one [[models]] table with a `name` "
                        "(see `riskmodels models`); an empty `models = []` is not a run")
    bt = cfg["backtest"]
    if int(bt["mpor"]) not in (1, 2, 3, 5, 10):
        raise ValueError(f"backtest.mpor={bt['mpor']} must be one of 1, 2, 3, 5, 10 days")
    if bt.get("coverage_on", "initial") not in ("initial", "maintenance"):
        raise ValueError("backtest.coverage_on must be 'initial' or 'maintenance'")
    if int(bt["min_history"]) < 0:
        raise ValueError("backtest.min_history must be >= 0 days")
    if int(cfg["book"]["accounts"]) < 1:
        raise ValueError("book.accounts must be >= 1")
    for i, m in enumerate(cfg["models"]):
        if not isinstance(m, dict) or "name" not in m:
            raise UserError(f"[[models]] #{i + 1} has no `name`; write name = \"...\" (see `riskmodels models`)")
    labels = [m.get("label") or m["name"] for m in cfg["models"]]
    if len(set(labels)) != len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise UserError(f"[[models]] labels must be unique, {dup} appear twice; give each a distinct label")
    liquidation_policy(cfg)  # validates
    if "stress" in cfg:
        from riskmodels.stress.config import StressConfig

        StressConfig.from_dict(cfg["stress"])  # validates


def liquidation_policy(cfg: dict[str, Any]) -> LiquidationPolicy:
    liq = dict(cfg["liquidation"])
    if liq.get("reentry_days", None) in (0, -1, "never"):
        liq["reentry_days"] = None
    if liq.get("maintenance_ratio", 0.5) == "model":
        liq["maintenance_ratio"] = None
    known = set(LiquidationPolicy.__dataclass_fields__)
    unknown = set(liq) - known
    if unknown:
        raise ValueError(f"[liquidation] has unknown key(s) {sorted(unknown)}; valid: {sorted(known)}")
    return LiquidationPolicy(**liq)
