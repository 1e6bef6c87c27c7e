"""Section "Reproducibility": commit, versions, seeds."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.report.common import flat_items
from riskmodels.report.document import Block, Code, Heading, TableBlock

__all__ = ["build_section", "git_commit", "seeds", "versions"]


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                             check=False)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit() -> str:
    """``HEAD`` of the source tree, with ``+uncommitted`` when tracked files differ from it; else ``unknown``."""
    head = _git("rev-parse", "HEAD")
    if not head:
        return "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + (" +uncommitted changes" if dirty else "")


def seeds(cfg: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for key, v in flat_items({k: v for k, v in cfg.items() if k != "models"}):
        if key.split(".")[-1] == "seed":
            out.append((key, v))
    for spec in cfg.get("models", []) or []:
        for k, v in sorted(dict(spec.get("params", {})).items()):
            if k == "seed":
                out.append((f"models[{spec.get('label') or spec['name']}].{k}", v))
    return out


def versions() -> list[tuple[str, str]]:
    import matplotlib
    import scipy

    from riskmodels import __version__

    return [("riskmodels", __version__), ("python", platform.python_version()), ("numpy", np.__version__),
            ("pandas", pd.__version__), ("scipy", scipy.__version__), ("matplotlib", matplotlib.__version__)]


def build_section(ctx: Any) -> list[Block]:
    """Commit, versions, data fingerprint and files, seeds, the command, the config as written and resolved."""
    import json

    from riskmodels.backtest._testresult import Table
    from riskmodels.report.common import fmt_setting, jsonable

    result, panel = ctx.result, ctx.result.panel
    prov = [("commit", ctx.commit if ctx.commit is not None else git_commit()), *versions(),
            ("data directory", str(ctx.data_dir) if ctx.data_dir is not None else "-"),
            ("data fingerprint (sha256 of the panel)", panel.fingerprint()),
            *[(f"seed {k}", fmt_setting(v)) for k, v in seeds(result.config)],
            ("command", ctx.command or "-")]
    blocks: list[Block] = [TableBlock("provenance", Table(pd.DataFrame(prov, columns=["item", "value"]),
                                                          title="Provenance"))]
    if panel.sources:
        src = pd.DataFrame(sorted(panel.sources.items()), columns=["asset", "sha256"])
        blocks.append(TableBlock("data_files", Table(src, title="Data files (sha256 of each source file)")))
    if ctx.command:
        blocks += [Heading("Regenerate this report"), Code(ctx.command, "sh")]
    if ctx.config_text:
        blocks += [Heading("Config as written"), Code(ctx.config_text.rstrip("\n"), "toml")]
    blocks += [Heading("Config as resolved (defaults merged)"),
               Code(json.dumps(jsonable(result.config), indent=2, sort_keys=True), "json")]
    return blocks
