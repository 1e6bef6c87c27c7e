"""The backtest of books that hold options: margin path, coverage and account simulation.

:func:`run_option_models` is what :func:`riskmodels.backtest.engine.run_models`
runs when the book holds options; a linear book never comes here (its
outputs are unchanged). Every model is asked ``fitted.option_requirement``
(full revaluation, :class:`~riskmodels.instruments.options.OptionState`);
a model without it stops the run with an error naming it.

Margin path and coverage
------------------------
The path prices, at each date ``t``, every eligible account's constant-USD
collateral and perps (plus the delta hedges of its hedged options, re-set at
``t``) and the option positions it holds after ``t``'s close. The coverage
loss is :class:`~riskmodels.backtest.options_market.OptionMarket`'s (options
at fixed contracts over the MPOR, settled at expiry inside it). Each
account's **side** is the sign of its total USD delta (linear + options) at
its first priced date. Options are margined cross (the book's ``isolated``
flag applies to linear books only); with ``[backtest] netting`` the
isolated path margins every holding alone - each collateral, perp, delta
hedge and option position - and the netting benefit is 1 - cross IM / their
sum (a covered call's or a hedged straddle's offsets show there).

Account simulation (the rules of :mod:`riskmodels.backtest.simulation`, with options)
-------------------------------------------------------------------------------------
* **Opening** at the close of ``t``: linear quantities as for a linear book;
  the options the book holds after ``t`` (traded earlier in the book's
  schedule: entered at ``t``'s mark) are bought or sold at their marks; cash
  makes equity = IM x (1 + cushion).
* **Equity** = cash + collateral + perp P&L + sum of held options' marks
  (long > 0, short < 0) + hedge P&L.
* **New legs** (a roll, a later trade date) enter at the close of their
  trade date at their mark (cash pays the premium); equity is unchanged.
  A trade needs its initial margin: where equity is then below the
  account's IM x (1 + cushion), the trader posts the difference in cash
  (reported as ``top_ups`` in ``instruments.csv``; an exchange would reject
  the order otherwise); equity above it stays.
* **Expiry**: at the close of the expiry date an option settles at
  intrinsic value in cash and leaves the account (equity is unchanged: its
  mark at ``tau = 0`` is intrinsic).
* **Hedges**: the perp hedge of hedged options is re-set at every close to
  ``-q delta`` units; its P&L since the previous close is paid into cash.
* **Intraday check** on day ``t``: the account valued with **every
  underlying at the day's low** and with **every underlying at the day's
  high** (options revalued at both, the worse taken), against the
  maintenance of the model's state at ``t - 1`` on the holdings at those
  prices (options with ``t``'s time to expiry and ``t``'s close IV, the
  implied vol of the day). For accounts on one underlying this is the
  linear rule's adverse extreme; for several it assumes the underlyings
  move together (the linear rule's "every asset at its own worst extreme"
  has no meaning for a straddle, whose worst extreme is either).
* **Liquidation** at the trigger prices: the linear close-out as for a
  linear book (slippage, impact if configured); options are closed at
  their marks with slippage ``s x |q| x mark`` against the trade; the
  penalty is ``pi x (perp notional + |q| x mark)``. Feedback (endogenous
  cascades) is not available with options (an error).

The loop runs over dates; every step is vectorised over accounts and
positions.
"""

from __future__ import annotations

import multiprocessing
import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from riskmodels.backtest.closeout import CloseOut
from riskmodels.backtest.coverage import CoverageResult, realised_loss
from riskmodels.backtest.mm_rule import apply_rule
from riskmodels.backtest.options_market import OptionMarket, instrument_rows
from riskmodels.backtest.simulation import EVENT_DTYPE, LiquidationPolicy, SimulationResult
from riskmodels.data.panel import PricePanel
from riskmodels.errors import UserError
from riskmodels.instruments.options import VolSource
from riskmodels.margin.base import (
    FittedMargin,
    MarginModel,
    MarginPath,
    Requirement,
    account_eligibility,
)
from riskmodels.portfolio import Book

__all__ = ["option_path", "run_option_models", "simulate_option_accounts"]


