"""One build per kernel across processes (riskmodels._numba_cache.install_compile_lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from riskmodels import _numba_cache

ROOT = Path(__file__).resolve().parents[1]

#: each process waits at a barrier file, then calls one cached riskmodels kernel on a cold cache and
#: reports numba's own cache statistics of it (hits: loaded from disk, misses: compiled here)
CHILD = """
    import json, os, sys, time
    lock = sys.argv[1] == "1"
    from riskmodels import _numba_cache
    from riskmodels.backtest import mm_rule
    import numpy as np
    if lock:
        _numba_cache.install_compile_lock()
    open(sys.argv[2] + "." + str(os.getpid()), "w").close()
    while len([f for f in os.listdir(os.path.dirname(sys.argv[2])) if f.startswith("ready.")]) < 2:
        time.sleep(0.001)
    x = np.ones((3, 2))
    mm_rule._max_loss(x, x)
    k = mm_rule._max_loss
    print(json.dumps({"hits": sum(k._cache_hits.values()), "misses": sum(k._cache_misses.values())}))
"""


def _race(tmp_path: Path, lock: bool) -> list[dict[str, int]]:
    """Two processes that start the same cold-cache compile at once (a barrier of marker files)."""
    cache = tmp_path / "cache"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(cache)}
    ready = tmp_path / "bar" / "ready"
    ready.parent.mkdir()
    procs = [subprocess.Popen([sys.executable, str(script), "1" if lock else "0", str(ready)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [json.loads(o.strip().splitlines()[-1]) for o in outs]


@pytest.mark.skipif(_numba_cache.fcntl is None, reason="no fcntl: no compile lock")
def test_two_processes_build_a_cold_kernel_once_with_the_lock(tmp_path):
    stats = _race(tmp_path, lock=True)
    assert sorted(s["misses"] for s in stats) == [0, 1]  # one compiled it
    assert sorted(s["hits"] for s in stats) == [0, 1]  # the other loaded that build from the cache


@pytest.mark.skipif(_numba_cache.fcntl is None, reason="no fcntl: no compile lock")
def test_without_the_lock_both_processes_build_it(tmp_path):
    """The control of the test above: the race is real (so the test above can fail)."""
    stats = _race(tmp_path, lock=False)
    assert [s["misses"] for s in stats] == [1, 1]


def test_lock_is_reentrant_and_released(tmp_path):
    path = str(tmp_path / "k.lock")
    with _numba_cache._file_lock(path):
        with _numba_cache._file_lock(path):  # a callee of the same kernel file: no self-deadlock
            assert _numba_cache._HELD[path][1] == 2
        assert _numba_cache._HELD[path][1] == 1
    assert path not in _numba_cache._HELD


def test_only_cached_riskmodels_kernels_take_a_lock():
    import numba

    from riskmodels.backtest import mm_rule

    assert _numba_cache._lock_path(mm_rule._max_loss).endswith(".lock")

    @numba.njit
    def plain(x):  # not cached, not ours
        return x

    assert _numba_cache._lock_path(plain) is None


def test_installed_lock_keeps_results_and_is_installed_once():
    from riskmodels.backtest import mm_rule

    assert _numba_cache.install_compile_lock() is (_numba_cache.fcntl is not None)
    assert _numba_cache.install_compile_lock() is (_numba_cache.fcntl is not None)
    c = np.array([[1.0, 2.0], [1.0, -3.0]])
    p = np.array([[0.0, 0.5], [0.0, 1.0]])
    # max_loss: the sum of collateral plus position if no asset is short, else unbounded (mm_rule.max_loss)
    assert mm_rule._max_loss(c, p).tolist() == [3.5, np.inf]


def test_frozen_views_give_one_kernel_signature_for_writable_and_read_only_inputs():
    from riskmodels.backtest import mm_rule

    c = np.array([[1.0, 2.0], [1.0, -3.0]])
    p = np.array([[0.0, 0.5], [0.0, 1.0]])
    ro_c, ro_p = c.copy(), p.copy()
    ro_c.setflags(write=False)
    ro_p.setflags(write=False)
    mm_rule.max_loss(c, p)
    seen = set(mm_rule._max_loss.signatures)
    assert mm_rule.max_loss(ro_c, ro_p).tolist() == mm_rule.max_loss(c, p).tolist() == [3.5, np.inf]
    assert set(mm_rule._max_loss.signatures) == seen  # the read-only call reused the writable call's build
    v = _numba_cache.frozen(c)
    assert not v.flags.writeable and c.flags.writeable and np.shares_memory(v, c)
