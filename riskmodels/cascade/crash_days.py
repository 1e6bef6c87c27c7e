"""The observed crash days replayed by :mod:`riskmodels.cascade.replay` (sources in CRASH_DAYS.md).

:data:`CRASH_DAYS` lists each day's aggregate liquidations (a lower bound), the
long share, liquidations as a fraction of open interest and the assets' shares
(NaN or empty when not reported); :data:`BASE_RATE_LONG` and
:data:`BASE_RATE_SHORT` are the mean daily liquidations as a fraction of open
interest on ordinary days (Cheng et al., BitMEX).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Cheng et al. (BitMEX): mean daily liquidations as a fraction of open interest (CRASH_DAYS.md).
BASE_RATE_LONG = 0.0351


BASE_RATE_SHORT = 0.0189


@dataclass(frozen=True)
class CrashDay:
    """Observed facts of one crash day (CRASH_DAYS.md); NaN = not reported."""

    date: str
    label: str
    liq_usd: float  # aggregate liquidations, USD, a lower bound
    long_share: float
    liq_frac_oi: float  # liquidations / open interest before the day
    asset_share: dict[str, float] = field(default_factory=dict)
    note: str = ""


CRASH_DAYS: tuple[CrashDay, ...] = (
    CrashDay("2020-03-12", "COVID crash", 1.17e9, np.nan, np.nan, {"BTC": 1.0},
             "BitMEX longs only ($1.17B on the 12th); no market total"),
    CrashDay("2021-01-11", "BTC -29% from ATH", 5.55e9, np.nan, np.nan, {"BTC": 2.45 / 5.55, "ETH": 1.34 / 5.55},
             "Bybt total, 642,765 traders"),
    CrashDay("2021-04-18", "BTC -15% from 65k", 10.1e9, np.nan, np.nan, {},
             "~$10.1B over 17-18 Apr"),
    CrashDay("2021-05-19", "China ban / leverage flush", 8.0e9, np.nan, 4.0e9 / 24.68e9, {"BTC": 0.5},
             "> $8B; BTC ~50%; BTC OI more than halved to $12.34B: ratio = BTC liq >= $4B / OI > $24.7B, "
             "both bounds loose"),
    CrashDay("2021-09-07", "El Salvador day", 3.1e9, np.nan, np.nan, {}, "longs > $3.1B (longs only)"),
    CrashDay("2022-05-10", "LUNA collapse", 1.0e9, 0.74, np.nan, {"BTC": 0.346, "ETH": 0.321},
             "> $1B, longs $793M (74%); OI -5.6%"),
    CrashDay("2022-11-09", "FTX", 0.7e9, np.nan, np.nan, {}, "longs > $700M (8-9 Nov)"),
    CrashDay("2024-08-05", "yen-carry unwind", 1.07e9, 0.85, 1.07e9 / (47e9 / (1 - 0.187)), {"BTC": 0.362 / 1.07},
             "$1.06-1.08B, longs $901M (85%); OI -18.7% to $47B => OI before $57.8B"),
)
