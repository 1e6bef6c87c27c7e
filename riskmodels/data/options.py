"""The ``[data]`` keys that tell the loader how to read other people's files.

========================  =========================================================
key                       meaning
========================  =========================================================
``columns``               column map ``{ date = "day", close = "Close Price" }``
                          (:mod:`riskmodels.data.columns`); ``{}`` = recognised names
``symbols``               file name -> asset, ``{ "bitcoin.csv" = "BTC" }``
                          (:mod:`riskmodels.data.naming`)
``name_pattern``          regular expression with a group ``asset`` matched against
                          each file name without extension; ``""`` = built-in rule
``max_file_mb``           a price file larger than this (MiB) is refused (default 512)
========================  =========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from riskmodels.data.columns import check_column_map
from riskmodels.data.naming import compile_pattern

__all__ = ["LoaderOptions"]


@dataclass(frozen=True)
class LoaderOptions:
    """How to read price files: column map, asset names, file-size limit."""

    columns: dict[str, str] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)
    name_pattern: str = ""
    max_file_mb: float = 512.0

    def __post_init__(self) -> None:
        check_column_map(self.columns, "[data] columns")
        if not isinstance(self.symbols, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) and v.strip()
                for k, v in self.symbols.items()):
            raise ValueError(f"[data] symbols must map file names to asset names, e.g. "
                             f"{{ \"bitcoin.csv\" = \"BTC\" }}, got {self.symbols!r}")
        if not isinstance(self.name_pattern, str):
            raise ValueError(f"[data] name_pattern must be text (a regular expression), got "
                             f"{self.name_pattern!r}")
        compile_pattern(self.name_pattern, "[data] name_pattern")
        mb = self.max_file_mb
        if isinstance(mb, bool) or not isinstance(mb, (int, float)) or not 0 < mb <= 1_048_576:
            raise ValueError(f"[data] max_file_mb = {mb!r} must be a number of MiB in "
                             "(0, 1048576]; the default is 512")

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> LoaderOptions:
        """The options from a config's ``[data]`` table (absent keys take the defaults)."""
        kw = {k: data[k] for k in ("columns", "symbols", "name_pattern", "max_file_mb")
              if k in data}
        return cls(**kw)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`~riskmodels.data.loaders.load_panel` / ``load_files``."""
        return {"columns": dict(self.columns) or None, "symbols": dict(self.symbols) or None,
                "name_pattern": self.name_pattern or None,
                "max_bytes": int(self.max_file_mb * 2**20)}
