"""Records and settings of the account simulation (:mod:`riskmodels.backtest.simulation` has the rules)."""


from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.backtest.closeout import CLOSEOUT_RULES, IMPACT_LAWS

TRIGGERS = ("intraday", "close", "delisted")

EVENT_DTYPE = np.dtype(
    [
        ("account", np.int32),
        ("t", np.int32),
        ("trigger", np.int8),  # index into TRIGGERS
        ("equity", np.float64),  # at trigger prices, before slippage
        ("maintenance", np.float64),
        ("notional", np.float64),  # gross perp notional at trigger prices
        ("slippage", np.float64),  # close-out cost: flat slippage + impact
        ("impact", np.float64),  # of which price impact (closeout = "impact")
        ("penalty", np.float64),
        ("bad_debt", np.float64),
        ("returned", np.float64),
    ]
)

#: one record per account opening (first opening and every re-opening)
OPENING_DTYPE = np.dtype([("account", np.int32), ("t", np.int32), ("notional", np.float64)])


@dataclass(frozen=True)
class LiquidationPolicy:
    """How accounts are opened, liquidated and re-opened.

    Parameters
    ----------
    cushion : float
        Opening equity = initial margin x (1 + cushion); >= 0. Default 0.5.
    slippage : float
        Execution slippage against each closing trade, fraction of price, [0, 0.5).
    penalty : float
        Liquidation penalty, fraction of perp notional, [0, 0.5) (dYdX caps
        its fee at 1.5%, Derive charges 5%; METHODOLOGY.md 6.1). Default 1%.
    reentry_days : int or None
        Days after a liquidation before the account re-opens; None = never.
    intraday : bool
        Check the adverse intraday extreme (default) or only the close.
    closeout : {"flat", "impact"}
        ``flat`` (default): every closing trade pays ``slippage``. ``impact``:
        ``slippage`` plus the price impact of the account's net order per
        asset against the day's USD volume (:mod:`riskmodels.backtest.closeout`).
    impact_law : {"sqrt", "linear", "depth"}
        Impact law of ``closeout = "impact"`` (:mod:`riskmodels.cascade.impact`).
    impact_y : float
        Square-root prefactor ``Y`` in ``Y sigma sqrt(Q / V)``, (0, 10]; default 0.7.
    impact_per_volume : float
        Linear law: move caused by an order equal to the day's volume, [0, 10]; default 0.1.
    impact_depth_to_volume : float
        Depth law: USD depth within 1% of the mid / daily USD volume, (0, 1]; default 0.002.
    impact_depth_exponent : float
        Depth law: power ``beta`` of the depth profile, (0, 5]; default 1.
    impact_max_move : float
        Cap on the impact move, (0, 1); default 0.95.
    vol_window : int
        Days of daily log returns in the impact's ``sigma``, [2, 1000]; default 30.
    adv_window : int
        Days of trailing volume used where the day's volume is missing or zero, [1, 1000]; default 30.
    feedback : bool
        Endogenous cascades: each day's forced sales, aggregated per asset and scaled to
        the real market, move that day's execution and marking prices through the impact
        law, in rounds to a fixed point (:mod:`riskmodels.backtest.feedback`). Needs
        ``closeout = "impact"``. Default False.
    feedback_oi_to_volume : float
        Real open interest per USD of trailing daily volume, the scale of the market the
        book stands for (feedback only), (0, 100]; default 0.5 (cascade.population).
    maintenance_ratio : float or None
        The declared liquidation rule of the risk-model rows: maintenance =
        ratio x initial margin, in (0, 1]; default 1/1.1 (CME HRP: IM = 110%
        of MM). Methods whose rules define MM (haircut IMF/MMF) keep theirs.
        None (config ``"model"``) keeps every model's own MM
        (:mod:`riskmodels.backtest.mm_rule`).
    """

    cushion: float = 0.5
    slippage: float = 0.002
    penalty: float = 0.01
    reentry_days: int | None = 5
    intraday: bool = True
    closeout: str = "flat"
    impact_law: str = "sqrt"
    impact_y: float = 0.7
    impact_per_volume: float = 0.1
    impact_depth_to_volume: float = 0.002
    impact_depth_exponent: float = 1.0
    impact_max_move: float = 0.95
    vol_window: int = 30
    adv_window: int = 30
    feedback: bool = False
    feedback_oi_to_volume: float = 0.5
    maintenance_ratio: float | None = 1.0 / 1.1

    def __post_init__(self) -> None:
        if not (self.cushion >= 0 and np.isfinite(self.cushion)):
            raise ValueError(f"cushion={self.cushion} must be >= 0")
        if not 0 <= self.slippage < 0.5:
            raise ValueError(f"slippage={self.slippage} must be in [0, 0.5)")
        if not 0 <= self.penalty < 0.5:
            raise ValueError(f"penalty={self.penalty} must be in [0, 0.5)")
        if self.reentry_days is not None and int(self.reentry_days) < 1:
            raise ValueError(f"reentry_days={self.reentry_days} must be >= 1 or None (never re-open)")
        if self.closeout not in CLOSEOUT_RULES:
            raise ValueError(f"liquidation.closeout={self.closeout!r} must be one of {', '.join(CLOSEOUT_RULES)}")
        if self.impact_law not in IMPACT_LAWS:
            raise ValueError(f"liquidation.impact_law={self.impact_law!r} must be one of {', '.join(IMPACT_LAWS)}")
        for key, lo, hi, lo_open, hi_open in (
            ("impact_y", 0.0, 10.0, True, False),
            ("impact_per_volume", 0.0, 10.0, False, False),
            ("impact_depth_to_volume", 0.0, 1.0, True, False),
            ("impact_depth_exponent", 0.0, 5.0, True, False),
            ("impact_max_move", 0.0, 1.0, True, True),
        ):
            v = float(getattr(self, key))
            if not ((v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)):
                left, right = "(" if lo_open else "[", ")" if hi_open else "]"
                raise ValueError(f"liquidation.{key}={v} must be in {left}{lo}, {hi}{right}")
        if not isinstance(self.feedback, bool):
            raise ValueError(f"liquidation.feedback={self.feedback!r} must be true or false")
        if self.feedback and self.closeout != "impact":
            raise ValueError('liquidation.feedback = true needs liquidation.closeout = "impact" (the impact law '
                             "that turns forced flow into price moves)")
        if not 0 < float(self.feedback_oi_to_volume) <= 100:
            raise ValueError(f"liquidation.feedback_oi_to_volume={self.feedback_oi_to_volume} must be in (0, 100]")
        for key, lo in (("vol_window", 2), ("adv_window", 1)):
            v = getattr(self, key)
            if isinstance(v, bool) or int(v) != v or not lo <= int(v) <= 1000:
                raise ValueError(f"liquidation.{key}={v!r} must be a whole number of days in [{lo}, 1000]")
        r = self.maintenance_ratio
        if r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r <= 1):
            raise ValueError(f"maintenance_ratio={r!r} must be a number in (0, 1] (maintenance = "
                             "ratio x initial margin), or \"model\" to keep each model's own maintenance margin")


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Events and daily state of the account simulation of one model."""

    model: str
    dates: pd.DatetimeIndex
    account_ids: tuple[str, ...]
    events: np.ndarray  # EVENT_DTYPE records; "t" is the panel's date index
    # daily state, rows = the simulated dates start..end (row i = date index start + i):
    is_open: np.ndarray  # (n, P) bool, open at the close
    equity: np.ndarray  # (n, P) float32, NaN when closed
    maintenance: np.ndarray  # (n, P) float32, NaN when closed
    notional_total: np.ndarray  # (n,) float64 gross perp notional of the open accounts
    openings: np.ndarray  # (n_open,) records: account, t, notional
    start: int
    end: int
    policy: LiquidationPolicy = field(default_factory=LiquidationPolicy)
    #: feedback runs: FEEDBACK_LOG_DTYPE records, one per simulated date (rounds, liquidated, max |move|)
    feedback_log: np.ndarray | None = None

    def row(self, t: int) -> int:
        """Row of the daily state arrays for the panel's date index ``t``."""
        if not self.start <= t <= self.end:
            raise IndexError(f"date index {t} is outside the simulated dates {self.start}..{self.end}")
        return t - self.start

    @cached_property
    def liquidations(self) -> np.ndarray:
        """Events that are liquidations (not delistings)."""
        return self.events[self.events["trigger"] < 2]

    @property
    def account_days(self) -> int:
        return int(self.is_open.sum())

    @property
    def account_years(self) -> float:
        return self.account_days / 365.0

    def events_frame(self) -> pd.DataFrame:
        ev = self.events
        return pd.DataFrame(
            {
                "date": self.dates[ev["t"]],
                "account": np.asarray(self.account_ids, dtype=object)[ev["account"]],
                "trigger": np.asarray(TRIGGERS, dtype=object)[ev["trigger"]],
                "equity": ev["equity"],
                "maintenance": ev["maintenance"],
                "notional": ev["notional"],
                "slippage": ev["slippage"],
                "impact": ev["impact"],
                "penalty": ev["penalty"],
                "bad_debt": ev["bad_debt"],
                "returned": ev["returned"],
                "model": self.model,
            }
        )


