"""Sweep results: one file per finished point, and the assembled table.

Each finished point is written at once (atomically, :func:`_write_point`) so a
killed sweep resumes; :class:`SweepResult` holds the tidy table and gives the
Pareto frontier of ``mean_im_per_notional`` against
``liquidations_per_account_year`` (both minimised), its chart and a greyscale
heatmap of any metric over two axes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.sweep_grid import Point

X_METRIC = "mean_im_per_notional"
Y_METRIC = "liquidations_per_account_year"


# --------------------------------------------------------------------------- results
def _points_dir(out: Path) -> Path:
    return out / "points"


def _write_point(out: Path, row: dict[str, Any]) -> Path:
    d = _points_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"{row['key']}.parquet"
    tmp = d / f".{row['key']}.{os.getpid()}.tmp"
    pd.DataFrame([row]).to_parquet(tmp, index=False)
    os.replace(tmp, final)
    return final


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The tidy table of a sweep (one row per point, sorted by point number) and its views."""

    table: pd.DataFrame
    axes: tuple[str, ...]
    timings: pd.Series
    out: Path | None = None
    computed: int = 0

    def frontier(self, x: str = X_METRIC, y: str = Y_METRIC) -> pd.DataFrame:
        """Rows on the Pareto front of ``x`` vs ``y`` (both minimised), sorted by ``x``."""
        from riskmodels.backtest._testresult import pareto_front

        idx = pareto_front(self.table[x].to_numpy(float), self.table[y].to_numpy(float))
        return self.table.iloc[idx].reset_index(drop=True)

    def frontier_chart(self, path: str | Path, x: str = X_METRIC, y: str = Y_METRIC) -> Path:
        """All points (hollow grey) and the front (filled black, joined, labelled by point), greyscale."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.8), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(self.table[x], self.table[y], "o", markerfacecolor="white", markeredgecolor="0.55",
                markersize=5, linestyle="none", label="grid points")
        fr = self.frontier(x, y)
        ax.plot(fr[x], fr[y], "s-", color="black", markersize=6, linewidth=1.2, label="Pareto front")
        for _, r in fr.iterrows():
            ax.annotate(str(int(r["point"])), (r[x], r[y]), textcoords="offset points", xytext=(5, 4), fontsize=7)
        ax.set_xlabel(f"{x} (capital, lower is better)")
        ax.set_ylabel(f"{y} (lower is better)")
        ax.set_title("Capital efficiency vs liquidation frequency")
        ax.grid(True, color="0.85", linewidth=0.5)
        ax.legend(loc="best", fontsize=8, frameon=False)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, bbox_inches="tight")
        return out

    def pivot(self, metric: str, x: str, y: str, agg: str = "mean") -> pd.DataFrame:
        """``metric`` over axes ``y`` (rows) x ``x`` (columns); other axes aggregated with ``agg``."""
        for c in (metric, x, y):
            if c not in self.table.columns:
                raise KeyError(f"{c!r}: unknown column; valid columns: {list(self.table.columns)}")
        return self.table.pivot_table(index=y, columns=x, values=metric, aggfunc=agg, sort=True)

    def heatmap(self, path: str | Path, metric: str = Y_METRIC, x: str | None = None, y: str | None = None,
                agg: str = "mean") -> Path:
        """Greyscale heatmap of ``metric`` (cells annotated, darker = larger) over two axes."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        multi = [a for a in self.axes if self.table[a].nunique() > 1] or list(self.axes)
        x = x or multi[0]
        y = y or (multi[1] if len(multi) > 1 else multi[0])
        if x == y:  # one axis: a single row
            for c in (metric, x):
                if c not in self.table.columns:
                    raise KeyError(f"{c!r}: unknown column; valid columns: {list(self.table.columns)}")
            pv = self.table.assign(_all="all").pivot_table(index="_all", columns=x, values=metric, aggfunc=agg)
            y = ""
        else:
            pv = self.pivot(metric, x, y, agg)
        z = pv.to_numpy(dtype=float)
        fig = Figure(figsize=(1.2 + 0.9 * max(z.shape[1], 2), 1.2 + 0.6 * max(z.shape[0], 2)), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        finite = z[np.isfinite(z)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        im = ax.imshow(z, cmap="Greys", aspect="auto", vmin=lo, vmax=hi if hi > lo else lo + 1)
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                v = z[i, j]
                shade = (v - lo) / (hi - lo) if hi > lo and np.isfinite(v) else 0.0
                ax.text(j, i, "-" if not np.isfinite(v) else f"{v:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if shade > 0.55 else "black")
        ax.set_xticks(range(z.shape[1]), [str(c) for c in pv.columns], fontsize=8, rotation=30)
        ax.set_yticks(range(z.shape[0]), [str(c) for c in pv.index], fontsize=8)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        others = [a for a in self.axes if a not in (x, y) and self.table[a].nunique() > 1]  # aggregated
        ax.set_title(metric + (f" ({agg} over {', '.join(others)})" if others else ""), fontsize=9)
        fig.colorbar(im, ax=ax)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, bbox_inches="tight")
        return out

    def __str__(self) -> str:
        from riskmodels.backtest._testresult import Table

        cols = ["point", *self.axes, X_METRIC, Y_METRIC, "breach_rate", "bad_debt_bp_per_year"]
        cols = [c for c in cols if c in self.table.columns]
        fr = self.frontier()[cols].copy()
        for a in self.axes:  # long JSON values (per-asset mappings) shortened for the terminal
            fr[a] = fr[a].map(lambda v: v if not isinstance(v, str) or len(v) <= 40 else v[:37] + "...")
        return str(Table(fr, f"Sweep: {len(self.table)} points, {len(fr)} on the Pareto front "
                                   f"({X_METRIC} vs {Y_METRIC})"))


def _link_points(out: Path, stage: Path, keys: Sequence[str]) -> None:
    """Hard-link (else copy) the points ``keys`` of ``out/points/`` into ``stage/points/``."""
    src, dst = _points_dir(out), _points_dir(stage)
    dst.mkdir(parents=True, exist_ok=True)
    for k in keys:
        a, b = src / f"{k}.parquet", dst / f"{k}.parquet"
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)


def _read_points(out: Path, points: Sequence[Point]) -> pd.DataFrame:
    d = _points_dir(out)
    frames = [pd.read_parquet(d / f"{p.key}.parquet") for p in points]
    return pd.concat(frames, ignore_index=True).sort_values("point", kind="mergesort").reset_index(drop=True)
