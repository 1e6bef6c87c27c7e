"""Section "Executive summary": the recommended method and the parameter changes, in words and one table.

The recommended method is chosen by a stated rule, not by judgement: among
the methods that are not under-covered (their multiplier ``k`` of
:func:`~riskmodels.report.recommend.coverage_findings` is at most
``1 + IN_LINE``) and not in the Basel red zone, the one with the least mean
initial margin per unit of notional (ties: fewer liquidations). When no
method qualifies the summary says so and names the least under-covered one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest._testresult import Table
from riskmodels.report.document import Block, Para, TableBlock
from riskmodels.report.recommend_section import recommendations
from riskmodels.report.summary import summary_of

__all__ = ["build_section", "executive_table", "recommended_method"]


def recommended_method(summary: pd.DataFrame, findings: pd.DataFrame) -> tuple[str | None, str]:
    """``(model or None, sentence)`` by the rule of the module docstring."""
    f = summary.merge(findings[["model", "k", "finding"]], on="model", how="left")
    zone = f["coverage_zone"].astype(str) if "coverage_zone" in f.columns else pd.Series("", index=f.index)
    ok = (f["finding"] != "under-coverage") & (zone != "red") & np.isfinite(f["k"].to_numpy(dtype=float))
    if ok.any():
        best = f[ok].sort_values(["mean_im_per_notional", "liquidations_per_account_year"], kind="mergesort").iloc[0]
        others = int(ok.sum()) - 1
        why = (f"Of the {others + 1} methods that are neither under-covered nor in the red zone, it needs the "
               "least capital" if others else "It is the only method that is neither under-covered nor in the "
               "red zone")
        return str(best["model"]), (
            f"Recommended method: {best['model']}. {why}: mean initial margin "
            f"{best['mean_im_per_notional']:.2%} of notional (maximum leverage {best['implied_max_leverage']:.1f}x), "
            f"{best['liquidations_per_account_year']:.3f} liquidations per account-year, breach rate "
            f"{best['breach_rate']:.2%}" + (f"; {others} other method(s) qualify at more capital." if others else "."))
    valid = f[np.isfinite(f["k"].to_numpy(dtype=float))]
    if not len(valid):
        return None, "No method could be assessed: no priced (date, account) cell in the window."
    near = valid.sort_values("k", kind="mergesort").iloc[0]
    return None, (f"No method meets the target exception rate outside the red zone. The least under-covered is "
                  f"{near['model']} (its margin would need to be {near['k']:.2f}x higher).")


def executive_table(summary: pd.DataFrame, findings: pd.DataFrame, changes: pd.DataFrame | None) -> Table:
    """One row per model: capital, liquidations, bad debt, breach rate, finding and the proposed change."""
    f = summary.merge(findings[["model", "finding"]], on="model", how="left")
    change: dict[str, str] = {}
    liq: dict[str, float] = {}
    if changes is not None and len(changes):
        for model, g in changes.groupby("model", sort=False):
            change[str(model)] = "; ".join(
                f"{r.parameter} {r.current:.4g} -> {r.proposed:.4g}" + (" (capped)" if r.capped else "")
                for r in g.itertuples(index=False))
            liq[str(model)] = float(g["newly_liquidatable"].iloc[0])
    cols = ["model", "mean_im_per_notional", "liquidations_per_account_year", "bad_debt_bp_per_year",
            "breach_rate", "finding"]
    frame = f[[c for c in cols if c in f.columns]].copy()
    frame["proposed_change"] = [change.get(m, "-") for m in frame["model"]]
    frame["newly_liquidatable_accounts"] = [liq.get(m, np.nan) for m in frame["model"]]
    return Table(frame, title="Methods, findings and proposed changes",
                 formats={"mean_im_per_notional": "{:.2%}", "liquidations_per_account_year": "{:.3f}",
                          "bad_debt_bp_per_year": "{:.2f}", "breach_rate": "{:.2%}",
                          "newly_liquidatable_accounts": "{:,.0f}"})


def build_section(ctx: Any) -> list[Block]:
    summ = summary_of(ctx)
    rec = recommendations(ctx)
    s, fnd = summ.to_frame(), rec.findings.to_frame()
    _, sentence = recommended_method(s, fnd)
    under = fnd.loc[fnd["finding"] == "under-coverage", "model"].tolist()
    over = fnd.loc[fnd["finding"] == "over-coverage", "model"].tolist()
    words = []
    if under:
        words.append(f"Under-covered (more exceptions than the target; margin to raise): {', '.join(under)}.")
    if over:
        words.append(f"Over-covered (fewer exceptions than the target; capital that could be released): "
                     f"{', '.join(over)}.")
    changes = rec.table.to_frame() if rec.table is not None else None
    n_changes = 0 if changes is None else int(changes["proposal"].nunique())
    st = ctx.settings["recommend"]
    words.append(f"{n_changes} parameter change(s) proposed ({rec.origin}), each capped at {st['max_step']:g} "
                 f"({st['step_kind']}) per step; details and the accounts each change makes liquidatable at "
                 "once are in the Recommendations section.")
    return [Para(sentence, strong=True), Para(" ".join(words)),
            TableBlock("executive", executive_table(s, fnd, changes), wide=True),
            Para("Rule for the recommendation: among the methods not under-covered (multiplier k <= 1.05) and "
                 "not in the Basel red zone, the least mean initial margin per notional; the rule is mechanical "
                 "and the committee may weigh procyclicality and liquidations differently.", small=True)]

