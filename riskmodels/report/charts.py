"""Charts of the governance report: a colour-blind-safe style readable in greyscale, deterministic PNG bytes.

Every chart is drawn on a bare :class:`matplotlib.figure.Figure` with the Agg
canvas (no pyplot global state), at a fixed DPI, and saved as PNG with the
``Software`` metadata removed, so the same inputs give the same bytes (Agg
PNGs carry no date). Series take the Okabe-Ito palette (Okabe & Ito, "Color
Universal Design", 2002/2008: eight colours distinguishable under the common
colour-vision deficiencies) and, each, a dash pattern and a marker of their
own, never hue alone, so the report prints and photocopies; lines carry
their names directly at their right end (no legend to decode), spread so no
two labels overlap.

Data functions (tested on their own) are separate from the drawing:

* :func:`daily_totals` -- per-day sums of a liquidation-event field;
* :func:`distance_to_liquidation` -- ``equity / maintenance - 1`` at the close;
* :func:`insurance_fund_path` -- cumulative penalties, bad debt and balance;
* :func:`shock_grid` -- bad debt of the book under instantaneous shocks x leverage.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from riskmodels.backtest.simulation import SimulationResult
    from riskmodels.data.panel import PricePanel
    from riskmodels.portfolio import Book

__all__ = [
    "DPI",
    "daily_totals",
    "distance_to_liquidation",
    "distance_to_liquidation_png",
    "insurance_fund_path",
    "insurance_fund_png",
    "margin_over_time_png",
    "pareto_png",
    "shock_grid",
    "shock_heatmap_png",
    "tornado_png",
]

#: fixed resolution of every figure (pixels per inch)
DPI = 100
#: Okabe-Ito palette, ordered so neighbours differ in lightness too (the yellow, lightest, comes last)
OKABE_ITO = ("#000000", "#E69F00", "#0072B2", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442")
LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 3)),
                               (0, (3, 1, 1, 1)), (0, (6, 2, 2, 2)), (0, (2, 2)))
MARKERS = "osD^vPX*h<>p"
RC = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "riskmodels",
}


def style(i: int) -> dict[str, Any]:
    """Style of the i-th series: Okabe-Ito colour, dash pattern and marker (distinct for the first 10 series)."""
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


def spread(positions: Sequence[float], gap: float) -> np.ndarray:
    """Positions moved apart so that neighbours are at least ``gap`` apart, each as close to its own as possible.

    Labels sorted by position are pushed up from the lowest; then the block is
    shifted down by half its overshoot so it stays centred on the targets.
    Returns the positions in the input order.
    """
    p = np.asarray(positions, dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    q = p[order].copy()
    for k in range(1, q.size):
        q[k] = max(q[k], q[k - 1] + gap)
    q -= max(0.0, float((q - p[order]).mean()))
    for k in range(1, q.size):  # keep the spacing after the shift
        q[k] = max(q[k], q[k - 1] + gap)
    out = np.empty_like(q)
    out[order] = q
    return out


def _line(ax: Axes, x: Any, y: np.ndarray, i: int, label: str, n_marks: int = 8) -> None:
    """One series in style ``i`` with a few markers along it (not on every point)."""
    st = style(i)
    every = max(1, len(y) // n_marks)
    ax.plot(x, y, color=st["color"], linestyle=st["linestyle"], marker=st["marker"], markevery=(i % every, every),
            markersize=4, lw=1.3, label=label)


def direct_labels(ax: Axes, ends: Mapping[str, float], gap: float = 0.055) -> None:
    """Series names at the right edge of ``ax``, at each series' last value, spread apart, leader lines."""
    finite = {k: v for k, v in ends.items() if np.isfinite(v)}
    if not finite:
        return
    lo, hi = ax.get_ylim()
    names = list(finite)
    frac = np.array([(finite[n] - lo) / (hi - lo) if hi > lo else 0.5 for n in names])
    placed = spread(frac, gap)
    index = {n: i for i, n in enumerate(ends)}
    for n, f0, f1 in zip(names, frac, placed, strict=True):
        ax.annotate(n, xy=(1.0, f0), xycoords="axes fraction", xytext=(1.03, f1), textcoords="axes fraction",
                    fontsize=6.5, va="center", ha="left", color=style(index[n])["color"] if index[n] % 8 != 7
                    else "0.3", annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 0})


