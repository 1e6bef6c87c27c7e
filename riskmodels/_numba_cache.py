"""numba's on-disk cache: whether it holds some kernels (:func:`is_cached`), and one build per kernel (:func:`install_compile_lock`).

A process that only warms kernels for others (the engine's parent, the
tail's import thread) loads them for nothing when the cache is warm; with
:func:`is_cached` it does so only when they would otherwise compile in the
workers or in the run's serial tail. On a cold cache
:func:`install_compile_lock` makes the processes of a run build each kernel
once, and :func:`frozen` keeps a kernel to one signature for read-only and
writable inputs (each signature is a build of its own).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no compile lock
    fcntl = None  # type: ignore[assignment]


def is_cached(*kernels: Any) -> bool:
    """True if every ``@numba.njit(cache=True)`` dispatcher has a cache entry for this source and CPU.

    Reads each kernel's cache index (numba's own test: same numba version
    and source stamp, ``IndexDataCacheFile._load_index``), then looks for an
    entry built for this machine's ``magic_tuple`` (target triple, CPU name
    and features). False on any doubt: these are numba internals, and a
    wrong False only costs a warm-up.
    """
    try:
        magic = kernels[0].targetctx.codegen().magic_tuple()
        return all(any(key[1] == magic for key in k._cache._cache_file._load_index()) for k in kernels)
    except Exception:  # private numba API: any failure means "not known to be warm"
        return False


#: cache file -> [fd, depth] of the compile locks this process holds (under numba's global compiler lock)
_HELD: dict[str, list[int]] = {}


def _lock_path(dispatcher: Any) -> str | None:
    """The lock file beside ``dispatcher``'s cache files, or None (not a cached riskmodels kernel)."""
    try:
        if not dispatcher.py_func.__module__.startswith("riskmodels"):
            return None
        cache = dispatcher._cache
        return os.path.join(cache._cache_path, cache._impl.filename_base + ".lock")
    except AttributeError:  # no disk cache (NullCache) or a numba without these internals
        return None


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (re-entrant in this process); no lock if the file cannot open."""
    held = _HELD.get(path)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # read-only cache directory: numba will not save either; compile unlocked
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD[path] = [fd, 1]
        try:
            yield
        finally:
            del _HELD[path]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def install_compile_lock() -> bool:
    """Make this process compile each cached riskmodels kernel under a per-kernel file lock; True if installed.

    Without it, a cold cache makes every process that needs a kernel compile
    it: the model pool's two workers both compiled the fused HS kernel
    (2.8 and 5.4 s) and the haircut kernel (~1 s each) in the default run.
    With it, the second process waits for the first one's build, then loads
    it from numba's cache (``Dispatcher.compile`` looks in the cache first,
    re-reading its index from disk). The lock is taken inside numba's global
    compiler lock, so only one thread of a process holds kernel locks, and in
    the callers-before-callees order of compilation (no cycle: our kernels do
    not recurse). A no-op on an already installed process, where ``fcntl`` is
    missing (Windows) or numba lacks the method; kernels of other packages
    and uncached ones compile as before. Numbers do not change: the same
    build is loaded instead of built again.
    """
    if fcntl is None:
        return False
    try:
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return False
    original = Dispatcher.compile
    if getattr(original, "_riskmodels_lock", False):
        return True

    def compile(self: Any, sig: Any) -> Any:
        path = _lock_path(self)
        if path is None:
            return original(self, sig)
        with global_compiler_lock, _file_lock(path):
            return original(self, sig)

    compile._riskmodels_lock = True  # type: ignore[attr-defined]
    compile.__doc__ = original.__doc__
    Dispatcher.compile = compile
    return True


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: a kernel argument of one numba type whether the caller's array is writable or not.

    numba types a read-only array apart from a writable one, so a kernel that
    is handed both (a ``Book``'s arrays are read-only; the same arrays after
    pickling to a worker, or a working copy, are not) compiles twice on a cold
    cache (~0.3-0.8 s each for the simulation and haircut kernels). The view
    costs ~0.2 us; the kernel only reads the argument.
    """
    v = a.view()
    v.flags.writeable = False
    return v
