"""One chunk of a streamed run: the fits, and a block of accounts through every model, reduced.

See :mod:`riskmodels.backtest.stream` for the run; this module is what
every worker executes (:func:`chunk_aggregate`) and the context it shares.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from riskmodels.backtest import stream_aggregate as sa
from riskmodels.backtest.coverage import realised_loss
from riskmodels.backtest.engine import _window_path
from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.backtest.verdict import daily_counts, side_masks
from riskmodels.data.panel import PricePanel
from riskmodels.margin import garch_fit
from riskmodels.margin.base import MarginModel, account_eligibility
from riskmodels.portfolio import Book


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

@contextlib.contextmanager
def thread_warnings() -> Iterator[list[tuple[type[Warning], str]]]:
    """Record the warnings the calling thread raises (``"always"``); other threads' go to the previous handler.

    ``warnings.catch_warnings(record=True)`` is process-wide: while the
    models fit, the thread that starts the Dask cluster (:class:`~riskmodels.backtest.stream_runners.DaskStart`)
    may warn too, and its warnings were attached to every model's. They are
    shown as they would be without this block instead. (The filters stay
    process-wide: another thread that enters and leaves its own
    ``catch_warnings`` meanwhile can reset them; the fits in this process run
    in one thread.)
    """
    me = threading.get_ident()
    got: list[tuple[type[Warning], str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        prev = warnings.showwarning  # restored by catch_warnings on exit

        def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:
            if threading.get_ident() == me:
                got.append((category, str(message)))
            else:
                prev(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield got


def fits_per_asset(model: Any) -> bool:
    """True if fitting ``model`` runs per-asset fits (GARCH, EWMA; also as a wrapper's ``inner`` or ``floor_model``)."""
    from riskmodels.margin.garch import GarchMargin

    todo, seen = [model], 0
    while todo and seen < 16:
        m = todo.pop()
        seen += 1
        if isinstance(m, GarchMargin):
            return True
        todo.extend(x for x in (getattr(m, "inner", None), getattr(m, "floor_model", None), getattr(m, "effective", None))
                    if isinstance(x, MarginModel))
    return False


def fit_models(models: list[MarginModel], panel: PricePanel, policy: LiquidationPolicy,
               asset_executor: Callable[[], Executor | None] | None = None,
               ) -> tuple[list[Any], dict[str, float], list[tuple[type[Warning], str]]]:
    """Fit every model once (BLAS on one thread, as the engine does); fit seconds and warnings.

    ``asset_executor``: where the per-asset GARCH / EWMA fits may run
    (:func:`riskmodels.margin.garch_fit.asset_executor`; a Dask cluster of
    two or more workers). Those models are then fitted last, so the cheap
    fits here overlap the cluster's start. Fitted states, seconds and
    warnings are returned in the models' order whatever the fitting order.
    """
    order = sorted(range(len(models)), key=lambda i: asset_executor is not None and fits_per_asset(models[i]))
    fitted: list[Any] = [None] * len(models)
    secs: dict[str, float] = {}
    caught: dict[int, list[tuple[type[Warning], str]]] = {}
    here = contextlib.nullcontext() if asset_executor is None else garch_fit.asset_executor(asset_executor)
    with threadpool_limits(1, user_api="blas"), here:
        for i in order:
            m = models[i]
            with thread_warnings() as got:
                t0 = time.perf_counter()
                fitted[i] = apply_rule(m.fit(panel), policy.maintenance_ratio)
                secs[m.label] = time.perf_counter() - t0
            caught[i] = got
    return fitted, {m.label: secs[m.label] for m in models}, [w for i in range(len(models)) for w in caught[i]]


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
