"""Streamed runs of large books: accounts in chunks, each model fitted once, aggregates kept.

A dense run holds several ``(dates, accounts)`` arrays per model (margins,
coverage masks, simulation state): at 100,000 accounts over the full
history that is tens of GB. A streamed run instead

1. fits every model **once** on the panel (the fitted state depends on
   prices, not on accounts) and shares the fitted states with every worker
   (pickled once per local worker process; scattered once with
   ``broadcast=True`` on a Dask cluster);
2. splits the book into contiguous chunks of ``chunk_accounts`` accounts
   (``[backtest] chunk_accounts``, default :data:`DEFAULT_CHUNK`); each chunk
   goes through the engine's own kernels (margin path in blocks, coverage
   backtest, account simulation) for every model, is restricted to the
   cells every model prices (as :func:`~riskmodels.backtest.windows.restrict_to_common`
   does for a dense run) and reduced to a
   :class:`~riskmodels.backtest.stream_aggregate.ChunkAggregate`;
3. adds the chunks **in account order** (whatever order they finished in),
   so serial, local-process and Dask runs give identical numbers, and the
   numbers equal those of the unchunked run (counts, events and verdicts
   exactly, float sums to rounding; tested).

Accounts are independent in the path, the coverage backtest and the
simulation; the one exception is ``[liquidation] feedback`` (forced sales
move every account's prices), which a streamed run refuses.

Where the work runs: ``n_jobs`` local processes (the config's
``[backtest] n_jobs``), a Dask ``LocalCluster`` of ``workers`` processes,
or an existing cluster at ``scheduler`` (``tcp://host:8786``). Local workers
and LocalCluster workers end with this process (:mod:`riskmodels.workers`;
Dask's nanny closes a worker whose parent is gone).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import pickle
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from riskmodels.backtest import stream_aggregate as sa
from riskmodels.backtest.coverage import realised_loss
from riskmodels.backtest.engine import _window_path, backtest_window, build_book, build_models
from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.backtest.verdict import daily_counts, side_masks
from riskmodels.config import liquidation_policy
from riskmodels.data.panel import PricePanel
from riskmodels.errors import UserError
from riskmodels.margin.base import MarginModel, account_eligibility
from riskmodels.portfolio import Book

Progress = Callable[[str, int, int], None]

#: accounts per chunk when the config says 0 (automatic)
DEFAULT_CHUNK = 5_000
#: with ``chunk_accounts = 0`` a book larger than this is streamed (a dense run of it needs > ~10 GB)
STREAM_ABOVE = 20_000
#: accounts of the pilot block that sets each model's percentile band
PILOT_ACCOUNTS = 1_000
#: fewest accounts of one pilot part (the pilot is split between the workers in parts of at least this many)
PILOT_PART = 250
#: half-width of the band of kept ratios, in percentile points of the pilot (plus its sampling error)
BAND_HALF_WIDTH = 2.0


@dataclass
class StreamContext:
    """What every chunk needs, shared once with each worker."""

    panel: PricePanel
    book: Book
    labels: list[str]
    fitted: list[Any]
    asset_ok: np.ndarray
    mpor: int
    coverage_on: str
    policy: LiquidationPolicy
    start: int
    end: int


def chunk_size(cfg_value: int, n_accounts: int, forced: bool = False) -> int:
    """Accounts per chunk: the configured size, or automatic (0): :data:`DEFAULT_CHUNK` above :data:`STREAM_ABOVE`.

    Returns 0 when the run is not streamed (automatic, a book up to
    :data:`STREAM_ABOVE` accounts, and no cluster asked for: ``forced``).
    """
    if cfg_value:
        return int(cfg_value)
    return DEFAULT_CHUNK if (forced or n_accounts > STREAM_ABOVE) else 0


def fit_models(models: list[MarginModel], panel: PricePanel, policy: LiquidationPolicy) -> tuple[list[Any], dict[str, float], list[tuple[type[Warning], str]]]:
    """Fit every model once (BLAS on one thread, as the engine does); fit seconds and warnings."""
    fitted, secs = [], {}
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for m in models:
            t0 = time.perf_counter()
            fitted.append(apply_rule(m.fit(panel), policy.maintenance_ratio))
            secs[m.label] = time.perf_counter() - t0
    return fitted, secs, [(w.category, str(w.message)) for w in caught]


def chunk_aggregate(ctx: StreamContext, a0: int, a1: int, bands: dict[str, tuple[int, int]] | None,
                    paths_only: bool = False) -> sa.ChunkAggregate:
    """Run accounts ``a0..a1-1`` through every fitted model and reduce them (see the module docstring).

    ``bands``: per model the bins of IM / notional whose values are kept
    (None: the pilot, which keeps only the histogram of the bins).
    ``paths_only``: margin paths and coverage only (the pilot and the
    percentile's second pass).
    """
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _chunk(ctx, a0, a1, bands, paths_only)
    seen = list(dict.fromkeys((w.category, str(w.message)) for w in caught))
    for m in out.models.values():
        m.warnings = seen
    return out


def _chunk(ctx: StreamContext, a0: int, a1: int, bands: dict[str, tuple[int, int]] | None,
           paths_only: bool) -> sa.ChunkAggregate:
    panel, start, end = ctx.panel, ctx.start, ctx.end
    sub = ctx.book.subset(np.arange(a0, a1))
    in_window = np.zeros(panel.n_dates, dtype=bool)
    in_window[start : end + 1] = True
    eligible = account_eligibility(ctx.asset_ok, sub) & in_window[:, None]
    loss = realised_loss(panel, sub, ctx.mpor, slice(start, end + 1))
    gross = sub.gross_notional
    side = np.sign(sub.net_notional).astype(np.int8)
    aggs: dict[str, sa.ModelAggregate] = {}
    kept: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    ok0 = None
    for label, fitted in zip(ctx.labels, ctx.fitted, strict=True):
        agg = sa.ModelAggregate()
        t0 = time.perf_counter()
        path, cov = _window_path(fitted, panel, sub, eligible, start, end, ctx.mpor, ctx.coverage_on, loss)
        agg.timings["path"] = time.perf_counter() - t0
        im = path.initial
        if ok0 is None:
            ok0 = path.eligible
        if not paths_only:
            t0 = time.perf_counter()
            from riskmodels.backtest.result import _priced_sums

            agg.im_sum, agg.g_sum = _priced_sums(im, path.eligible, gross)
            agg.procyc = sa.procyclicality_sums(im, path.eligible, gross)
            agg.present = ~np.isnan(np.where(path.eligible, im, np.nan)).all(axis=1)  # procyclicality's "keep"
            ok = path.eligible & np.isfinite(im)
            agg.per_account_margin = [np.where(ok, im, 0.0).astype(np.float64).sum(axis=0)]
            agg.timings["reduce"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            sim = simulate_accounts(fitted, sub, ctx.policy, start=start, end=end, asset_ok=ctx.asset_ok)
            agg.timings["simulation"] = time.perf_counter() - t0
            ev = sim.events.copy()
            ev["account"] += a0
            agg.events = [ev]
            agg.opened = int(np.unique(sim.openings["account"]).size)
            agg.liquidated = int(np.unique(sim.liquidations["account"]).size)
            agg.account_days = sim.account_days
            agg.notional_total = np.asarray(sim.notional_total, dtype=np.float64).copy()
            del sim
        kept[label] = (im, cov.valid, cov.exceptions)
        aggs[label] = agg
        del path, cov
    assert ok0 is not None
    common = np.logical_and.reduce([v for _, v, _ in kept.values()])
    union = np.logical_or.reduce([v for _, v, _ in kept.values()])
    held = sub.held().astype(np.float64)
    cells = common & (gross > 0)[None, :]
    gb = np.broadcast_to(gross, cells.shape)
    for label, (im, valid, exc) in kept.items():
        agg = aggs[label]
        x = im[cells] / gb[cells]
        b = sa.order_bins(x)
        if bands is None:  # the pilot: the histogram of its bins is all the bands need
            agg.hist_sparse = _sparse_bincount(b)
            continue
        band = bands[label]
        agg.band = band
        agg.band_values = [x[(b >= band[0]) & (b <= band[1])]]
        if paths_only:
            continue
        agg.ratio_sum, agg.ratio_n = float(x.sum()), int(x.size)
        agg.hist_sparse = _sparse_bincount(b)
        X, N = daily_counts(exc & common, common, side_masks(side))
        agg.X, agg.N = X, N
        mine = union & ~valid
        agg.unpriced_cells = int(mine.sum())
        agg.dropped_from_row = int((valid & ~common).sum())
        agg.unpriced_by_asset = mine.sum(axis=0).astype(np.float64) @ held
        agg.unpriced_rows = mine.any(axis=1)
    ok_gross = ok0.astype(np.float64) @ gross
    return sa.ChunkAggregate(a0, a1 - a0, aggs, ok0.sum(axis=1).astype(np.int64), ok_gross,
                             int(ok0.any(axis=0).sum()), int(common.sum()))


def _sparse_bincount(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.bincount(b, minlength=sa.N_BINS)
    idx = np.flatnonzero(c)
    return idx, c[idx]


# ----------------------------------------------------------------------------- where chunks run
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


def _preload_worker() -> None:
    """Import what unpickling the fitted states and running a chunk needs (in a Dask worker)."""
    import importlib

    from riskmodels.workers import ENGINE_PRELOAD

    for name in (*ENGINE_PRELOAD, __name__):
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

    def __init__(self, workers: int | None, scheduler: str | None) -> None:
        self._out: tuple[Any, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(workers, scheduler), name="riskmodels-dask-start",
                                        daemon=True)
        self._thread.start()

    def _run(self, workers: int | None, scheduler: str | None) -> None:
        try:
            self._out = _connect_dask(workers, scheduler)
            # the workers import the engine and the models now, not when the fitted states arrive
            self._out[0].run(_preload_worker)
        except BaseException as exc:  # re-raised by get() in the caller's thread
            self._error = exc

    def get(self) -> tuple[Any, Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._out is not None
        return self._out

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


def _ordered(run: _Runner, ranges: list[tuple[int, int]], bands: Any, paths_only: bool,
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


def pilot_ranges(n_accounts: int, workers: int) -> list[tuple[int, int]]:
    """The pilot's accounts ``0..min(P, PILOT_ACCOUNTS)-1`` in up to ``workers`` parts of >= :data:`PILOT_PART`.

    The bands read the pilot's values as a set (a percentile), so the parts
    give the bands of the whole pilot; splitting it lets every worker price
    a part instead of all but one idling while one process prices it.
    """
    n = min(int(n_accounts), PILOT_ACCOUNTS)
    k = max(1, min(int(workers), n // PILOT_PART))
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _empty(labels: list[str], T: int) -> sa.ChunkAggregate:
    return sa.ChunkAggregate(0, 0, {k: sa.ModelAggregate() for k in labels}, np.zeros(T, dtype=np.int64),
                             np.zeros(T), 0, 0)


def _bands_from_pilot(pilot: sa.ChunkAggregate) -> dict[str, tuple[int, int]]:
    """Per model the bins from the pilot's percentile ``95 - w`` to its ``95 + w``, ``w = BAND_HALF_WIDTH + 3 se``.

    Read from the pilot's histogram of bins (:func:`band_from_hist`), so the
    pilot's parts send back ``N_BINS`` counts instead of their ratios.
    """
    bands = {}
    for label, m in pilot.models.items():
        n = 0 if m.hist is None else int(m.hist.sum())
        if n == 0:
            bands[label] = (0, sa.N_BINS - 1)
            continue
        se = 100.0 * np.sqrt(0.05 * 0.95 / n)
        w = BAND_HALF_WIDTH + 3.0 * se
        bands[label] = band_from_hist(m.hist, max(0.0, sa.P95 - w), min(100.0, sa.P95 + w))  # type: ignore[arg-type]
    return bands


def band_from_hist(hist: np.ndarray, q_lo: float, q_hi: float) -> tuple[int, int]:
    """The bins from the lower order statistic of percentile ``q_lo`` to the upper one of ``q_hi``.

    ``numpy.percentile`` (linear) of ``n`` values at ``q`` lies between the
    order statistics ``floor((n-1) q / 100)`` and the next
    (:func:`~riskmodels.backtest.stream_aggregate.percentile_ranks`), so
    the band contains the bins of ``numpy.percentile(x, [q_lo, q_hi])``
    (tested): the same band as the values would give, or a bin wider.
    """
    n = int(hist.sum())
    cum = np.cumsum(hist)
    r_lo = sa.percentile_ranks(n, q_lo)[0]
    r_hi = sa.percentile_ranks(n, q_hi)[1]
    return int(np.searchsorted(cum, r_lo + 1)), int(np.searchsorted(cum, r_hi + 1))


def stream_models(
    panel: PricePanel,
    book: Book,
    models: list[MarginModel],
    *,
    mpor: int = 2,
    min_history: int = 365,
    start: int = 0,
    end: int | None = None,
    policy: LiquidationPolicy | None = None,
    coverage_on: str = "initial",
    config: dict[str, Any] | None = None,
    chunk_accounts: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
) -> Any:
    """The comparison of :func:`~riskmodels.backtest.engine.run_models`, streamed in chunks of accounts.

    Returns a :class:`~riskmodels.backtest.stream_result.StreamedResult`
    (summary, verdicts, procyclicality, comparison, concentration, events).
    The isolated-margin (netting) path is not run: its table is a
    distribution across accounts per date, which a stream does not keep.
    """
    from riskmodels.backtest.stream_result import StreamedResult

    end = panel.n_dates - 1 if end is None else end
    policy = policy or LiquidationPolicy()
    if getattr(policy, "feedback", False):
        raise UserError("[liquidation] feedback = true couples the accounts (their forced sales move each other's "
                        "prices), so the book cannot be split into chunks: set [backtest] chunk_accounts = 0 "
                        "with a book under 20,000 accounts, or feedback = false")
    if chunk_accounts < 1:
        raise UserError(f"[backtest] chunk_accounts = {chunk_accounts}: a streamed run needs chunks of >= 1 account")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be unique, got {labels}")
    book = book.align(panel.assets)
    need = max([min_history, *(m.min_history for m in models)])
    asset_ok = panel.eligible(need)
    started = DaskStart(workers, scheduler) if (workers or scheduler) else None  # starts while the models fit
    t0 = time.perf_counter()
    try:
        fitted, fit_s, fit_warnings = fit_models(models, panel, policy)
    except BaseException:
        if started is not None:
            started.close()
        raise
    fit_wall = time.perf_counter() - t0
    ctx = StreamContext(panel, book, labels, fitted, asset_ok, int(mpor), coverage_on, policy, int(start), int(end))
    P = book.n_accounts
    edges = [*list(range(0, P, int(chunk_accounts))), P]
    ranges = [(a, b) for a, b in itertools.pairwise(edges)]
    T = end - start + 1
    t1 = time.perf_counter()
    with runner(ctx, n_jobs=n_jobs, workers=workers, scheduler=scheduler, note=note, started=started) as run:
        # the pilot's parts run on the workers (not in this process while they wait): the same values
        pilot = _empty(labels, T)
        for part in _ordered(run, pilot_ranges(P, run.workers), None, True, None, "pilot"):
            pilot.add(part)
        bands = _bands_from_pilot(pilot)
        del pilot
        total = _empty(labels, T)
        for part in _ordered(run, ranges, bands, False, progress, "chunk"):
            total.add(part)
        p95 = {}
        missed = []
        for label, m in total.models.items():
            assert m.hist is not None
            v = np.concatenate(m.band_values) if m.band_values else np.zeros(0)
            p95[label] = sa.exact_percentile(m.hist, bands[label], v)
            m.band_values = []
            if p95[label] is None:
                missed.append(label)
        if missed:  # second pass, paths only, keeping the bins that hold the order statistics
            second = {k: (sa.needed_bins(total.models[k].hist) if k in missed else (1, 0)) for k in labels}  # type: ignore[arg-type]
            vals: dict[str, list[np.ndarray]] = {k: [] for k in missed}
            for part in _ordered(run, ranges, second, True, progress, "percentile pass"):
                for k in missed:
                    vals[k].extend(part.models[k].band_values)
            for k in missed:
                p95[k] = sa.exact_percentile(total.models[k].hist, second[k], np.concatenate(vals[k]))  # type: ignore[arg-type]
        describe, n_workers = run.describe, run.workers
    if total.accounts_ever_priced == 0:
        from riskmodels.backtest.window import nothing_to_evaluate

        raise nothing_to_evaluate(panel, book, asset_ok, need, start, end)
    for label, m in total.models.items():
        m.timings = {"fit": fit_s[label], **m.timings}
        m.warnings = list(dict.fromkeys([*fit_warnings, *m.warnings]))
        for category, message in m.warnings:
            warnings.warn(message, category, stacklevel=2)
    for label, f in zip(labels, fitted, strict=True):
        log = getattr(f, "fit_log", None)
        if log is None:
            log = getattr(getattr(f, "inner", None), "fit_log", None)
        total.models[label].fit_log = log
    cfg = config or {"backtest": {"mpor": mpor, "min_history": need, "coverage_on": coverage_on}}
    run_facts = {"chunk_accounts": int(chunk_accounts), "chunks": len(ranges), "backend": describe,
                 "workers": n_workers, "percentile_second_pass": missed, "fit_s": fit_wall,
                 "chunks_s": time.perf_counter() - t1}
    return StreamedResult(panel, book, models, total, p95, cfg, start, end, policy, run_facts)


def stream_backtest(cfg: dict[str, Any], panel: PricePanel, *, chunk_accounts: int | None = None,
                    workers: int | None = None, scheduler: str | None = None, progress: Progress | None = None,
                    note: Callable[[str], None] | None = None) -> Any:
    """:func:`~riskmodels.backtest.engine.run_backtest`, streamed (``chunk_accounts`` overrides the config's)."""
    universe = tuple(cfg["data"]["universe"]) or panel.assets
    missing = [a for a in universe if a not in panel.assets]
    if missing:
        raise KeyError(f"universe assets missing from the data: {missing}")
    panel = panel.select(universe)
    start, end = backtest_window(panel, cfg)
    book = build_book(cfg, panel.assets)
    models = build_models(cfg)
    bt = cfg["backtest"]
    size = chunk_accounts or chunk_size(int(bt.get("chunk_accounts", 0)), book.n_accounts, forced=True)
    return stream_models(
        panel, book, models, mpor=int(bt["mpor"]), min_history=int(bt["min_history"]), start=start, end=end,
        policy=liquidation_policy(cfg), coverage_on=bt.get("coverage_on", "initial"), config=cfg,
        chunk_accounts=size, n_jobs=int(bt.get("n_jobs", 1)), workers=workers, scheduler=scheduler,
        progress=progress, note=note,
    )