def _figure(w: float, h: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _draw(w: float, h: float, draw: Any, ncols: int = 1, margins: Mapping[str, float] | None = None) -> bytes:
    """Create a figure under the report's rc style, let ``draw(fig, axes)`` fill it, return PNG bytes.

    Margins are fixed (``subplots_adjust``) rather than computed by a layout
    engine: several times faster, and the layout cannot shift between runs.
    """
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _figure(w, h)
        fig.subplots_adjust(**{"left": 0.08, "right": 0.98, "bottom": 0.14, "top": 0.9, "wspace": 0.25,
                               **(margins or {})})
        axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
        draw(fig, axes)
        return _png(fig)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def daily_totals(sim: SimulationResult, field: str, start: int, end: int, *, liquidations_only: bool = True
                 ) -> np.ndarray:
    """``(end - start + 1,)`` per-day sum of an event field (0 on days without events).

    ``field`` is a column of the liquidation event records (``bad_debt``,
    ``notional``, ``penalty``...). Days are date indices ``start..end``.
    """
    ev = sim.liquidations if liquidations_only else sim.events
    n = end - start + 1
    if n <= 0:
        raise ValueError(f"end={end} must be >= start={start}")
    t = ev["t"].astype(np.int64) - start
    keep = (t >= 0) & (t < n)
    return np.bincount(t[keep], weights=ev[field][keep].astype(np.float64), minlength=n)


def distance_to_liquidation(sim: SimulationResult, start: int, end: int) -> np.ndarray:
    """``equity / maintenance - 1`` of every open account at every close in ``start..end``.

    Flattened over (date, account) cells where the account is open and its
    maintenance requirement is positive; 0 means at the liquidation line.
    """
    sl = slice(sim.row(start), sim.row(end) + 1)
    eq = sim.equity[sl].astype(np.float64)
    mm = sim.maintenance[sl].astype(np.float64)
    ok = sim.is_open[sl] & np.isfinite(eq) & np.isfinite(mm) & (mm > 0)
    return eq[ok] / mm[ok] - 1.0


def insurance_fund_path(sim: SimulationResult, start: int, end: int) -> pd.DataFrame:
    """Cumulative penalties collected, bad debt and their difference (the fund balance), per date.

    The fund starts at 0 and receives every liquidation penalty; bad debt is
    paid out of it. ``balance = penalties - bad_debt`` (USD).
    """
    pen = np.cumsum(daily_totals(sim, "penalty", start, end))
    bad = np.cumsum(daily_totals(sim, "bad_debt", start, end))
    return pd.DataFrame({"penalties": pen, "bad_debt": bad, "balance": pen - bad},
                        index=sim.dates[start : end + 1])


def shock_grid(
    panel: PricePanel,
    book: Book,
    t: int,
    shocks: Sequence[float],
    leverages: Sequence[float],
    slippage: float = 0.0,
) -> pd.DataFrame:
    """Bad debt of the book under instantaneous price shocks, per perp leverage.

    Method (stated in the report): the book's accounts priced at date ``t``
    (those whose every held asset has a price) keep their USD collateral
    ``c`` and perp notional ``x``; at leverage ``L`` each account's equity is
    ``E = G / L`` with ``G = sum |x|`` its perp notional (cash makes up the
    difference with collateral). Every asset moves by the same relative shock
    ``s`` at once (no time to liquidate in between: a gap), so equity becomes
    ``E' = E + s * sum(c + x)``; the account is closed at the shocked prices
    with slippage ``slippage * (1 + s) * sum(|x| + c)``. Bad debt is
    ``max(0, slippage cost - E')`` summed over accounts, reported as a
    fraction of the total perp notional ``sum G``.

    Returns a leverages x shocks frame (index ``leverage``, columns the shocks).
    """
    shocks_a = np.asarray(shocks, dtype=np.float64)
    lev = np.asarray(leverages, dtype=np.float64)
    if shocks_a.size == 0 or lev.size == 0:
        raise ValueError("shocks and leverages must not be empty")
    if not ((shocks_a > -1) & (shocks_a < 1)).all():
        raise ValueError(f"shocks={list(shocks_a)} must be in (-1, 1)")
    if not (lev > 0).all():
        raise ValueError(f"leverages={list(lev)} must be > 0")
    if not 0 <= slippage < 0.5:
        raise ValueError(f"slippage={slippage} must be in [0, 0.5)")
    b = book.align(panel.assets)
    held = b.held()
    live = np.isfinite(panel.close[t])
    rows = ~(held & ~live[None, :]).any(axis=1) & held.any(axis=1)
    c, x = b.collateral[rows], b.positions[rows]
    G = np.abs(x).sum(axis=1)  # (N,)
    net = (c + x).sum(axis=1)  # (N,) USD delta
    gross_all = (np.abs(x) + c).sum(axis=1)
    total = G.sum()
    E = G[None, :] / lev[:, None]  # (L, N)
    out = np.zeros((lev.size, shocks_a.size))
    for j, s in enumerate(shocks_a):  # a handful of shocks, vectorised over accounts and leverages
        e_after = E + s * net[None, :]
        cost = slippage * (1.0 + s) * gross_all[None, :]
        out[:, j] = np.maximum(cost - e_after, 0.0).sum(axis=1) / total if total > 0 else np.nan
    return pd.DataFrame(out, index=pd.Index(lev, name="leverage"), columns=list(shocks_a))


# ---------------------------------------------------------------------------
# charts
# ---------------------------------------------------------------------------


def margin_over_time_png(frame: pd.DataFrame, windows: Mapping[str, tuple[str, str]]) -> bytes:
    """Margin / gross notional per model over time (dates x models frame), stress windows shaded."""

    def draw(fig: Figure, axes: list[Axes]) -> None:
        ax = axes[0]
        if frame.empty:
            _empty(ax, "no priced dates")
            return
        for i, col in enumerate(frame.columns):
            _line(ax, frame.index, frame[col].to_numpy() * 100, i, str(col))
        lo, hi = frame.index[0], frame.index[-1]
        label_y = ax.get_xaxis_transform()  # x in data, y in axes fraction
        for name, (a, b) in sorted(windows.items(), key=lambda kv: kv[1][0]):
            a_, b_ = pd.Timestamp(a), pd.Timestamp(b)
            if a_ <= hi and b_ >= lo:
                ax.axvspan(max(a_, lo), min(b_, hi), color="0.88", zorder=0, lw=0)
                ax.text(max(a_, lo), 0.02, f" {name}", fontsize=6, va="bottom", ha="right", rotation=90,
                        color="0.25", transform=label_y,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.5})
        ax.set_ylabel("initial margin / gross notional (%)")
        ax.set_title("Margin over time (stress windows shaded)")
        direct_labels(ax, {str(c): _last(frame[c].to_numpy() * 100) for c in frame.columns})

    return _draw(9.0, 4.0, draw, margins={"left": 0.07, "right": 0.8, "bottom": 0.1, "top": 0.93})


