"""Where price files are and what their names say.

:func:`symbol_from_filename` (``BTC-USD_1d.csv`` -> ``BTC``,
``BTCUSDT-1d-2024-01.csv`` -> ``BTC``: the quote currency is stripped),
:func:`interval_from_filename` (``_1d``, ``-1h-``), :func:`find_files` (the
``*.csv``/``*.parquet``/``*.pq`` files of one folder, filtered by interval) and
:func:`resolve_source` (a root holding ``crypto-daily/`` or ``crypto-hourly/``,
a folder of files, one file or a list, to the files to load).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from riskmodels.data.validate import DataError, DataQualityWarning

SUFFIXES = (".csv", ".parquet", ".pq")
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR")
INTERVAL_DIRS = {"1d": "crypto-daily", "1h": "crypto-hourly"}


DATA_HINT = ("point riskmodels at the data with --data DIR or the RISKMODELS_DATA environment "
             "variable (a folder holding crypto-daily/, or a folder of OHLCV files)")


_BINANCE_RE = re.compile(r"^([A-Z0-9]+)-(\d+[smhdwM])-\d{4}-\d{2}(?:-\d{2})?$")
_INTERVAL_IN_NAME = re.compile(r"(?:^|[_\-.])(\d+[smhdw])(?=$|[_\-.])")


# --------------------------------------------------------------------------- names
def symbol_from_filename(path: str | os.PathLike[str]) -> str:
    """Asset symbol from a file name.

    ``BTC-USD_1d.csv`` -> ``BTC``; ``BTCUSDT-1d-2024-01.csv`` -> ``BTC``;
    ``eth.parquet`` -> ``ETH``.
    """
    stem = Path(path).name
    for suf in SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    m = _BINANCE_RE.match(stem)
    if m:
        pair = m.group(1)
        for q in QUOTES:
            if pair.endswith(q) and len(pair) > len(q):
                return pair[: -len(q)]
        return pair
    base = stem.split("_")[0]
    base = re.split(r"[-.]", base)[0] or stem
    return base.upper()


def interval_from_filename(path: str | os.PathLike[str]) -> str | None:
    """``BTC-USD_1d.csv`` -> ``"1d"``, ``BTCUSDT-1h-2024-01.csv`` -> ``"1h"``, else None."""
    stem = Path(path).name
    for suf in SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
    m = _INTERVAL_IN_NAME.search(stem)
    return m.group(1).lower() if m else None


# --------------------------------------------------------------------------- discovery
def find_files(directory: str | os.PathLike[str], interval: str | None = None) -> list[Path]:
    """OHLCV files (``*.csv``, ``*.parquet``, ``*.pq``) in ``directory``, sorted by name.

    With ``interval``, files whose name carries another interval are skipped;
    without it, a folder mixing intervals gives its daily (``_1d``) files.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"data directory {d} does not exist; {DATA_HINT}")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if interval is None:
        named = {interval_from_filename(p) for p in files} - {None}
        if len(named) > 1:  # a cache folder with daily and hourly files: daily by default
            interval = "1d" if "1d" in named else None
            if interval is None:
                raise DataError(
                    f"{d} holds files of several intervals {sorted(named)}; pass interval=..."
                )
    if interval is not None:
        skipped = [p.name for p in files if interval_from_filename(p) not in (None, interval)]
        files = [p for p in files if interval_from_filename(p) in (None, interval)]
        if skipped and files:
            shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            warnings.warn(f"{d}: skipped {len(skipped)} file(s) whose name says another interval "
                          f"than {interval} ({shown}); rename a file whose name is wrong",
                          DataQualityWarning, stacklevel=3)
    if not files:
        what = f" for interval {interval}" if interval else ""
        raise FileNotFoundError(f"no OHLCV files (*.csv, *.parquet){what} in {d}; {DATA_HINT}")
    return files


def resolve_source(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                   interval: str | None = None) -> list[Path]:
    """Files for ``source``: a root with ``crypto-daily/`` (or ``crypto-hourly/``)
    inside (chosen by ``interval``, default daily), a folder of files, or a list."""
    if isinstance(source, (str, os.PathLike)):
        d = Path(source)
        if not d.exists():
            raise FileNotFoundError(f"data path {d} does not exist; {DATA_HINT}")
        if d.is_file():
            return [d]
        sub = d / INTERVAL_DIRS.get(interval or "1d", f"crypto-{interval}")
        if sub.is_dir():
            return find_files(sub, interval)
        return find_files(d, interval)
    files = [Path(p) for p in source]
    if not files:
        raise FileNotFoundError(f"an empty list of files was given; {DATA_HINT}")
    for p in files:
        if not p.is_file():
            raise FileNotFoundError(f"data file {p} does not exist; {DATA_HINT}")
    return files
