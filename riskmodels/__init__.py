"""riskmodels: compare cross-margin methods on real crypto price history."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# numba caches a kernel by its own file only: drop the cache when any kernel source changed (_cache_stamp.py)
from riskmodels import _cache_stamp

_cache_stamp.refresh()

__all__ = ["Book", "PricePanel", "__version__", "generate_book"]

# imported on first use (PEP 562): ``import riskmodels`` (and ``riskmodels --help``)
# must not pay for numpy/pandas
_LAZY = {"PricePanel": "riskmodels.data.panel", "Book": "riskmodels.portfolio", "generate_book": "riskmodels.portfolio"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'riskmodels' has no attribute {name!r}")
