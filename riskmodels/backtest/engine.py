"""The walk-forward comparison: panel + book + models -> BacktestResult.

For each model: ``fit`` on the whole panel (each date's state uses only data
up to that date), the margin path of the constant-notional book, the coverage
backtest against the realised MPOR loss, and the account simulation with
liquidations. Every model sees the same (date, account) cells: an account is
priced on dates where every asset it holds has ``min_history`` returns.
Results come back from the model workers through spill files
(:mod:`riskmodels.backtest.engine_transfer`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import multiprocessing
import time
import warnings
from collections.abc import Callable
from concurrent.futures import as_completed
from typing import Any

import numba
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from riskmodels.backtest.coverage import CoverageResult, coverage_backtest, realised_loss
from riskmodels.backtest.engine_transfer import _merge, _share, _spill
from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.backtest.result import BacktestResult, ModelResult
from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.backtest.windows import restrict_to_common
from riskmodels.config import liquidation_policy
from riskmodels.data.panel import PricePanel
from riskmodels.failures import check_stop
from riskmodels.margin import base as margin_base
from riskmodels.margin.base import MarginModel, MarginPath, account_eligibility
from riskmodels.portfolio import Book, generate_book
from riskmodels.workers import ENGINE_PRELOAD, process_pool, spill_folder

Progress = Callable[[str, int, int], None]
#: called with (label, row, panel, start, end) as each model's result is complete, before the next is awaited
RowHook = Callable[[str, ModelResult, PricePanel, int, int], None]


def build_models(cfg: dict[str, Any]) -> list[MarginModel]:
    """Instantiate the ``[[models]]`` of a config through the registry."""
    import riskmodels.margin  # noqa: F401  (registers the built-in models)
    from riskmodels.errors import UserError

    models = []
    for i, spec in enumerate(cfg["models"]):
        params = dict(spec.get("params", {}))
        label = spec.get("label") or spec["name"]
        try:
            models.append(margin_base.get(spec["name"], label=label, **params))
        except (TypeError, ValueError, KeyError) as exc:  # the model's own check names the parameter and range
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise UserError(f"[[models]] #{i + 1} ({label}): {msg}") from None
    return models


def build_book(cfg: dict[str, Any], assets: tuple[str, ...]) -> Book:
    """The config's book: generated (seeded) or read from a file."""
    b = cfg["book"]
    if b.get("source", "generate") != "generate":
        return Book.read(b["source"]).align(assets)
    return generate_book(
        assets,
        int(b["accounts"]),
        seed=int(b["seed"]),
        positions_per_account=tuple(b.get("positions_per_account", (1, 4))),
        long_probability=float(b.get("long_probability", 0.6)),
        median_notional=float(b.get("median_notional", 50_000.0)),
        isolated_share=float(b.get("isolated_share", 0.1)),
        collateral_share=tuple(b.get("collateral_share", (0.0, 0.8))),
        collateral_assets=tuple(b.get("collateral_assets", ("BTC", "ETH"))),
        group_size=tuple(b.get("group_size", (1, 1))),
    )


def backtest_window(panel: PricePanel, cfg: dict[str, Any]) -> tuple[int, int]:
    """Date indices [start, end] of the evaluation window."""
    d = cfg["data"]
    start = panel.date_index(d["start"]) if d.get("start") else 0
    end = panel.date_index(d["end"], side="right") - 1 if d.get("end") else panel.n_dates - 1
    if start > end:
        raise ValueError(f"the data has no dates between {d.get('start')} and {d.get('end')}")
    return start, end


