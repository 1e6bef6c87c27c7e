"""Scenario tables, instrument revaluation, risk arrays and price scan ranges.

The building blocks of the SPAN-like scenario-grid margin
(:mod:`riskmodels.margin.span`); facts from METHODOLOGY.md sections 1.1 and 2.1.

Scenario table
--------------
A table of ``S`` scenarios holds, per scenario, a price move in multiples of
the asset's price scan range (``scaled``), an absolute price move added on
top (``absolute``, used by Deribit's extended table), a volatility move in
units of the volatility scan range (``vol``: +1 up, 0 same, -1 down), the
fraction of the loss counted (``weight``), the index of its *paired*
scenario (same price move, opposite vol move; an unpaired scenario is its own
pair) and which scenarios have no price move (``time``: their mean loss is
SPAN's "time risk").

CME SPAN's 16 scenarios (METHODOLOGY 1.1; NSE/textbook table, CME
"Risk Scenarios" report)::

    #   1  2  3  4  5  6  7  8  9 10 11 12 13 14  15  16
    px  0  0 +1 +1 -1 -1 +2 +2 -2 -2 +3 +3 -3 -3  +X  -X   (x PSR/3; X = multiplier x 3)
    vol +  -  +  -  +  -  +  -  +  -  +  -  +  -   0   0
    w   1  1  1  1  1  1  1  1  1  1  1  1  1  1   c   c   (c = extreme cover)

Risk arrays
-----------
``RA[a, s]`` is the loss (positive) of **one USD of exposure** to asset
``a`` under scenario ``s``, already multiplied by the scenario's weight:
``RA[a, s] = weight[s] * L_instr(move[a, s], vol[s])`` with
``move[a, s] = scaled[s] * range[a] + absolute[s]`` a simple return. The
Book holds USD amounts, so the SPAN "one long unit" is one USD here. Each
instrument type is revalued by one function in :data:`REVALUERS`; spot
collateral and linear perps are both ``L(m, v) = -m`` (no volatility
effect), and an option revaluer can be added without touching the scan.

Price scan ranges (calibrated)
------------------------------
``PSR[t, a] = max(floor, expm1(Q_q(|ln(C[s] / C[s-h])|, s in (t-L, t])))``:
the ``q`` quantile (numpy's default linear interpolation) of absolute
``h``-day log returns whose end date lies in the last ``L`` rows up to and
including t, converted to a simple return with ``expm1`` (the up-move size,
the larger of the two), floored. NSE's SPAN uses a volatility multiple
instead (``6 sigma sqrt 2``, floored; METHODOLOGY 1.1); the empirical
quantile is the usual CCP calibration of a margin interval. A scan range is
recalibrated only on the dates of a schedule and held fixed in between
(:func:`recalibration_mask`), which is what makes procyclicality studies
possible (a daily schedule is the most procyclical).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Schedule = Literal["daily", "weekly", "monthly", "quarterly"]
SCHEDULES: tuple[str, ...] = ("daily", "weekly", "monthly", "quarterly")


# ---------------------------------------------------------------- scenarios
@dataclass(frozen=True, eq=False)
class ScenarioTable:
    """A grid of ``S`` price/volatility scenarios (see module docstring)."""

    scaled: np.ndarray
    absolute: np.ndarray
    vol: np.ndarray
    weight: np.ndarray
    pair: np.ndarray
    time: np.ndarray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        S = len(self.labels)
        for name in ("scaled", "absolute", "vol", "weight"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (S,):
                raise ValueError(f"ScenarioTable.{name} must have {S} values, got shape {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        pair = np.asarray(self.pair, dtype=np.intp)
        time = np.asarray(self.time, dtype=np.intp)
        if pair.shape != (S,) or np.any((pair < 0) | (pair >= S)):
            raise ValueError(f"ScenarioTable.pair must be {S} indices in [0, {S - 1}]")
        if time.size == 0 or np.any((time < 0) | (time >= S)):
            raise ValueError(f"ScenarioTable.time must be non-empty indices in [0, {S - 1}]")
        if np.any((self.weight < 0) | (self.weight > 1)):
            raise ValueError("ScenarioTable.weight (fraction of loss counted) must be in [0, 1]")
        object.__setattr__(self, "pair", pair)
        object.__setattr__(self, "time", time)

    @property
    def n(self) -> int:
        return len(self.labels)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "scaled": self.scaled,
                "absolute": self.absolute,
                "vol": self.vol,
                "weight": self.weight,
                "pair": self.pair,
            },
            index=pd.Index(self.labels, name="scenario"),
        )


def span_table(extreme_multiplier: float = 3.0, extreme_cover: float = 0.33) -> ScenarioTable:
    """CME SPAN's 16 scenarios (METHODOLOGY 1.1).

    Scenarios 1-14: price 0, +-1/3, +-2/3, +-3/3 of the PSR, each with vol up
    then down (pairs 1/2, 3/4, ...). Scenarios 15/16: +- ``extreme_multiplier``
    x PSR, vol unchanged, counted at ``extreme_cover`` (unpaired). Defaults 3
    and 0.33 are current CME (advisory 08-303); the classic/NSE/McMillan
    values are 2 and 0.35.
    """
    fr = [0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1]
    vol = [1, -1] * 7 + [0, 0]
    scaled = [*fr, extreme_multiplier, -extreme_multiplier]
    weight = [1.0] * 14 + [extreme_cover, extreme_cover]
    pair = [i ^ 1 for i in range(14)] + [14, 15]
    labels = tuple(
        f"{i + 1}:px{scaled[i]:+.3g}/vol{'+' if vol[i] > 0 else '-' if vol[i] < 0 else '0'}" for i in range(16)
    )
    return ScenarioTable(
        np.array(scaled), np.zeros(16), np.array(vol, float), np.array(weight), np.array(pair), np.array([0, 1]), labels
    )


#: Deribit's published extended-table moves (METHODOLOGY 2.1), vol-up only.
DERIBIT_EXTENDED_MOVES: tuple[float, ...] = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)


def deribit_table(
    n_buckets: int = 9,
    extended_moves: Sequence[float] = DERIBIT_EXTENDED_MOVES,
    extended_fraction: float = 0.0,
) -> ScenarioTable:
    """Deribit-style PM grid (METHODOLOGY 2.1).

    ``n_buckets`` evenly spaced price moves from -range to +range including 0
    (9 -> -16, -12, ..., +16% at a 16% range), each with vol up / same /
    down (irrelevant for linear instruments, carried for options; up and
    down are each other's pair). With ``extended_fraction > 0`` the extended
    moves (absolute simple returns, vol up only) are appended, counted at
    that fraction (Deribit says "only a fraction"; the value is not public).
    """
    if n_buckets < 3 or n_buckets % 2 == 0:
        raise ValueError(f"n_buckets={n_buckets} must be an odd whole number >= 3 (buckets include 0)")
    fr = np.linspace(-1.0, 1.0, n_buckets)
    scaled, absolute, vol, weight, pair, labels = [], [], [], [], [], []
    for f in fr:
        base = len(scaled)
        for v, tag in ((1.0, "+"), (0.0, "0"), (-1.0, "-")):
            scaled.append(f)
            absolute.append(0.0)
            vol.append(v)
            weight.append(1.0)
            labels.append(f"px{f:+.3g}R/vol{tag}")
        pair += [base + 2, base + 1, base]
    time = [i for i in range(len(scaled)) if scaled[i] == 0.0]
    if extended_fraction > 0:
        for m in extended_moves:
            k = len(scaled)
            scaled.append(0.0)
            absolute.append(float(m))
            vol.append(1.0)
            weight.append(extended_fraction)
            pair.append(k)
            labels.append(f"ext{m:+.0%}/vol+")
    return ScenarioTable(
        np.array(scaled), np.array(absolute), np.array(vol), np.array(weight), np.array(pair), np.array(time), tuple(labels)
    )


# ----------------------------------------------------------- revaluation
Revaluer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def linear_loss(price_move: np.ndarray, vol_move: np.ndarray) -> np.ndarray:
    """Loss of one USD of a linear exposure (spot, perp): ``L = -move``.

    ``price_move`` is a simple return; ``vol_move`` is ignored (a linear
    instrument has no vega) but accepted so every revaluer has one signature.
    """
    return -np.asarray(price_move, dtype=np.float64) + 0.0 * np.asarray(vol_move)


#: one revaluation function per instrument type (add "option" here later).
REVALUERS: dict[str, Revaluer] = {"spot": linear_loss, "perp": linear_loss}


def risk_arrays(ranges: np.ndarray, table: ScenarioTable, instrument: str = "perp") -> np.ndarray:
    """Weighted loss per USD of exposure, ``(..., A) -> (..., A, S)``.

    ``RA[..., a, s] = weight[s] * L(scaled[s] * range[..., a] + absolute[s], vol[s])``.
    NaN ranges give NaN arrays.
    """
    try:
        reval = REVALUERS[instrument]
    except KeyError:
        raise KeyError(f"unknown instrument type {instrument!r}; known: {sorted(REVALUERS)}") from None
    r = np.asarray(ranges, dtype=np.float64)[..., None]
    move = table.scaled * r + table.absolute
    return table.weight * reval(move, np.broadcast_to(table.vol, move.shape))


def scan_summaries(ra: np.ndarray, table: ScenarioTable) -> dict[str, np.ndarray]:
    """Per-(date, asset) numbers that make the linear scan O(accounts x assets).

    For a net exposure ``e`` the per-asset scenario losses are ``e * RA[s]``,
    linear in ``e``, so the scan-risk scenario is ``argmax RA`` when
    ``e > 0`` and ``argmin RA`` when ``e < 0`` and::

        scan  = max(e * hi, e * lo)                 hi = max_s RA, lo = min_s RA
        WPR   = max((RA[s*] + RA[pair(s*)]) / 2 - TR, 0)     (e > 0)
              = max(-((RA[s*] + RA[pair(s*)]) / 2 - TR), 0)  (e < 0)

    with ``TR = mean(RA[time scenarios])`` (SPAN's price risk per unit of
    |composite delta|, METHODOLOGY 1.2). Returns ``hi, lo, wpr_long,
    wpr_short`` with shape ``ra.shape[:-1]``.
    """
    filled = np.where(np.isnan(ra), 0.0, ra)
    i_hi = np.argmax(filled, axis=-1)
    i_lo = np.argmin(filled, axis=-1)
    take = np.take_along_axis
    hi = take(ra, i_hi[..., None], -1)[..., 0]
    lo = take(ra, i_lo[..., None], -1)[..., 0]
    hi_p = take(ra, table.pair[i_hi][..., None], -1)[..., 0]
    lo_p = take(ra, table.pair[i_lo][..., None], -1)[..., 0]
    tr = ra[..., table.time].mean(axis=-1)
    with np.errstate(invalid="ignore"):
        wl = np.maximum((hi + hi_p) / 2 - tr, 0.0)
        ws = np.maximum(-((lo + lo_p) / 2 - tr), 0.0)
    nan = np.isnan(ra).any(axis=-1)
    for arr in (wl, ws):
        arr[nan] = np.nan
    return {"hi": hi, "lo": lo, "wpr_long": wl, "wpr_short": ws}


# ------------------------------------------------------------- schedules
def recalibration_mask(dates: pd.DatetimeIndex, schedule: str) -> np.ndarray:
    """``(T,)`` bool: the first panel date of each day/week/month/quarter."""
    if schedule not in SCHEDULES:
        raise ValueError(f"recalibration={schedule!r} must be one of {SCHEDULES}")
    T = len(dates)
    if T == 0:
        return np.zeros(0, dtype=bool)
    if schedule == "daily":
        return np.ones(T, dtype=bool)
    freq = {"weekly": "W", "monthly": "M", "quarterly": "Q"}[schedule]
    per = pd.DatetimeIndex(dates).to_period(freq).asi8
    out = np.ones(T, dtype=bool)
    out[1:] = per[1:] != per[:-1]
    return out


def hold_last(values: np.ndarray, update: np.ndarray) -> np.ndarray:
    """Forward-fill ``values`` from the rows where ``update`` is True.

    ``out[t] = values[u(t)]`` with ``u(t)`` the last ``u <= t`` where
    ``update[u]`` (per column for 2-D ``update``); NaN before the first.
    """
    T = values.shape[0]
    idx = np.where(update, np.arange(T).reshape((T,) + (1,) * (update.ndim - 1)), -1)
    last = np.maximum.accumulate(idx, axis=0)
    if update.ndim == 1 and values.ndim > 1:
        last = last.reshape((T,) + (1,) * (values.ndim - 1))
        last = np.broadcast_to(last, values.shape)
    out = np.take_along_axis(values, np.maximum(last, 0), axis=0)
    return np.where(last >= 0, out, np.nan)


# ---------------------------------------------------------- calibration
def rolling_quantile_at(x: np.ndarray, rows: np.ndarray, lookback: int, q: float, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolated ``q`` quantile of ``x[t-lookback+1 : t+1]`` ignoring NaN.

    Evaluated only at ``rows`` (``(R,)`` date indices); returns the quantile
    and the count of finite values, each ``(R, A)``. Same definition as
    ``np.nanquantile(..., method="linear")``: sorted values ``v_0..v_{n-1}``,
    position ``q (n - 1)``, linear between neighbours.
    """
    A = x.shape[1]
    pad = np.vstack([np.full((lookback - 1, A), np.nan), x])
    win = np.lib.stride_tricks.sliding_window_view(pad, lookback, axis=0)  # (T, A, L)
    qs = np.full((len(rows), A), np.nan)
    ns = np.zeros((len(rows), A), dtype=np.int64)
    for i0 in range(0, len(rows), chunk):
        w = np.sort(win[rows[i0 : i0 + chunk]], axis=-1)  # NaN sort last
        n = np.isfinite(w).sum(axis=-1)
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        vlo = np.take_along_axis(w, lo[..., None], -1)[..., 0]
        vhi = np.take_along_axis(w, hi[..., None], -1)[..., 0]
        val = vlo + (pos - lo) * (vhi - vlo)
        qs[i0 : i0 + chunk] = np.where(n > 0, val, np.nan)
        ns[i0 : i0 + chunk] = n
    return qs, ns


def calibrate_psr(
    close: np.ndarray,
    dates: pd.DatetimeIndex,
    *,
    quantile: float = 0.99,
    horizon: int = 2,
    lookback: int = 365,
    floor: float = 0.05,
    min_obs: int = 90,
    schedule: str = "daily",
) -> np.ndarray:
    """``(T, A)`` price scan ranges (simple-return fractions) as of each date.

    ``PSR = max(floor, expm1(quantile of |h-day log return| over the last
    lookback rows))``, computed on the schedule's dates and on an asset's
    first date with ``min_obs`` returns in the window (so a new listing gets
    a range at once), held fixed in between; NaN before that. Uses for row
    t only ``close[: t + 1]``.
    """
    c = np.asarray(close, dtype=np.float64)
    T, A = c.shape
    absr = np.full_like(c, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        absr[horizon:] = np.abs(np.log(c[horizon:] / c[:-horizon]))
    fin = np.isfinite(absr).astype(np.int64)
    cs = np.cumsum(fin, axis=0)
    count = cs - np.vstack([np.zeros((lookback, A), np.int64), cs[:-lookback]])[:T]
    ok = count >= min_obs
    first = ok & ~np.vstack([np.zeros((1, A), bool), ok[:-1]])
    update = (recalibration_mask(dates, schedule)[:, None] & ok) | first
    rows = np.flatnonzero(update.any(axis=1))
    psr_rows = np.full((T, A), np.nan)
    if rows.size:
        qv, _ = rolling_quantile_at(absr, rows, lookback, quantile)
        psr_rows[rows] = np.maximum(np.expm1(qv), floor)
    out = hold_last(psr_rows, update)
    # an asset that leaves the sample (delisting) keeps no range once not live
    return np.where(np.isfinite(c), out, np.nan)


def rolling_correlation(close: np.ndarray, i: int, j: int, lookback: int, min_obs: int) -> np.ndarray:
    """``(T,)`` Pearson correlation of daily log returns of columns i, j over
    the last ``lookback`` rows (pairs where both are finite), as of each t."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.log(close[1:] / close[:-1])
    r = np.vstack([np.full((1, close.shape[1]), np.nan), r])
    a = pd.Series(r[:, i])
    b = pd.Series(r[:, j])
    both = a.notna() & b.notna()
    a = a.where(both)
    b = b.where(both)
    return a.rolling(lookback, min_periods=min_obs).corr(b).to_numpy()


def correlation_credit(rho: np.ndarray, min_rho: float, max_rate: float) -> np.ndarray:
    """Inter-commodity credit rate implied by a correlation.

    For two legs of equal stand-alone risk ``R`` (risk-matched delta ratios,
    e.g. ratio_k proportional to 1/PSR_k) and returns that scale like a
    bivariate normal, the spread's risk is ``R sqrt(2 (1 - rho))`` while the
    outright margins sum to ``2R``; the credit that leaves exactly the
    spread's risk is ``1 - sqrt((1 - rho) / 2)`` (variance of a difference).
    SPAN desks set rates from the same backtest of the spread versus the
    legs; we then apply prudence: no credit below ``min_rho`` and at most
    ``max_rate``::

        rate = clip(1 - sqrt((1 - rho) / 2), 0, max_rate)  if rho >= min_rho else 0
    """
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        raw = 1.0 - np.sqrt(np.clip((1.0 - rho) / 2.0, 0.0, None))
        out = np.where(rho >= min_rho, np.clip(raw, 0.0, max_rate), 0.0)
    return np.where(np.isnan(rho), np.nan, out)
