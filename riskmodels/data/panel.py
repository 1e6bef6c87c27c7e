"""The price panel: dates x assets arrays of open/high/low/close/volume.

Everything downstream of the loaders (margin models, backtests, statistics)
reads prices through a :class:`PricePanel`. Arrays have shape ``(T, A)`` with
``T`` dates (sorted, unique, UTC calendar days for daily data) and ``A`` assets.

Ragged start rule
-----------------
An asset enters the panel on its first clean date: before that date every
field is NaN. An asset that has left the sample (e.g. a delisted token) is NaN
after its last date. Inside its live range an asset has no NaN: the loaders
refuse (or, under an explicit policy, truncate) series with holes, so a NaN in
the middle of a live range never reaches a model. Models see an asset only
once it has ``min_history`` returns (:meth:`PricePanel.eligible`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, eq=False)
class PricePanel:
    """Dates x assets OHLCV arrays.

    Parameters
    ----------
    dates : pandas.DatetimeIndex
        ``T`` sorted, unique timestamps (naive UTC).
    assets : tuple of str
        ``A`` asset symbols.
    open, high, low, close, volume : numpy.ndarray
        ``(T, A)`` float64 arrays; NaN where the asset is not live.
    quality : object, optional
        The :class:`~riskmodels.data.validate.QualityReport` of the files the
        panel was built from (kept for reports).
    sources : dict, optional
        ``asset -> sha256`` of the source file, for the report's
        reproducibility section.
    """

    dates: pd.DatetimeIndex
    assets: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quality: object | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dates = pd.DatetimeIndex(self.dates)
        object.__setattr__(self, "dates", dates)
        object.__setattr__(self, "assets", tuple(str(a) for a in self.assets))
        shape = (len(dates), len(self.assets))
        for name in FIELDS:
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(
                    f"PricePanel.{name} has shape {arr.shape}, expected (dates, assets) = {shape}"
                )
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if len(set(self.assets)) != len(self.assets):
            raise ValueError(f"PricePanel assets are not unique: {self.assets}")
        if not dates.is_monotonic_increasing or dates.has_duplicates:
            raise ValueError("PricePanel dates must be sorted and unique")
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(self.close) & (self.close <= 0)
        if bad.any():
            t, a = np.argwhere(bad)[0]
            raise ValueError(
                f"PricePanel: non-positive close for {self.assets[a]} on {dates[t].date()}; "
                "validate the files first (riskmodels data validate DIR)"
            )

    # ------------------------------------------------------------------ shape
    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_assets(self) -> int:
        return len(self.assets)

    def asset_index(self, assets: Sequence[str]) -> np.ndarray:
        """Column positions of ``assets``; unknown symbols raise ``KeyError``."""
        pos = {a: i for i, a in enumerate(self.assets)}
        missing = [a for a in assets if a not in pos]
        if missing:
            raise KeyError(f"assets not in the panel: {missing}; the panel has {list(self.assets)}")
        return np.array([pos[a] for a in assets], dtype=np.intp)

    def date_index(self, date: str | pd.Timestamp, side: Literal["left", "right"] = "left") -> int:
        """Position of the first date >= ``date`` (``side='left'``) or > (``'right'``)."""
        return int(self.dates.searchsorted(pd.Timestamp(date), side=side))

    # --------------------------------------------------------------- derived
    @property
    def live(self) -> np.ndarray:
        """``(T, A)`` bool: the asset has a price on that date."""
        return np.isfinite(self.close)

    def history_length(self) -> np.ndarray:
        """``(T, A)`` int: number of 1-day returns observed up to and including t."""
        r = np.isfinite(self.returns(1))
        return np.cumsum(r, axis=0)

    def eligible(self, min_history: int) -> np.ndarray:
        """``(T, A)`` bool: live at t with at least ``min_history`` 1-day returns up to t."""
        if min_history < 0:
            raise ValueError(f"min_history must be >= 0, got {min_history}")
        return self.live & (self.history_length() >= min_history)

    def returns(self, h: int = 1, kind: Literal["log", "simple"] = "log") -> np.ndarray:
        """Backward-looking h-day returns, ``(T, A)``.

        ``r[t] = ln(C[t] / C[t-h])`` (log) or ``C[t] / C[t-h] - 1`` (simple);
        the first ``h`` rows, and rows where either price is missing, are NaN.
        Row t uses only prices up to t.
        """
        if int(h) != h or h < 1:
            raise ValueError(f"h must be a positive whole number of days, got {h}")
        h = int(h)
        c = self.close
        out = np.full_like(c, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = c[h:] / c[:-h]
            out[h:] = np.log(ratio) if kind == "log" else ratio - 1.0
        if kind not in ("log", "simple"):
            raise ValueError(f"kind must be 'log' or 'simple', got {kind!r}")
        return out

    def forward_returns(self, h: int = 1, kind: Literal["log", "simple"] = "simple") -> np.ndarray:
        """Realised returns from t to t+h, ``(T, A)``; the last ``h`` rows are NaN.

        Only the backtest's scoring uses these: no margin model may.
        """
        back = self.returns(h, kind)
        out = np.full_like(back, np.nan)
        out[:-h] = back[h:]
        return out

    # ------------------------------------------------------------- selection
    def select(self, assets: Sequence[str]) -> PricePanel:
        """A panel with only ``assets`` (in that order)."""
        idx = self.asset_index(list(assets))
        return PricePanel(
            self.dates,
            tuple(self.assets[i] for i in idx),
            *(getattr(self, f)[:, idx] for f in FIELDS),
            quality=self.quality,
            sources={a: s for a, s in self.sources.items() if a in set(assets)},
        )

    def loc(self, start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None) -> PricePanel:
        """A panel restricted to ``start <= date <= end`` (both inclusive)."""
        i0 = 0 if start is None else self.date_index(start)
        i1 = self.n_dates if end is None else self.date_index(end, side="right")
        return PricePanel(
            self.dates[i0:i1],
            self.assets,
            *(getattr(self, f)[i0:i1] for f in FIELDS),
            quality=self.quality,
            sources=dict(self.sources),
        )

    def with_close(self, close: np.ndarray) -> PricePanel:
        """A copy with other closes (open/high/low scaled by the same ratio).

        Used by tests that perturb prices (look-ahead checks, stress scenarios).
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.asarray(close, dtype=np.float64) / self.close
        return PricePanel(
            self.dates,
            self.assets,
            self.open * ratio,
            self.high * ratio,
            self.low * ratio,
            np.asarray(close, dtype=np.float64),
            self.volume,
            quality=self.quality,
            sources=dict(self.sources),
        )

    def frame(self, field_name: str = "close") -> pd.DataFrame:
        """One field as a dates x assets DataFrame."""
        if field_name not in FIELDS:
            raise ValueError(f"field must be one of {FIELDS}, got {field_name!r}")
        return pd.DataFrame(getattr(self, field_name), index=self.dates, columns=list(self.assets))

    def fingerprint(self) -> str:
        """sha256 over dates, assets and all five fields (NaN-stable)."""
        h = hashlib.sha256()
        h.update(np.asarray(self.dates.asi8).tobytes())
        h.update("|".join(self.assets).encode())
        for f in FIELDS:
            h.update(np.nan_to_num(getattr(self, f), nan=-1.0).tobytes())
        return h.hexdigest()

    @classmethod
    def from_frames(cls, frames: dict[str, pd.DataFrame], **kwargs: object) -> PricePanel:
        """Build from ``{asset: DataFrame}`` with a DatetimeIndex and OHLCV columns.

        Dates are the union of all frames' dates; an asset is NaN where it has
        no row. Frames must already be validated (sorted, unique dates).
        """
        if not frames:
            raise ValueError("no assets given: from_frames needs at least one frame")
        index = frames[next(iter(frames))].index
        for df in frames.values():
            index = index.union(df.index)
        arrays = {f: np.full((len(index), len(frames)), np.nan) for f in FIELDS}
        for j, df in enumerate(frames.values()):
            rows = index.get_indexer(df.index)
            for f in FIELDS:
                arrays[f][rows, j] = df[f].to_numpy(dtype=np.float64)
        return cls(index, tuple(frames), *(arrays[f] for f in FIELDS), **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        if self.n_dates == 0:
            return f"PricePanel(0 dates, {self.n_assets} assets)"
        return (
            f"PricePanel({self.n_dates} dates {self.dates[0].date()}..{self.dates[-1].date()}, "
            f"{self.n_assets} assets: {' '.join(self.assets)})"
        )
