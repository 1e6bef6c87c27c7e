"""The ``[stress]`` config section as a dataclass (keys, types and defaults in one place)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from riskmodels.stress.cover import MEASURES
from riskmodels.stress.fund import FundPolicy
from riskmodels.stress.scenarios import LibrarySpec, Scenario, user_scenarios

MARGIN_BASES = ("initial", "maintenance")


@dataclass(frozen=True)
class StressConfig:
    """``[stress]``: the scenario library, Cover-N, reverse stress and the insurance fund.

    Parameters
    ----------
    enabled : bool
        ``riskmodels backtest`` also writes the stress outputs (``OUT/stress/``).
    horizon : int
        Days of every scenario move; 0 = ``backtest.mpor``.
    crash_days, worst_windows, btc_shocks, beta_lookback, beta_min_obs, depeg, breakdown
        The library (:class:`riskmodels.stress.scenarios.LibrarySpec`).
    margin : str
        Margin the stressed loss is measured beyond: ``initial`` (posted, the
        CCP convention) or ``maintenance``.
    every : int
        Cover-N over the backtest on every k-th date (>= 1).
    resources : float or None
        Resources for the reverse stress, USD; None = the fund's starting balance.
    reverse_measure : str
        ``cover1``, ``cover2`` or ``total`` loss beyond margin.
    fund_initial, fund_initial_share, penalty_share, adl
        The insurance fund (:class:`riskmodels.stress.fund.FundPolicy`).
    scenarios : tuple of Scenario
        User scenarios (``[[stress.scenarios]]``).
    """

    enabled: bool = False
    horizon: int = 0
    crash_days: bool = True
    worst_windows: int = 3
    btc_shocks: tuple[float, ...] = (-0.2, -0.35, -0.5)
    beta_lookback: int = 365
    beta_min_obs: int = 60
    depeg: tuple[float, ...] = (0.1, 0.3)
    breakdown: float = 0.25
    margin: str = "initial"
    every: int = 1
    resources: float | None = None
    reverse_measure: str = "cover2"
    fund_initial: float | None = None
    fund_initial_share: float = 0.001
    penalty_share: float = 1.0
    adl: bool = True
    scenarios: tuple[Scenario, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.margin not in MARGIN_BASES:
            raise ValueError(f"stress.margin={self.margin!r} must be one of {MARGIN_BASES}")
        if int(self.every) < 1:
            raise ValueError(f"stress.every={self.every} must be >= 1 (1 = every date)")
        if int(self.horizon) < 0:
            raise ValueError(f"stress.horizon={self.horizon} must be >= 1 day, or 0 for backtest.mpor")
        if self.reverse_measure not in MEASURES:
            raise ValueError(f"stress.reverse_measure={self.reverse_measure!r} must be one of {MEASURES}")
        if self.resources is not None and not self.resources >= 0:
            raise ValueError(f"stress.resources={self.resources} must be >= 0 USD (or omitted: the fund)")
        self.fund_policy()  # validates
        self.library(2)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> StressConfig:
        """From the ``[stress]`` table; unknown keys and wrong types raise naming the key."""
        d = dict(d or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"[stress] has unknown key(s) {sorted(unknown)}; valid: {sorted(known)}")
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k == "scenarios":
                if not isinstance(v, list):
                    raise ValueError("stress.scenarios must be an array of tables ([[stress.scenarios]])")
                kw[k] = user_scenarios(v)
            elif k in ("btc_shocks", "depeg"):
                if not isinstance(v, list) or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                                      for x in v):
                    raise ValueError(f"stress.{k}={v!r} must be a list of numbers")
                kw[k] = tuple(float(x) for x in v)
            elif k in ("enabled", "crash_days", "adl"):
                if not isinstance(v, bool):
                    raise ValueError(f"stress.{k}={v!r} must be true or false")
                kw[k] = v
            elif k in ("horizon", "worst_windows", "beta_lookback", "beta_min_obs", "every"):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(f"stress.{k}={v!r} must be a whole number")
                kw[k] = v
            elif k in ("margin", "reverse_measure"):
                kw[k] = str(v)
            else:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise ValueError(f"stress.{k}={v!r} must be a number")
                kw[k] = float(v)
        return cls(**kw)

    def library(self, mpor: int) -> LibrarySpec:
        return LibrarySpec(
            horizon=int(self.horizon) or int(mpor),
            crash_days=self.crash_days,
            worst_windows=int(self.worst_windows),
            btc_shocks=tuple(self.btc_shocks),
            beta_lookback=int(self.beta_lookback),
            beta_min_obs=int(self.beta_min_obs),
            depeg=tuple(self.depeg),
            breakdown=float(self.breakdown),
            user=tuple(self.scenarios),
        )

    def fund_policy(self) -> FundPolicy:
        return FundPolicy(self.fund_initial, float(self.fund_initial_share), float(self.penalty_share), self.adl)
