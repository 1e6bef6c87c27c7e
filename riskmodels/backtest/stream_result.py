"""The result of a streamed run: the summary of a dense run, from the chunks' sums.

:class:`StreamedResult` offers what :class:`~riskmodels.backtest.result.BacktestResult`
offers for the comparison (``metrics_frame``, ``summary``, ``verdicts``,
``procyclicality_table``, ``comparison``, ``window_facts``, ``events``,
``top_concentration``, ``margin_over_time``) with the same definitions (the
metric docstrings of :mod:`riskmodels.backtest.metrics`), computed from
:class:`~riskmodels.backtest.stream_aggregate.ChunkAggregate` sums. What a
stream does not keep: the per-account margin paths (``margin_paths.parquet``),
the per-account coverage diagnostics (Kupiec / Christoffersen per account
and side; the book-level verdict and the pooled traffic light are kept) and
the netting distribution across accounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest import procyclicality as pc
from riskmodels.backtest import stream_aggregate as sa
from riskmodels.backtest._testresult import ComparisonTable
from riskmodels.backtest.metrics import metrics_with
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.backtest.windows import priced_span
from riskmodels.data.panel import PricePanel
from riskmodels.margin.base import MarginModel
from riskmodels.portfolio import Book

#: the metrics a streamed run computes (a test checks it is every registered metric)
STREAMED_METRICS = (
    "mean_im_per_notional", "p95_im_per_notional", "implied_max_leverage", "liquidations_per_account_year",
    "share_ever_liquidated", "breach_rate", "breach_rate_long", "breach_rate_short", "bad_debt_bp_per_year",
    "penalty_bp_per_year", "bad_debt_usd", "top10_margin_share", "top10_liquidated_share", "top10_bad_debt_share",
)


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


@dataclass(eq=False)
class StreamedModel:
    """One model's aggregates and the numbers derived from them."""

    model: MarginModel
    agg: sa.ModelAggregate
    p95: float
    gross: np.ndarray
    policy: LiquidationPolicy
    events: np.ndarray = field(init=False)
    per_account_margin: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        ev = np.concatenate(self.agg.events) if self.agg.events else np.zeros(0)
        self.events = ev[np.lexsort((ev["account"], ev["t"]))] if ev.size else ev
        self.per_account_margin = np.concatenate(self.agg.per_account_margin)
        self.agg.events, self.agg.per_account_margin = [], []

    @property
    def label(self) -> str:
        return self.model.label

    @property
    def liquidations(self) -> np.ndarray:
        return self.events[self.events["trigger"] < 2] if self.events.size else self.events

    @property
    def mm_rule(self) -> str:
        from riskmodels.backtest.mm_rule import maintenance_rule

        return maintenance_rule(self.model, self.policy.maintenance_ratio)

    def side_counts(self) -> dict[str, tuple[int, int]]:
        """``{side: (observations, exceptions)}`` over the common coverage cells."""
        assert self.agg.N is not None and self.agg.X is not None
        n, x = self.agg.N.sum(axis=0), self.agg.X.sum(axis=0)
        return {s: (int(n[i]), int(x[i])) for i, s in enumerate(("combined", "long", "short"))}

    def top_shares(self, members: np.ndarray) -> dict[str, float]:
        from riskmodels.backtest.topn import shares_of

        return shares_of(self.gross, self.per_account_margin, self.liquidations, members)

    def metrics(self) -> dict[str, float]:
        """Every metric of :data:`STREAMED_METRICS`, with the registry's definitions."""
        from riskmodels.backtest.topn import top_accounts

        a = self.agg
        mean = _div(a.ratio_sum, a.ratio_n)
        liq = self.liquidations
        sides = self.side_counts()
        ny = float(a.notional_total.sum()) / 365.0 if a.notional_total is not None else 0.0
        top = self.top_shares(top_accounts(self.gross, 10))
        out = {
            "mean_im_per_notional": mean,
            "p95_im_per_notional": self.p95 if a.ratio_n else float("nan"),
            "implied_max_leverage": (1.0 / mean if mean > 0 else float("inf")) if not math.isnan(mean) else float("nan"),
            "liquidations_per_account_year": len(liq) / (a.account_days / 365.0) if a.account_days else float("nan"),
            "share_ever_liquidated": _div(a.liquidated, a.opened),
            "breach_rate": _div(sides["combined"][1], sides["combined"][0]),
            "breach_rate_long": _div(sides["long"][1], sides["long"][0]),
            "breach_rate_short": _div(sides["short"][1], sides["short"][0]),
            "bad_debt_bp_per_year": 1e4 * float(liq["bad_debt"].sum()) / ny if ny else float("nan"),
            "penalty_bp_per_year": 1e4 * float(liq["penalty"].sum()) / ny if ny else float("nan"),
            "bad_debt_usd": float(liq["bad_debt"].sum()) if liq.size else 0.0,
            "top10_margin_share": top["share_margin"],
            "top10_liquidated_share": top["share_liquidated_notional"],
            "top10_bad_debt_share": top["share_bad_debt"],
        }
        return out


