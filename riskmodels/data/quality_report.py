"""What the data-quality checks report: defect kinds, :class:`Defect`, :class:`QualityReport`.

The kinds and severities (``error``: the defect would corrupt results;
``warning``: usable, but the user should know) are tabulated in
:mod:`riskmodels.data.validate`, which finds them. A :class:`Defect` names the
asset, the kind, the first and last dates and a remedy; a :class:`QualityReport`
collects them (as a table, text or HTML). :class:`DataError` (raised when error
defects are not handled by a policy) and :class:`DataQualityWarning` live here
too, with :func:`format_timestamp`, the date format of every message.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd

Severity = Literal["error", "warning"]


ERROR_KINDS = frozenset(
    {
        "empty",
        "duplicate_dates",
        "nan_price",
        "infinite_price",
        "infinite_volume",
        "nonpositive_price",
        "nan_volume",
        "negative_volume",
        "ohlc_inconsistent",
        "gap",
        "interval_mismatch",
        "short_spacing",
        "misaligned",
        "bad_tick",
        "splice",
    }
)


WARNING_KINDS = frozenset({"unsorted", "zero_volume", "short_history", "stale", "gap_filled"})


class DataError(ValueError):
    """A data file or price series cannot be used as it is.

    The message names the file or the asset, the date(s) and the remedy.
    """


class DataQualityWarning(UserWarning):
    """The loader changed the data under an explicit policy (dropped an asset,
    truncated a series, filled a flagged gap). The change is also in
    ``panel.quality``."""


@dataclass(frozen=True)
class Defect:
    """One data defect.

    Attributes
    ----------
    asset : str
        Asset symbol.
    kind : str
        One of the kinds in the module docstring.
    first, last : pandas.Timestamp or None
        First and last timestamp concerned (for a gap: the first and last
        missing timestamp; for a stale series: its last row and the others'
        last timestamp).
    count : int
        Number of rows (or missing bars) concerned.
    severity : {"error", "warning"}
    message : str
        What is wrong, where, and the remedy.
    """

    asset: str
    kind: str
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    count: int
    severity: Severity
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def dates(self) -> str:
        """``first`` (and ``..last``) as text."""
        if self.first is None:
            return "-"
        a = format_timestamp(self.first)
        if self.last is None or self.last == self.first:
            return a
        return f"{a}..{format_timestamp(self.last)}"

    def __str__(self) -> str:
        return f"{self.asset} {self.kind} [{self.severity}] {self.dates()} (n={self.count}): {self.message}"


def format_timestamp(ts: pd.Timestamp) -> str:
    """``2024-01-02`` for midnight, else ``2024-01-02 13:00``."""
    ts = pd.Timestamp(ts)
    if ts == ts.normalize():
        return str(ts.date())
    return ts.strftime("%Y-%m-%d %H:%M")


_COLUMNS = ("asset", "kind", "severity", "first", "last", "count", "message")


class QualityReport:
    """The defects found in a set of price series.

    Parameters
    ----------
    defects : iterable of Defect
    assets : iterable of str, optional
        The assets that were checked (also those without any defect).
    interval : str, optional
        Bar interval the checks assumed (``"1d"``, ``"1h"``...).
    """

    def __init__(self, defects: Iterable[Defect], assets: Iterable[str] = (),
                 interval: str | None = None) -> None:
        self.defects: list[Defect] = list(defects)
        self.assets: tuple[str, ...] = tuple(assets)
        self.interval = interval

    # ------------------------------------------------------------ selection
    @property
    def errors(self) -> list[Defect]:
        """Error-severity defects."""
        return [d for d in self.defects if d.severity == "error"]

    @property
    def warnings(self) -> list[Defect]:
        """Warning-severity defects."""
        return [d for d in self.defects if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error-severity defect."""
        return not self.errors

    def by_asset(self, asset: str) -> list[Defect]:
        """Defects of one asset (empty list if it is clean)."""
        return [d for d in self.defects if d.asset == asset]

    def by_kind(self, kind: str) -> list[Defect]:
        """Defects of one kind."""
        return [d for d in self.defects if d.kind == kind]

    def error_assets(self) -> list[str]:
        """Assets with at least one error, in report order."""
        return list(dict.fromkeys(d.asset for d in self.errors))

    def __len__(self) -> int:
        return len(self.defects)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.defects)

    # -------------------------------------------------------------- display
    def to_frame(self) -> pd.DataFrame:
        """One row per defect: asset, kind, severity, first, last, count, message."""
        if not self.defects:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in _COLUMNS})
        rows = [asdict(d) for d in self.defects]
        return pd.DataFrame(rows)[list(_COLUMNS)]

    def summary(self) -> str:
        n_err, n_warn = len(self.errors), len(self.warnings)
        return (
            f"QualityReport: {len(self.assets)} assets checked, {n_err} errors, {n_warn} warnings"
            + (f" (interval {self.interval})" if self.interval else "")
        )

    def __str__(self) -> str:
        head = self.summary()
        if not self.defects:
            return head + "\nno defects found"
        lines = [head]
        w_asset = max(5, *(len(d.asset) for d in self.defects))
        w_kind = max(4, *(len(d.kind) for d in self.defects))
        w_dates = max(5, *(len(d.dates()) for d in self.defects))
        lines.append(
            f"{'asset':<{w_asset}}  {'kind':<{w_kind}}  {'sev':<7}  {'dates':<{w_dates}}  "
            f"{'count':>6}  message"
        )
        for d in self.defects:
            lines.append(
                f"{d.asset:<{w_asset}}  {d.kind:<{w_kind}}  {d.severity:<7}  "
                f"{d.dates():<{w_dates}}  {d.count:>6}  {d.message}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<{self.summary()}>"

    def _repr_html_(self) -> str:
        head = html.escape(self.summary())
        if not self.defects:
            return f"<p>{head}: no defects found</p>"
        cells = ["<tr>" + "".join(f"<th>{c}</th>" for c in ("asset", "kind", "severity", "dates", "count", "message")) + "</tr>"]
        for d in self.defects:
            colour = "#fdd" if d.severity == "error" else "#ffd"
            vals = (d.asset, d.kind, d.severity, d.dates(), str(d.count), d.message)
            cells.append(
                f'<tr style="background:{colour}">'
                + "".join(f"<td>{html.escape(v)}</td>" for v in vals)
                + "</tr>"
            )
        return f"<p>{head}</p><table>{''.join(cells)}</table>"
