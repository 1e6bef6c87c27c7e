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

SECTIONS = ("data", "book", "backtest", "liquidation", "models", "cascade", "calibrate", "sweep", "report", "stress")


def default_config() -> dict[str, Any]:
    """The embedded default configuration (a fresh copy)."""
    text = files("riskmodels").joinpath("configs/default.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def default_config_text() -> str:
    return files("riskmodels").joinpath("configs/default.toml").read_text(encoding="utf-8")


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
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Default config, merged with the TOML file at ``path`` and ``overrides``."""
    cfg = default_config()
    if path is not None:
        p = Path(path)
        user = read_toml(p)
        unknown = set(user) - set(SECTIONS)
        if unknown:
            raise ValueError(f"{p}: unknown section(s) {sorted(unknown)}; valid sections: {list(SECTIONS)}")
        cfg = merge(cfg, user)
    if overrides:
        cfg = merge(cfg, overrides)
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the key and the valid values."""
    bt = cfg["backtest"]
    if int(bt["mpor"]) not in (1, 2, 3, 5, 10):
        raise ValueError(f"backtest.mpor={bt['mpor']} must be one of 1, 2, 3, 5, 10 days")
    if bt.get("coverage_on", "initial") not in ("initial", "maintenance"):
        raise ValueError("backtest.coverage_on must be 'initial' or 'maintenance'")
    if int(bt["min_history"]) < 0:
        raise ValueError("backtest.min_history must be >= 0 days")
    if int(cfg["book"]["accounts"]) < 1:
        raise ValueError("book.accounts must be >= 1")
    if not cfg.get("models"):
        raise ValueError("the config lists no [[models]]")
    labels = [m.get("label") or m["name"] for m in cfg["models"]]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be unique, got {labels}")
    liquidation_policy(cfg)  # validates
    if "stress" in cfg:
        from riskmodels.stress.config import StressConfig

        StressConfig.from_dict(cfg["stress"])  # validates


def liquidation_policy(cfg: dict[str, Any]) -> LiquidationPolicy:
    liq = dict(cfg["liquidation"])
    if liq.get("reentry_days", None) in (0, -1, "never"):
        liq["reentry_days"] = None
    known = set(LiquidationPolicy.__dataclass_fields__)
    unknown = set(liq) - known
    if unknown:
        raise ValueError(f"[liquidation] has unknown key(s) {sorted(unknown)}; valid: {sorted(known)}")
    return LiquidationPolicy(**liq)
