"""Result objects shared by the backtest statistics: tests and tables.

* :class:`TestResult` -- one statistical test (statistic, p-value, critical
  values, null hypothesis, verdict at a level), frozen, printable, HTML in
  notebooks, ``to_dict()`` for JSON/Parquet.
* :class:`Table` -- a small rendered table (text, HTML, Markdown) over a
  :class:`pandas.DataFrame`; :class:`ComparisonTable` adds sorting and is what
  the models x metrics summary uses.
* :func:`pareto_front` / :func:`pareto_chart` -- the non-dominated models when
  both axes are minimised (e.g. mean margin vs liquidations per account-year).

Markdown is rendered here (no ``tabulate`` dependency); HTML uses
:meth:`pandas.DataFrame.to_html` (no ``jinja2`` needed).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ComparisonTable",
    "Table",
    "TestResult",
    "comparison_table",
    "format_value",
    "pareto_chart",
    "pareto_front",
]


def format_value(v: Any, digits: int = 4) -> str:
    """Human format: floats with ``digits`` significant digits, NaN as ``-``."""
    if v is None or v is pd.NaT:
        return "-"
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isnan(f):
            return "-"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f != 0 and (abs(f) >= 1e7 or abs(f) < 1e-4):
            return f"{f:.{digits - 1}e}"
        if abs(f) >= 10 ** digits:
            return f"{f:,.0f}"
        return f"{f:.{digits}g}"
    if isinstance(v, pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(v).date())
    return str(v)


@dataclass(frozen=True, kw_only=True)
class TestResult:
    """Outcome of one statistical test.

    Attributes
    ----------
    name : str
        Test name, e.g. ``"Kupiec POF"``.
    stat : float
        Test statistic.
    pvalue : float
        p-value (NaN when the test is undefined, e.g. no valid observation).
    critical_values : Mapping[float, float]
        ``{significance level: critical value}``; for right-tailed tests reject
        when ``stat > critical``, for left-tailed (``tail="left"``) when
        ``stat < critical``.
    null : str
        The null hypothesis in words.
    n_obs, n_exceptions : int
        Valid observations and exceptions used.
    level : float
        Significance level used by :attr:`reject` (default 0.05).
    tail : str
        ``"right"`` (likelihood-ratio tests) or ``"left"`` (Z2).
    details : Mapping[str, Any]
        Extra numbers (transition counts, estimated rates, ...).
    """

    __test__ = False  # not a pytest test class

    name: str
    stat: float
    pvalue: float
    critical_values: Mapping[float, float]
    null: str
    n_obs: int
    n_exceptions: int
    level: float = 0.05
    tail: str = "right"
    details: Mapping[str, Any] = field(default_factory=dict)

    def verdict(self, level: float | None = None) -> str:
        """``"reject"`` if ``pvalue < level`` else ``"accept"``; ``"n/a"`` if the p-value is NaN."""
        lv = self.level if level is None else float(level)
        if not 0.0 < lv < 1.0:
            raise ValueError(f"level={level!r} is outside its valid range (0, 1)")
        if self.pvalue is None or math.isnan(self.pvalue):
            return "n/a"
        return "reject" if self.pvalue < lv else "accept"

    @property
    def reject(self) -> bool:
        """True when the null is rejected at :attr:`level`."""
        return self.verdict() == "reject"

    def to_dict(self) -> dict[str, Any]:
        """Plain-python dictionary (JSON friendly)."""
        out: dict[str, Any] = {
            "name": self.name,
            "stat": float(self.stat),
            "pvalue": float(self.pvalue),
            "critical_values": {float(k): float(v) for k, v in self.critical_values.items()},
            "null": self.null,
            "n_obs": int(self.n_obs),
            "n_exceptions": int(self.n_exceptions),
            "level": float(self.level),
            "tail": self.tail,
            "verdict": self.verdict(),
        }
        out.update({f"details.{k}": _plain(v) for k, v in self.details.items()})
        return out

    def _lines(self) -> list[tuple[str, str]]:
        crit = ", ".join(f"{k:g}: {format_value(v)}" for k, v in sorted(self.critical_values.items()))
        rows = [
            ("statistic", format_value(self.stat)),
            ("p-value", format_value(self.pvalue)),
            ("critical values", crit or "-"),
            ("observations", str(self.n_obs)),
            ("exceptions", str(self.n_exceptions)),
            ("H0", self.null),
            (f"verdict at {self.level:g}", self.verdict()),
        ]
        rows += [(str(k), format_value(v)) for k, v in self.details.items() if np.ndim(v) == 0]
        return rows

    def __str__(self) -> str:
        rows = self._lines()
        w = max(len(k) for k, _ in rows)
        return "\n".join([self.name, "-" * len(self.name)] + [f"{k:<{w}}  {v}" for k, v in rows])

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._lines()
        )
        return f"<table><caption>{html.escape(self.name)}</caption>{body}</table>"


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------


class Table:
    """A rendered table over a DataFrame: ``to_frame``, ``__str__``, ``to_html``, ``to_markdown``."""

    title: str = ""

    def __init__(
        self,
        frame: pd.DataFrame,
        title: str = "",
        notes: Sequence[str] = (),
        formats: Mapping[str, str] | None = None,
    ) -> None:
        self._frame = frame.reset_index(drop=True)
        self.title = title
        self.notes = tuple(notes)
        #: optional ``{column: "{:.2%}"}`` display formats or callables (numbers stay raw in ``to_frame``);
        #: columns without one use the unit their name declares (:mod:`riskmodels.units`)
        self.formats = dict(formats or {})

    def to_frame(self) -> pd.DataFrame:
        """A copy of the underlying data (numbers unformatted)."""
        return self._frame.copy()

    def __len__(self) -> int:
        return len(self._frame)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self._frame.columns]

    def _formatted(self) -> list[list[str]]:
        from riskmodels.units import unit_formatter

        # an explicit format wins; else the unit the column name declares (riskmodels.units)
        fmts = [self.formats.get(c) or unit_formatter(c) for c in self.columns]

        def cell(v: Any, fmt: Any) -> str:
            if fmt is None or isinstance(v, str | bool | np.bool_) or v is None or (
                    isinstance(v, float) and math.isnan(v)):
                return format_value(v)
            try:
                return fmt(v) if callable(fmt) else fmt.format(v)
            except (TypeError, ValueError):
                return format_value(v)

        return [[cell(v, f) for v, f in zip(row, fmts, strict=True)] for row in self._frame.itertuples(index=False)]

    def __str__(self) -> str:
        cols = self.columns
        cells = self._formatted()
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]

        def line(vals: Sequence[str]) -> str:
            return "  ".join(
                v.ljust(w) if j == 0 or not _numeric_col(self._frame.iloc[:, j]) else v.rjust(w)
                for j, (v, w) in enumerate(zip(vals, widths, strict=True))
            ).rstrip()

        out = [self.title] if self.title else []
        out += [line(cols), line(["-" * w for w in widths])]
        out += [line(r) for r in cells]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self)} rows x {len(self.columns)} columns>\n{self}"

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown table (numbers right-aligned)."""
        cols = self.columns
        esc = [c.replace("|", "\\|") for c in cols]
        align = ["---:" if _numeric_col(self._frame.iloc[:, j]) else "---" for j in range(len(cols))]
        out = [f"**{self.title}**", ""] if self.title else []
        out += ["| " + " | ".join(esc) + " |", "|" + "|".join(align) + "|"]
        out += ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in self._formatted()]
        if self.notes:
            out += [""] + [f"*{n}*" for n in self.notes]
        return "\n".join(out)

    def to_html(self) -> str:
        """HTML table (formatted numbers) with the title as caption."""
        shown = pd.DataFrame(self._formatted(), columns=self.columns)
        tab = shown.to_html(index=False, border=0, classes="riskmodels-table", escape=True)
        if self.title:
            tab = tab.replace(">", f"><caption>{html.escape(self.title)}</caption>", 1)
        notes = "".join(f"<p><small>{html.escape(n)}</small></p>" for n in self.notes)
        return tab + notes

    def _repr_html_(self) -> str:
        return self.to_html()


