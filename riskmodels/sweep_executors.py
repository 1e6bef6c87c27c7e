"""Sweep executors: serial, a local process pool, or a Dask cluster.

:func:`make_executor` yields a :class:`concurrent.futures.Executor` for the
chosen backend (:data:`BACKENDS`); :class:`SerialExecutor` runs each task in the
calling process.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any


# --------------------------------------------------------------------------- executors
class SerialExecutor(cf.Executor):
    """A :class:`concurrent.futures.Executor` that runs each call at submit time, in this process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:  # type: ignore[override]
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


BACKENDS = ("processes", "dask", "serial")


@contextlib.contextmanager
def make_executor(backend: str = "processes", workers: int | None = None, scheduler: str | None = None,
                  note: Callable[[str], None] | None = None) -> Iterator[cf.Executor]:
    """An executor for ``backend`` (see module docstring); closes what it started.

    ``workers`` must be >= 1 (default: all cores for processes, 2 for a
    Dask local cluster). ``scheduler`` is a Dask scheduler address
    (``tcp://host:8786``); with ``backend="dask"`` and no address a
    LocalCluster is started and closed here.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} must be one of {BACKENDS}")
    if workers is not None and (int(workers) != workers or workers < 1):
        raise ValueError(f"workers={workers!r} is outside its valid range: integers >= 1")
    if scheduler and backend != "dask":
        raise ValueError("a scheduler address needs backend='dask'")
    say = note or (lambda _m: None)
    if backend == "serial":
        yield SerialExecutor()
        return
    if backend == "processes":
        import multiprocessing as mp

        n = workers or os.cpu_count() or 1
        say(f"local process pool: {n} worker(s)")
        if "forkserver" in mp.get_all_start_methods():
            # workers fork from a clean single-threaded server that has imported the code once
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["riskmodels.sweep", "riskmodels.backtest.engine", "riskmodels.margin"])
        else:  # Windows
            ctx = mp.get_context("spawn")
        from riskmodels.workers import process_pool

        # workers end with this process (any signal); on an error or SIGTERM they are terminated, not drained
        with process_pool(n, ctx) as ex:
            yield ex
        return
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler)
        say(f"dask scheduler {scheduler}: {len(client.scheduler_info().get('workers', {}))} worker(s)")
    else:
        n = workers or 2
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        say(f"dask LocalCluster: {n} worker process(es), 1 thread each")
    try:
        if cluster is not None:
            from riskmodels.workers import tune_allocator

            # its workers end with the sweep: keep freed memory for reuse (stream_runners._preload_worker)
            client.run(tune_allocator)
        ex = client.get_executor(pure=False)
        try:
            yield ex
        finally:
            ex.shutdown(wait=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
