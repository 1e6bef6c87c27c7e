"""What one chunk of accounts contributes to a streamed run, and how chunks add up.

A streamed run (:mod:`riskmodels.backtest.stream`) never holds a
``(dates, accounts)`` array of the whole book. Each chunk of accounts goes
through the engine's kernels (margin path, coverage backtest, account
simulation, with every model fitted once) and is reduced at once to a
:class:`ChunkAggregate`: sums over its accounts per date or in total. Every
quantity of the summary is a sum over disjoint sets of accounts, so chunks
add (:meth:`ChunkAggregate.add`) in chunk order, which makes the result
independent of how many processes or cluster workers ran them:

* counts (coverage cells and exceptions per side and per date, open
  account-days, accounts opened and ever liquidated, cells a model could
  not price): integers, exactly those of the unchunked run;
* liquidation events: records, shifted to the book's account indices and
  sorted by (date, account) as one run orders them: exactly the same;
* per-date sums (total initial margin, gross notional priced, perp notional
  open, the Murphy-Vasios-Vause sums of
  :func:`~riskmodels.backtest.procyclicality.partial_sums`) and the sum of
  IM / notional over the coverage cells: float64 sums, equal to the unchunked
  run's up to the order of the additions (relative 1e-12);
* the per-account margin sums behind the top-N shares: exactly the same;
* the 95th percentile of IM / notional over the coverage cells, which is no
  sum: exact by :func:`exact_percentile` from a histogram of every value's
  bit pattern (:func:`order_bins`, 2^20 bins, counts add) and the values of a
  band of bins around it kept by each chunk; the band is set from the
  histogram of a pilot block of accounts (priced in parts by the workers),
  and if the percentile falls outside it the run makes a
  second, path-only pass keeping the bins the histogram names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riskmodels.backtest import procyclicality as pc

#: bins of :func:`order_bins`: the top 20 bits of a float64's order key
N_BINS = 1 << 20
_SHIFT = 44
_FLIP = np.int64(0x7FFFFFFFFFFFFFFF)

#: the percentile of IM / gross notional the summary reports (``p95_im_per_notional``)
P95 = 95.0


def order_bins(x: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 bin in ``[0, N_BINS)`` of each float64, monotone in the value.

    The IEEE-754 bit pattern of a double read as a signed integer orders
    non-negative values; flipping the magnitude bits of negative ones orders
    all of them (the classic radix-sort key). The top 20 bits of that key are
    the bin: each bin holds an interval of values, bins are increasing.
    """
    b = (np.ascontiguousarray(x, dtype=np.float64) + 0.0).view(np.int64)  # + 0.0: -0.0 becomes 0.0
    k = np.where(b < 0, b ^ _FLIP, b)
    return (k >> _SHIFT) + (N_BINS >> 1)


def percentile_ranks(n: int, q: float = P95) -> tuple[int, int, float]:
    """``(lo, hi, gamma)``: the order statistics and weight :func:`numpy.percentile` (linear) uses on ``n`` values."""
    vi = (n - 1) * np.true_divide(q, 100)
    lo = int(np.floor(vi))
    if vi >= n - 1:
        return n - 1, n - 1, float(vi - np.floor(vi))
    return lo, lo + 1, float(vi - lo)


def lerp(a: float, b: float, t: float) -> float:
    """NumPy's interpolation between two order statistics (``numpy.percentile``, method "linear").

    ``a + (b - a) t``, or ``b - (b - a)(1 - t)`` when ``t >= 0.5`` (the form
    NumPy uses there, so the result is bit-identical).
    """
    a64, b64, t64 = np.float64(a), np.float64(b), np.float64(t)
    d = b64 - a64
    return float(b64 - d * (1 - t64)) if t64 >= 0.5 else float(a64 + d * t64)


def exact_percentile(hist: np.ndarray, band: tuple[int, int], values: np.ndarray, q: float = P95) -> float | None:
    """``numpy.percentile(all values, q)`` from their bin histogram and the values of the bins ``band``.

    ``hist`` is the ``(N_BINS,)`` count of every value's bin, ``values``
    every value whose bin is in ``band = (lo, hi)`` (inclusive). Returns None
    when an order statistic it needs lies outside the band (the caller then
    keeps the bins :func:`needed_bins` names and asks again); NaN for no values.
    """
    n = int(hist.sum())
    if n == 0:
        return float("nan")
    r0, r1, gamma = percentile_ranks(n, q)
    below = int(hist[: band[0]].sum())
    k0, k1 = r0 - below, r1 - below
    if k0 < 0 or k1 >= values.size:
        return None
    v = np.partition(values, (k0, k1)) if k1 != k0 else np.partition(values, k0)
    return lerp(float(v[k0]), float(v[k1]), gamma)


def needed_bins(hist: np.ndarray, q: float = P95) -> tuple[int, int]:
    """The bins that hold the two order statistics of the ``q`` percentile (a band for a second pass)."""
    n = int(hist.sum())
    r0, r1, _ = percentile_ranks(max(n, 1), q)
    cum = np.cumsum(hist)
    return int(np.searchsorted(cum, r0 + 1)), int(np.searchsorted(cum, r1 + 1))