def _last(v: np.ndarray) -> float:
    ok = np.flatnonzero(np.isfinite(v))
    return float(v[ok[-1]]) if ok.size else float("nan")


def pareto_png(frame: pd.DataFrame, x: str = "mean_im_per_notional", y: str = "liquidations_per_account_year",
               label: str = "model") -> bytes:
    """Capital (x) against liquidations (y), Pareto front joined (both minimised)."""
    from riskmodels.backtest._testresult import pareto_front

    xs = frame[x].to_numpy(dtype=np.float64)
    ys = frame[y].to_numpy(dtype=np.float64)
    labels = frame[label].astype(str).tolist()
    front = pareto_front(xs, ys)

    def draw(fig: Figure, axes: list[Axes]) -> None:
        ax = axes[0]
        on = np.zeros(len(xs), dtype=bool)
        on[front] = True
        ok = np.isfinite(xs) & np.isfinite(ys)
        for i in range(len(xs)):
            if not ok[i]:
                continue
            st = style(i)
            face = st["color"] if on[i] else "white"
            ax.plot(xs[i] * 100, ys[i], marker=st["marker"], markerfacecolor=face, markeredgecolor=st["color"],
                    markeredgewidth=1.3, markersize=7, linestyle="none")
        if front.size:
            ax.plot(xs[front] * 100, ys[front], color="black", lw=1.0, zorder=0,
                    label="Pareto front (filled markers)")
            ax.legend(loc="upper right", frameon=False)
        ax.margins(x=0.08, y=0.12)
        # labels in a column right of the axes, in the order of the points' heights, joined by leader lines
        fig.canvas.draw()  # fixes the limits the label positions are computed from
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        idx = np.flatnonzero(ok)
        fy = (ys[idx] - y0) / (y1 - y0) if y1 > y0 else np.full(idx.size, 0.5)
        placed = spread(fy, 0.065)
        for j, i in enumerate(idx):
            fx = (xs[i] * 100 - x0) / (x1 - x0) if x1 > x0 else 0.5
            ax.annotate(labels[i], xy=(fx, fy[j]), xycoords="axes fraction", xytext=(1.04, placed[j]),
                        textcoords="axes fraction", fontsize=6.5, va="center", ha="left", annotation_clip=False,
                        arrowprops={"arrowstyle": "-", "color": "0.65", "lw": 0.5, "shrinkA": 0, "shrinkB": 3})
        ax.set_xlabel("mean initial margin / gross notional (%)")
        ax.set_ylabel("liquidations per account-year")
        ax.set_title("Capital vs liquidations (lower-left is better)")

    return _draw(7.2, 3.8, draw, margins={"left": 0.09, "right": 0.7, "bottom": 0.13})


