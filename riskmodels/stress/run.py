"""Stress a book on one date, or over a whole backtest: the objects and files a report renders.

* :func:`stress_date` -- one date's library, per model: the stress table
  (:meth:`StressResult.table`), Cover-1 / Cover-2 and the reverse stress;
* :func:`backtest_stress` -- per model over the backtest: the Cover-N path
  (every ``[stress].every``-th date), the insurance-fund ledger and ADL hits,
  and the end date's stress table; :meth:`BacktestStress.write` writes them
  as CSV + JSON and the Cover-2 / fund chart (``cover_fund.png``) into a
  directory, atomically (a temporary folder renamed).

Losses use the constant-notional book of the coverage backtest (the USD
amounts of the Book every date) and the model's margin at the date; the
scenarios at date ``t`` use prices up to ``t`` only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.portfolio import Book
from riskmodels.stress.config import StressConfig
from riskmodels.stress.cover import (
    GroupIndex,
    StressResult,
    beyond_margin,
    reverse_table,
    scenario_losses,
    stress_book,
    top2,
)
from riskmodels.stress.fund import FundLedger, fund_ledger
from riskmodels.stress.scenarios import ScenarioHistory, ScenarioSet


def default_resources(cfg: StressConfig, book: Book) -> float:
    """Reverse-stress resources without a simulated fund: ``resources``, else the fund's starting rule."""
    if cfg.resources is not None:
        return float(cfg.resources)
    if cfg.fund_initial is not None:
        return float(cfg.fund_initial)
    return float(cfg.fund_initial_share) * float(book.position_notional.sum())


@dataclass(frozen=True, eq=False)
class DateStress:
    """One date's stress of one book under several models."""

    date: pd.Timestamp
    scenarios: ScenarioSet
    results: dict[str, StressResult]
    reverse: dict[str, pd.DataFrame]
    resources: dict[str, float]

    def table(self) -> pd.DataFrame:
        """All models' stress tables stacked (column ``model``)."""
        return pd.concat([r.table().assign(model=m, date=self.date) for m, r in self.results.items()],
                         ignore_index=True)

    def cover_frame(self) -> pd.DataFrame:
        rows = []
        for m, r in self.results.items():
            c1, s1, g1 = r.cover(1)
            c2, s2, g2 = r.cover(2)
            rows.append({"model": m, "date": self.date, "resources": self.resources[m], "cover1": c1,
                         "cover1_scenario": s1, "cover1_groups": ";".join(g1), "cover2": c2,
                         "cover2_scenario": s2, "cover2_groups": ";".join(g2)})
        return pd.DataFrame(rows)

    def account_frame(self) -> pd.DataFrame:
        """Per model and account: group, margin, worst loss beyond margin and its scenario."""
        return pd.concat([r.account_table().assign(model=m, date=self.date) for m, r in self.results.items()],
                         ignore_index=True)

    def reverse_frame(self) -> pd.DataFrame:
        return pd.concat([f.assign(model=m, date=self.date) for m, f in self.reverse.items()], ignore_index=True)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The date's tables by file name (what ``riskmodels stress --out`` writes)."""
        return {"scenarios.csv": self.scenarios.to_frame(), "stress_table.csv": self.table(),
                "cover.csv": self.cover_frame(), "reverse_stress.csv": self.reverse_frame(),
                "stress_accounts.csv": self.account_frame()}

    def __str__(self) -> str:
        lines = [f"stress on {self.date.date()}: {len(self.scenarios)} scenarios "
                 f"(margin basis: {next(iter(self.results.values())).margin_basis} margin)"]
        for m, r in self.results.items():
            t = r.table()
            c1, s1, _ = r.cover(1)
            c2, s2, _ = r.cover(2)
            lines += ["", f"== {m}: Cover-1 {c1:,.0f} USD ({s1 or '-'}), Cover-2 {c2:,.0f} USD ({s2 or '-'})"]
            show = t[["scenario", "net_loss", "gross_loss", "loss_beyond_margin", "accounts_beyond_margin", "cover1",
                      "cover2"]]
            lines.append(show.to_string(index=False, float_format=lambda v: f"{v:,.0f}"))
            rv = self.reverse[m]
            for row in rv.itertuples(index=False):
                mv = "none within bound" if row.move is None or not np.isfinite(row.move) else f"{row.move:+.1%}"
                lines.append(f"  reverse stress, {row.family}: {mv} makes {row.measure} exceed "
                             f"{row.resources:,.0f} USD")
        return "\n".join(lines)


