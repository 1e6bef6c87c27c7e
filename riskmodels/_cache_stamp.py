"""Drop riskmodels' numba cache when any of its source files changed since the cache was written.

numba's on-disk cache (``@numba.njit(cache=True)``) keys a compiled kernel by
the stamp (mtime and size) of the kernel's *own* file. A kernel that calls or
inlines a kernel of another module keeps its old machine code when only that
other module changes: found 2026-12-03, when ``_hs_above.var_above`` still
ran the loss pass of ``_hs_fused.accumulate`` from before an edit (2.06 us per
account instead of 0.84), so a ``git pull`` into an editable install could
run stale code silently. An installed release rewrites every file, so there
the stamps change together; this check covers the working copies.

:func:`refresh` (called when :mod:`riskmodels` is imported; standard library
only: one ``stat`` per source file, ~1 ms; the numba users' sources are read only when one of them moved) compares a digest of the path, mtime
and size of every ``riskmodels`` source file that uses numba with the one recorded
beside the cache; when they differ it deletes riskmodels' cache files
(``*.nbi`` / ``*.nbc``) and records the new digest, so every kernel is built
(or loaded) from the sources it is run with. Any failure (a read-only tree,
a cache elsewhere) leaves the cache as it is.

Known limit: a process that imported the sources before they changed (a
notebook kernel, a worker of a long-lived cluster) and compiles a kernel
afterwards writes its old code under the new digest; restart such processes
after updating the sources.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

#: the digest file, beside the cache files of the package's top folder
STAMP = "riskmodels-sources.stamp"


def cache_dir(source_dir: Path, numba_cache_dir: str | None) -> Path:
    """Where numba caches the kernels of ``source_dir``: its ``__pycache__``, or a folder of ``NUMBA_CACHE_DIR``.

    numba's ``InTreeCacheLocator``, and its ``UserProvidedCacheLocator``:
    ``<NUMBA_CACHE_DIR>/<folder name>_<sha1 of the folder's absolute path>``
    (numba 0.68; a numba that lays it out otherwise only means nothing is
    deleted there). A tree numba cannot write (its ``UserWideCacheLocator``
    then caches under the user's home) is an installed release, whose files
    all change together.
    """
    if numba_cache_dir:
        folder = os.path.abspath(str(source_dir))
        tag = hashlib.sha1(folder.encode()).hexdigest()  # numba's layout, not security
        return Path(numba_cache_dir) / f"{os.path.basename(folder)}_{tag}"
    return source_dir / "__pycache__"


def kernel_sources(root: Path) -> list[Path]:
    """The ``*.py`` files under ``root`` that use numba (the only ones whose edits can leave a kernel stale)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if "numba" in path.read_text(encoding="utf-8"):
                out.append(path)
    return out


def sources_digest(root: Path, paths: list[Path] | None = None) -> str:
    """Digest of ``paths`` (default: the kernel sources under ``root``, :func:`kernel_sources`): path, mtime, size."""
    h = hashlib.blake2b(digest_size=16)
    for path in kernel_sources(root) if paths is None else paths:
        st = path.stat()
        h.update(f"{path.relative_to(root)}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return h.hexdigest()


def refresh(root: Path | None = None, numba_cache_dir: str | None = None) -> bool:
    """Delete the package's numba cache files if its sources changed since they were written; True if deleted.

    ``root``: the package folder (default: this one); ``numba_cache_dir``:
    numba's configured cache folder (default: ``$NUMBA_CACHE_DIR``).
    """
    try:
        root = Path(__file__).parent if root is None else Path(root)
        where = os.environ.get("NUMBA_CACHE_DIR") if numba_cache_dir is None else numba_cache_dir
        top = cache_dir(root, where)
        stamp = top / STAMP
        # first every source's stamp (no reads: ~1 ms); only when one moved, the kernel sources' digest
        every = sources_digest(root, sorted(root.rglob("*.py")))
        old = ["", ""]
        with contextlib.suppress(OSError):
            old = [*stamp.read_text().split(), "", ""][:2]
        if old[0] == every:
            return False
        digest = sources_digest(root)
        if old[1] == digest:  # an edit outside the kernels: record it, keep the cache
            _write(top, f"{every} {digest}")
            return False
        folders = {cache_dir(p.parent, where) for p in root.rglob("*.py")}
        left = 0
        for folder in folders:
            if folder.is_dir():
                for f in folder.iterdir():
                    if f.suffix in (".nbi", ".nbc"):
                        try:
                            f.unlink()
                        except FileNotFoundError:  # another process deleted it first
                            pass
                        except OSError:
                            left += 1
        if left:  # a file that stays (in use, not ours to delete) must not look fresh: check again next time
            return True
        _write(top, f"{every} {digest}")
        return True
    except Exception:  # importing riskmodels must never fail here: the cache is left as it is
        return False


def _write(top: Path, text: str) -> None:
    import tempfile

    top.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{STAMP}.", suffix=".tmp", dir=top)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, top / STAMP)  # atomic: a concurrent process reads the old digest or the new one
