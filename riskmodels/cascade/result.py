"""What one cascade window gives: :class:`CascadeResult` and its per-round records.

``ROUND_DTYPE`` is one record per liquidation round (forced notional, net flow,
moves, branching, amplification, bad debt, fund, ADL, equity and the ledger
check ``equity + fund + exec_cost - mark_pnl - unallocated``);
``FIXED_POINT_DTYPE`` one per sub-step (least and greatest fixed points of the
liquidation map and their iterations). :class:`CascadeResult` holds them with the
exogenous path and the marks, the net forced flow, which accounts were liquidated
(and when), their final cash and the insurance fund, as returned by
:func:`riskmodels.cascade.engine.run_cascade`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from riskmodels.cascade.inputs import CascadeParams

ROUND_DTYPE = np.dtype(
    [
        ("substep", np.int32),
        ("round", np.int32),  # 1-based within the sub-step
        ("n_liquidated", np.int32),  # accounts liquidated this round (full + partial)
        ("n_partial", np.int32),
        ("forced_notional", np.float64),  # gross USD traded by liquidations (at fills)
        ("net_flow", np.float64),  # sum over assets of |net forced flow|, USD
        ("round_move", np.float64),  # largest |relative mark change| of the round
        ("substep_move", np.float64),  # largest |endogenous move I(Q)| so far in the sub-step
        ("branching", np.float64),  # forced notional / previous round's (NaN in round 1)
        ("amplification", np.float64),  # (exogenous + endogenous log move) / exogenous, main asset
        ("bad_debt", np.float64),
        ("fund", np.float64),  # insurance fund after the round
        ("adl_charged", np.float64),
        ("adl_events", np.int32),
        ("unallocated", np.float64),
        ("equity", np.float64),  # sum of account equity at the new marks
        ("exec_cost", np.float64),  # cumulative
        ("mark_pnl", np.float64),  # cumulative
        ("ledger", np.float64),  # equity + fund + exec_cost - mark_pnl - cum. unallocated
    ]
)


FIXED_POINT_DTYPE = np.dtype(
    [
        ("substep", np.int32),
        ("n_least", np.int32),
        ("n_greatest", np.int32),
        ("iter_least", np.int32),
        ("iter_greatest", np.int32),
        ("differs", np.bool_),
        ("converged", np.bool_),  # both iterations reached a fixed point within max_fp_iter
    ]
)


@dataclass(frozen=True, eq=False)
class CascadeResult:
    """Outcome of one cascade window."""

    assets: tuple[str, ...]
    rounds: np.ndarray  # ROUND_DTYPE records
    round_moves: np.ndarray  # (R, A) relative mark change per round
    exogenous: np.ndarray  # (S+1, A)
    prices: np.ndarray  # (S+1, A) marks at the end of each sub-step (node 0 = open)
    trough: np.ndarray  # (A,) lowest mark seen
    peak: np.ndarray  # (A,) highest mark seen
    flow: np.ndarray  # (S, A) net forced flow per sub-step, USD
    liquidated: np.ndarray  # (N,) bool, any liquidation
    full: np.ndarray  # (N,) bool, closed in full
    first_substep: np.ndarray  # (N,) int, -1 = never liquidated
    closed_long_qty: np.ndarray  # (A,) long perp quantity closed by liquidations
    closed_short_qty: np.ndarray  # (A,)
    oi_long: np.ndarray  # (A,) USD at the open
    oi_short: np.ndarray  # (A,)
    transmission: np.ndarray  # (A, A) forced notional in column asset from accounts whose loss came from row asset
    fixed_points: np.ndarray  # FIXED_POINT_DTYPE records
    fund_start: float
    fund_end: float
    fund_min: float
    final_cash: np.ndarray  # (N,)
    params: CascadeParams = field(default_factory=CascadeParams)

    @property
    def open_prices(self) -> np.ndarray:
        return self.exogenous[0]

    @property
    def n_rounds(self) -> int:
        return len(self.rounds)

    @property
    def max_rounds_per_substep(self) -> int:
        r = self.rounds
        return int(r["round"].max()) if len(r) else 0

    @property
    def bad_debt(self) -> float:
        return float(self.rounds["bad_debt"].sum())

    @property
    def adl_events(self) -> int:
        return int(self.rounds["adl_events"].sum())

    @property
    def forced_notional(self) -> float:
        return float(self.rounds["forced_notional"].sum())

    @property
    def fixed_points_converged(self) -> bool:
        """Every sub-step's least and greatest fixed point was reached (True when not computed)."""
        return bool(self.fixed_points["converged"].all()) if len(self.fixed_points) else True

    @property
    def multiple_equilibria(self) -> bool:
        return bool(self.fixed_points["differs"].any()) if len(self.fixed_points) else False

    @cached_property
    def liquidated_long_usd(self) -> np.ndarray:
        """(A,) closed long perp quantity valued at the open (USD)."""
        return self.closed_long_qty * self.open_prices

    @cached_property
    def liquidated_short_usd(self) -> np.ndarray:
        return self.closed_short_qty * self.open_prices

    def liquidation_rates(self) -> dict[str, float]:
        """Liquidated perp notional as a fraction of open interest (quantities at the open)."""
        lo, so = self.oi_long.sum(), self.oi_short.sum()
        ll, sl = self.liquidated_long_usd.sum(), self.liquidated_short_usd.sum()
        tot = ll + sl
        return {
            "long": float(ll / lo) if lo > 0 else float("nan"),
            "short": float(sl / so) if so > 0 else float("nan"),
            "total": float(tot / (lo + so)) if lo + so > 0 else float("nan"),
            "long_share": float(ll / tot) if tot > 0 else float("nan"),
        }

    def log_move(self) -> np.ndarray:
        """(A,) log(trough / open) of the realised marks."""
        return np.log(self.trough / self.open_prices)

    def summary(self) -> dict[str, float]:
        r = self.liquidation_rates()
        return {
            "accounts_liquidated": int(self.liquidated.sum()),
            "accounts_full": int(self.full.sum()),
            "forced_notional": self.forced_notional,
            "liq_frac_oi": r["total"],
            "liq_frac_long": r["long"],
            "liq_frac_short": r["short"],
            "long_share": r["long_share"],
            "bad_debt": self.bad_debt,
            "fund_drawdown": self.fund_start - self.fund_min,
            "adl_events": self.adl_events,
            "adl_charged": float(self.rounds["adl_charged"].sum()),
            "unallocated": float(self.rounds["unallocated"].sum()),
            "rounds": self.n_rounds,
            "max_rounds_substep": self.max_rounds_per_substep,
            "multiple_equilibria": self.multiple_equilibria,
            "fixed_points_converged": self.fixed_points_converged,
        }

    def rounds_frame(self) -> pd.DataFrame:
        """The round log as a DataFrame, with one ``move_<asset>`` column per asset."""
        df = pd.DataFrame(self.rounds)
        for j, a in enumerate(self.assets):
            df[f"move_{a}"] = self.round_moves[:, j] if len(df) else []
        return df

    def transmission_frame(self) -> pd.DataFrame:
        """Forced notional by (loss-driving asset -> liquidated asset)."""
        return pd.DataFrame(self.transmission, index=list(self.assets), columns=list(self.assets))