def _requirement(fitted: FittedMargin, t_model: int, mkt: OptionMarket, t: int, rows: np.ndarray,
                 coll_usd: np.ndarray, perp_usd: np.ndarray, held: np.ndarray, spot: np.ndarray,
                 n_accounts: int) -> Requirement:
    """``option_requirement`` of accounts ``rows`` holding the positions ``held`` (a mask over the table)."""
    amap = np.full(n_accounts, -1, dtype=np.int64)
    amap[rows] = np.arange(rows.size)
    idx = np.flatnonzero(held & (amap[mkt.table.account] >= 0))
    return fitted.option_requirement(t_model, coll_usd, perp_usd, mkt.state(t, idx, amap, spot))


def option_path(fitted: FittedMargin, book: Book, mkt: OptionMarket, eligible: np.ndarray, start: int,
                end: int, *, isolated: bool = False) -> MarginPath | tuple[MarginPath, MarginPath]:
    """``(window, P)`` margin of the book (module docstring), float64, rows ``start..end``.

    With ``isolated`` also the path of every holding margined alone (each
    collateral, perp, delta hedge and option position its own account,
    summed per account): the denominator of the netting benefit.
    """
    P = book.n_accounts
    A = book.n_assets
    n = end - start + 1
    im = np.full((n, P), np.nan)
    mm = np.full((n, P), np.nan)
    iso_im = np.full((n, P), np.nan) if isolated else None
    iso_mm = np.full((n, P), np.nan) if isolated else None
    C = mkt.close
    tab = mkt.table
    for t in range(start, end + 1):
        rows = np.flatnonzero(eligible[t])
        if rows.size == 0:
            continue
        spot = np.where(np.isfinite(C[t]), C[t], 0.0)
        held = mkt.held(t) & eligible[t][tab.account]  # IVs are asked only where an account is priced
        idx = np.flatnonzero(held)
        iv = mkt.iv(t, idx)
        hedge = mkt.hedge_units(t, idx, P, spot, iv)
        perp = book.positions[rows] + hedge[rows] * spot
        req = _requirement(fitted, t, mkt, t, rows, book.collateral[rows], perp, held, spot, P)
        im[t - start, rows] = req.initial
        mm[t - start, rows] = req.maintenance
        if iso_im is not None and iso_mm is not None:
            lin = fitted.isolated_requirement(t, book.collateral[rows], perp)
            one = mkt.state(t, idx, np.zeros(P, dtype=np.int64), spot, iv)  # every position its own account
            one = replace(one, table=one.table.with_accounts(np.arange(idx.size)))
            z = np.zeros((idx.size, A))
            o = fitted.option_requirement(t, z, z, one) if idx.size else Requirement(np.zeros(0), np.zeros(0))
            iso_im[t - start] = 0.0
            iso_mm[t - start] = 0.0
            iso_im[t - start, rows] = lin.initial + np.bincount(tab.account[idx], weights=o.initial,
                                                                minlength=P)[rows]
            iso_mm[t - start, rows] = lin.maintenance + np.bincount(tab.account[idx], weights=o.maintenance,
                                                                    minlength=P)[rows]
            iso_im[t - start, ~eligible[t]] = np.nan
            iso_mm[t - start, ~eligible[t]] = np.nan
    ok = np.ascontiguousarray(eligible[start:end + 1])
    dates = fitted.panel.dates[start:end + 1]
    path = MarginPath(fitted.model.label, dates, book.account_ids, im, mm, ok, start)
    if iso_im is None or iso_mm is None:
        return path
    return path, MarginPath(fitted.model.label, dates, book.account_ids, iso_im, iso_mm, ok, start)