def run_models(
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
    progress: Progress | None = None,
    netting: bool = True,
    n_jobs: int = 1,
    vol: Any = None,
    on_result: RowHook | None = None,
) -> BacktestResult:
    """Run every model on the same panel, book and window.

    Parameters
    ----------
    panel, book
        Prices and accounts (the book is aligned to the panel's assets).
    models
        Margin models (labels must be unique).
    mpor
        Margin period of risk in days for the coverage backtest.
    min_history
        Returns an asset needs before accounts holding it are priced; the
        effective value is the largest of this and every model's own need.
    start, end
        Evaluation window (date indices, inclusive).
    netting
        Also price every account in isolation, for the cross-margining
        (netting) benefit per model and date.
    n_jobs
        Models run in this many processes at once (1 = in this process). Each
        model's numbers do not depend on it.
    vol
        Implied-vol source of a book with options (default: the EWMA proxy);
        such a book runs :func:`riskmodels.backtest.options_path.run_option_models`.
    on_result
        Called as ``on_result(label, row, panel, start, end)`` when a model's
        result is complete (with the pool: as it arrives, while the other
        models still run), e.g. :func:`riskmodels.backtest.report_tables.precompute_row`.
        It must not change the row: the coverage cells of every row are
        restricted to the common ones only after the last row. Not called for
        books with options.
    """
    end = panel.n_dates - 1 if end is None else end
    policy = policy or LiquidationPolicy()
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be unique, got {labels}")
    book = book.align(panel.assets)
    need = max([min_history, *(m.min_history for m in models)])
    if book.has_options:  # full revaluation of options: its own module (linear books never go there)
        from riskmodels.backtest.options_path import run_option_models
        from riskmodels.instruments.vol import ProxyVol

        return run_option_models(panel, book, models, vol if vol is not None else ProxyVol(panel), mpor=mpor,
                                 need=need, start=start, end=end, policy=policy, coverage_on=coverage_on,
                                 config=config, progress=progress, netting=netting, n_jobs=n_jobs)
    asset_ok = panel.eligible(need)
    in_window = np.zeros(panel.n_dates, dtype=bool)
    in_window[start : end + 1] = True
    eligible = account_eligibility(asset_ok, book) & in_window[:, None]
    if not eligible.any():
        from riskmodels.backtest.window import nothing_to_evaluate

        raise nothing_to_evaluate(panel, book, asset_ok, need, start, end)
    gross = book.gross_notional
    results: dict[str, ModelResult] = {}
    n = len(models)
    # the realised MPOR loss does not depend on the model: one copy (window rows) for all results
    shared_loss = realised_loss(panel, book, mpor, slice(start, end + 1))
    # the eligibility mask of the window is the same for every model: kept once too
    shared_ok = np.ascontiguousarray(eligible[start : end + 1])
    args = (panel, book, eligible, asset_ok, gross, mpor, coverage_on, policy, start, end, netting)
    # models are the unit of parallel work; with fewer models than processes the
    # cheap-fit models' accounts are split to use the idle ones (splitting when every
    # process has a model measured slower: each chunk repeats the per-date overhead)
    if n_jobs > 1 and multiprocessing.current_process().daemon:
        n_jobs = 1  # inside a pool or Dask worker (daemonic): no children, the caller already parallelises
    share = n_jobs if n < n_jobs else 1
    # feedback couples the accounts (their forced sales move each other's prices): never split them
    splits = {m.label: account_splits(m, 1 if policy.feedback else share, book.n_accounts) for m in models}
    tasks = [(m, i, sl) for m in models for i, sl in enumerate(splits[m.label])]
    if n_jobs > 1 and len(tasks) > 1:
        ctx = _pool_context()
        _warm_simulation_kernels()  # cold numba cache: compiled once here while the workers fit, not once each
        # longest first (list scheduling): a split model's chunks cost a share of it
        tasks.sort(key=lambda x: -x[0].relative_cost / len(splits[x[0].label]))
        parts: dict[str, dict[int, ModelResult]] = {m.label: {} for m in models}
        # workers end with this process (any signal) and take the spill folder with them (riskmodels.workers)
        with spill_folder() as spill, process_pool(min(n_jobs, len(tasks)), ctx, spill) as pool:
            futures = {}
            for m, i, sl in tasks:
                sub = args if sl == slice(0, book.n_accounts) else (
                    panel, book.subset(np.arange(sl.start, sl.stop)), np.ascontiguousarray(eligible[:, sl]),
                    asset_ok, gross[sl], *args[5:])
                futures[pool.submit(_run_one, m, *sub, None, spill)] = (m.label, i)
            done = 0
            for fut in as_completed(futures):
                check_stop()  # a stop signal swallowed by C code (riskmodels.failures): stop here
                label, i = futures[fut]
                parts[label][i] = fut.result()
                if len(parts[label]) == len(splits[label]):
                    chunks = [parts[label].pop(k) for k in range(len(splits[label]))]
                    results[label] = _share(_reissue(_merge(chunks, splits[label], book, shared_loss)), shared_ok)
                    if on_result is not None:
                        on_result(label, results[label], panel, start, end)
                    done += 1
                    if progress:
                        progress(f"{label}: done", done, n)
        results = {m.label: results[m.label] for m in models}
    else:
        for i, model in enumerate(models):
            if progress:
                progress(model.label, i, n)
            results[model.label] = _share(_reissue(_run_one(model, *args, shared_loss)), shared_ok)
            if on_result is not None:
                on_result(model.label, results[model.label], panel, start, end)
    if progress:
        progress("done", n, n)
    cfg = config or {"backtest": {"mpor": mpor, "min_history": need, "coverage_on": coverage_on}}
    # every row's coverage statistics on the cells all models price (what was dropped is stated)
    common = restrict_to_common(results, book.held().astype(np.float64), panel.assets)
    return BacktestResult(panel, book, results, cfg, start, end, common)


