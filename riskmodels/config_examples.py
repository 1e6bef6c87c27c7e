"""``riskmodels config [--example NAME] [--out FILE]``: the commented example configs shipped with the package.

Every ``riskmodels/configs/<name>.toml`` is an example (``default`` is the
config ``riskmodels backtest`` runs without ``--config``); adding a file there
adds an example, nothing else changes. Each example is a valid config for the
command its header names (tested).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

__all__ = ["available_examples", "cmd_config", "example_text"]


def available_examples() -> list[str]:
    """Names of the shipped example configs (``default``, ``calibrate``, ``sweep``, ...)."""
    return sorted(p.name[:-5] for p in files("riskmodels").joinpath("configs").iterdir() if p.name.endswith(".toml"))


def example_text(name: str) -> str:
    """The text of ``riskmodels/configs/<name>.toml``; an unknown name is an error listing the valid ones."""
    names = available_examples()
    if name not in names:
        raise ValueError(f"--example {name!r}: no such example config; valid: {', '.join(names)}")
    return files("riskmodels").joinpath(f"configs/{name}.toml").read_text(encoding="utf-8")


def cmd_config(args: argparse.Namespace) -> int:
    """Print (or write with ``--out``) the default config or a named example."""
    text = example_text(getattr(args, "example", None) or "default")
    out = getattr(args, "out", None)
    if not out:
        sys.stdout.write(text)
        return 0
    path = Path(out)
    if path.exists() and not getattr(args, "force", False):
        raise FileExistsError(f"--out {path}: the file exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    sys.stderr.write(f"wrote {path}\n")
    return 0


def add_config_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--example", metavar="NAME",
                   help=f"a commented example config instead of the default ({', '.join(available_examples())})")
    c.add_argument("--out", help="write the config to this file instead of printing it")
    c.add_argument("--force", action="store_true", help="overwrite --out if it exists")
