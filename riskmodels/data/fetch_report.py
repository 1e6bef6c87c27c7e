"""What a ``riskmodels data fetch`` run did: per-file failures, per-symbol and whole-run reports.

:class:`FetchReport` (returned by :func:`riskmodels.data.fetch.fetch`) holds one
:class:`SymbolReport` per symbol, each listing the files fetched, skipped (already
cached), missing (HTTP 404) and failed (:class:`FileFailure`), and prints as a
plain-text table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from riskmodels.data.kline_archive import _fmt_ts

# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class FileFailure:
    """One file that could not be fetched after all retries."""

    url: str
    reason: str


@dataclass
class SymbolReport:
    """What happened to one symbol.

    ``fetched``: ZIPs downloaded and verified in this run; ``skipped``: ZIPs
    already in the cache; ``missing``: URLs the archive answered 404 for
    (including cached 404s); ``failed``: files that failed after all retries
    (never stored); ``first``/``last``: first and last bar in the Parquet file.
    """

    symbol: str
    pair: str
    interval: str
    fetched: int = 0
    skipped: int = 0
    missing: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    rows: int = 0
    path: Path | None = None
    bytes_downloaded: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """True when a Parquet file with at least one bar was written."""
        return self.path is not None and self.rows > 0


@dataclass
class FetchReport:
    """Result of :func:`fetch`: one :class:`SymbolReport` per symbol."""

    dest: Path
    interval: str
    base_url: str
    start: date
    end: date
    symbols: dict[str, SymbolReport] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when at least one symbol has usable data."""
        return any(r.usable for r in self.symbols.values())

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.symbols.values())

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.symbols.values())

    @property
    def failed(self) -> list[FileFailure]:
        return [f for r in self.symbols.values() for f in r.failed]

    @property
    def bytes_downloaded(self) -> int:
        return sum(r.bytes_downloaded for r in self.symbols.values())

    def table(self) -> str:
        """Plain-text summary: one row per symbol, then failures and messages."""
        head = ("symbol", "fetched", "skipped", "missing", "failed", "rows", "first", "last")
        rows = [head]
        for r in self.symbols.values():
            rows.append((
                r.pair, str(r.fetched), str(r.skipped), str(len(r.missing)), str(len(r.failed)),
                str(r.rows), _fmt_ts(r.first), _fmt_ts(r.last),
            ))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in rows]
        usable = sum(r.usable for r in self.symbols.values())
        lines.append(
            f"{usable}/{len(self.symbols)} symbols usable; {self.fetched} files fetched "
            f"({self.bytes_downloaded / 1e6:.2f} MB), {self.skipped} already cached, "
            f"{len(self.failed)} failed, in {self.elapsed:.1f} s -> {self.dest}"
        )
        for r in self.symbols.values():
            for f in r.failed:
                lines.append(f"FAILED {f.url}: {f.reason}")
            for m in r.messages:
                lines.append(f"{r.pair}: {m}")
        return "\n".join(lines)
