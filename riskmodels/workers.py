"""Worker processes that cannot outlive the run that started them, and spill folders that go with them.

Every process pool of the package (the engine's model pool, the sweep's
point pool, the GARCH fit pool) is made by :func:`process_pool`:

* each worker runs :func:`die_with_parent` first: on Linux
  ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (the kernel signals the worker when
  the process that forked it dies, by any signal, SIGKILL included), and on
  every platform a watchdog thread that polls the run's process id every
  0.5 s. Either way the worker removes the run's spill folder and exits;
* when the run stops with an exception, Ctrl-C or SIGTERM (see
  :mod:`riskmodels.failures`) the pool is not drained: queued tasks are
  cancelled and the workers terminated at once (``shutdown(wait=True)``
  would wait minutes for the running models);
* spill folders are named ``riskmodels-spill-PID-*`` in the temp directory;
  one left by a run that was killed (its PID gone) is removed by the next run
  (:func:`spill_folder`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
SPILL_PREFIX = "riskmodels-spill-"


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (signal 0; a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leave(spill: str | None, code: int = 1) -> None:
    if spill:
        shutil.rmtree(spill, ignore_errors=True)
    os._exit(code)


#: glibc ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: requests below this come from the heap (glibc's largest fixed mmap threshold on 64-bit)
MMAP_THRESHOLD = 32 * 2**20
#: free memory at the heap's top kept for reuse up to this much
TRIM_THRESHOLD = 2**30
#: extra heap asked for at each growth
TOP_PAD = 64 * 2**20


def tune_allocator() -> bool:
    """Keep freed heap memory for reuse in this process (glibc only); True if applied.

    A model worker allocates and frees arrays of 0.1-20 MB per date and per
    block. With glibc's defaults (a dynamic mmap threshold and a trim
    threshold of twice it) many of them are mapped and unmapped, or the
    heap's top is returned to the kernel and faulted in again: the default
    backtest took ~560,000 minor page faults and ~8 s of system time. With a
    fixed 32 MiB mmap threshold, a 1 GiB trim threshold and a 64 MiB top pad
    (the ``MALLOC_*_`` settings of ``mallopt(3)``), measured 2026-12-02: 351,000
    faults and ~6 s. Peak memory is unchanged (what is kept is what was in
    use); a process keeps up to 1 GiB of freed heap until it exits, so this
    is applied only in processes that end with the run: the workers
    (:func:`die_with_parent`) and the process of ``riskmodels backtest``
    (never on import, so a library user's own process keeps its settings).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    ok = True
    for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD)):
        ok = bool(mallopt(ctypes.c_int(param), ctypes.c_int(value))) and ok
    return ok


#: True in a worker of one of riskmodels' pools (set by :func:`die_with_parent`, their initializer)
_IN_POOL_WORKER = False


def in_pool_worker() -> bool:
    """True in a worker of riskmodels' process pools or a daemonic worker (a Dask worker process).

    Such a process already has the core its pool gave it: code that would
    start its own pool by default (the GARCH per-asset fits with ``n_jobs``
    None) runs serially there instead of nesting a pool in a pool.
    """
    import multiprocessing

    return _IN_POOL_WORKER or multiprocessing.current_process().daemon


def die_with_parent(run_pid: int, spill: str | None = None, poll: float = 0.5) -> None:
    """Worker initializer: end this process (removing ``spill``) when the run ``run_pid`` ends.

    Also :func:`tune_allocator` (the worker's allocator keeps freed memory) and
    :func:`riskmodels._numba_cache.install_compile_lock` (a kernel another
    worker is compiling is loaded from the cache, not built again).

    ``run_pid`` is the process that made the pool; with a forkserver the
    worker's parent is the server, which itself exits when the run does.
    """
    global _IN_POOL_WORKER
    _IN_POOL_WORKER = True
    parent = os.getppid()
    tune_allocator()
    from riskmodels._numba_cache import install_compile_lock

    install_compile_lock()  # cold numba cache: one build per kernel across the workers
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass
        signal.signal(signal.SIGTERM, lambda *_: _leave(spill, 128 + int(signal.SIGTERM)))
    if os.getppid() != parent or not pid_alive(run_pid):  # the parent died before prctl took effect
        _leave(spill)

    def watch() -> None:
        while True:
            time.sleep(poll)
            if os.getppid() != parent or not pid_alive(run_pid):
                _leave(spill)

    threading.Thread(target=watch, name="riskmodels-watchdog", daemon=True).start()


