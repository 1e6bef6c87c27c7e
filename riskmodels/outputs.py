"""Atomic output folders: a run's folder appears whole, with a manifest, or not at all.

Every command that writes a folder (``backtest``, ``report``, ``cascade``,
``calibrate``, ``sweep``) writes through :func:`atomic_output`::

    with atomic_output("riskmodels-out", command="riskmodels backtest") as stage:
        frame.to_csv(stage / "summary.csv")
        ...
    # here riskmodels-out/ holds exactly those files and manifest.json

1. The files go into a temporary folder beside the target
   (``.NAME.partial-PID-XXXX``, same file system, so the final rename is
   cheap and cannot be half done).
2. ``manifest.json`` is written last: every file's size and SHA-256, the
   package version and the command (no timestamp, so reruns are byte-identical). A folder without a manifest (or whose
   files do not match it, :func:`verify_result`) is not a result.
3. The temporary folder is renamed into place. An earlier result there is
   replaced whole (on Linux by one ``renameat2(RENAME_EXCHANGE)`` swap; else
   two renames); nothing of the old run is mixed with the new one.
4. If the run fails or is interrupted (an exception, Ctrl-C, SIGTERM: see
   :mod:`riskmodels.failures`), the temporary folder is removed and the old
   result stays as it was. After a ``kill -9`` the temporary folder stays
   behind; the next run into the same target removes it (its process is gone).

An ``--out`` that names an existing file, or a non-empty folder that is not
an earlier riskmodels output, is refused before any work starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riskmodels.errors import UserError
from riskmodels.failures import check_stop
from riskmodels.workers import pid_alive

MANIFEST = "manifest.json"
#: what an earlier riskmodels output folder may hold (a non-empty folder with anything else is refused)
OUTPUT_SUFFIXES = (".csv", ".json", ".parquet", ".png", ".html", ".md", ".txt")
OUTPUT_DIRS = ("figures", "tables", "points")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def remove_stale(parent: Path, name: str) -> list[Path]:
    """Remove ``.NAME.partial-PID-*`` / ``.NAME.old-PID-*`` folders whose process is gone."""
    removed = []
    if not parent.is_dir():
        return removed
    for p in parent.glob(f".{name}.*-*-*"):
        kind, _, rest = p.name[len(name) + 2:].partition("-")
        if kind not in ("partial", "old"):
            continue
        try:
            pid = int(rest.split("-", 1)[0])
        except ValueError:
            continue
        if not pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def check_target(target: str | Path, flag: str = "--out") -> Path:
    """Refuse an output target that is a file, or a non-empty folder that is not a riskmodels output."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise UserError(f"{flag} {target} is an existing file; name a folder (it is created, or replaced whole "
                        "if it holds an earlier result)")
    if target.is_dir() and not (target / MANIFEST).is_file():
        foreign = [p.name for p in target.iterdir() if not (
            p.name.startswith(".") or (p.is_file() and p.suffix in OUTPUT_SUFFIXES)
            or (p.is_dir() and p.name in OUTPUT_DIRS))]
        if foreign:
            raise UserError(f"{flag} {target} is a folder with other content ({', '.join(sorted(foreign)[:5])}) and "
                            f"no {MANIFEST}: it is not an earlier riskmodels result, so it is not replaced; "
                            "name a new or empty folder")
    return target


def _swap(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False when not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def write_manifest(folder: Path, *, command: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``folder/manifest.json`` (every other file's size and SHA-256), flushed to disk, last."""
    from riskmodels import __version__

    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(folder).as_posix()
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            files[rel] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    # no timestamp: a rerun of the same command on the same data gives a byte-identical manifest
    doc = {"riskmodels": __version__, "command": command, "files": files, **(extra or {})}
    tmp = folder / f".{MANIFEST}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    final = folder / MANIFEST
    os.replace(tmp, final)
    return final


@contextlib.contextmanager
def atomic_output(target: str | Path, *, command: str | None = None, flag: str = "--out",
                  extra: dict[str, Any] | None = None) -> Iterator[Path]:
    """Yield a temporary folder; on success write the manifest and rename it to ``target``.

    See the module docstring. ``extra`` adds keys to the manifest.
    """
    target = check_target(target, flag).absolute()
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(parent, target.name)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    stage = parent / f".{target.name}.partial-{token}"
    stage.mkdir()
    try:
        yield stage
        check_stop()  # a stop signal whose exception was swallowed: the output is not put in place
        write_manifest(stage, command=command, extra=extra)
        if target.exists():
            if not _swap(stage, target):
                old = parent / f".{target.name}.old-{token}"
                os.rename(target, old)
                os.rename(stage, target)
                stage = old
            shutil.rmtree(stage, ignore_errors=True)  # now the old result
        else:
            os.rename(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def verify_result(folder: str | Path) -> dict[str, Any]:
    """The manifest of a finished result folder; :class:`UserError` when it is missing or does not match."""
    folder = Path(folder)
    m = folder / MANIFEST
    if not m.is_file():
        raise UserError(f"{folder} has no {MANIFEST}: it is not a finished riskmodels result (the run that wrote "
                        "it did not finish); rerun the command")
    doc = json.loads(m.read_text(encoding="utf-8"))
    for rel, info in doc.get("files", {}).items():
        p = folder / rel
        if not p.is_file():
            raise UserError(f"{folder}: {rel} listed in {MANIFEST} is missing; rerun the command")
        if p.stat().st_size != info["bytes"] or sha256_file(p) != info["sha256"]:
            raise UserError(f"{folder}: {rel} does not match its SHA-256 in {MANIFEST} (changed or truncated); "
                            "rerun the command")
    return doc


def is_result(folder: str | Path) -> bool:
    """True when ``folder`` is a finished result (manifest present, every file matching it)."""
    try:
        verify_result(folder)
    except (UserError, OSError, ValueError):
        return False
    return True


__all__ = ["MANIFEST", "atomic_output", "check_target", "is_result", "remove_stale", "verify_result",
           "write_manifest"]
