"""The cascade engine's inputs: the account :class:`Population` and the :class:`CascadeParams`.

A :class:`Population` holds the accounts (``accounts x assets`` spot collateral
quantities ``qc >= 0``, signed perp quantities ``qp`` entered at ``entry``, USD
``cash``, isolated flags; conventions of :mod:`riskmodels.backtest.simulation`);
:class:`CascadeParams` the liquidation and feedback settings (close factor,
slippage, penalty, the permanent share of impact, the insurance fund, dust, and
the round and fixed-point bounds; :func:`with_params` copies with some changed).
The engine itself is :func:`riskmodels.cascade.engine.run_cascade`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.margin.base import check_range


@dataclass(frozen=True, eq=False)
class Population:
    """Accounts as quantities: the state the cascade engine evolves.

    Parameters
    ----------
    assets : tuple of str
    q_coll, q_perp, entry : numpy.ndarray
        ``(N, A)`` spot collateral quantities (>= 0), signed perp quantities
        and perp entry prices.
    cash : numpy.ndarray
        ``(N,)`` USD (negative = a USD loan against collateral).
    isolated : numpy.ndarray, optional
        ``(N,)`` bool: requirement as the sum of stand-alone requirements.
    parent : numpy.ndarray, optional
        ``(N,)`` int: the trader an account belongs to (isolated runs split
        one trader into sub-accounts); default ``arange(N)``.
    kind : numpy.ndarray, optional
        ``(N,)`` int8 account type (population-specific labels).
    """

    assets: tuple[str, ...]
    q_coll: np.ndarray
    q_perp: np.ndarray
    entry: np.ndarray
    cash: np.ndarray
    isolated: np.ndarray | None = None
    parent: np.ndarray | None = None
    kind: np.ndarray | None = None

    def __post_init__(self) -> None:
        qc = np.atleast_2d(np.asarray(self.q_coll, dtype=np.float64))
        n, a = qc.shape
        if len(self.assets) != a:
            raise ValueError(f"Population: {len(self.assets)} assets for arrays with {a} columns")
        for name in ("q_perp", "entry"):
            arr = np.atleast_2d(np.asarray(getattr(self, name), dtype=np.float64))
            if arr.shape != (n, a):
                raise ValueError(f"Population.{name} has shape {arr.shape}, expected {(n, a)}")
            object.__setattr__(self, name, arr)
        if (qc < 0).any():
            raise ValueError("Population.q_coll must be >= 0 (use a short perp for short exposure)")
        object.__setattr__(self, "q_coll", qc)
        object.__setattr__(self, "cash", np.asarray(self.cash, dtype=np.float64).reshape(n))
        iso = np.zeros(n, bool) if self.isolated is None else np.asarray(self.isolated, bool).reshape(n)
        par = np.arange(n) if self.parent is None else np.asarray(self.parent, np.int64).reshape(n)
        kind = np.zeros(n, np.int8) if self.kind is None else np.asarray(self.kind, np.int8).reshape(n)
        object.__setattr__(self, "isolated", iso)
        object.__setattr__(self, "parent", par)
        object.__setattr__(self, "kind", kind)

    @property
    def n_accounts(self) -> int:
        return self.q_coll.shape[0]

    def equity(self, prices: np.ndarray) -> np.ndarray:
        """``(N,)`` equity at ``prices`` (one per asset)."""
        p = np.asarray(prices, dtype=np.float64)
        return self.cash + (self.q_coll * p).sum(1) + (self.q_perp * (p - self.entry)).sum(1)

    def open_interest(self, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(long, short)`` perp notional per asset at ``prices``, USD >= 0."""
        p = np.asarray(prices, dtype=np.float64)
        return (np.maximum(self.q_perp, 0.0) * p).sum(0), (np.maximum(-self.q_perp, 0.0) * p).sum(0)

    def subset(self, rows: np.ndarray) -> Population:
        r = np.asarray(rows)
        return Population(
            self.assets, self.q_coll[r], self.q_perp[r], self.entry[r], self.cash[r],
            self.isolated[r], self.parent[r], self.kind[r],  # type: ignore[index]
        )


@dataclass(frozen=True)
class CascadeParams:
    """Liquidation and feedback settings of a cascade run.

    Parameters
    ----------
    close_factor : float
        Fraction of a solvent account closed per liquidation, (0, 1]; 1 = full.
    slippage : float
        Extra cost against each closing trade, fraction of the fill, [0, 0.5).
    penalty : float
        Liquidation penalty to the insurance fund, fraction of the closed perp
        notional, [0, 0.5) (dYdX <= 1.5%, Derive 5%; METHODOLOGY.md 6.1).
    permanent : float
        Fraction of a sub-step's impact that carries to the next, [0, 1].
    insurance_fund : float
        Insurance fund at the start of the window, USD >= 0.
    dust_usd : float
        A partial liquidation that would leave less than this gross notional
        closes the account in full, >= 0.
    max_rounds : int
        Safety bound on rounds per sub-step (>= 1); exceeding it raises.
    fixed_points : bool
        Compute the least and greatest fixed point at every sub-step.
    max_fp_iter : int
        Bound on the fixed-point iterations (>= 1).
    """

    close_factor: float = 1.0
    slippage: float = 0.0
    penalty: float = 0.01
    permanent: float = 0.5
    insurance_fund: float = 0.0
    dust_usd: float = 1.0
    max_rounds: int = 100_000
    fixed_points: bool = True
    max_fp_iter: int = 500

    def __post_init__(self) -> None:
        check_range("close_factor", self.close_factor, 0.0, 1.0, lo_open=True)
        check_range("slippage", self.slippage, 0.0, 0.5, hi_open=True)
        check_range("penalty", self.penalty, 0.0, 0.5, hi_open=True)
        check_range("permanent", self.permanent, 0.0, 1.0)
        check_range("insurance_fund", self.insurance_fund, 0.0)
        check_range("dust_usd", self.dust_usd, 0.0)
        check_range("max_rounds", self.max_rounds, 1)
        check_range("max_fp_iter", self.max_fp_iter, 1)

    @classmethod
    def from_policy(cls, policy: LiquidationPolicy, **kw: object) -> CascadeParams:
        """Slippage and penalty from the backtest's :class:`LiquidationPolicy`."""
        return cls(slippage=policy.slippage, penalty=policy.penalty, **kw)  # type: ignore[arg-type]


def with_params(params: CascadeParams, **kw: object) -> CascadeParams:
    """A copy of ``params`` with some fields changed."""
    return replace(params, **kw)  # type: ignore[arg-type]