def stress_date(
    book: Book,
    history: ScenarioHistory,
    t: int,
    margins: dict[str, np.ndarray],
    cfg: StressConfig,
    resources: dict[str, float] | None = None,
) -> DateStress:
    """Stress ``book`` at date index ``t`` with each model's ``(P,)`` margin (NaN = not priced)."""
    book = book.align(history.panel.assets)
    scen = history.at(t)
    res: dict[str, StressResult] = {}
    rev: dict[str, pd.DataFrame] = {}
    resources = dict(resources or {})
    for m, margin in margins.items():
        res[m] = stress_book(book.exposure, book.cash, margin, scen, book.account_ids, book.group, cfg.margin)
        r = resources.setdefault(m, default_resources(cfg, book))
        rev[m] = reverse_table(book.exposure, margin, book.group, r, beta=history.beta[t], btc=history.btc,
                               measure=cfg.reverse_measure)
    return DateStress(history.panel.dates[t], scen, res, rev, resources)


@dataclass(frozen=True, eq=False)
class BacktestStress:
    """Stress outputs of a backtest: Cover-N paths, fund ledgers, the end date's tables."""

    cover: pd.DataFrame  # per (model, date): cover1/2 with scenario and groups, total beyond margin
    ledgers: dict[str, FundLedger]
    final: DateStress
    config: StressConfig
    files: list[str] = field(default_factory=list)

    def fund_frame(self) -> pd.DataFrame:
        return pd.concat([lg.ledger for lg in self.ledgers.values()], ignore_index=True)

    def adl_frame(self) -> pd.DataFrame:
        return pd.concat([lg.adl for lg in self.ledgers.values()], ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per model: peak Cover-1 / Cover-2 (date, scenario) and the fund's summary."""
        rows = []
        for m, lg in self.ledgers.items():
            c = self.cover[self.cover["model"] == m]
            row: dict[str, Any] = {"model": m}
            for k in ("cover1", "cover2"):
                if len(c) and c[k].max() > 0:
                    i = c[k].idxmax()
                    row |= {f"peak_{k}": float(c.at[i, k]), f"peak_{k}_date": str(c.at[i, "date"].date()),
                            f"peak_{k}_scenario": c.at[i, f"{k}_scenario"]}
                else:
                    row |= {f"peak_{k}": 0.0, f"peak_{k}_date": "", f"peak_{k}_scenario": ""}
            row |= lg.summary()
            rows.append(row)
        return pd.DataFrame(rows)

    def write(self, out: str | Path) -> list[str]:
        """CSV + JSON + the chart into ``out`` (replaced atomically); returns the file names."""
        from riskmodels.stress.charts import cover_fund_png

        summ = self.summary()
        files: dict[str, pd.DataFrame | str | bytes] = {
            **{k: v for k, v in self.final.frames().items() if k != "cover.csv"},  # the last date
            "cover.csv": self.cover,  # every date
            "fund.csv": self.fund_frame(),
            "adl.csv": self.adl_frame(),
            "stress_summary.csv": summ,
            "stress_summary.json": json.dumps({"date": str(self.final.date.date()),
                                               "models": summ.to_dict(orient="records")}, indent=2,
                                              default=str) + "\n",
            "cover_fund.png": cover_fund_png(self.cover, self.fund_frame()),
        }
        return write_files(out, files)


def write_files(out: str | Path, files: dict[str, pd.DataFrame | str | bytes]) -> list[str]:
    """Write ``name -> table | text | bytes`` into the folder ``out``, atomically.

    Everything goes to a temporary sibling folder first, which then replaces
    ``out`` (an existing ``out`` is moved aside and removed only after the
    swap), so a reader never sees a half-written folder.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".stress-", dir=out.parent))
    try:
        for name, obj in files.items():
            if isinstance(obj, pd.DataFrame):
                obj.to_csv(tmp / name, index=False, float_format="%.10g")
            elif isinstance(obj, bytes):
                (tmp / name).write_bytes(obj)
            else:
                (tmp / name).write_text(obj, encoding="utf-8")
        if out.exists():
            old = out.with_name(out.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(p.name for p in out.iterdir())


def _top_rows(col: np.ndarray, n: int) -> list[int]:
    """Rows of the ``n`` (1 or 2) largest values of ``col``, largest first (first row on ties)."""
    i = int(np.argmax(col))
    if n == 1 or len(col) < 2:
        return [i]
    rest = col.copy()
    rest[i] = -np.inf
    return [i, int(np.argmax(rest))]


def cover_path(
    book: Book,
    history: ScenarioHistory,
    dates: np.ndarray,
    margins: dict[str, np.ndarray],
    margin_basis: str = "initial",
) -> pd.DataFrame:
    """Cover-1 / Cover-2 and the total loss beyond margin per model and date index in ``dates``.

    ``margins[model]`` is ``(len(dates), P)``, NaN where the account is not
    priced. The scenarios and losses of a date are computed once for every
    model; per model the work is one ``max(L - M, 0)``, one group sum and a
    partial sort (the full :class:`StressResult` is built for the end date only).
    """
    book = book.align(history.panel.assets)
    gi = GroupIndex(book.group)
    x, cash = book.exposure, book.cash
    out: dict[str, list[Any]] = {k: [] for k in (
        "model", "date", "n_scenarios", "cover1", "cover1_scenario", "cover1_groups", "cover2",
        "cover2_scenario", "cover2_groups", "total_beyond_margin", "total_scenario")}
    for i, t in enumerate(np.asarray(dates, dtype=np.int64)):
        scen = history.at(int(t))
        names = scen.names
        loss = scenario_losses(x, cash, scen)
        date = history.panel.dates[t]
        for m, mar in margins.items():
            unc = beyond_margin(loss, mar[i])
            gu = gi.sum(unc)  # (G, S)
            c1, c2 = top2(gu)
            tot = unc.sum(axis=0)
            out["model"].append(m)
            out["date"].append(date)
            out["n_scenarios"].append(len(scen))
            for key, vals in (("cover1", c1), ("cover2", c2)):
                s = int(np.argmax(vals)) if len(vals) else 0
                v = float(vals[s]) if len(vals) else 0.0
                n = 1 if key == "cover1" else 2
                top = _top_rows(gu[:, s], n) if v > 0 else []
                out[key].append(v)
                out[f"{key}_scenario"].append(names[s] if v > 0 else "")
                out[f"{key}_groups"].append(";".join(str(gi.labels[g]) for g in top if gu[g, s] > 0))
            k = int(np.argmax(tot)) if len(tot) else 0
            out["total_beyond_margin"].append(float(tot[k]) if len(tot) else 0.0)
            out["total_scenario"].append(names[k] if len(tot) and tot[k] > 0 else "")
    frame = pd.DataFrame(out)
    frame["margin_basis"] = margin_basis
    return frame


def backtest_stress(result: Any, cfg: StressConfig) -> BacktestStress:
    """Stress outputs of a :class:`riskmodels.backtest.result.BacktestResult`."""
    panel, book = result.panel, result.book.align(result.panel.assets)
    mpor = int(result.config.get("backtest", {}).get("mpor", 2))
    history = ScenarioHistory(panel, cfg.library(mpor))
    start, end = result.start, result.end
    dates = np.arange(start, end + 1, int(cfg.every))
    if dates[-1] != end:
        dates = np.append(dates, end)
    margins, final_margin = {}, {}
    for m, mr in result.results.items():
        path = mr.path
        arr = getattr(path, cfg.margin)
        rows = dates - path.offset
        margins[m] = np.where(path.eligible[rows], arr[rows].astype(np.float64), np.nan)
        final_margin[m] = margins[m][-1]
    cover = cover_path(book, history, dates, margins, cfg.margin)
    ledgers = {m: fund_ledger(mr.simulation, book, panel, cfg.fund_policy()) for m, mr in result.results.items()}
    resources = {m: float(cfg.resources) if cfg.resources is not None else
                 float(lg.ledger["balance_close"].iloc[-1]) for m, lg in ledgers.items()}
    final = stress_date(book, history, int(end), final_margin, cfg, resources)
    return BacktestStress(cover, ledgers, final, cfg)
