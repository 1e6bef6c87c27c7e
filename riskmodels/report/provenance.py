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

__all__ = ["git_commit", "seeds", "versions"]


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
