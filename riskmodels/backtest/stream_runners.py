"""Where the chunks of a streamed run go: this process, local processes, or a Dask cluster.

:func:`runner` yields a :class:`_Runner` whose ``submit`` returns a future of
:func:`~riskmodels.backtest.stream_chunk.chunk_aggregate`; :func:`ordered`
hands the chunks back in account order with a bounded number in flight.
:class:`DaskStart` starts a Dask client while the models fit.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from riskmodels.backtest import stream_aggregate as sa
from riskmodels.backtest.stream_chunk import StreamContext, chunk_aggregate
from riskmodels.errors import UserError

Progress = Callable[[str, int, int], None]

_CTX: StreamContext | None = None


def _init_local(run_pid: int, ctx_file: str) -> None:
    from riskmodels.workers import die_with_parent

    die_with_parent(run_pid)
    global _CTX
    with open(ctx_file, "rb") as fh:
        _CTX = pickle.load(fh)


def _local_task(a0: int, a1: int, bands: dict[str, tuple[int, int]] | None, paths_only: bool) -> sa.ChunkAggregate:
    assert _CTX is not None
    return chunk_aggregate(_CTX, a0, a1, bands, paths_only)


def _dask_task(ctx: StreamContext, a0: int, a1: int, bands: dict[str, tuple[int, int]] | None,
               paths_only: bool) -> sa.ChunkAggregate:
    return chunk_aggregate(ctx, a0, a1, bands, paths_only)


class _Runner:
    """Submit chunks to this process, a local pool or a Dask cluster; ``submit`` returns a Future."""

    def __init__(self, ctx: StreamContext, submit: Callable[..., Future], describe: str, workers: int) -> None:
        self.ctx, self._submit, self.describe, self.workers = ctx, submit, describe, workers

    def submit(self, a0: int, a1: int, bands: dict[str, tuple[int, int]] | None, paths_only: bool) -> Future:
        return self._submit(a0, a1, bands, paths_only)


def _connect_dask(workers: int | None, scheduler: str | None) -> tuple[Any, Any]:
    """``(client, cluster)``: a client of the scheduler at ``scheduler`` (cluster None), or of a new LocalCluster."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise UserError(f"--scheduler {scheduler}: no Dask scheduler answers there ({exc}); start one with "
                            "`dask scheduler` and workers with `dask worker ADDRESS`, or use --workers N "
                            "for a local cluster") from None
    cluster = LocalCluster(n_workers=int(workers or 2), threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def _preload_worker(own: bool = False, extra: tuple[str, ...] = ()) -> None:
    """Import what unpickling the fitted states and running a chunk needs (in a Dask worker).

    ``own``: the worker belongs to this run's LocalCluster (it ends with the
    run), so its allocator keeps freed memory for reuse
    (:func:`riskmodels.workers.tune_allocator`, as riskmodels' own pool
    workers do). Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``,
    which returns freed heap to the kernel at once, so each chunk's arrays
    were faulted in again page by page: measured 2026-12-03 (1,000 accounts,
    two chunks of 500, 11 rows) the chunks took 15.8-16.3 s on 2 workers
    and 28.3 s on 1 without it, 13.7-13.9 s and 25.2 s with it. Workers
    of an existing scheduler are left as their owner started them.
    ``extra``: more modules to import (``arch.univariate`` when the workers
    will run the per-asset GARCH fits: ~0.7 s the first fit would pay).
    """
    import importlib

    from riskmodels.workers import ENGINE_PRELOAD, tune_allocator

    if own:
        tune_allocator()
    for name in (*ENGINE_PRELOAD, "riskmodels.backtest.stream_chunk", __name__, *extra):
        importlib.import_module(name)


class DaskStart:
    """The Dask client (and LocalCluster) started in a thread, so its start-up overlaps the models' fits.

    A LocalCluster takes ~1 s to start its worker processes and each worker
    ~1.5 s to import the engine and the models (:func:`_preload_worker`,
    run here on every worker once it is up; those imports run in the worker
    processes); fitting the default models takes ~4 s in this one. :meth:`get` waits for the client and re-raises what starting it
    raised (an unreachable scheduler's :class:`~riskmodels.errors.UserError`);
    :meth:`close` ends it when the run stops before using it.
    """

    def __init__(self, workers: int | None, scheduler: str | None, preload: tuple[str, ...] = ()) -> None:
        self._out: tuple[Any, Any] | None = None
        self._error: BaseException | None = None
        self._preload = tuple(preload)
        self._thread = threading.Thread(target=self._run, args=(workers, scheduler), name="riskmodels-dask-start",
                                        daemon=True)
        self._thread.start()

    def _run(self, workers: int | None, scheduler: str | None) -> None:
        try:
            out = _connect_dask(workers, scheduler)
        except BaseException as exc:  # re-raised by get() in the caller's thread
            self._error = exc
            return
        try:  # the workers import the engine and the models now, not when the fitted states arrive
            out[0].run(_preload_worker, out[1] is not None, self._preload)
        except BaseException as exc:  # a worker that cannot import riskmodels: nothing of the cluster stays
            out[0].close()
            if out[1] is not None:
                out[1].close()
            self._error = exc
            return
        self._out = out

    def get(self) -> tuple[Any, Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._out is not None
        return self._out

    def asset_executor(self) -> Any:
        """An executor on the cluster's workers for the per-asset fits, or None with fewer than 2 workers.

        Waits for the cluster (:meth:`get`). With one worker the fits stay in
        this process: sending them to the only worker would only add the wait
        for its start.
        """
        client, _cluster = self.get()
        if len(client.scheduler_info().get("workers", {})) < 2:
            return None
        return client.get_executor(pure=False)

    def close(self) -> None:
        self._thread.join()
        if self._out is not None:
            client, cluster = self._out
            client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def runner(ctx: StreamContext, n_jobs: int = 1, workers: int | None = None, scheduler: str | None = None,
           note: Callable[[str], None] | None = None, started: DaskStart | None = None) -> Iterator[_Runner]:
    """Where the chunks run: serial (``n_jobs`` 1), local processes, or Dask (``workers`` / ``scheduler``).

    ``started``: the Dask client already being started (:class:`DaskStart`).
    """
    say = note or (lambda _m: None)
    if scheduler or workers:
        client, cluster = started.get() if started is not None else _connect_dask(workers, scheduler)
        try:
            n = len(client.scheduler_info().get("workers", {}))
            say(f"dask {'scheduler ' + scheduler if scheduler else 'LocalCluster'}: {n} worker(s)")
            shared = client.scatter(ctx, broadcast=True)  # the fitted states travel once per worker

            def dsubmit(a0: int, a1: int, bands: Any, paths_only: bool) -> Future:
                return client.submit(_dask_task, shared, a0, a1, bands, paths_only, pure=False)

            yield _Runner(ctx, dsubmit, f"dask ({n} workers)", n)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    if n_jobs <= 1 or multiprocessing.current_process().daemon:
        def ssubmit(a0: int, a1: int, bands: Any, paths_only: bool) -> Future:
            fut: Future = Future()
            try:
                fut.set_result(chunk_aggregate(ctx, a0, a1, bands, paths_only))
            except BaseException as exc:
                fut.set_exception(exc)
            return fut

        yield _Runner(ctx, ssubmit, "serial", 1)
        return
    from riskmodels.workers import spill_folder, terminate_pool

    with spill_folder() as spill:
        ctx_file = os.path.join(spill, "context.pkl")
        with open(ctx_file, "wb") as fh:
            pickle.dump(ctx, fh, protocol=pickle.HIGHEST_PROTOCOL)
        mp = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=int(n_jobs), mp_context=mp, initializer=_init_local,
                                   initargs=(os.getpid(), ctx_file))
        say(f"local process pool: {n_jobs} worker(s)")
        try:
            yield _Runner(ctx, lambda a0, a1, b, po: pool.submit(_local_task, a0, a1, b, po),
                          f"processes ({n_jobs})", int(n_jobs))
        except BaseException:
            terminate_pool(pool)
            raise
        else:
            pool.shutdown(wait=True)


def ordered(run: _Runner, ranges: list[tuple[int, int]], bands: Any, paths_only: bool,
             progress: Progress | None, what: str) -> Iterator[sa.ChunkAggregate]:
    """The chunks' aggregates in account order, at most ``2 x workers`` chunks in flight (bounded memory)."""
    inflight = max(2, 2 * run.workers)
    futs: dict[int, Future] = {}
    nxt = 0
    for i in range(len(ranges)):
        while nxt < len(ranges) and nxt < i + inflight:
            futs[nxt] = run.submit(*ranges[nxt], bands, paths_only)
            nxt += 1
        yield futs.pop(i).result()
        if progress:
            progress(f"{what} {ranges[i][1]:,}/{ranges[-1][1]:,} accounts", i + 1, len(ranges))