def _numeric_col(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


class ComparisonTable(Table):
    """Models x metrics table, sortable; see :func:`comparison_table`."""

    def sort(self, by: str | Sequence[str], ascending: bool | Sequence[bool] = True) -> ComparisonTable:
        """A new table sorted by column(s) ``by``; NaN last. Unknown columns raise."""
        keys = [by] if isinstance(by, str) else list(by)
        missing = [k for k in keys if k not in self._frame.columns]
        if missing:
            raise KeyError(f"by={missing!r}: unknown column(s); valid columns are {self.columns}")
        frame = self._frame.sort_values(keys, ascending=ascending, na_position="last", kind="mergesort")
        return ComparisonTable(frame, title=self.title, notes=self.notes, formats=self.formats)

    def column(self, name: str) -> np.ndarray:
        """One column as a numpy array."""
        if name not in self._frame.columns:
            raise KeyError(f"{name!r}: unknown column; valid columns are {self.columns}")
        return self._frame[name].to_numpy()


def comparison_table(
    rows: Iterable[Mapping[str, Any]], title: str = "", notes: Sequence[str] = ()
) -> ComparisonTable:
    """Build a :class:`ComparisonTable` from one dict per model.

    Columns are the union of the keys in first-seen order; a key missing from a
    row is NaN. Typical use: ``{"model": ..., "mean_margin": ...,
    "liquidations_per_account_year": ..., "kupiec_verdict": ..., "peak_to_trough": ...}``.
    """
    rows = [dict(r) for r in rows]
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    frame = pd.DataFrame([{c: r.get(c, np.nan) for c in cols} for r in rows], columns=cols)
    return ComparisonTable(frame, title=title, notes=notes)


# ---------------------------------------------------------------------------
# Pareto front
# ---------------------------------------------------------------------------


def pareto_front(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points when both ``x`` and ``y`` are minimised.

    Point ``i`` is dominated when some ``j`` has ``x_j <= x_i`` and
    ``y_j <= y_i`` with at least one strict inequality. Identical points do not
    dominate each other (both are kept). Points with a NaN coordinate are never
    on the front. Returned indices are sorted by ``x`` then ``y``.

    Vectorised sweep after a lexicographic sort: O(n log n).
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same length, got {xa.size} and {ya.size}")
    ok = np.flatnonzero(~(np.isnan(xa) | np.isnan(ya)))
    if ok.size == 0:
        return np.zeros(0, dtype=np.intp)
    order = ok[np.lexsort((ya[ok], xa[ok]))]
    xs, ys = xa[order], ya[order]
    new_group = np.r_[True, xs[1:] != xs[:-1]]  # groups of equal x, y ascending inside
    gid = np.cumsum(new_group) - 1
    gmin = ys[new_group]  # smallest y of each x-group
    best_before = np.r_[np.inf, np.minimum.accumulate(gmin)[:-1]]  # min y at strictly smaller x
    keep = (ys == gmin[gid]) & (gmin[gid] < best_before[gid])
    return order[keep].astype(np.intp)


def pareto_chart(
    table: ComparisonTable | pd.DataFrame,
    x: str,
    y: str,
    path: str | Path,
    label: str = "model",
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Path:
    """Scatter of ``y`` against ``x`` with the Pareto front (both minimised), saved to ``path``.

    Greyscale readable: every point has its own marker shape and a text label;
    the front is joined by a solid black line and its points are filled,
    dominated points are hollow grey. Uses the Agg canvas directly (no pyplot
    global state), so it is safe in tests and worker processes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = table.to_frame() if isinstance(table, Table) else pd.DataFrame(table)
    for c in (x, y):
        if c not in frame.columns:
            raise KeyError(f"{c!r}: unknown column; valid columns are {list(frame.columns)}")
    xs = frame[x].to_numpy(dtype=np.float64)
    ys = frame[y].to_numpy(dtype=np.float64)
    labels = frame[label].astype(str).tolist() if label in frame.columns else [str(i) for i in range(len(frame))]
    front = pareto_front(xs, ys)
    on_front = np.zeros(len(xs), dtype=bool)
    on_front[front] = True

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    markers = "osD^vP*XhP<>"
    for i in range(len(xs)):
        if np.isnan(xs[i]) or np.isnan(ys[i]):
            continue
        m = markers[i % len(markers)]
        if on_front[i]:
            ax.plot(xs[i], ys[i], marker=m, color="black", markersize=8, linestyle="none")
        else:
            ax.plot(xs[i], ys[i], marker=m, markerfacecolor="white", markeredgecolor="0.45",
                    markersize=8, linestyle="none")
        ax.annotate(labels[i], (xs[i], ys[i]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    if front.size:
        ax.plot(xs[front], ys[front], color="black", linewidth=1.2, label="Pareto front (lower is better)")
        ax.legend(loc="best", fontsize=8, frameon=False)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title or f"{y} vs {x}")
    ax.grid(True, color="0.85", linewidth=0.5)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    return out
