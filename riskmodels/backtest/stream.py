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

import itertools
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from riskmodels.backtest import stream_aggregate as sa
from riskmodels.backtest.engine import backtest_window, build_book, build_models
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.backtest.stream_chunk import StreamContext as StreamContext
from riskmodels.backtest.stream_chunk import chunk_aggregate as chunk_aggregate
from riskmodels.backtest.stream_chunk import fit_models as fit_models
from riskmodels.backtest.stream_chunk import fits_per_asset
from riskmodels.backtest.stream_runners import DaskStart, ordered, runner
from riskmodels.config import liquidation_policy
from riskmodels.data.panel import PricePanel
from riskmodels.errors import UserError
from riskmodels.margin.base import MarginModel
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


def chunk_size(cfg_value: int, n_accounts: int, forced: bool = False) -> int:
    """Accounts per chunk: the configured size, or automatic (0): :data:`DEFAULT_CHUNK` above :data:`STREAM_ABOVE`.

    Returns 0 when the run is not streamed (automatic, a book up to
    :data:`STREAM_ABOVE` accounts, and no cluster asked for: ``forced``).
    """
    if cfg_value:
        return int(cfg_value)
    return DEFAULT_CHUNK if (forced or n_accounts > STREAM_ABOVE) else 0


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
    return sa.needed_bins(hist, q_lo)[0], sa.needed_bins(hist, q_hi)[1]


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
    per_asset = any(fits_per_asset(m) for m in models)  # GARCH / EWMA: their per-asset fits can use the cluster
    # the cluster starts while the other models fit
    started = DaskStart(workers, scheduler, ("arch.univariate",) if per_asset else ()) if (workers or scheduler) else None
    t0 = time.perf_counter()
    try:
        # on a cluster of >= 2 workers the per-asset GARCH / EWMA fits run there, after the other fits
        fitted, fit_s, fit_warnings = fit_models(models, panel, policy,
                                                 None if started is None else started.asset_executor)
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
        for part in ordered(run, pilot_ranges(P, run.workers), None, True, None, "pilot"):
            pilot.add(part)
        bands = _bands_from_pilot(pilot)
        del pilot
        total = _empty(labels, T)
        for part in ordered(run, ranges, bands, False, progress, "chunk"):
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
            for part in ordered(run, ranges, second, True, progress, "percentile pass"):
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
