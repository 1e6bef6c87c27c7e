"""Units of output columns, read from their names, and one display format per unit.

Every table the toolkit prints or writes names its unit in the column name,
so the console, the report and a reader of ``summary.csv`` agree on what a
number is. :func:`unit_of` reads the unit from the name; :func:`fmt_unit`
formats a value in that unit. A table's explicit format for a column wins
over the unit's (see :class:`riskmodels.backtest._testresult.Table`), so a new
column added to a summary renders correctly without any table code changing.

========== ======================================== ======================
unit       name pattern                             display
========== ======================================== ======================
pvalue     ``*_p``, ``*_p_sub``, ``*pvalue*``       3 significant digits, ``<0.001``
share      ``*rate*``, ``*share*``, ``*coverage*``, ``*_per_notional``, ``*_rel``, ``*_pct``   percent, 2 decimals
bp         ``*_bp``, ``*_bp_*``                     2 decimals
usd        ``*_usd``, ``*_usd_*``                   ``$`` and thousands separators, no decimals
count      ``n``, ``n_*``, ``*accounts``, ``exceptions``, ``liquidations``, ``*_days``   thousands separators
lr         ``*_lr``                                 2 decimals
========== ======================================== ======================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["UNIT_FORMATS", "fmt_pvalue", "fmt_unit", "unit_formatter", "unit_of"]

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pvalue", re.compile(r"(_p|_p_sub|pvalue|p_value)$")),
    ("usd", re.compile(r"_usd($|_)")),
    ("bp", re.compile(r"_bp($|_)")),
    ("share", re.compile(r"((^|_)(rate|share|coverage)(_|$)|_per_notional$|_rel$|_pct$)")),
    ("count", re.compile(r"(^n$|^n_|accounts$|^exceptions$|^liquidations$|_days$|^newly_liquidatable$|"
                         r"^below_new_im$)")),
    ("lr", re.compile(r"_lr$")),
)


def unit_of(column: str) -> str:
    """The unit a column name declares (``""`` when it declares none)."""
    name = str(column).lower()
    for unit, pattern in _RULES:
        if pattern.search(name):
            return unit
    return ""


def fmt_pvalue(p: float) -> str:
    """A p-value to 3 significant digits; below 0.001 as ``<0.001``."""
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def _usd(v: float) -> str:
    return f"-${-v:,.0f}" if v < 0 else f"${v:,.0f}"


UNIT_FORMATS: dict[str, Callable[[float], str]] = {
    "pvalue": fmt_pvalue,
    "share": lambda v: f"{v:.2%}",
    "bp": lambda v: f"{v:.2f}",
    "usd": _usd,
    "count": lambda v: f"{v:,.0f}",
    "lr": lambda v: f"{v:.2f}",
}


def unit_formatter(column: str) -> Callable[[float], str] | None:
    """The display function of a column's unit, or None."""
    return UNIT_FORMATS.get(unit_of(column))


def fmt_unit(value: Any, unit: str) -> str:
    """``value`` displayed in ``unit``; NaN and None as ``-``, text unchanged."""
    if value is None or isinstance(value, str | bool):
        return "-" if value is None else str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    f = UNIT_FORMATS.get(unit)
    return f(v) if f else f"{v:.4g}"
