"""Whether numba's on-disk cache already holds a build of some kernels (the warm-up threads ask it).

A process that only warms kernels for others (the engine's parent, the
tail's import thread) loads them for nothing when the cache is warm; with
this test it does so only when they would otherwise compile in the workers
or in the run's serial tail.
"""

from __future__ import annotations

from typing import Any


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
