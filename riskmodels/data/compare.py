"""Compare two sources of the same assets: which bar stamp convention, how far apart.

``riskmodels data validate DIR --against OTHER_DIR`` answers two questions a user has
before trusting a new source:

* **Are the bars stamped the same way?** Most sources stamp a daily bar with the day it
  opens (Binance's open time, the shared data), some with the day it closes, so the
  close of day D appears on D+1. For each lag ``k`` in ``-max_lag..max_lag`` (bars),
  the closes are paired as ``A[t]`` with ``B[t + k]`` over the common stamps, and the
  lag with the smallest median disagreement is the *best lag*. ``best_lag = +1`` means
  OTHER stamps each close one bar later than DIR (end-of-day stamps against
  start-of-day stamps); ``0`` means the same convention.
* **How much do the prices disagree?** At the best lag: the median and the largest
  absolute relative difference ``|C_B / C_A - 1|`` (in percent) and the date of the
  largest, plus the median at lag 0 for contrast.

Only the closes of assets present in both sources, positive and finite, are compared;
an asset with fewer than ``min_overlap`` pairs at every lag is reported as such. The
files are read raw (no validation policy): defects do not hide the comparison.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SourceComparison", "compare_closes", "compare_sources"]

COLUMNS = ("asset", "overlap", "best_lag", "median_pct", "max_pct", "max_on",
           "median_pct_lag0", "verdict")


def _closes(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.Series]:
    out = {}
    for a, df in frames.items():
        s = pd.Series(df["close"].to_numpy(dtype=np.float64), index=pd.DatetimeIndex(df.index))
        s = s[~s.index.duplicated(keep="first")].sort_index()
        with np.errstate(invalid="ignore"):
            s = s[np.isfinite(s.to_numpy()) & (s.to_numpy() > 0)]
        out[str(a)] = s
    return out


def compare_closes(a: pd.Series, b: pd.Series, step: pd.Timedelta, max_lag: int = 3,
                   min_overlap: int = 20) -> dict[str, object]:
    """One asset's row: best lag, overlap, median/max |C_B/C_A - 1| (%) at it, lag-0 median.

    ``a`` and ``b`` are sorted closes indexed by timestamp.
    """
    stats: dict[int, tuple[int, float, float, pd.Timestamp | None]] = {}
    for k in range(-max_lag, max_lag + 1):
        shifted = pd.Series(b.to_numpy(), index=b.index - k * step)  # B[t + k] on stamp t
        joined = pd.concat([a.rename("a"), shifted.rename("b")], axis=1, join="inner")
        if len(joined) < min_overlap:
            continue
        rel = np.abs(joined["b"].to_numpy() / joined["a"].to_numpy() - 1.0) * 100.0
        i = int(np.argmax(rel))
        stats[k] = (len(joined), float(np.median(rel)), float(rel[i]), joined.index[i])
    if not stats:
        return {"overlap": 0, "best_lag": None, "median_pct": np.nan, "max_pct": np.nan,
                "max_on": None, "median_pct_lag0": np.nan,
                "verdict": f"fewer than {min_overlap} common bars at every lag"}
    best = min(stats, key=lambda k: (stats[k][1], abs(k)))
    n, med, mx, on = stats[best]
    med0 = stats[0][1] if 0 in stats else np.nan
    if best == 0:
        verdict = "same stamps"
    elif best > 0:
        verdict = (f"OTHER stamps each close {best} bar(s) later (e.g. close of day D on "
                   f"D+{best}: end-of-bar stamps)")
    else:
        verdict = f"OTHER stamps each close {-best} bar(s) earlier"
    return {"overlap": n, "best_lag": best, "median_pct": med, "max_pct": mx, "max_on": on,
            "median_pct_lag0": med0, "verdict": verdict}


@dataclass
class SourceComparison:
    """The per-asset comparison of two sources (:func:`compare_sources`)."""

    table: pd.DataFrame
    source: str
    other: str
    only_source: list[str]
    only_other: list[str]

    def __str__(self) -> str:
        head = f"closes of {self.source} compared with {self.other} (OTHER)"
        if self.table.empty:
            return head + ": no asset in common"
        t = self.table.copy()
        for c in ("median_pct", "max_pct", "median_pct_lag0"):
            t[c] = t[c].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}")
        t["max_on"] = t["max_on"].map(lambda v: "-" if v is None or pd.isna(v) else str(pd.Timestamp(v).date()))
        lines = [head, t.to_string(index=False)]
        if self.only_source:
            lines.append(f"only in {self.source}: {', '.join(self.only_source)}")
        if self.only_other:
            lines.append(f"only in {self.other}: {', '.join(self.only_other)}")
        return "\n".join(lines)


def compare_sources(source: str | os.PathLike[str], other: str | os.PathLike[str], *,
                    interval: str = "1d", max_lag: int = 3, min_overlap: int = 20,
                    **options: object) -> SourceComparison:
    """Compare the closes of the assets two folders share (module docstring).

    ``options`` (``columns``, ``symbols``, ``name_pattern``, ``max_bytes``) apply to both.
    """
    from riskmodels.data.loaders import load_files
    from riskmodels.data.validate import interval_step

    if not (isinstance(max_lag, int) and 0 <= max_lag <= 30):
        raise ValueError(f"max_lag must be a whole number of bars in [0, 30], got {max_lag!r}")
    step = interval_step(interval)
    ca = _closes(load_files(source, interval=interval, **options))  # type: ignore[arg-type]
    cb = _closes(load_files(other, interval=interval, **options))  # type: ignore[arg-type]
    rows = []
    for asset in (a for a in ca if a in cb):
        rows.append({"asset": asset, **compare_closes(ca[asset], cb[asset], step, max_lag,
                                                      min_overlap)})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return SourceComparison(table, str(source), str(other), [a for a in ca if a not in cb],
                            [a for a in cb if a not in ca])
