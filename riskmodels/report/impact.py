"""What a parameter change does to today's book: accounts liquidatable at once, the recommendation table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.backtest.result import BacktestResult
from riskmodels.report.common import refit_model
from riskmodels.report.recommend import Proposal, cap_step

__all__ = ["holdings_at", "liquidatable_at_once", "recommendation_table"]


def holdings_at(result: BacktestResult, label: str, t: int) -> dict[str, np.ndarray]:
    """The simulated accounts open at the close of date ``t`` and their holdings there.

    The simulation opens an account at date ``t0`` with quantities
    ``amount / C[t0]`` of the book's USD amounts and keeps them until it is
    closed, so the holdings at ``t`` are ``amount x C[t] / C[t0]`` with
    ``t0`` the account's last opening on or before ``t``. Returns ``rows``
    (account indices), ``collateral`` and ``positions`` (USD at ``t``),
    ``isolated``, and the simulation's ``equity``, ``maintenance`` and
    ``notional`` at ``t``.
    """
    sim = result.results[label].simulation
    book = result.book.align(result.panel.assets)
    r = sim.row(t)
    rows = np.flatnonzero(sim.is_open[r])
    op = sim.openings
    op = op[op["t"] <= t]
    last = np.full(book.n_accounts, -1, dtype=np.int64)
    np.maximum.at(last, op["account"].astype(np.int64), op["t"].astype(np.int64))
    t0 = last[rows]
    if (t0 < 0).any():
        raise RuntimeError("an open account has no opening record")  # invariant of simulate_accounts
    C = result.panel.close
    held = book.held()[rows]
    ratio = np.where(held, C[t][None, :] / np.where(held, C[t0], 1.0), 0.0)
    return {
        "rows": rows,
        "collateral": book.collateral[rows] * ratio,
        "positions": book.positions[rows] * ratio,
        "isolated": book.isolated[rows],
        "equity": sim.equity[r, rows].astype(np.float64),
        "maintenance": sim.maintenance[r, rows].astype(np.float64),
        "notional": np.abs(book.positions[rows] * ratio).sum(axis=1),
    }

def liquidatable_at_once(result: BacktestResult, label: str, params: Mapping[str, Any], t: int
                         ) -> dict[str, float]:
    """Accounts a parameter change would make liquidatable at once at date ``t``.

    From :func:`holdings_at`: an open account with equity ``E`` (at or above
    today's maintenance, since it survived the close) is made liquidatable
    when ``E`` is below the maintenance the proposed parameters give on the
    same holdings. Also counts the accounts that would fall below the
    proposed *initial* margin (they could not open today). Notional is the
    accounts' gross perp notional at ``t`` (USD).
    """
    h = holdings_at(result, label, t)
    if not h["rows"].size:
        return {"open_accounts": 0, "newly_liquidatable": 0, "newly_liquidatable_notional": 0.0,
                "below_new_im": 0}
    fitted = refit_model(result, label, params)
    req = fitted.account_requirement(t, h["collateral"], h["positions"], h["isolated"])
    E = h["equity"]
    now_ok = E >= h["maintenance"] * (1 - 1e-6)  # float32 storage of the simulation's state
    hit = now_ok & (E < req.maintenance)
    return {
        "open_accounts": int(h["rows"].size),
        "newly_liquidatable": int(hit.sum()),
        "newly_liquidatable_notional": float(h["notional"][hit].sum()),
        "below_new_im": int((E < req.initial).sum()),
    }


def recommendation_table(result: BacktestResult, proposals: Sequence[Proposal], settings: Mapping[str, Any],
                         t: int, findings: Table | None = None) -> Table:
    """One row per (proposal, parameter): current, target, proposed (capped), change, liquidatable at once.

    The liquidatable columns refer to the whole proposal (all its parameters
    changed together) and repeat on its rows. ``findings``
    (:func:`~riskmodels.report.recommend.coverage_findings`) adds each
    model's finding (over-coverage, under-coverage, in line).
    """
    found = {} if findings is None else dict(zip(findings.to_frame()["model"], findings.to_frame()["finding"],
                                                 strict=True))
    rec = settings["recommend"]
    rows = []
    for i, prop in enumerate(proposals, start=1):
        if prop.model not in result.results:
            raise ValueError(f"proposal for unknown model {prop.model!r}; models: {result.models}")
        current = result.results[prop.model].model.params()
        new: dict[str, float] = {}
        parts = []
        for key in sorted(prop.params):
            cur = current.get(key)
            if not isinstance(cur, int | float) or isinstance(cur, bool):
                raise ValueError(f"proposal {i} ({prop.model}): parameter {key!r} is not a scalar number "
                                 f"(current value {cur!r})")
            target = float(prop.params[key])
            proposed = cap_step(float(cur), target, float(rec["max_step"]), rec["step_kind"])
            new[key] = proposed
            parts.append({"proposal": i, "model": prop.model, "finding": found.get(prop.model, "-"),
                          "parameter": key, "current": float(cur),
                          "target": target, "proposed": proposed, "change": proposed - float(cur),
                          "capped": bool(not math.isclose(proposed, target, rel_tol=0, abs_tol=1e-12)),
                          "source": prop.source})
        try:
            liq = liquidatable_at_once(result, prop.model, new, t)
            note = prop.rationale
        except (ValueError, KeyError) as exc:  # e.g. mmf above imf: the model refuses the parameters
            liq = {"open_accounts": np.nan, "newly_liquidatable": np.nan,
                   "newly_liquidatable_notional": np.nan, "below_new_im": np.nan}
            note = f"invalid parameters: {exc}"
        for r in parts:
            r.update({"open_accounts": liq["open_accounts"], "newly_liquidatable": liq["newly_liquidatable"],
                      "newly_liquidatable_notional": liq["newly_liquidatable_notional"],
                      "below_new_im": liq["below_new_im"], "rationale": note})
            rows.append(r)
    cols = ["proposal", "model", "finding", "parameter", "current", "target", "proposed", "change", "capped", "source",
            "open_accounts", "newly_liquidatable", "newly_liquidatable_notional", "below_new_im", "rationale"]
    frame = pd.DataFrame(rows, columns=cols)
    date = result.panel.dates[t].date()
    step = (f"+-{rec['max_step']:g}" if rec["step_kind"] == "absolute" else f"+-{rec['max_step']:.0%} (relative)")
    return Table(
        frame,
        title=f"Recommendations (book at the close of {date}; change per parameter capped at {step})",
        notes=["newly_liquidatable: accounts open at that close whose equity is at or above today's maintenance "
               "margin but below the maintenance margin the proposed parameters give on the same holdings; "
               "notional in USD of gross perp notional; below_new_im: accounts whose equity is below the "
               "proposed initial margin."],
        formats={"current": "{:.4g}", "target": "{:.4g}", "proposed": "{:.4g}", "change": "{:+.4g}",
                 "newly_liquidatable_notional": "${:,.0f}", "open_accounts": "{:.0f}",
                 "newly_liquidatable": "{:.0f}", "below_new_im": "{:.0f}"},
    )