#: modules the model pool's forkserver imports once (what each spawned worker would import again)
ENGINE_PRELOAD = ("riskmodels.backtest.engine", "riskmodels.margin")


def start_forkserver(preload: tuple[str, ...] = ENGINE_PRELOAD) -> bool:
    """Start this process's ``forkserver`` now (it imports ``preload``); False where there is none.

    The server is started by the first pool that uses it; started earlier, its
    imports (~0.9 s of CPU for the engine) run on another core while this
    process still imports and loads its own data, and the pool's workers
    fork from a server that is ready. Starting it twice is a no-op (the
    preload list counts only before the first start); the server exits with
    this process.
    """
    import multiprocessing
    import multiprocessing.forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(preload))
    multiprocessing.forkserver.ensure_running()
    return True


def terminate_pool(pool: Any) -> None:
    """Cancel queued work and terminate the pool's workers now (no waiting for running tasks).

    Then the pool's manager thread is unblocked and joined: a worker killed
    while it wrote its result to the result pipe leaves that thread in
    ``recv()`` on a half-written message, and since this process holds the
    pipe's write end too, the read never ends; the interpreter's exit joins
    the thread (``concurrent.futures.process._python_exit``), so the run hung
    after SIGTERM (seen 1 in ~20-40 SIGTERMs of the test
    ``test_sigterm_during_a_parallel_backtest_leaves_no_workers_spill_or_output``,
    2026-12-03). Closing this process's write end once every worker is gone
    makes the read end in EOF, which the thread handles as a broken pool;
    closing the task pipe's read end lets a feeder thread stuck writing a
    queued task fail instead of waiting for a reader (what CPython does for a
    broken pool, gh-94777).
    """
    handles = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown forgets them (it sets None)
    manager = getattr(pool, "_executor_manager_thread", None)
    ends = [getattr(getattr(pool, q, None), end, None) for q, end in (("_result_queue", "_writer"), ("_call_queue", "_reader"))]
    with contextlib.suppress(Exception):
        pool.shutdown(wait=False, cancel_futures=True)
    for p in handles:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in handles:
        with contextlib.suppress(Exception):
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
    writer, reader = ends
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()
    if manager is None or manager is threading.current_thread():
        return
    with contextlib.suppress(Exception):
        manager.join(2)
        if manager.is_alive() and reader is not None:  # its feeder is stuck writing a task nobody will read
            reader.close()  # only now: CPython's own threads close it on a normal teardown (not thread-safe)
            manager.join(10)


@contextlib.contextmanager
def process_pool(max_workers: int, mp_context: Any, spill: str | None = None) -> Iterator[ProcessPoolExecutor]:
    """A :class:`ProcessPoolExecutor` whose workers die with this process; terminated on any error."""
    pool = ProcessPoolExecutor(max_workers=max_workers, mp_context=mp_context, initializer=die_with_parent,
                               initargs=(os.getpid(), spill))
    try:
        yield pool
    except BaseException:
        terminate_pool(pool)
        raise
    else:
        pool.shutdown(wait=True)


def remove_stale_spills(directory: str | None = None) -> list[Path]:
    """Remove ``riskmodels-spill-PID-*`` folders of runs that no longer exist."""
    removed = []
    for p in Path(directory or tempfile.gettempdir()).glob(f"{SPILL_PREFIX}*"):
        try:
            pid = int(p.name[len(SPILL_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def spill_folder() -> Iterator[str]:
    """A temporary ``riskmodels-spill-PID-*`` folder, removed on exit (stale ones of dead runs first)."""
    remove_stale_spills()
    with tempfile.TemporaryDirectory(prefix=f"{SPILL_PREFIX}{os.getpid()}-") as d:
        yield d


__all__ = ["die_with_parent", "in_pool_worker", "pid_alive", "process_pool", "remove_stale_spills", "spill_folder", "start_forkserver",
           "terminate_pool", "tune_allocator"]
