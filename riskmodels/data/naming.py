"""Which asset a file holds: the file-name rule, a map, or a pattern; one file per asset.

Rules, first that applies:

1. ``symbols``: a mapping ``{file name, stem or path: asset}`` (the config's ``[data]
   symbols``), or a sequence aligned with the sorted file list (API only); files the
   mapping does not name fall through to 2/3;
2. ``name_pattern``: a regular expression matched against the whole file name without
   its extension (``re.fullmatch``), with a group named ``asset`` (or exactly one
   group): ``"(?P<asset>[A-Za-z0-9]+)_daily"`` reads ``btc_daily.csv`` as ``BTC``.
   The asset is upper-cased. A file that does not match is an error naming it;
3. the built-in rule :func:`riskmodels.data.loaders.symbol_from_filename`
   (``BTC-USD_1d.csv`` -> ``BTC``, ``BTCUSDT-1d-2024-01.csv`` -> ``BTC``).

Several files may map to one asset only when every one of them is a dated archive
piece (``BTCUSDT-1d-2024-01.csv``, ``...-2024-01-05.csv``): those are one series cut by
month or day and are concatenated. Any other pair (``BTC-USD_1d.csv`` beside
``btc.parquet``, a CSV and the Parquet fetched for the same asset) is an error naming
both files: a silent merge would mix two sources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["asset_names", "compile_pattern", "group_by_asset", "is_archive_piece"]

_PIECE_RE = re.compile(r"^[A-Z0-9]+-\d+[smhdwM]-\d{4}-\d{2}(?:-\d{2})?$")
_SUFFIXES = (".csv", ".parquet", ".pq")


def _stem(p: Path) -> str:
    name = p.name
    for suf in _SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return p.stem


def is_archive_piece(p: Path) -> bool:
    """True for a dated archive piece name such as ``BTCUSDT-1d-2024-01.csv``."""
    return bool(_PIECE_RE.match(_stem(p)))


def compile_pattern(pattern: str | None, where: str = "name_pattern") -> re.Pattern[str] | None:
    """``pattern`` compiled and checked (a group named ``asset`` or exactly one group)."""
    if pattern is None or str(pattern) == "":
        return None
    try:
        rx = re.compile(str(pattern))
    except re.error as e:
        raise ValueError(f"{where} = {pattern!r} is not a regular expression: {e}") from None
    if "asset" not in rx.groupindex and rx.groups != 1:
        raise ValueError(f"{where} = {pattern!r} needs a group named asset, e.g. "
                         "'(?P<asset>[A-Za-z0-9]+)_daily', or exactly one group")
    return rx


def _from_pattern(rx: re.Pattern[str], p: Path) -> str:
    from riskmodels.data.validate import DataError

    m = rx.fullmatch(_stem(p))
    if not m:
        raise DataError(f"{p}: the file name {_stem(p)!r} does not match name_pattern "
                        f"{rx.pattern!r}; fix the pattern, rename the file, or name its asset "
                        "in [data] symbols")
    asset = m.group("asset") if "asset" in rx.groupindex else m.group(1)
    if not asset:
        raise DataError(f"{p}: name_pattern {rx.pattern!r} matched an empty asset name")
    return asset.upper()


def asset_names(files: Sequence[Path], symbols: Sequence[str] | Mapping[str, str] | None = None,
                name_pattern: str | None = None) -> list[str]:
    """The asset of each file, by the rules in the module docstring."""
    from riskmodels.data.loaders import symbol_from_filename

    rx = compile_pattern(name_pattern)
    if symbols is not None and not isinstance(symbols, Mapping):
        if len(symbols) != len(files):
            raise ValueError(
                f"symbols has {len(symbols)} entries but there are {len(files)} files "
                f"({[p.name for p in files]})"
            )
        return [str(s) for s in symbols]
    names = []
    for p in files:
        if symbols:
            key = next((k for k in (str(p), p.name, _stem(p), p.stem) if k in symbols), None)
            if key is not None:
                names.append(str(symbols[key]))
                continue
        names.append(_from_pattern(rx, p) if rx is not None else symbol_from_filename(p))
    return names


def group_by_asset(files: Sequence[Path], names: Sequence[str]) -> dict[str, list[Path]]:
    """``{asset: files}``; raises ``DataError`` when two files that are not dated archive
    pieces map to one asset, naming both."""
    from riskmodels.data.validate import DataError

    grouped: dict[str, list[Path]] = {}
    for name, p in zip(names, files, strict=True):
        grouped.setdefault(name, []).append(p)
    for name, group in grouped.items():
        if len(group) > 1 and not all(is_archive_piece(p) for p in group):
            shown = " and ".join(str(p) for p in sorted(group)[:3])
            more = f" (and {len(group) - 3} more)" if len(group) > 3 else ""
            raise DataError(
                f"two files map to asset {name}: {shown}{more}; they are not pieces of one "
                "archive series, so merging them would mix sources. Remove one, or give them "
                "different assets with [data] symbols = {{ \"file name\" = \"ASSET\" }} or "
                "name_pattern"
            )
    return grouped
