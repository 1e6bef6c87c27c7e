"""The with / without feedback comparison of a backtest, and the market scale it assumes.

When the config has ``[liquidation] feedback = true``, ``riskmodels backtest``
(and ``riskmodels report``) run the same config a second time with
``feedback = false`` (:func:`feedback_pair`) and report, per margin model
(:func:`~riskmodels.backtest.feedback.feedback_comparison`):

* liquidations, liquidated notional and bad debt without and with feedback;
* the cascade amplification ``A = liquidated notional with feedback / without``
  (``A > 1``: the method's own forced sales liquidated further accounts);
* the largest number of liquidation rounds in a day and the days on which the
  rounds moved prices.

The **market scale** (:func:`market_scale`) makes the assumption explicit: the
book's gross holdings ``B_a`` (collateral + |perp|, USD at the open) stand for
the real open interest ``OI_a(t) = feedback_oi_to_volume x`` the trailing
``adv_window``-day mean USD volume before ``t``, i.e. each book USD stands for
``OI_a(t) / B_a`` real USD. The table gives, per asset, the book's holdings,
the mean, minimum and maximum of ``OI_a`` over the window and the implied
scale; :func:`scale_check` puts the model's open interest beside the real
figures on record (CRASH_DAYS.md) on the days inside the window.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmodels.backtest.feedback import feedback_comparison

if TYPE_CHECKING:
    from riskmodels.backtest.result import BacktestResult

__all__ = ["RECORDED_OPEN_INTEREST", "FeedbackReport", "baseline_simulation", "comparison_table", "feedback_on",
           "feedback_pair", "market_scale", "scale_check"]

#: open interest on record the day before a crash (CRASH_DAYS.md): (day before, assets, USD, source)
RECORDED_OPEN_INTEREST: tuple[tuple[str, tuple[str, ...], float, str], ...] = (
    ("2021-05-18", ("BTC",), 24.68e9, "BTC OI more than halved to $12.34B on 19 May 2021 (a lower bound)"),
    ("2024-08-04", (), 47e9 / (1 - 0.187), "total OI fell 18.7% to $47B on 5 Aug 2024 (all assets)"),
)


def feedback_on(result_or_cfg: Any) -> bool:
    """True when the config (or a result's config) has ``[liquidation] feedback = true``."""
    cfg = getattr(result_or_cfg, "config", result_or_cfg) or {}
    return bool(dict(cfg.get("liquidation") or {}).get("feedback", False))


def _open_interest(result: BacktestResult) -> np.ndarray:
    """``(T, A)`` USD open interest the book stands for (FeedbackMarket's rule)."""
    pol = next(iter(result.results.values())).simulation.policy
    vol = np.asarray(result.panel.volume, dtype=np.float64)
    v = np.where(np.isfinite(vol) & (vol > 0), vol, np.nan)
    adv = pd.DataFrame(v).rolling(int(pol.adv_window), min_periods=1).mean().shift(1).to_numpy()
    return float(pol.feedback_oi_to_volume) * np.where(np.isfinite(adv), adv, 0.0)


def market_scale(result: BacktestResult) -> pd.DataFrame:
    """Per asset the book holds: book USD, real open interest it stands for, and the scale (module docstring)."""
    book = result.book
    gross = np.abs(np.asarray(book.collateral)) .sum(0) + np.abs(np.asarray(book.positions)).sum(0)
    oi = _open_interest(result)[result.start : result.end + 1]
    pol = next(iter(result.results.values())).simulation.policy
    rows = []
    for j, a in enumerate(result.panel.assets):
        if gross[j] <= 0:
            continue
        live = oi[:, j][oi[:, j] > 0]
        mean = float(live.mean()) if len(live) else float("nan")
        rows.append({
            "asset": a, "book_usd": float(gross[j]), "oi_usd_mean": mean,
            "oi_usd_min": float(live.min()) if len(live) else float("nan"),
            "oi_usd_max": float(live.max()) if len(live) else float("nan"),
            "scale_mean": mean / float(gross[j]) if len(live) else float("nan"),
            "oi_to_volume": float(pol.feedback_oi_to_volume),
        })
    return pd.DataFrame(rows)


def scale_check(result: BacktestResult) -> pd.DataFrame:
    """The model's open interest against the real figures on record, on record days inside the window."""
    oi = _open_interest(result)
    dates = result.panel.dates
    rows = []
    for day, assets, real, source in RECORDED_OPEN_INTEREST:
        ts = pd.Timestamp(day)
        t = int(dates.searchsorted(ts))
        if t >= len(dates) or dates[t] != ts or not result.start <= t <= result.end:
            continue
        cols = [result.panel.assets.index(a) for a in assets if a in result.panel.assets] if assets else \
            list(range(len(result.panel.assets)))
        if not cols:
            continue
        # the OI the book stands for on the crash day itself (trailing volume before it)
        model = float(oi[min(t + 1, len(dates) - 1), cols].sum())
        rows.append({"day": day, "assets": "+".join(assets) if assets else "all assets in the universe",
                     "model_oi_usd": model, "recorded_oi_usd": real, "ratio": model / real, "source": source})
    return pd.DataFrame(rows, columns=["day", "assets", "model_oi_usd", "recorded_oi_usd", "ratio", "source"])


@dataclass(frozen=True, eq=False)
class FeedbackReport:
    """The comparison tables of :func:`feedback_pair` (``baseline``: the run without feedback)."""

    comparison: pd.DataFrame
    scale: pd.DataFrame
    check: pd.DataFrame
    days: pd.DataFrame
    baseline: Any  # {model: SimulationResult} or the re-run BacktestResult

    def write(self, out: Any) -> list[str]:
        """Write ``feedback.csv``, ``feedback_scale.csv``, ``feedback_days.csv``; return their names."""
        from pathlib import Path

        out = Path(out)
        self.comparison.to_csv(out / "feedback.csv", index=False, float_format="%.10g")
        pd.concat([self.scale.assign(kind="book"), self.check.assign(kind="record")], ignore_index=True) \
            .to_csv(out / "feedback_scale.csv", index=False, float_format="%.10g")
        self.days.to_csv(out / "feedback_days.csv", index=False, float_format="%.10g")
        return ["feedback.csv", "feedback_scale.csv", "feedback_days.csv"]


def _days(result: BacktestResult) -> pd.DataFrame:
    """Per model, the days on which the feedback rounds moved a price (rounds, liquidated, max |move|)."""
    frames = []
    for name, r in result.results.items():
        log = getattr(r.simulation, "feedback_log", None)
        if log is None or not len(log):
            continue
        f = pd.DataFrame(log)
        f = f[(f["max_move"] > 0) | (f["liquidated"] > 0)]
        f.insert(0, "date", [str(result.panel.dates[int(t)].date()) for t in f["t"]])
        f.insert(0, "model", name)
        frames.append(f.drop(columns="t"))
    cols = ["model", "date", "rounds", "liquidated", "max_move"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def baseline_simulation(fitted: Any, book: Any, policy: Any, start: int, end: int, asset_ok: Any) -> Any:
    """The simulation of a feedback run's fitted model with ``feedback = false`` (engine hook).

    Same fitted model, book, window and policy otherwise (``closeout = "impact"``
    included): only the simulation is repeated, not the fit or the margin path.
    Its warnings are the feedback run's own (the same close-out fallbacks) and
    are not repeated.
    """
    import warnings
    from dataclasses import replace

    from riskmodels.backtest.simulation import simulate_accounts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_accounts(fitted, book, replace(policy, feedback=False), start=start, end=end,
                                 asset_ok=asset_ok)


def feedback_pair(result: BacktestResult, progress: Callable[..., None] | None = None) -> FeedbackReport | None:
    """Compare ``result`` with the same backtest without feedback (None when feedback is off).

    The baseline is the same config, panel, book and fitted models with
    ``[liquidation] feedback = false`` (every other key unchanged, ``closeout =
    "impact"`` included), so the comparison isolates the cross-account price
    feedback. The engine keeps each model's baseline simulation
    (``ModelResult.baseline_simulation``); a result without them (built by
    other means) is re-run without feedback.
    """
    if not feedback_on(result):
        return None
    if all(r.baseline_simulation is not None for r in result.results.values()):
        base: Any = {n: r.baseline_simulation for n, r in result.results.items()}
    else:
        from riskmodels.backtest.engine import run_backtest

        cfg = copy.deepcopy(result.config)
        cfg["liquidation"]["feedback"] = False
        base = run_backtest(cfg, result.panel, progress=progress)
    comp = feedback_comparison(base, result)
    days = _days(result)
    comp["days_moved"] = [int((days["model"] == m).sum()) for m in comp["model"]]
    comp["oi_to_volume"] = float(result.config["liquidation"].get("feedback_oi_to_volume", 0.5))
    return FeedbackReport(comp, market_scale(result), scale_check(result), days, base)


def comparison_table(rep: FeedbackReport) -> Any:
    """The comparison as a :class:`~riskmodels.backtest._testresult.Table` for the console and the report."""
    from riskmodels.backtest._testresult import Table

    c = rep.comparison
    frame = pd.DataFrame({
        "model": c["model"],
        "liquidations": c["liquidations"], "liquidations_feedback": c["liquidations_feedback"],
        "liquidated_notional_usd": c["liquidated_notional"],
        "liquidated_notional_feedback_usd": c["liquidated_notional_feedback"],
        "bad_debt_usd": c["bad_debt"], "bad_debt_feedback_usd": c["bad_debt_feedback"],
        "amplification": c["amplification"], "max_rounds_per_day": c["max_rounds_per_day"],
        "days_moved": c["days_moved"],
    })
    k = float(c["oi_to_volume"].iloc[0]) if len(c) else float("nan")
    notes = ("amplification = liquidated notional with feedback / without (same config, panel and book; "
             "NaN when nothing is liquidated without feedback)",
             f"market scale: the book's holdings stand for the real open interest OI = {k:g} x trailing mean "
             "daily USD volume ([liquidation] feedback_oi_to_volume; feedback_scale.csv)",
             "days_moved: days on which the feedback rounds liquidated someone or moved a price")
    return Table(frame, title=f"Endogenous cascades: with vs without feedback (book = real OI of {k:g} x ADV)",
                 notes=notes)
