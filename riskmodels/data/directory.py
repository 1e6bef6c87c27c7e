"""``riskmodels data validate DIR``: every file checked and listed, the unreadable ones too.

:func:`check_directory` reads each file on its own (one broken file does not hide the
others), validates each on the interval its name declares (or ``interval`` when the
name declares none), and returns a :class:`DirectoryReport`: the usual
:class:`~riskmodels.data.validate.QualityReport` of defects plus one
:class:`FileEntry` per file. Extra defect kinds at this level:

``unreadable`` (error)
    the file cannot be read as OHLCV (the loader's message: empty, binary, gzip, too
    large, missing column, text in a price column, bad timestamp...);
``duplicate_asset`` (error)
    two files map to one asset and are not dated archive pieces (both named);
``skipped_file`` (warning)
    with ``interval`` given, the file's name says another interval, so a run at
    ``interval`` skips it (it is still checked on its own interval here, which shows
    an ``interval_mismatch`` when the name is wrong).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodels.data.validate import (
    DataError,
    Defect,
    QualityReport,
    format_timestamp,
    interval_step,
    validate,
)

__all__ = ["DirectoryReport", "FileEntry", "check_directory"]


@dataclass(frozen=True)
class FileEntry:
    """One file of the folder: its asset, interval, rows, span and status."""

    path: Path
    asset: str
    interval: str | None
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    status: str  # ok | warnings | errors | unreadable | skipped
    message: str = ""


class DirectoryReport(QualityReport):
    """A :class:`QualityReport` with the per-file table :attr:`files`."""

    def __init__(self, defects, assets=(), interval=None, files=()) -> None:  # type: ignore[no-untyped-def]
        super().__init__(defects, assets=assets, interval=interval)
        self.files: list[FileEntry] = list(files)

    def files_frame(self) -> pd.DataFrame:
        """One row per file: file, asset, interval, rows, first, last, status, message."""
        return pd.DataFrame([{"file": str(f.path), "asset": f.asset, "interval": f.interval,
                              "rows": f.rows, "first": f.first, "last": f.last,
                              "status": f.status, "message": f.message} for f in self.files],
                            columns=["file", "asset", "interval", "rows", "first", "last",
                                     "status", "message"])

    def files_table(self) -> str:
        rows = [("file", "asset", "interval", "rows", "first", "last", "status")]
        for f in self.files:
            rows.append((f.path.name, f.asset, f.interval or "-", str(f.rows),
                         format_timestamp(f.first) if f.first is not None else "-",
                         format_timestamp(f.last) if f.last is not None else "-", f.status))
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(x) for c, x in zip(r, w, strict=True)).rstrip() for r in rows]
        n_bad = sum(f.status == "unreadable" for f in self.files)
        lines.append(f"{len(self.files)} file(s), {n_bad} unreadable")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.files_table() + "\n\n" + super().__str__()


def _files_of(path: Path, interval: str | None) -> list[Path]:
    from riskmodels.data.loaders import INTERVAL_DIRS, SUFFIXES

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"data path {path} does not exist")
    sub = path / INTERVAL_DIRS.get(interval or "1d", f"crypto-{interval}")
    folder = sub if sub.is_dir() else path
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no OHLCV files (*.csv, *.parquet) in {folder}")
    return files


def check_directory(path: str | os.PathLike[str], *, interval: str | None = None,
                    splice_threshold: float = float(np.log(5)), min_length: int = 250,
                    columns: Mapping[str, str] | None = None,
                    symbols: Mapping[str, str] | None = None,
                    name_pattern: str | None = None,
                    max_bytes: int | None = None) -> DirectoryReport:
    """Check every OHLCV file under ``path`` (see the module docstring)."""
    from riskmodels.data.loaders import MAX_FILE_BYTES, interval_from_filename, read_ohlcv
    from riskmodels.data.naming import asset_names, is_archive_piece

    if interval is not None:
        interval_step(interval)
    files = _files_of(Path(path), interval)
    names: list[str] = []
    naming_error: dict[Path, DataError] = {}
    for p in files:  # a name the pattern cannot read makes that file unreadable, not the folder
        try:
            names.append(asset_names([p], symbols, name_pattern)[0])
        except DataError as e:
            names.append(p.name)
            naming_error[p] = e
    extra: list[Defect] = []
    entries: dict[Path, FileEntry] = {}
    groups: dict[tuple[str, str | None], list[tuple[Path, pd.DataFrame]]] = {}
    for p, asset in zip(files, names, strict=True):
        named = interval_from_filename(p)
        try:
            if p in naming_error:
                raise naming_error[p]
            df, sha = read_ohlcv(p, columns=columns, max_bytes=max_bytes or MAX_FILE_BYTES)
        except (DataError, OSError, ValueError, UnicodeError) as e:
            msg = str(e)
            extra.append(Defect(asset, "unreadable", None, None, 0, "error", msg))
            entries[p] = FileEntry(p, asset, named, 0, None, None, "unreadable", msg)
            continue
        iv = named or interval
        if interval is not None and named is not None and named != interval:
            extra.append(Defect(asset, "skipped_file", None, None, 0, "warning",
                                f"{p.name}: its name says {named}, so a run at {interval} skips "
                                "it; rename it if the name is wrong"))
        df.attrs.update({"sha256": sha, "files": [str(p)], "interval_from":
                         "name" if named else "argument" if interval else "spacing"})
        if iv:
            df.attrs["interval"] = iv
        groups.setdefault((asset, iv), []).append((p, df))
    by_name: dict[str, list[Path]] = {}
    for p, asset in zip(files, names, strict=True):
        by_name.setdefault(asset, []).append(p)
    for asset, paths in by_name.items():
        if len(paths) > 1 and not all(is_archive_piece(p) for p in paths):
            msg = (f"{len(paths)} files map to asset {asset}: "
                   + " and ".join(p.name for p in paths)
                   + "; a run refuses them (merging would mix sources): remove one, or give "
                     "them different assets with [data] symbols or name_pattern")
            extra.append(Defect(asset, "duplicate_asset", None, None, len(paths), "error", msg))
    frames_by_iv: dict[str | None, dict[str, pd.DataFrame]] = {}
    for (asset, iv), members in groups.items():
        attrs = dict(members[0][1].attrs)
        df = pd.concat([f for _, f in members]) if len(members) > 1 else members[0][1]
        df.attrs = attrs
        frames_by_iv.setdefault(iv, {})[asset] = df
    defects: list[Defect] = []
    assets: list[str] = []
    for frames in frames_by_iv.values():
        rep = validate(frames, splice_threshold=splice_threshold, interval=None,
                       min_length=min_length)  # each frame's attrs carry its interval
        defects.extend(rep.defects)
        assets.extend(rep.assets)
    defects.extend(extra)
    by_asset: dict[str, list[Defect]] = {}
    for d in defects:
        by_asset.setdefault(d.asset, []).append(d)
    for (asset, iv), members in groups.items():
        for p, df in members:
            ds = [d for d in by_asset.get(asset, []) if d.kind != "skipped_file"
                  or p.name in d.message]
            status = ("errors" if any(d.is_error for d in ds)
                      else "skipped" if any(d.kind == "skipped_file" for d in ds)
                      else "warnings" if ds else "ok")
            idx = pd.DatetimeIndex(df.index)
            entries[p] = FileEntry(p, asset, iv, len(df), idx.min() if len(idx) else None,
                                   idx.max() if len(idx) else None, status)
    ivs = {iv for iv in frames_by_iv if iv}
    return DirectoryReport(defects, assets=list(dict.fromkeys(assets)),
                           interval=interval or (ivs.pop() if len(ivs) == 1 else None),
                           files=[entries[p] for p in files])