def _pool_context() -> Any:
    """The model pool's start method: a ``forkserver`` that imported the engine once, else ``spawn``.

    Workers fork from a single-threaded server process that has imported
    :mod:`riskmodels.backtest.engine` and the margin models (what a spawned
    worker imports again each, ~1.2 s of CPU on this machine); where there is
    no forkserver (Windows) they are spawned. Never ``fork``: the parent runs
    threads (the numba warm-up, the output writer).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(ENGINE_PRELOAD))  # no-op if the CLI started the server already
        return ctx
    return multiprocessing.get_context("spawn")


def _run_one(
    model: MarginModel,
    panel: PricePanel,
    book: Book,
    eligible: np.ndarray,
    asset_ok: np.ndarray,
    gross: np.ndarray,
    mpor: int,
    coverage_on: str,
    policy: LiquidationPolicy,
    start: int,
    end: int,
    netting: bool,
    loss: np.ndarray | None = None,
    spill: str | None = None,
) -> ModelResult:
    """Fit, margin path, coverage and simulation of one model (runs in a worker too).

    ``loss``: the book's realised MPOR loss over the window ``start..end``
    if the caller has it (the result then refers to it; else it is computed
    per block of accounts and the result's ``coverage.loss`` is left None for
    the caller to set). ``spill``: a directory; the large arrays of the
    result go back through ``.npy`` files there instead of the result's
    pickle (see :func:`_spill`).

    BLAS is held to one thread: the per-date products are small
    ((accounts x assets) @ (assets x scenarios)) and multi-threaded OpenBLAS
    on them was 5-10x slower on a 2-core machine (measured: 200x18 @ 18x500
    took 28 ms with 2 threads, 3 ms with 1). numba's thread pool is held to
    one thread too: the per-date kernels (the FHS path's tail of 1,000 x 500
    losses per date) cost 10 ms a date on the parallel kernel against
    ~1 ms on one thread (measured 2026-12-01, 2 cores: the FHS path of the
    default backtest took 16.7 s of CPU on the parallel kernel, 5.6 s on
    one thread), and the engine already runs one model per core. Numbers do not depend on the threads
    (each account's tail is computed alone).
    """
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _run_one_unlimited(model, panel, book, eligible, asset_ok, gross, mpor, coverage_on, policy,
                                        start, end, netting, loss)
    finally:
        numba.set_num_threads(threads)
    # carried back (also out of worker processes) and re-issued by the caller
    result.warnings = [(w.category, str(w.message)) for w in caught]
    return result if spill is None else _spill(result, spill)


def _warm_simulation_kernels() -> None:
    """Compile the simulation kernels in a daemon thread of this process, unless numba's cache has them."""
    import threading

    from riskmodels._numba_cache import install_compile_lock
    from riskmodels.backtest import _sim_kernels

    install_compile_lock()  # a kernel the workers also need is then built once, here or there
    if _sim_kernels.cache_is_warm():
        return
    threading.Thread(target=_sim_kernels.warm, name="riskmodels-numba-warm", daemon=True).start()


#: the engine splits a model's accounts between processes only in chunks of at least this many
MIN_CHUNK = 100


def account_splits(model: MarginModel, n_jobs: int, n_accounts: int) -> list[slice]:
    """Contiguous account ranges the model's work is split into (one range: not split).

    Accounts are independent in the path, the coverage backtest and the
    simulation (no account's margin or liquidation depends on another's), so
    a model whose fit is cheap (``model.split_accounts``) can be fitted in
    each of ``n_jobs`` processes, each taking a range of accounts; the merged
    result equals the unsplit one (tested). A model whose fit dominates
    (GARCH) runs whole in one process. :func:`run_models` splits only when
    there are fewer models than processes.
    """
    k = min(int(n_jobs), n_accounts // MIN_CHUNK) if getattr(model, "split_accounts", False) else 1
    if k <= 1:
        return [slice(0, n_accounts)]
    edges = np.linspace(0, n_accounts, k + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


#: accounts priced at once by the margin path (bounds the whole-history temporaries of path())
PATH_BLOCK = 1000


def _window_path(
    fitted: Any,
    panel: PricePanel,
    book: Book,
    eligible: np.ndarray,
    start: int,
    end: int,
    mpor: int,
    on: str,
    loss: np.ndarray | None = None,
) -> tuple[MarginPath, CoverageResult]:
    """The margin path over the evaluation window, stored in float32, and its coverage cells.

    ``path()`` prices whole histories; it runs on blocks of :data:`PATH_BLOCK`
    accounts (accounts are independent), each block cut to the window, its
    coverage exceptions decided in float64, then its margins stored in
    float32 (:meth:`MarginPath.stored`). At 10,000 accounts this keeps a
    model's worker near 1 GB instead of ~2 GB. ``loss`` is the window's
    realised MPOR loss if the caller has it (else computed per block); the
    coverage result refers to it (None if not given: the engine shares one
    copy between models).
    """
    P = book.n_accounts
    n = end - start + 1
    im = np.empty((n, P), dtype=np.float32)
    mm = np.empty((n, P), dtype=np.float32)
    ok = np.empty((n, P), dtype=bool)
    valid = np.empty((n, P), dtype=bool)
    exc = np.empty((n, P), dtype=bool)
    first: MarginPath | None = None
    for c in range(0, P, PATH_BLOCK):
        cols = slice(c, min(P, c + PATH_BLOCK))
        sub = book if (c == 0 and cols.stop == P) else book.subset(np.arange(cols.start, cols.stop))
        p = fitted.path(sub, eligible[:, cols]).window(start, end)
        lb = None if loss is None else loss[:, cols]
        cb = coverage_backtest(panel, sub, p, mpor, on=on, loss=lb)  # exceptions in float64
        im[:, cols], mm[:, cols], ok[:, cols] = p.initial, p.maintenance, p.eligible
        valid[:, cols], exc[:, cols] = cb.valid, cb.exceptions
        first = first or p
        del p, cb
    assert first is not None
    path = MarginPath(first.model, first.dates, book.account_ids, im, mm, ok, start)
    side = np.sign(book.align(panel.assets).net_notional).astype(np.int8)
    cov = CoverageResult(first.model, mpor, on, loss, getattr(path, on), valid, side, exc, start)  # type: ignore[arg-type]
    return path, cov


def _reissue(result: ModelResult) -> ModelResult:
    for category, message in result.warnings:
        warnings.warn(message, category, stacklevel=3)
    return result


#: a pool worker's realised MPOR loss of the last book it priced, reused by its next rows (one entry)
_LOSS_MEMO: dict[tuple[Any, ...], np.ndarray] = {}
#: books with more window cells than this (32 MB of float64) compute the loss per block of accounts, as before
LOSS_MEMO_CELLS = 4_000_000


def _worker_loss(panel: PricePanel, book: Book, mpor: int, start: int, end: int) -> np.ndarray | None:
    """The window's realised loss of ``book`` for a pool worker, computed once per book and process.

    In the pool the parent keeps the one shared copy (the workers' results
    leave it out), so each row's worker used to compute it again, twice with
    the netting path (~65 ms at 1,000 accounts, ~1.4 CPU-s over the default
    run). The key is a digest of the closes and the book's amounts, so a
    worker's next row of the same book reuses it; the netting book (same
    amounts, every account isolated) has the same loss. None (computed per
    block) for books over :data:`LOSS_MEMO_CELLS` cells.
    """
    if (end - start + 1) * book.n_accounts > LOSS_MEMO_CELLS:
        return None
    h = hashlib.blake2b(digest_size=16)
    for a in (panel.close, book.collateral, book.positions):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    key = (h.hexdigest(), tuple(panel.assets), tuple(book.assets), book.collateral.shape, int(mpor), int(start),
           int(end), panel.n_dates)
    hit = _LOSS_MEMO.get(key)
    if hit is None:
        hit = realised_loss(panel, book, mpor, slice(start, end + 1))
        hit.flags.writeable = False
        _LOSS_MEMO.clear()
        _LOSS_MEMO[key] = hit
    return hit


def _run_one_unlimited(model: MarginModel, panel: PricePanel, book: Book, *rest: Any) -> ModelResult:
    eligible, asset_ok, gross, mpor, coverage_on, policy, start, end, netting, loss = rest
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # risk models run under the declared MM / IM rule; haircut rules keep their own MM
    fitted = apply_rule(model.fit(panel), policy.maintenance_ratio)
    timings["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # a pool worker gets loss=None (the parent holds the shared copy): its own copy, once per book
    w_loss = loss if loss is not None else _worker_loss(panel, book, mpor, start, end)
    path, cov = _window_path(fitted, panel, book, eligible, start, end, mpor, coverage_on, w_loss)
    if loss is None and cov.loss is not None:
        cov = dataclasses.replace(cov, loss=None)  # not sent back: the parent shares its copy
    timings["path"] = time.perf_counter() - t0
    iso_path = None
    if netting:
        t0 = time.perf_counter()
        iso_book = Book(book.assets, book.collateral, book.positions, book.cash,
                        np.ones(book.n_accounts, dtype=bool), book.account_ids)
        # the same amounts, so the same realised loss
        iso_path, _ = _window_path(fitted, panel, iso_book, eligible & ~book.isolated[None, :], start, end, mpor,
                                   coverage_on, w_loss)
        timings["isolated_path"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim = simulate_accounts(fitted, book, policy, start=start, end=end, asset_ok=asset_ok)
    timings["simulation"] = time.perf_counter() - t0
    out = ModelResult(model, path, cov, sim, gross, timings, iso_path)
    if policy.feedback:  # the same fitted model as a price-taker: the with/without comparison (issue 17)
        from riskmodels.backtest.feedback_report import baseline_simulation

        t0 = time.perf_counter()
        out.baseline_simulation = baseline_simulation(fitted, book, policy, start, end, asset_ok)
        timings["baseline_simulation"] = time.perf_counter() - t0
    # GARCH refits (written by the CLI as garch_fit_log.csv), also under the declared-rule wrapper
    log = getattr(fitted, "fit_log", None)
    if log is None:
        log = getattr(getattr(fitted, "inner", None), "fit_log", None)
    out.fit_log = log if isinstance(log, pd.DataFrame) else None
    return out


def run_backtest(
    cfg: dict[str, Any], panel: PricePanel, *, progress: Progress | None = None, on_result: RowHook | None = None
) -> BacktestResult:
    """Run the comparison a config describes on ``panel`` (``on_result``: see :func:`run_models`)."""
    universe = tuple(cfg["data"]["universe"]) or panel.assets
    missing = [a for a in universe if a not in panel.assets]
    if missing:
        raise KeyError(f"universe assets missing from the data: {missing}")
    panel = panel.select(universe)
    start, end = backtest_window(panel, cfg)
    book = build_book(cfg, panel.assets)
    vol = None
    if "options" in cfg or book.has_options:  # options: the vol source and the generated strategies
        from riskmodels.instruments.book_config import option_book

        book, vol = option_book(cfg, panel, book, start, end)
    models = build_models(cfg)
    bt = cfg["backtest"]
    return run_models(
        panel,
        book,
        models,
        mpor=int(bt["mpor"]),
        min_history=int(bt["min_history"]),
        start=start,
        end=end,
        policy=liquidation_policy(cfg),
        coverage_on=bt.get("coverage_on", "initial"),
        config=cfg,
        progress=progress,
        netting=bool(bt.get("netting", True)),
        n_jobs=int(bt.get("n_jobs", 1)),
        vol=vol,
        on_result=on_result,
    )