@dataclass
class ModelAggregate:
    """One model's sums over a set of accounts (see the module docstring for each)."""

    ratio_sum: float = 0.0  # sum of IM / gross notional over the coverage cells
    ratio_n: int = 0
    hist: np.ndarray | None = None  # (N_BINS,) int64 of the ratios' bins (the sum of chunks)
    hist_sparse: tuple[np.ndarray, np.ndarray] | None = None  # one chunk's (bins, counts)
    band: tuple[int, int] = (0, -1)  # bins whose values are kept
    band_values: list[np.ndarray] = field(default_factory=list)
    X: np.ndarray | None = None  # (T, 3) exceptions per date (combined, long, short), common cells
    N: np.ndarray | None = None  # (T, 3) coverage cells per date
    im_sum: np.ndarray | None = None  # (T,) IM over priced cells (margin_over_time)
    g_sum: np.ndarray | None = None  # (T,) gross notional of the priced cells
    procyc: dict[str, Any] | None = None  # partial_sums of IM (NaN = not priced), notional = gross
    present: np.ndarray | None = None  # (T,) bool, some account priced
    per_account_margin: list[np.ndarray] = field(default_factory=list)  # (P_chunk,) each, in account order
    events: list[np.ndarray] = field(default_factory=list)
    opened: int = 0  # accounts opened at least once
    liquidated: int = 0  # accounts liquidated at least once
    account_days: int = 0
    notional_total: np.ndarray | None = None  # (n_sim,)
    unpriced_cells: int = 0
    dropped_from_row: int = 0
    unpriced_by_asset: np.ndarray | None = None  # (A,) cells per held asset
    unpriced_rows: np.ndarray | None = None  # (T,) bool
    warnings: list[tuple[type[Warning], str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    fit_log: Any = None

    def add(self, o: ModelAggregate) -> ModelAggregate:
        """Add ``o`` (the next chunk of accounts, in order) into this aggregate."""
        self.ratio_sum += o.ratio_sum
        self.ratio_n += o.ratio_n
        self.hist = _plus(self.hist, o.hist)
        if o.hist_sparse is not None:
            if self.hist is None:
                self.hist = np.zeros(N_BINS, dtype=np.int64)
            self.hist[o.hist_sparse[0]] += o.hist_sparse[1]
        self.band_values.extend(o.band_values)
        for name in ("X", "N", "im_sum", "g_sum", "notional_total", "unpriced_by_asset"):
            setattr(self, name, _plus(getattr(self, name), getattr(o, name)))
        self.present = o.present if self.present is None else (self.present | o.present)
        self.unpriced_rows = o.unpriced_rows if self.unpriced_rows is None else (self.unpriced_rows | o.unpriced_rows)
        self.procyc = o.procyc if self.procyc is None else pc.add_sums(self.procyc, o.procyc)  # type: ignore[arg-type]
        self.per_account_margin.extend(o.per_account_margin)
        self.events.extend(o.events)
        self.opened += o.opened
        self.liquidated += o.liquidated
        self.account_days += o.account_days
        self.unpriced_cells += o.unpriced_cells
        self.dropped_from_row += o.dropped_from_row
        self.warnings.extend(w for w in o.warnings if w not in self.warnings)
        for k, v in o.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v
        return self


def _plus(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None if b is None else b.copy()
    if b is None:
        return a
    a += b
    return a


@dataclass
class ChunkAggregate:
    """A chunk's (or a run's) aggregates: per model, plus the book facts every model shares."""

    first: int  # first account of the chunk
    accounts: int
    models: dict[str, ModelAggregate]
    eligible_per_date: np.ndarray  # (T,) int accounts eligible (window facts)
    eligible_gross: np.ndarray  # (T,) gross notional eligible
    accounts_ever_priced: int
    common_cells: int

    def add(self, o: ChunkAggregate) -> ChunkAggregate:
        """Add the next chunk ``o`` (accounts ``o.first..``) into this one."""
        if o.first != self.first + self.accounts:
            raise ValueError(f"chunks must be added in account order: expected {self.first + self.accounts}, "
                             f"got {o.first}")
        for k, m in self.models.items():
            m.add(o.models[k])
        self.accounts += o.accounts
        self.eligible_per_date += o.eligible_per_date
        self.eligible_gross += o.eligible_gross
        self.accounts_ever_priced += o.accounts_ever_priced
        self.common_cells += o.common_cells
        return self


def procyclicality_sums(im: np.ndarray, eligible: np.ndarray, gross: np.ndarray) -> dict[str, Any]:
    """:func:`~riskmodels.backtest.procyclicality.partial_sums` of one chunk on every window date.

    The margin is ``IM`` where eligible (NaN elsewhere) and the notional the
    account's gross notional, as :func:`~riskmodels.backtest.report_tables.procyclicality_table` passes them.
    """
    M = np.where(eligible, im, np.nan)
    N = np.broadcast_to(gross[None, :], M.shape)
    return pc.partial_sums(M, N, pc.HORIZONS)
