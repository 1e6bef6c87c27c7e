"""Strict type checking of config values against type hints (the config schema's engine).

A schema is a mapping ``key -> type hint``; hints are the ones Python code
already declares (dataclass fields, constructor signatures), optionally
wrapped in ``Annotated[T, Range(...)]`` / ``Annotated[str, DATE]`` for ranges
and dates. :func:`check_value` enforces them strictly:

* a boolean is ``true``/``false``, never a string (``"false"`` is an error);
* an integer is an integer: ``2.5`` or ``2.0`` for an ``int`` is an error
  (nothing is truncated), and ``true`` is not ``1``;
* a float accepts integers (``1`` means ``1.0``), never a string;
* ``Literal[...]`` choices, lists, tables and ``X | None`` are checked element
  by element; a date is ``"YYYY-MM-DD"`` (a TOML native date is turned into
  that string; a time zone is an error).

Unknown keys are errors that suggest the nearest valid key (difflib).
Hints this module cannot interpret (a class, a numpy array) accept any value:
the owner's ``__init__`` still checks it. Section schemas live in
:mod:`riskmodels.config_schema`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from riskmodels.errors import UserError


@dataclass(frozen=True)
class Range:
    """Numeric bounds of a value: ``Annotated[float, Range(0, 1, hi_open=True)]`` is ``[0, 1)``."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def check(self, v: float) -> str | None:
        """``None`` when ``v`` is inside, else the range as text."""
        ok = not (isinstance(v, float) and math.isnan(v))
        if self.lo is not None:
            ok = ok and (v > self.lo if self.lo_open else v >= self.lo)
        if self.hi is not None:
            ok = ok and (v < self.hi if self.hi_open else v <= self.hi)
        if ok:
            return None
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or self.hi is None else "]"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Length:
    """Allowed number of elements of a list."""

    n: int


@dataclass(frozen=True)
class Pattern:
    """A string that must match ``regex`` in full (``example`` shows the remedy)."""

    regex: str
    example: str = ""


class _DateMarker:
    def __repr__(self) -> str:
        return "DATE"


#: ``Annotated[str, DATE]``: "YYYY-MM-DD" (or "" where the hint allows it), UTC, no time zone
DATE = _DateMarker()
Date = Annotated[str, DATE]


def suggest(key: str, valid: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest valid key, else ``""``."""
    near = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def unknown_key(where: str, key: str, valid: Sequence[str], what: str = "key") -> UserError:
    return UserError(f"{where}: unknown {what} {key!r}{suggest(key, valid)} (valid: {', '.join(sorted(valid))})")


def _toml(v: Any) -> str:
    """A value written as TOML would show it (true, "text", 2.5)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _type_name(typing.get_args(hint)[0])
    if hint is bool:
        return "a boolean (true or false, unquoted)"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(_toml(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint) if a is not type(None))
    if origin in (list, tuple) or origin is Sequence or (isinstance(origin, type) and issubclass(origin, Sequence)):
        return "a list"
    if origin in (dict,) or origin is Mapping or hint in (dict, Mapping):
        return "a table"
    return getattr(hint, "__name__", str(hint))


def _is_seq(origin: Any) -> bool:
    return origin in (list, tuple) or (isinstance(origin, type) and issubclass(origin, Sequence)
                                       and not issubclass(origin, str))


def _is_map(origin: Any) -> bool:
    return origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping))


def _date(value: Any, where: str) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise UserError(f"{where} = {value.isoformat()} has a time zone; dates are UTC days: "
                            f"write \"{value.date().isoformat()}\"")
        if value.time() != dt.time(0):
            raise UserError(f"{where} = {value.isoformat()} has a time of day; write a date \"YYYY-MM-DD\"")
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()  # a TOML native date: the same day as text
    if not isinstance(value, str):
        raise UserError(f"{where} = {_toml(value)} must be a date \"YYYY-MM-DD\"")
    if value == "":
        return value
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"{where} = {_toml(value)} is not a date; write \"YYYY-MM-DD\"") from None
    if len(value.strip()) == 10 and parsed.time() == dt.time(0):
        return value.strip()
    return _date(parsed, where)


