"""The terminal output of ``riskmodels backtest``: one comparison table that fits the width, then file paths.

:func:`console_table` renders any table with a ``model`` column in at most
``width`` characters: the columns of :data:`CONSOLE_COLUMNS` first (in that
order, those present), then any other column of the table (e.g. one a later
version adds to the comparison) while it fits; the columns left out are
named in a last line, and ``-v`` prints the full tables. Values are formatted
by the table's explicit formats, else by the unit the column name declares
(:mod:`riskmodels.units`: percent, bp, ``$`` with thousands separators,
p-values to 3 significant digits with ``<0.001``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import pandas as pd

from riskmodels.backtest._testresult import Table, format_value
from riskmodels.units import unit_formatter

__all__ = ["CONSOLE_COLUMNS", "SHORT_LABELS", "console_table", "format_column"]

#: preferred columns of the console comparison, in order (those the table has)
CONSOLE_COLUMNS: tuple[str, ...] = (
    "model", "mean_im_per_notional", "implied_max_leverage", "liquidations_per_account_year",
    "bad_debt_bp_per_year", "breach_rate", "coverage_zone", "coverage_verdict",
)

#: short headers for the terminal (a column without one shows its name)
SHORT_LABELS: dict[str, str] = {
    "model": "model",
    "mean_im_per_notional": "IM/notional",
    "p95_im_per_notional": "IM/notl P95",
    "implied_max_leverage": "max lev",
    "liquidations_per_account_year": "liq/acct-yr",
    "bad_debt_bp_per_year": "bad debt bp/yr",
    "breach_rate": "breach",
    "coverage_zone": "zone",
    "coverage_verdict": "verdict",
    "peak_to_trough": "peak/trough",
    "max_30d_increase_rel": "max 30d rise",
}

MAX_MODEL_WIDTH = 28


def format_column(table: Table, column: str) -> list[str]:
    """The displayed values of one column: explicit format, else the column's unit, else the generic format."""
    fmt: Any = table.formats.get(column) or unit_formatter(column)
    out = []
    for v in table.to_frame()[column].tolist():
        if fmt is None or v is None or isinstance(v, str | bool) or (isinstance(v, float) and v != v):
            out.append(format_value(v))
            continue
        try:
            out.append(fmt(v) if callable(fmt) else fmt.format(v))
        except (TypeError, ValueError):
            out.append(format_value(v))
    return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def console_table(table: Table, width: int = 120, columns: Sequence[str] | None = None,
                  title: str | None = None) -> str:
    """``table`` as text of at most ``width`` characters per line (see the module docstring)."""
    frame: pd.DataFrame = table.to_frame()
    have = [str(c) for c in frame.columns]
    preferred = [c for c in (columns or CONSOLE_COLUMNS) if c in have]
    order = preferred + [c for c in have if c not in preferred]
    cells = {c: format_column(table, c) for c in order}
    if "model" in cells:
        cells["model"] = [_clip(v, MAX_MODEL_WIDTH) for v in cells["model"]]
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in order}
    shown: list[str] = []
    used = 0
    for c in order:
        w = max([len(SHORT_LABELS.get(c, c))] + [len(v) for v in cells[c]])
        need = w + (2 if shown else 0)
        if shown and used + need > width:
            continue  # does not fit; a narrower column further on may
        shown.append(c)
        used += need
    widths = {c: max([len(SHORT_LABELS.get(c, c))] + [len(v) for v in cells[c]]) for c in shown}

    def line(vals: dict[str, str]) -> str:
        return "  ".join(vals[c].rjust(widths[c]) if numeric[c] else vals[c].ljust(widths[c])
                         for c in shown).rstrip()

    head = title if title is not None else table.title
    out = [w for ln in head.splitlines() for w in (textwrap.wrap(ln, width, subsequent_indent="  ") or [""])] \
        if head else []
    out.append(line({c: SHORT_LABELS.get(c, c) for c in shown}))
    out.append(line({c: "-" * widths[c] for c in shown}))
    out += [line({c: cells[c][i] for c in shown}) for i in range(len(frame))]
    hidden = [c for c in order if c not in shown]
    if "mm_rule" in hidden and "model" in frame.columns:  # every row states its liquidation rule
        rules: dict[str, list[str]] = {}
        for m, r in zip(frame["model"].astype(str), frame["mm_rule"].astype(str), strict=True):
            rules.setdefault(r, []).append(m)
        for r, models in rules.items():
            out += textwrap.wrap(f"liquidation rule {r}: {', '.join(models)}", width, subsequent_indent="  ")
    if hidden:
        out.append(_clip(f"{len(hidden)} more column(s) with -v or in comparison.csv: {', '.join(hidden)}", width))
    return "\n".join(out)