class AccountMargin:
    """The requirement the simulation asks for: the model's, with the carried APC state where it has one.

    Path-dependent rules (:mod:`riskmodels.margin.apc`) expose
    ``carried_requirement``; their per-account state (``carry_width``
    columns) is read from :attr:`state` and committed only at the close
    (:meth:`commit`). ``lipschitz`` is the model's per-asset intraday bound
    for that requirement (``carried_lipschitz`` for carried rules), or None.
    """

    def __init__(self, fitted: Any, isolated: np.ndarray, n_accounts: int) -> None:
        self.fitted, self.iso = fitted, isolated
        self.carry = getattr(fitted, "carried_requirement", None)
        self.state = np.full((n_accounts, int(fitted.carry_width)), np.nan) if self.carry is not None else None
        self.lipschitz = getattr(fitted, "carried_lipschitz" if self.carry is not None else "maintenance_lipschitz",
                                 None)

    def __call__(self, t: int, rows: np.ndarray, collateral: np.ndarray, positions: np.ndarray,
                 fresh: np.ndarray | None = None) -> tuple[Any, np.ndarray | None]:
        """``(Requirement, new state or None)`` of accounts ``rows`` with model state ``t``; ``fresh`` start anew."""
        if self.carry is None:
            return self.fitted.account_requirement(t, collateral, positions, self.iso[rows]), None
        st = self.state[rows]  # type: ignore[index]
        if fresh is not None:
            st[fresh] = np.nan
        return self.carry(t, collateral, positions, self.iso[rows], st)

    def commit(self, rows: np.ndarray, new_state: np.ndarray | None) -> None:
        """Keep the carried state of the accounts ``rows`` open at the close."""
        if new_state is not None:
            self.state[rows] = new_state  # type: ignore[index]
