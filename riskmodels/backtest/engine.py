"""The walk-forward comparison: panel + book + models -> BacktestResult.

For each model: ``fit`` on the whole panel (each date's state uses only data
up to that date), the margin path of the constant-notional book, the coverage
backtest against the realised MPOR loss, and the account simulation with
liquidations. Every model sees the same (date, account) cells: an account is
priced on dates where every asset it holds has ``min_history`` returns.
"""

from __future__ import annotations

import multiprocessing
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from riskmodels.backtest.coverage import coverage_backtest
from riskmodels.backtest.result import BacktestResult, ModelResult
from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.config import liquidation_policy
from riskmodels.data.panel import PricePanel
from riskmodels.margin import base as margin_base
from riskmodels.margin.base import MarginModel, account_eligibility
from riskmodels.portfolio import Book, generate_book

Progress = Callable[[str, int, int], None]


def build_models(cfg: dict[str, Any]) -> list[MarginModel]:
    """Instantiate the ``[[models]]`` of a config through the registry."""
    import riskmodels.margin  # noqa: F401  (registers the built-in models)

    models = []
    for spec in cfg["models"]:
        params = dict(spec.get("params", {}))
        models.append(margin_base.get(spec["name"], label=spec.get("label") or spec["name"], **params))
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
    """
    end = panel.n_dates - 1 if end is None else end
    policy = policy or LiquidationPolicy()
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be unique, got {labels}")
    book = book.align(panel.assets)
    need = max([min_history, *(m.min_history for m in models)])
    asset_ok = panel.eligible(need)
    in_window = np.zeros(panel.n_dates, dtype=bool)
    in_window[start : end + 1] = True
    eligible = account_eligibility(asset_ok, book) & in_window[:, None]
    gross = book.gross_notional
    results: dict[str, ModelResult] = {}
    n = len(models)
    args = (panel, book, eligible, asset_ok, gross, mpor, coverage_on, policy, start, end, netting)
    if n_jobs > 1 and n > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(n_jobs, n), mp_context=ctx) as pool:
            longest_first = sorted(models, key=lambda m: -m.relative_cost)
            futures = {pool.submit(_run_one, m, *args): m.label for m in longest_first}
            done = 0
            for fut in as_completed(futures):
                results[futures[fut]] = _reissue(fut.result())
                done += 1
                if progress:
                    progress(f"{futures[fut]}: done", done, n)
        results = {m.label: results[m.label] for m in models}
    else:
        for i, model in enumerate(models):
            if progress:
                progress(model.label, i, n)
            results[model.label] = _reissue(_run_one(model, *args))
    if progress:
        progress("done", n, n)
    cfg = config or {"backtest": {"mpor": mpor, "min_history": need, "coverage_on": coverage_on}}
    return BacktestResult(panel, book, results, cfg, start, end)


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
) -> ModelResult:
    """Fit, margin path, coverage and simulation of one model (runs in a worker too).

    BLAS is held to one thread: the per-date products are small
    ((accounts x assets) @ (assets x scenarios)) and multi-threaded OpenBLAS
    on them was 5-10x slower on a 2-core machine (measured: 200x18 @ 18x500
    took 28 ms with 2 threads, 3 ms with 1).
    """
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _run_one_unlimited(model, panel, book, eligible, asset_ok, gross, mpor, coverage_on, policy,
                                    start, end, netting)
    # carried back (also out of worker processes) and re-issued by the caller
    result.warnings = [(w.category, str(w.message)) for w in caught]
    return result


def _reissue(result: ModelResult) -> ModelResult:
    for category, message in result.warnings:
        warnings.warn(message, category, stacklevel=3)
    return result


def _run_one_unlimited(model: MarginModel, panel: PricePanel, book: Book, *rest: Any) -> ModelResult:
    eligible, asset_ok, gross, mpor, coverage_on, policy, start, end, netting = rest
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    fitted = model.fit(panel)
    timings["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    path = fitted.path(book, eligible)
    timings["path"] = time.perf_counter() - t0
    iso_path = None
    if netting:
        t0 = time.perf_counter()
        iso_book = Book(book.assets, book.collateral, book.positions, book.cash,
                        np.ones(book.n_accounts, dtype=bool), book.account_ids)
        iso_path = fitted.path(iso_book, eligible & ~book.isolated[None, :])
        timings["isolated_path"] = time.perf_counter() - t0
    cov = coverage_backtest(panel, book, path, mpor, on=coverage_on)
    t0 = time.perf_counter()
    sim = simulate_accounts(fitted, book, policy, start=start, end=end, asset_ok=asset_ok)
    timings["simulation"] = time.perf_counter() - t0
    return ModelResult(model, path, cov, sim, gross, timings, iso_path)


def run_backtest(
    cfg: dict[str, Any], panel: PricePanel, *, progress: Progress | None = None
) -> BacktestResult:
    """Run the comparison a config describes on ``panel``."""
    universe = tuple(cfg["data"]["universe"]) or panel.assets
    missing = [a for a in universe if a not in panel.assets]
    if missing:
        raise KeyError(f"universe assets missing from the data: {missing}")
    panel = panel.select(universe)
    start, end = backtest_window(panel, cfg)
    book = build_book(cfg, panel.assets)
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
    )