def distance_to_liquidation_png(distances: Mapping[str, np.ndarray], clip: float = 3.0) -> bytes:
    """Step histograms (share of open account-days) of ``equity / maintenance - 1``, one per model.

    Bins of width ``clip / 40`` on ``[0, clip]``: the region near the
    liquidation line; the share of account-days above ``clip`` (accounts
    far from liquidation, e.g. long-running winners) is given in the legend.
    """
    if not clip > 0:
        raise ValueError(f"clip={clip} must be > 0")
    finite = {k: v[np.isfinite(v)] for k, v in distances.items()}
    bins = np.linspace(0.0, clip, 41)

    def draw(fig: Figure, axes: list[Axes]) -> None:
        ax = axes[0]
        if not any(v.size for v in finite.values()):
            _empty(ax, "no open account-days")
            return
        for i, (name, v) in enumerate(finite.items()):
            if not v.size:
                continue
            h, _ = np.histogram(np.clip(v, 0.0, None), bins=bins)
            above = float(np.mean(v > clip))
            st = style(i)
            ax.stairs(h / v.size * 100, bins, color=st["color"], linestyle=st["linestyle"], lw=1.3,
                      label=f"{name} ({above:.0%} above {clip:g})")
            centres = 0.5 * (bins[:-1] + bins[1:])
            ax.plot(centres[i % 4::4], (h / v.size * 100)[i % 4::4], linestyle="none", marker=st["marker"],
                    markersize=3.5, color=st["color"])
        ax.set_xlabel("equity / maintenance margin - 1 at the close (0 = liquidation line)")
        ax.set_ylabel("share of open account-days (%)")
        ax.set_title("Distance to liquidation")
        ax.legend(loc="upper right", frameon=False)

    return _draw(6.0, 3.6, draw, margins={"left": 0.1, "bottom": 0.14})


def insurance_fund_png(paths: Mapping[str, pd.DataFrame]) -> bytes:
    """Left: cumulative penalties collected; right: cumulative bad debt (USD millions), per model."""

    def draw(fig: Figure, axes: list[Axes]) -> None:
        for k, (col, title) in enumerate((("penalties", "Penalties collected (cumulative)"),
                                          ("bad_debt", "Bad debt (cumulative)"))):
            ax = axes[k]
            for i, (name, df) in enumerate(paths.items()):
                _line(ax, df.index, df[col].to_numpy() / 1e6, i, name)
            ax.set_title(title)
            ax.set_ylabel("USD millions")
            ax.tick_params(axis="x", labelrotation=30)
            direct_labels(ax, {name: _last(df[col].to_numpy() / 1e6) for name, df in paths.items()}, gap=0.07)
        fig.suptitle("Insurance fund: penalties in, bad debt out", fontsize=9)

    return _draw(10.0, 3.8, draw, ncols=2, margins={"left": 0.06, "right": 0.86, "bottom": 0.18, "top": 0.86,
                                                   "wspace": 0.62})