def check_value(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against ``hint`` (normalised: native dates become text); raises :class:`UserError`.

    ``where`` names the value for the message, e.g. ``"run.toml: [backtest] mpor"``.
    """
    if hint is Any or hint is typing.Any or hint is None or isinstance(hint, typing.TypeVar):
        return value
    if isinstance(hint, str | typing.ForwardRef):  # unresolved annotation: the owner checks it
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        base, *meta = args
        if DATE in meta:
            return _date(value, where)
        v = check_value(value, base, where)
        for m in meta:
            if isinstance(m, Range) and isinstance(v, int | float) and not isinstance(v, bool):
                bad = m.check(v)
                if bad:
                    raise UserError(f"{where} = {_toml(value)} is outside its valid range {bad}")
            if isinstance(m, Pattern) and isinstance(v, str) and not re.fullmatch(m.regex, v):
                raise UserError(f"{where} = {_toml(value)} is not of the form {m.example or m.regex}")
            if isinstance(m, Length) and len(v) != m.n:
                raise UserError(f"{where} = {value!r} must have {m.n} elements, it has {len(v)}")
        return v
    if origin is Literal:
        for a in args:
            if type(a) is type(value) and a == value:
                return value
        raise UserError(f"{where} = {_toml(value)} must be {_type_name(hint)}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return check_value(value, a, where)
            except UserError as exc:
                errors.append(str(exc))
        # one alternative fits the kind of value: its message is the precise one
        kind_msgs = [e for e in errors if "outside its valid range" in e or "must have" in e or " element" in e]
        if kind_msgs:
            raise UserError(kind_msgs[0])
        raise UserError(f"{where} = {_toml(value)} must be {_type_name(hint)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        remedy = f"; write {value.strip().lower()} without quotes" if isinstance(value, str) and \
            value.strip().lower() in ("true", "false") else ""
        raise UserError(f"{where} = {_toml(value)} must be a boolean (true or false, unquoted){remedy}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            raise UserError(f"{where} = {value!r} must be an integer; write {int(value)}")
        raise UserError(f"{where} = {_toml(value)} must be an integer (no decimals, no quotes)")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) if isinstance(value, int) else value
        raise UserError(f"{where} = {_toml(value)} must be a number (no quotes)")
    if hint is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where} = {_toml(value)} must be a string (in quotes)")
    if hint in (list, tuple) or (origin is None and hint is Sequence):
        if isinstance(value, list | tuple):
            return value
        raise UserError(f"{where} = {_toml(value)} must be a list [..]")
    if hint in (dict, Mapping):
        if isinstance(value, Mapping):
            return value
        raise UserError(f"{where} = {_toml(value)} must be a table {{..}}")
    if origin is not None and _is_seq(origin):
        if not isinstance(value, list | tuple):
            raise UserError(f"{where} = {_toml(value)} must be a list [..]")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"{where} = {value!r} must have {len(args)} elements, it has {len(value)}")
            return [check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
        elem = args[0] if args else Any
        return [check_value(v, elem, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is not None and _is_map(origin):
        if not isinstance(value, Mapping):
            raise UserError(f"{where} = {_toml(value)} must be a table {{..}}")
        vh = args[1] if len(args) == 2 else Any
        return {k: check_value(v, vh, f"{where}.{k}") for k, v in value.items()}
    return value  # a class or anything else: the owner's __init__ checks it


def check_table(table: Any, schema: Mapping[str, Any], where: str, *, required: Sequence[str] = ()) -> dict[str, Any]:
    """Check a TOML table against ``schema`` (key -> hint, or a nested schema dict for a sub-table).

    ``where`` is the file and section, e.g. ``"run.toml: [book]"``.
    """
    if not isinstance(table, Mapping):
        raise UserError(f"{where} must be a table of `key = value` lines, got {_toml(table)}")
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k not in schema:
            raise unknown_key(where, k, list(schema))
        hint = schema[k]
        if isinstance(hint, SubTable):
            out[k] = check_table(v, hint.schema, f"{where[:-1]}.{k}]" if where.endswith("]") else f"{where}.{k}")
        else:
            out[k] = check_value(v, hint, f"{where} {k}")
    for k in required:
        if k not in table:
            raise UserError(f"{where} needs `{k}`")
    return out


@dataclass(frozen=True)
class SubTable:
    """A nested table inside a schema: ``{"recommend": SubTable({...})}``."""

    schema: Mapping[str, Any]


def hints_of(obj: Any, skip: Sequence[str] = ("self", "label")) -> dict[str, Any]:
    """``name -> type hint`` of a dataclass's fields or a callable's keyword parameters.

    Parameters without an annotation map to ``Any``; ``*args``/``**kwargs`` are left out.
    """
    import dataclasses
    import inspect

    target = obj.__init__ if isinstance(obj, type) and not dataclasses.is_dataclass(obj) else obj
    try:
        resolved = typing.get_type_hints(target, include_extras=True)
    except Exception:  # an unresolvable annotation: every parameter falls back to Any
        resolved = {}
    if dataclasses.is_dataclass(obj):
        return {f.name: resolved.get(f.name, Any) for f in dataclasses.fields(obj) if f.name not in skip}
    sig = inspect.signature(target)
    out = {}
    for name, p in sig.parameters.items():
        if name in skip or p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        out[name] = resolved.get(name, Any)
    return out


def hints_from_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A schema from a dict of default values: the type of each default (nested dicts become sub-tables)."""
    out: dict[str, Any] = {}
    for k, v in defaults.items():
        if isinstance(v, bool):
            out[k] = bool
        elif isinstance(v, int):
            out[k] = float if k in _FLOATY else int
        elif isinstance(v, float):
            out[k] = float
        elif isinstance(v, str):
            out[k] = str
        elif isinstance(v, Mapping):
            out[k] = SubTable(hints_from_defaults(v)) if v else dict
        elif isinstance(v, list | tuple):
            kinds = {type(x) for x in v}
            if kinds == {int}:
                out[k] = list[float]
            elif len(kinds) == 1 and next(iter(kinds)) in (float, str, bool):
                out[k] = list[next(iter(kinds))]  # type: ignore[misc]
            elif kinds <= {int, float} and kinds:
                out[k] = list[float]
            else:
                out[k] = list
        else:
            out[k] = Any
    return out


#: keys whose integer defaults stand for numbers that may have decimals
_FLOATY: set[str] = set()


def line_of(path: str | Path, section: str | None, key: str) -> int | None:
    """1-based line of ``key = ...`` inside ``[section]`` of a TOML file (None when not found).

    A plain scan of the text (comments and strings are not parsed); used only
    to point an error message at its line.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    current: str | None = None
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        if s.startswith("["):
            current = s.strip("[]").split("]")[0].strip()
            continue
        if (current or None) == (section or None) or (section and current and current.startswith(section + ".")):
            head = s.split("=", 1)[0].strip().strip('"')
            if "=" in s and head == key:
                return i
    return None


__all__ = ["DATE", "Date", "Length", "Pattern", "Range", "SubTable", "check_table", "check_value", "hints_from_defaults",
           "hints_of", "line_of", "suggest", "unknown_key"]
