"""What was observed on each crash day, as metrics a cascade run can predict.

Every figure is from ``CRASH_DAYS.md`` (aggregator dashboards and news
reports, cited there). Liquidation totals are LOWER BOUNDS (Binance publishes
at most one liquidation per symbol per second since mid-2021); open interest
(OI) is counted one side, as exchanges report it.

Metrics (``predicted`` from a :class:`~riskmodels.cascade.engine.CascadeResult`)
--------------------------------------------------------------------------------
``liq_usd``
    liquidated perp notional, longs + shorts, USD (quantities at the open price).
``liq_long_usd``
    the long part only (days where only long liquidations are reported).
``long_share``
    long liquidations / all liquidations.
``liq_frac_oi``
    liquidated notional (both sides) / open interest (one side) before the day;
    ``liq_frac_oi_btc`` the same for BTC alone.
``oi_drop`` / ``oi_drop_btc``
    fall of open interest over the day. The model has no voluntary closes, so its
    prediction is the liquidated notional / OI (the fall if every forced order met
    a closing counterparty): a lower bound of the fall whenever traders de-risk.
``oi_usd`` / ``oi_usd_btc``
    open interest before the day: the seeded market's size (``oi_to_volume`` x
    trailing volume) against the reported figure.

Reported windows: where the record's liquidation total spans two days
(17-18 Apr 2021, 8-9 Nov 2022) the replay covers both (:data:`WINDOWS`): each
day is replayed from its own open with a freshly seeded market, and the
liquidation totals (``liq_usd``, ``liq_long_usd``, ``long_share``) are summed
over the days; ratios to open interest use the named day alone. A 24 h record
that straddles two daily bars (10 May 2022: published 06:38 UTC, so 72% of it
lies in the 9 May bar, when BTC fell 10%, and 28% in the 10 May bar, an up
day) is the time-weighted sum of both bars' replays (:data:`WINDOW_WEIGHTS`),
liquidations and open interest alike.

What each record measures (``scope`` and ``bound``, columns of ``suite.csv``)
-------------------------------------------------------------------------------
* **Venue-only records** are compared with the same venues' share of the model
  market: the prediction is multiplied by ``scope_share``. 12 Mar 2020: the only
  figure is BitMEX's longs; BitMEX held 36% of BTC futures open interest before
  the crash (Arcane Research, via currencies.ru 2020-07-24; 34.2% in January), so
  the prediction is 0.36 x the model's BTC long liquidations (BitMEX's OI was
  nearly all XBT; its altcoin liquidations are left out, which can only make the
  scoped prediction smaller). 19 May 2021 and 10 May 2022: the record names
  Binance's own figure, and Binance's is the truncated feed (at most one
  liquidation per symbol per second); the comparison leaves Binance out on both
  sides: observed = total - Binance (8.0 - 1.0 = $7.0B; 1.0 - 0.181 = $0.82B),
  predicted = (1 - Binance's share of BTC futures OI) x the model (19% on
  29 Mar 2021, K33/Arcane Research; 30% in Jan 2022, Glassnode).
* **Lower bounds** (``bound = "lower"``: "> $8B", "longs > $3.1B", and every
  aggregate since mid-2021, CRASH_DAYS.md) are compared as bounds: besides the
  point ratio (``within_2x``), ``consistent`` is true when the prediction is no
  less than half the bound and at most ``2 x LOWER_BOUND_SLACK`` times it (a
  factor 2 around a true total up to twice the record). Point records
  (``bound = "point"``) are ``consistent`` exactly when ``within_2x``.

One metric per day is ``primary`` (the liquidation total in the scope the day
reports); the factor-2 target of the crash-day suite is counted on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from riskmodels.cascade.engine import CascadeResult

__all__ = ["LOWER_BOUND_SLACK", "OBSERVED", "WINDOWS", "WINDOW_WEIGHTS", "Observation", "consistent", "day_observations",
           "log_ratio", "predict"]

#: largest under-count a lower-bound record is allowed (true total <= SLACK x the record)
LOWER_BOUND_SLACK = 2.0


@dataclass(frozen=True)
class Observation:
    """One observed figure of one crash day."""

    day: str
    metric: str
    value: float
    primary: bool = False
    note: str = ""
    scope_share: float = 1.0  # share of the model market the record covers (venue-only records)
    bound: str = "point"  # "point" or "lower" (the record is a lower bound)

    def __post_init__(self) -> None:
        if not 0.0 < self.scope_share <= 1.0:
            raise ValueError(f"{self.day} {self.metric}: scope_share {self.scope_share} must be in (0, 1]")
        if self.bound not in ("point", "lower"):
            raise ValueError(f"{self.day} {self.metric}: bound {self.bound!r} must be 'point' or 'lower'")

    @property
    def scope(self) -> str:
        return "market" if self.scope_share == 1.0 else f"venue share {self.scope_share:g}"


OBSERVED: tuple[Observation, ...] = (
    Observation("2020-03-12", "liq_long_usd_btc", 1.17e9, True,
                "BitMEX alone, longs on the 12th; predicted = BitMEX's 36% of BTC futures OI x model BTC longs",
                scope_share=0.36),
    Observation("2021-01-11", "liq_usd", 5.55e9, True, "Bybt total, 642,765 traders"),
    Observation("2021-04-18", "liq_usd", 10.1e9, True, "~$10.1B over 17-18 Apr (both days replayed)"),
    Observation("2021-05-19", "liq_usd", 7.0e9, True,
                "> $8B less Binance's truncated ~$1B; predicted = (1 - Binance's 19% of BTC OI) x model",
                scope_share=0.81, bound="lower"),
    Observation("2021-05-19", "liq_frac_oi_btc", 4.0e9 / 24.68e9, False, "BTC liq >= $4B (~50% of > $8B) / BTC OI > $24.7B"),
    Observation("2021-05-19", "oi_drop_btc", 0.5, False, "BTC OI 'more than halved' to $12.34B", bound="lower"),
    Observation("2021-05-19", "oi_usd_btc", 24.68e9, False, "BTC OI before = 2 x $12.34B (a lower bound)", bound="lower"),
    Observation("2021-09-07", "liq_long_usd", 3.1e9, True, "longs > $3.1B (The Block via Kaiko)", bound="lower"),
    Observation("2022-05-10", "liq_usd", 1.0e9 - 0.181e9, True,
                "> $1B in the 24 h to 06:38 UTC on the 10th (72% in the 9 May bar) less Binance's truncated $181M; "
                "predicted = (1 - Binance's 30% of BTC OI) x model",
                scope_share=0.70, bound="lower"),
    Observation("2022-05-10", "long_share", 0.74, False, "longs $793M of > $1B"),
    Observation("2022-05-10", "oi_drop", 0.056, False, "OI -5.6%"),
    Observation("2022-11-09", "liq_long_usd", 0.7e9, True, "longs > $700M over 8-9 Nov (both days replayed)",
                bound="lower"),
    Observation("2024-08-05", "liq_usd", 1.07e9, True, "$1.06-1.08B (Coinglass; Binance truncated since 2021)",
                bound="lower"),
    Observation("2024-08-05", "long_share", 0.85, False, "longs $901M"),
    Observation("2024-08-05", "liq_frac_oi", 1.07e9 / (47e9 / (1 - 0.187)), False, "$1.07B / OI before $57.8B",
                bound="lower"),
    Observation("2024-08-05", "oi_drop", 0.187, False, "total OI -18.7% to $47B"),
    Observation("2024-08-05", "oi_usd", 47e9 / (1 - 0.187), False, "OI before = $47B / (1 - 0.187)"),
)


#: days replayed for each crash day whose record spans more than the named day (CRASH_DAYS.md)
WINDOWS: dict[str, tuple[str, ...]] = {
    "2021-04-18": ("2021-04-17", "2021-04-18"),
    "2022-05-10": ("2022-05-09", "2022-05-10"),
    "2022-11-09": ("2022-11-08", "2022-11-09"),
}

#: 24 h records straddling two daily bars: the share of each bar inside the record's window.
#: CoinDesk's 10 May 2022 figures ("the past 24 hours", published 06:38 UTC on the 10th,
#: Coinglass data) cover 9 May 06:38 to 10 May 06:38: 17.37 h of the 9 May bar and 6.63 h of
#: the 10th. Liquidations are taken as uniform in time within a bar (stated, not known).
WINDOW_WEIGHTS: dict[str, tuple[float, ...]] = {
    "2022-05-10": (17.37 / 24.0, 6.63 / 24.0),
}

_SUMMED = ("liq_usd", "liq_long_usd", "long_share")


def _figure(ll: np.ndarray, sl: np.ndarray, oi: np.ndarray, assets: Sequence[str], metric: str) -> float:
    """``metric`` from per-asset long / short liquidated USD and one-side open interest."""
    if metric.endswith("_btc"):
        if "BTC" not in assets:
            return float("nan")
        j = list(assets).index("BTC")
        ll, sl, oi = ll[j : j + 1], sl[j : j + 1], oi[j : j + 1]
        metric = metric[: -len("_btc")]
    tot = float(ll.sum() + sl.sum())
    o = float(oi.sum())
    if metric == "liq_usd":
        return tot
    if metric == "liq_long_usd":
        return float(ll.sum())
    if metric == "long_share":
        return float(ll.sum()) / tot if tot > 0 else float("nan")
    if metric in ("liq_frac_oi", "oi_drop"):
        return tot / o if o > 0 else float("nan")
    if metric == "oi_usd":
        return o
    raise ValueError(f"unknown metric {metric!r}; valid: liq_usd, liq_long_usd, long_share, liq_frac_oi, "
                     "oi_drop, oi_usd (and the *_btc forms)")


def predict(result: CascadeResult | Sequence[CascadeResult], metric: str,
            weights: Sequence[float] | None = None) -> float:
    """The model's value of ``metric`` (module docstring).

    ``result`` is one cascade run or the runs of a reported window, the named
    day last. Without ``weights`` (a record spanning whole days) liquidation
    totals are summed over the runs and ratios to open interest use the last
    run. With ``weights`` (a 24 h record straddling two daily bars,
    :data:`WINDOW_WEIGHTS`) every figure -- liquidations and open interest --
    is the weighted sum over the runs.
    """
    runs = [result] if isinstance(result, CascadeResult) else list(result)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(runs),) or (w < 0).any():
            raise ValueError(f"weights {list(w)} must be {len(runs)} numbers >= 0 (one per run)")
        ll = sum(wi * np.asarray(r.liquidated_long_usd, float) for wi, r in zip(w, runs, strict=True))
        sl = sum(wi * np.asarray(r.liquidated_short_usd, float) for wi, r in zip(w, runs, strict=True))
        oi = sum(wi * np.asarray(r.oi_long, float) for wi, r in zip(w, runs, strict=True))
        return _figure(ll, sl, oi, runs[-1].assets, metric)  # type: ignore[arg-type]
    if metric.endswith("_btc") and metric[: -len("_btc")] in _SUMMED and len(runs) > 1:
        return float(np.nansum([predict([r], metric) for r in runs]))
    if metric in _SUMMED and len(runs) > 1:
        ll = np.sum([r.liquidated_long_usd.sum() for r in runs])
        sl = np.sum([r.liquidated_short_usd.sum() for r in runs])
        return _figure(np.array([ll]), np.array([sl]), np.ones(1), ("ALL",), metric)
    r = runs[-1]
    # one side (long OI = short OI by construction of the seeder)
    return _figure(r.liquidated_long_usd, r.liquidated_short_usd, r.oi_long, r.assets, metric)


def day_observations(day: str) -> list[Observation]:
    """The observations of ``day`` (YYYY-MM-DD), primary first."""
    return sorted((o for o in OBSERVED if o.day == day), key=lambda o: not o.primary)


def log_ratio(predicted: float, observed: float) -> float:
    """``ln(predicted / observed)``; NaN when either is not positive."""
    if not (np.isfinite(predicted) and np.isfinite(observed)) or predicted <= 0 or observed <= 0:
        return float("nan")
    return float(np.log(predicted / observed))


def consistent(predicted: float, o: Observation) -> bool:
    """Is the (scoped) prediction consistent with the record (module docstring)?

    Point record: within a factor 2. Lower bound ``X``: ``X / 2 <= predicted <= 2 LOWER_BOUND_SLACK X``.
    """
    lr = log_ratio(predicted, o.value)
    if not np.isfinite(lr):
        return False
    if o.bound == "lower":
        return bool(-np.log(2.0) <= lr <= np.log(2.0 * LOWER_BOUND_SLACK))
    return bool(abs(lr) <= np.log(2.0))