def shock_heatmap_png(grid: pd.DataFrame, marks: Mapping[str, float] | None = None) -> bytes:
    """Heatmap of bad debt (% of perp notional), leverage (rows) x shock (columns), values printed.

    ``marks`` draws a labelled horizontal line at a leverage (e.g. each
    model's implied maximum leverage).
    """
    vals = grid.to_numpy(dtype=np.float64) * 100
    lev = grid.index.to_numpy(dtype=np.float64)
    shocks = np.asarray(grid.columns, dtype=np.float64)

    def draw(fig: Figure, axes: list[Axes]) -> None:
        ax = axes[0]
        ax.grid(False)
        vmax = max(float(np.nanmax(vals)) if vals.size else 0.0, 1e-9)
        im = ax.imshow(vals, cmap="Greys", vmin=0.0, vmax=vmax, aspect="auto", origin="lower")
        for r in range(vals.shape[0]):
            for c in range(vals.shape[1]):
                v = vals[r, c]
                ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=6,
                        color="white" if v > 0.55 * vmax else "black")
        ax.set_xticks(range(len(shocks)), [f"{s:+.0%}" for s in shocks])
        ax.set_yticks(range(len(lev)), [f"{v:g}x" for v in lev])
        ax.set_xlabel("instantaneous shock to every price")
        ax.set_ylabel("perp leverage (notional / equity)")
        ax.set_title("Bad debt, % of perp notional")
        for i, (name, L) in enumerate(sorted((marks or {}).items(), key=lambda kv: (kv[1], kv[0]))):
            if not np.isfinite(L) or L <= 0:
                continue
            y = float(np.interp(np.log(L), np.log(lev), np.arange(len(lev)))) if len(lev) > 1 else 0.0
            ax.axhline(y, color="black", linestyle=LINESTYLES[i % len(LINESTYLES)], lw=1.0,
                       label=f"{name}: implied max leverage {L:.1f}x")
        if marks:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        fig.colorbar(im, ax=ax, label="% of perp notional")

    return _draw(8.0, 4.4, draw, margins={"left": 0.09, "right": 1.0, "bottom": 0.3, "top": 0.93})


def tornado_png(frame: pd.DataFrame, base: float, metric: str) -> bytes:
    """Tornado chart: for each factor a bar from the metric at its low to its high value.

    ``frame`` has columns ``factor, low, high, metric_low, metric_high``,
    drawn top-down in the given order (sort by swing before calling).
    """

    def draw(fig: Figure, axes: list[Axes]) -> None:
        ax = axes[0]
        if frame.empty:
            _empty(ax, "no sensitivity run")
            return
        n = len(frame)
        ys = np.arange(n)[::-1]
        for y, row in zip(ys, frame.itertuples(index=False), strict=True):
            lo, hi = float(row.metric_low), float(row.metric_high)
            ax.barh(y, lo - base, left=base, color="0.8", edgecolor="black", lw=0.6, height=0.6)
            ax.barh(y, hi - base, left=base, color="0.35", edgecolor="black", lw=0.6, height=0.6, hatch="//")
            if lo == base and hi == base:
                ax.text(base, y, f" no change ({_short(row.low)} / {_short(row.high)})", ha="left", va="center",
                        fontsize=6)
                continue
            for m, v in ((lo, row.low), (hi, row.high)):
                right = m >= base
                ax.text(m, y, f" {_short(v)} " if right else f"{_short(v)} ", ha="left" if right else "right",
                        va="center", fontsize=6)
        ax.axvline(base, color="black", lw=1.0)
        ax.set_yticks(ys, [str(f) for f in frame["factor"]])
        ax.set_xlabel(metric)
        ax.set_title("Sensitivity (light: low value, dark hatched: high value)")
        span = (frame[["metric_low", "metric_high"]].to_numpy(dtype=np.float64) - base)
        w = float(np.nanmax(np.abs(span))) if span.size else 1.0
        w = w if np.isfinite(w) and w > 0 else max(abs(base) * 0.1, 1e-6)
        ax.set_xlim(base - 1.35 * w, base + 1.35 * w)

    h = 0.45 * max(len(frame), 1) + 1.3
    return _draw(7.0, h, draw, margins={"left": 0.22, "right": 0.97, "bottom": 0.5 / h, "top": 1 - 0.35 / h})


def _short(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):g}"
    return str(v)