class StreamedResult:
    """The comparison of several models on a book run in chunks (:func:`~riskmodels.backtest.stream.stream_models`)."""

    def __init__(self, panel: PricePanel, book: Book, models: list[MarginModel], total: sa.ChunkAggregate,
                 p95: dict[str, float | None], config: dict[str, Any], start: int, end: int,
                 policy: LiquidationPolicy, run: dict[str, Any]) -> None:
        self.panel, self.book, self.config, self.start, self.end = panel, book, config, start, end
        self.total, self.run = total, run
        gross = book.gross_notional
        self.results = {m.label: StreamedModel(m, total.models[m.label], float("nan") if p95[m.label] is None
                                               else float(p95[m.label]), gross, policy) for m in models}
        self._cache: dict[str, Any] = {}

    @property
    def models(self) -> list[str]:
        return list(self.results)

    @property
    def dates(self) -> pd.DatetimeIndex:
        return self.panel.dates[self.start : self.end + 1]

    def metrics_frame(self, tag: str | None = None) -> pd.DataFrame:
        """Models x metrics (raw numbers), the columns of ``BacktestResult.metrics_frame``."""
        ms = metrics_with(tag)
        unknown = [m.name for m in ms if m.name not in STREAMED_METRICS]
        if unknown:
            raise NotImplementedError(f"metrics {unknown} have no streamed form yet (riskmodels.backtest.stream_result)")
        vals = {k: r.metrics() for k, r in self.results.items()}
        return pd.DataFrame({m.name: [vals[k][m.name] for k in self.results] for m in ms},
                            index=pd.Index(self.models, name="model"))

    def summary(self, tag: str | None = None) -> ComparisonTable:
        """The models x metrics table (as ``BacktestResult.summary``)."""
        ms = metrics_with(tag)
        df = self.metrics_frame(tag)
        df.columns = [m.label for m in ms]
        df.insert(0, "mm rule", [r.mm_rule for r in self.results.values()])
        d0, d1 = self.dates[0].date(), self.dates[-1].date()
        title = (f"{self.book.n_accounts} accounts, {self.panel.n_assets} assets, {d0}..{d1}, "
                 f"MPOR {self.config.get('backtest', {}).get('mpor', '?')} days (streamed in "
                 f"{self.run['chunks']} chunks of {self.run['chunk_accounts']:,} accounts)")
        return ComparisonTable(df.reset_index(), title + "\n" + self.window_header(),
                               formats={m.label: m.fmt for m in ms})

    def __str__(self) -> str:
        return str(self.summary())

    def _p_h(self) -> tuple[float, int]:
        bt = self.config.get("backtest", {})
        return 1.0 - float(bt.get("confidence", 0.99)), int(bt.get("mpor", 1))

    def verdicts(self, level: float = 0.05) -> dict[str, Any]:
        """``{model: CoverageVerdict}`` from the daily counts (equal to the dense run's)."""
        from riskmodels.backtest.verdict import verdict_from_counts

        key = f"verdicts{level}"
        if key not in self._cache:
            p, h = self._p_h()
            self._cache[key] = {k: verdict_from_counts(r.agg.X, r.agg.N, p, h, level) for k, r in self.results.items()}
        return self._cache[key]

    def traffic_light(self) -> dict[str, str]:
        """The pooled traffic-light zone of the combined book (the comparison's ``coverage_zone``)."""
        from riskmodels.backtest.stats import _zones

        p, _ = self._p_h()
        out = {}
        for k, r in self.results.items():
            n, x = r.side_counts()["combined"]
            out[k] = _zones(np.asarray(x), np.asarray(n), p).item()
        return out

    def procyclicality_table(self) -> pc.ProcyclicalityReport:
        """Murphy-Vasios-Vause measures of each model's total IM (as ``report_tables.procyclicality_table``)."""
        wins = pc._check_windows(pc.STRESS_WINDOWS)
        hs = pc._check_horizons(pc.HORIZONS)
        reports = {}
        for k, r in self.results.items():
            a = r.agg
            assert a.present is not None and a.procyc is not None
            rows = np.flatnonzero(a.present)
            if rows.size == 0:
                level, g, inc = np.zeros(0), np.zeros(0), {n: (np.zeros(0),) * 3 for n in hs}
                idx = self.dates[:0]
            else:
                lo, hi = int(rows[0]), int(rows[-1])
                if rows.size != hi - lo + 1:
                    import warnings

                    warnings.warn(f"{k}: {hi - lo + 1 - rows.size} dates inside the priced window have no priced "
                                  "account; the streamed procyclicality counts them as unchanged margin (a dense "
                                  "run links across them)", RuntimeWarning, stacklevel=2)
                level, g, inc = pc.finish_sums(pc.slice_sums(a.procyc, lo, hi), hs, True)
                idx = self.dates[lo : hi + 1]
            reports[k] = pc.report_from_aggregates(level, g, inc, idx, wins, hs, 365.0, k)
        rep = pc.ProcyclicalityReport.combine(reports)
        rep.title = "Procyclicality of total initial margin (Murphy, Vasios & Vause 2014)"
        rep.notes = (*tuple(getattr(rep, "notes", ())), self.window_header())
        return rep

    def comparison(self) -> ComparisonTable:
        """The one-row-per-model comparison (as ``report_tables.comparison_summary``)."""
        from riskmodels.backtest.report_tables import comparison_of

        return comparison_of(self.models, self.metrics_frame(), self.traffic_light(), self.verdicts(),
                             self.procyclicality_table().to_frame(), {k: r.mm_rule for k, r in self.results.items()},
                             self.window_header())

    def window_facts(self) -> dict[str, Any]:
        """The facts of :func:`~riskmodels.backtest.windows.window_facts` from the chunks' sums."""
        t = self.total
        dates = self.dates
        any_day = t.eligible_per_date > 0
        P = self.book.n_accounts
        unpriced = {}
        for k, r in self.results.items():
            a = r.agg
            reason = ""
            if a.unpriced_cells:
                assert a.unpriced_by_asset is not None and a.unpriced_rows is not None
                top = [self.panel.assets[j] for j in np.argsort(-a.unpriced_by_asset)[:3] if a.unpriced_by_asset[j] > 0]
                first = np.flatnonzero(a.unpriced_rows)
                reason = (f"margin not finite on {a.unpriced_cells:,} cells the other models price (accounts holding "
                          f"{', '.join(top)}; rows {int(first[0])}..{int(first[-1])} of the window)")
            unpriced[k] = {"cells": a.unpriced_cells, "dropped_from_row": a.dropped_from_row, "reason": reason}
        facts: dict[str, Any] = {
            **priced_span(dates, any_day),
            "accounts": P,
            "accounts_ever_priced": t.accounts_ever_priced,
            "account_days_eligible": int(t.eligible_per_date.sum()),
            "priced_account_days": t.common_cells,
            "common_cells": t.common_cells,
            "unpriced": unpriced,
            "stress_windows": {},
        }
        total_g = float(self.book.gross_notional.sum()) or 1.0
        for name, (a0, b0) in pc.STRESS_WINDOWS.items():
            m = (dates >= pd.Timestamp(a0)) & (dates <= pd.Timestamp(b0))
            if not m.any():
                continue
            facts["stress_windows"][name] = {
                "start": a0, "end": b0, "dates_in_window": int(m.sum()),
                "account_share": float(t.eligible_per_date[m].mean() / P) if P else float("nan"),
                "notional_share": float(t.eligible_gross[m].mean() / total_g),
            }
        return facts

    def window_header(self) -> str:
        from riskmodels.backtest.windows import header_of

        return header_of(self.window_facts())

    def events(self) -> pd.DataFrame:
        """All liquidation events of all models (the columns of ``BacktestResult.events``)."""
        from riskmodels.backtest.simulation import TRIGGERS

        ids = np.asarray(self.book.account_ids, dtype=object)
        frames = []
        for k, r in self.results.items():
            ev = r.events
            if not ev.size:
                continue
            frames.append(pd.DataFrame({
                "date": self.panel.dates[ev["t"]], "account": ids[ev["account"]],
                "trigger": np.asarray(TRIGGERS, dtype=object)[ev["trigger"]], "equity": ev["equity"],
                "maintenance": ev["maintenance"], "notional": ev["notional"], "slippage": ev["slippage"],
                "impact": ev["impact"], "penalty": ev["penalty"], "bad_debt": ev["bad_debt"],
                "returned": ev["returned"], "model": k}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def top_concentration(self) -> pd.DataFrame:
        """One row per (model, group), as :func:`~riskmodels.backtest.topn.top_concentration`."""
        from riskmodels.backtest.topn import COLUMNS, TOP_GROUPS, top_accounts

        rows = []
        for k, r in self.results.items():
            for label, size in TOP_GROUPS:
                rows.append({"model": k, "group": label, **r.top_shares(top_accounts(r.gross, size))})
        return pd.DataFrame(rows, columns=COLUMNS)

    def margin_over_time(self) -> pd.DataFrame:
        """Dates x models: total IM / total gross notional of the accounts priced that day."""
        out = {}
        for k, r in self.results.items():
            m, g = r.agg.im_sum, r.agg.g_sum
            with np.errstate(invalid="ignore", divide="ignore"):
                out[k] = np.where(g > 0, m / g, np.nan)  # type: ignore[operator]
        return pd.DataFrame(out, index=self.dates)

    def fit_logs(self) -> pd.DataFrame | None:
        logs = [r.agg.fit_log.assign(model=k) for k, r in self.results.items()
                if isinstance(r.agg.fit_log, pd.DataFrame) and len(r.agg.fit_log)]
        return pd.concat(logs, ignore_index=True) if logs else None