def simulate_option_accounts(fitted: FittedMargin, book: Book, mkt: OptionMarket, policy: LiquidationPolicy, *,
                             start: int, end: int, asset_ok: np.ndarray | None = None
                             ) -> tuple[SimulationResult, dict[str, float]]:
    """The account simulation of a book with options (module docstring) and its option cash flows."""
    if policy.feedback:
        raise UserError("[liquidation] feedback = true is not available for books with options; set it to false")
    panel = fitted.panel
    A = panel.n_assets
    P = book.n_accounts
    tab = mkt.table
    q_opt = tab.quantity
    acct = tab.account
    C, H, L = panel.close, panel.high, panel.low
    ok = account_eligibility(panel.live if asset_ok is None else asset_ok, book)
    coll_t, pos_t = book.collateral, book.positions
    held_assets = book.held()
    pen, k = policy.penalty, policy.cushion
    closeout = CloseOut.from_policy(policy, panel)
    q_coll = np.zeros((P, A))
    q_pos = np.zeros((P, A))
    entry = np.zeros((P, A))
    q_h = np.zeros((P, A))  # hedge perp units, marked at h_px
    h_px = np.zeros((P, A))
    cash = np.zeros(P)
    is_open = np.zeros(P, dtype=bool)
    hold = np.zeros(len(tab), dtype=bool)  # the position is in its (open) account
    reopen_at = np.full(P, start, dtype=np.int64)
    n_rows = end - start + 1
    out_open = np.zeros((n_rows, P), dtype=bool)
    out_eq = np.full((n_rows, P), np.nan, dtype=np.float32)
    out_mm = np.full((n_rows, P), np.nan, dtype=np.float32)
    out_not = np.zeros(n_rows)
    events: list[np.ndarray] = []
    openings: list[tuple[np.ndarray, int, np.ndarray]] = []
    flows = {"settlements": 0.0, "settled_cash": 0.0, "premium_paid": 0.0, "top_ups": 0.0,
             "option_closeout_cost": 0.0, "liquidated_options": 0.0}

    def opt_value(t: int, spot: np.ndarray, iv: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(P,)`` value of the held options at ``spot`` and the ``(n_held,)`` unit marks."""
        idx = np.flatnonzero(hold)
        v = mkt.unit_marks(t, idx, spot, iv)
        return np.bincount(acct[idx], weights=q_opt[idx] * v, minlength=P), v

    def linear(px: np.ndarray) -> np.ndarray:
        pxb = np.broadcast_to(px, (P, A))
        return (q_coll * pxb).sum(1) + (q_pos * (pxb - entry)).sum(1) + (q_h * (pxb - h_px)).sum(1)

    def close_out(rows: np.ndarray, t: int, px: np.ndarray, trigger: int, mm: np.ndarray,
                  t_mark: int | None = None) -> None:
        """Liquidate ``rows`` at ``px`` (options marked at date ``t_mark``, default ``t``); record events at ``t``."""
        idx = np.flatnonzero(hold & np.isin(acct, rows))
        v = mkt.unit_marks(t if t_mark is None else t_mark, idx, px)
        ov = np.bincount(acct[idx], weights=q_opt[idx] * v, minlength=P)[rows]
        oprem = np.bincount(acct[idx], weights=np.abs(q_opt[idx]) * v, minlength=P)[rows]
        pxr = np.broadcast_to(px, (rows.size, A))
        qp = q_pos[rows] + q_h[rows]
        eq = cash[rows] + linear(px)[rows] + ov
        notional = (np.abs(qp) * pxr).sum(1)
        if trigger == 2:
            slip = np.zeros(rows.size)
            impact = np.zeros(rows.size)
            penalty = np.zeros(rows.size)
        else:
            slip, impact = closeout.cost(t, q_coll[rows], qp, pxr)
            o_slip = closeout.slippage * oprem
            slip = slip + o_slip
            flows["option_closeout_cost"] += float(o_slip.sum())
            penalty = np.minimum(pen * (notional + oprem), np.maximum(eq - slip, 0.0))
        remainder = eq - slip
        rec = np.empty(rows.size, dtype=EVENT_DTYPE)
        rec["account"], rec["t"], rec["trigger"] = rows, t, trigger
        rec["equity"], rec["maintenance"], rec["notional"] = eq, mm, notional
        rec["slippage"], rec["penalty"], rec["impact"] = slip, penalty, impact
        rec["bad_debt"] = np.maximum(-remainder, 0.0)
        rec["returned"] = np.maximum(remainder - penalty, 0.0)
        events.append(rec)
        flows["liquidated_options"] += float(idx.size)
        hold[idx] = False
        is_open[rows] = False
        for arr in (q_coll, q_pos, entry, q_h, h_px):
            arr[rows] = 0.0
        cash[rows] = 0.0
        reopen_at[rows] = -1 if (trigger == 2 or policy.reentry_days is None) else t + int(policy.reentry_days)

    def req_for(t_model: int, t: int, rows: np.ndarray, px: np.ndarray, qc: np.ndarray, qp: np.ndarray
                ) -> Requirement:
        return _requirement(fitted, t_model, mkt, t, rows, qc * px, qp * px, hold, px, P)

    for t in range(start, end + 1):
        c = C[t]
        cz = np.where(np.isfinite(c), c, 0.0)
        # -- a held asset stopped trading: close at its last close, no penalty
        if is_open.any() and not np.isfinite(c).all():
            gone = is_open & (held_assets & ~np.isfinite(c)).any(axis=1)
            if gone.any():
                last = np.where(np.isfinite(C[t - 1]), C[t - 1], 0.0)
                close_out(np.flatnonzero(gone), t, last, 2, np.full(int(gone.sum()), np.nan), t_mark=t - 1)
        # -- intraday: every underlying at the low, then at the high; the worse of the two
        if policy.intraday and t > start and is_open.any():
            rows = np.flatnonzero(is_open)
            worst_gap = np.full(rows.size, np.inf)
            worst = np.zeros((rows.size, A))
            worst_mm = np.zeros(rows.size)
            iv_t = mkt.iv(t, np.flatnonzero(hold))
            for ext in (L[t], H[t]):
                px = np.where(np.isfinite(ext), ext, cz)
                ov, _ = opt_value(t, px, iv_t)
                eq = (cash + linear(px) + ov)[rows]
                mm = req_for(t - 1, t, rows, px, q_coll[rows], q_pos[rows] + q_h[rows]).maintenance
                gap = eq - mm
                better = gap < worst_gap
                worst_gap = np.where(better, gap, worst_gap)
                worst[better] = px
                worst_mm = np.where(better, mm, worst_mm)
            hit = worst_gap < 0
            if hit.any():
                for px in np.unique(worst[hit], axis=0):  # two price vectors at most
                    m = hit & (worst == px).all(axis=1)
                    close_out(rows[m], t, px, 0, worst_mm[m])
        # -- expiry at the close: settle at intrinsic into cash
        exp = np.flatnonzero(hold & (mkt.expiry_idx == t))
        if exp.size:
            pay = q_opt[exp] * mkt.unit_marks(t, exp)  # tau = 0: intrinsic
            np.add.at(cash, acct[exp], pay)
            hold[exp] = False
            flows["settlements"] += float(exp.size)
            flows["settled_cash"] += float(pay.sum())
        # -- hedge P&L since the previous close into cash
        if q_h.any():
            cash += (q_h * (cz - h_px)).sum(1)
            h_px[:] = np.where(q_h != 0, cz, 0.0)
        # -- new legs of open accounts enter at their mark
        new_legs = np.flatnonzero(~hold & is_open[acct] & (mkt.trade_idx == t) & (mkt.expiry_idx > t))
        rolled = np.zeros(P, dtype=bool)
        rolled[acct[new_legs]] = True
        if new_legs.size:
            prem = q_opt[new_legs] * mkt.unit_marks(t, new_legs)
            np.add.at(cash, acct[new_legs], -prem)
            hold[new_legs] = True
            flows["premium_paid"] += float(prem.sum())
        # -- re-openings: the options the book holds after today enter at their marks
        want = (~is_open) & (reopen_at >= 0) & (reopen_at <= t) & ok[t]
        nr = np.flatnonzero(want)
        if nr.size:
            legs = np.flatnonzero(mkt.held(t) & want[acct])
            hold[legs] = True
            safe = np.where(held_assets[nr], cz, 1.0)
            q_coll[nr] = coll_t[nr] / safe
            q_pos[nr] = pos_t[nr] / safe
            entry[nr] = np.where(held_assets[nr], cz, 0.0)
        rows = np.flatnonzero(is_open | want)
        if rows.size:
            hidx = np.flatnonzero(hold)
            iv_c = mkt.iv(t, hidx)
            hedge = mkt.hedge_units(t, hidx, P, cz, iv_c)
            q_h[rows] = hedge[rows]
            h_px[rows] = np.where(hedge[rows] != 0, cz, 0.0)
            req = req_for(t, t, rows, cz, q_coll[rows], q_pos[rows] + q_h[rows])
            ov, _ = opt_value(t, cz, iv_c)
            eq_all = cash + linear(cz) + ov
            new = want[rows]
            old = rows[~new]
            top = rolled[rows] & ~new  # a trade needs its IM: the account posts up to IM x (1 + cushion)
            if top.any():
                add = np.maximum((1.0 + k) * req.initial[top] - eq_all[rows[top]], 0.0)
                cash[rows[top]] += add
                eq_all[rows[top]] += add
                flows["top_ups"] += float(add.sum())
            if old.size:
                hit = eq_all[old] < req.maintenance[~new]
                if hit.any():
                    close_out(old[hit], t, cz, 1, req.maintenance[~new][hit])
            if nr.size:
                # equity = IM x (1 + cushion): cash = that - collateral - option marks (perps, hedges: 0)
                cash[nr] = (1.0 + k) * req.initial[new] - (q_coll[nr] * cz).sum(1) - ov[nr]
                is_open[nr] = True
                openings.append((nr, t, (np.abs(q_pos[nr] + q_h[nr]) * cz).sum(1)))
            still = is_open[rows]
            out_mm[t - start, rows[still]] = req.maintenance[still]
            out_not[t - start] = (np.abs(q_pos[rows[still]] + q_h[rows[still]]) * cz).sum()
        if is_open.any():
            ov, _ = opt_value(t, cz)
            out_eq[t - start, is_open] = (cash + linear(cz) + ov)[is_open]
            out_open[t - start] = is_open
        # accounts no longer open hold no options
        hold &= is_open[acct]
    ev = np.concatenate(events) if events else np.empty(0, dtype=EVENT_DTYPE)
    ev = ev[np.lexsort((ev["account"], ev["t"]))]
    op_dtype = np.dtype([("account", np.int32), ("t", np.int32), ("notional", np.float64)])
    op = (np.concatenate([np.rec.fromarrays([r, np.full(len(r), tt), nn], dtype=op_dtype) for r, tt, nn in openings])
          if openings else np.empty(0, dtype=op_dtype))
    sim = SimulationResult(fitted.model.label, panel.dates, book.account_ids, ev, out_open, out_eq, out_mm, out_not,
                           np.asarray(op), start, end, policy)
    return sim, flows


def _run_one(model: MarginModel, panel: PricePanel, book: Book, mkt: OptionMarket, eligible: np.ndarray,
             asset_ok: np.ndarray, mpor: int, coverage_on: str, policy: LiquidationPolicy, start: int, end: int,
             loss: np.ndarray, parts: dict[str, np.ndarray], side: np.ndarray, netting: bool) -> Any:
    from riskmodels.backtest.result import ModelResult

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    fitted = apply_rule(model.fit(panel), policy.maintenance_ratio)
    if not fitted.supports_options:
        fitted.option_requirement(start, np.zeros((0, panel.n_assets)), np.zeros((0, panel.n_assets)),
                                  mkt.state(start, np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                                            np.ones(panel.n_assets)))  # raises the designed error
    timings["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    paths = option_path(fitted, book, mkt, eligible, start, end, isolated=netting)
    path, iso = paths if isinstance(paths, tuple) else (paths, None)
    margin = getattr(path, coverage_on)
    valid = path.eligible & np.isfinite(loss) & np.isfinite(margin)
    with np.errstate(invalid="ignore"):
        exc = valid & (loss > margin)
    cov = CoverageResult(path.model, mpor, coverage_on, loss, margin, valid, side, exc, start)
    timings["path"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim, flows = simulate_option_accounts(fitted, book, mkt, policy, start=start, end=end, asset_ok=asset_ok)
    timings["simulation"] = time.perf_counter() - t0
    # the denominator of margin rates: linear gross notional + the options' mean underlying notional
    out = ModelResult(model, path.stored(), cov, sim, book.gross_notional + mkt.mean_notional, timings,
                      None if iso is None else iso.stored())
    inst = instrument_rows(parts, valid, exc)
    inst["vol_source"] = mkt.vol.label
    inst["positions"] = [int((book.collateral != 0).sum()), int((book.positions != 0).sum()), len(mkt.table)]
    for k_, v in flows.items():
        inst[k_] = [np.nan, np.nan, v]
    out.instruments = inst  # type: ignore[attr-defined]
    return out


def _run_caught(model: MarginModel, *args: Any) -> Any:
    """:func:`_run_one` with BLAS and numba on one thread and the warnings it raised kept on the result.

    One thread: the per-date calls are small, and a second thread per process
    on the 2-core machines only adds overhead (DESIGN "Performance habits";
    :func:`~riskmodels.backtest.simulation.simulate_accounts` does the same).
    """
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = _run_one(model, *args)
    finally:
        numba.set_num_threads(threads)
    r.warnings = [(w.category, str(w.message)) for w in caught]
    return r


def run_option_models(panel: PricePanel, book: Book, models: list[MarginModel], vol: VolSource, *, mpor: int,
                      need: int, start: int, end: int, policy: LiquidationPolicy, coverage_on: str,
                      config: dict[str, Any] | None, progress: Any = None, netting: bool = False,
                      n_jobs: int = 1) -> Any:
    """:func:`~riskmodels.backtest.engine.run_models` for a book with options (models in one process or in n_jobs).

    ``netting`` also prices every holding alone (the netting benefit); ``n_jobs > 1``
    runs the models in that many spawned processes (one model each; each
    model's numbers do not depend on it).
    """
    from riskmodels.backtest.result import BacktestResult
    from riskmodels.backtest.windows import restrict_to_common

    if (config or {}).get("stress", {}).get("enabled"):
        warnings.warn("[stress] the scenario library, Cover-N and the insurance fund price the book's linear "
                      "holdings only: its options are left out of OUT/stress/", UserWarning, stacklevel=2)

    book = book.align(panel.assets)
    assert book.options is not None
    mkt = OptionMarket(panel, book.options, vol)
    asset_ok = panel.eligible(need)
    in_window = np.zeros(panel.n_dates, dtype=bool)
    in_window[start:end + 1] = True
    eligible = account_eligibility(asset_ok, book) & in_window[:, None]
    if not eligible.any():
        from riskmodels.backtest.window import nothing_to_evaluate

        raise nothing_to_evaluate(panel, book, asset_ok, need, start, end)
    rows = slice(start, end + 1)
    spot = realised_loss(panel, Book(book.assets, book.collateral, np.zeros_like(book.positions)), mpor, rows)
    perp = realised_loss(panel, Book(book.assets, np.zeros_like(book.collateral), book.positions), mpor, rows)
    parts = mkt.loss_parts(book.collateral, mpor, start, end, eligible[start:end + 1])
    parts = {"spot": spot, "perp": perp + parts["hedge"], "option": parts["option"]}
    loss = parts["spot"] + parts["perp"] + parts["option"]
    side = mkt.delta_side(book.collateral, book.positions, eligible[start:end + 1], start)
    if vol.is_proxy:  # once per run: every output of it names the proxy too (instruments.csv, the report)
        warnings.warn(f"option marks use proxy implied vols ({vol.label})", UserWarning, stacklevel=2)
    results: dict[str, Any] = {}
    args = (panel, book, mkt, eligible, asset_ok, mpor, coverage_on, policy, start, end, loss, parts, side, netting)
    if n_jobs > 1 and len(models) > 1 and not multiprocessing.current_process().daemon:
        from concurrent.futures import as_completed

        from riskmodels.workers import process_pool

        # models are independent: one process each (spawned, BLAS held to one thread), results in model order
        with process_pool(min(n_jobs, len(models)), multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_caught, m, *args): m.label for m in models}
            for done, fut in enumerate(as_completed(futures), 1):
                results[futures[fut]] = fut.result()
                if progress:
                    progress(f"{futures[fut]}: done", done, len(models))
        results = {m.label: results[m.label] for m in models}
    else:
        for i, m in enumerate(models):
            if progress:
                progress(m.label, i, len(models))
            results[m.label] = _run_caught(m, *args)
    for r in results.values():
        for cat, msg in r.warnings:
            warnings.warn(msg, cat, stacklevel=2)
    if progress:
        progress("done", len(models), len(models))
    cfg = config or {"backtest": {"mpor": mpor, "min_history": need, "coverage_on": coverage_on}}
    common = restrict_to_common(results, book.held().astype(np.float64), panel.assets)
    out = BacktestResult(panel, book, results, cfg, start, end, common)
    out.vol_source = vol.label  # type: ignore[attr-defined]  # named in summary.csv/json and the report
    return out


class InstrumentsTable:
    """The per-instrument-type table as a report section (title names the vol source, proxy or file)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        label = "; ".join(dict.fromkeys(frame["vol_source"].astype(str)))
        self.title = f"Options: per instrument type (implied vols: {label})"

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def to_html(self) -> str:
        return self.frame.drop(columns=["vol_source"]).to_html(index=False, float_format=lambda x: f"{x:,.4g}",
                                                               na_rep="")


def instruments_frame(result: Any) -> pd.DataFrame | None:
    """Models x instrument types table of a result with options (None for a linear book)."""
    frames = [getattr(r, "instruments", None) for r in result.results.values()]
    if not any(f is not None for f in frames):
        return None
    return pd.concat([f.assign(model=name) for name, f in zip(result.results, frames, strict=True) if f is not None],
                     ignore_index=True)
