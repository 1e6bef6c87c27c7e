"""Lending-market parameters: one validated row per reserve (asset).

A reserve carries the parameters a protocol's governance votes on (Aave v3
``ReserveConfiguration``; a Morpho Blue market's LLTV):

``ltv``
    Loan-to-value, the opening limit: an account may borrow while
    ``sum(debt) <= sum(collateral x LTV)``.
``lt``
    Liquidation threshold, the trigger: liquidatable when the health factor
    ``HF = sum(collateral x LT) / sum(debt) < 1``.
``lb``
    Liquidation bonus (> 1): collateral seized = repaid value x LB
    (Aave stores it as e.g. 10500 = 1.05).
``protocol_fee``
    Share of the bonus kept by the protocol (Aave ``liquidationProtocolFee``):
    ``fee = (seized - seized / LB) x protocol_fee``.
``supply_cap`` / ``borrow_cap``
    Largest total supplied / borrowed USD value (at the day's price) the
    reserve accepts; an account cannot open beyond them (0 = no cap).
``debt_ceiling``
    Isolation mode (Aave v3: an asset is isolated when its debt ceiling is
    non-zero): an account using it as collateral holds no other collateral,
    borrows only reserves flagged ``borrowable_in_isolation`` (stablecoins)
    and the total debt backed by the asset stays within the ceiling (USD);
    liquidations lower that total by the repaid amount, not by a deficit
    (``IsolationModeLogic.updateIsolatedDebtIfIsolated`` in LiquidationLogic).

E-mode categories (:class:`EModeCategory`, Aave v3.2 "liquid eModes",
aave-v3-origin docs/3.2/Aave-v3.2-features.md): an account in a category
values the category's collateral assets at the category's LTV / LT / LB
(other collateral keeps its reserve parameters) and may borrow only the
category's borrowable assets.

Ranges (refused at config time, naming the parameter):
``0 <= LTV <= LT < 1``, ``LB > 1``, ``LT x LB <= 1`` (Aave's configurator
rule ``liquidationThreshold.percentMul(liquidationBonus) <= 100%``, so that
seizing collateral for the whole debt is possible at HF = 1),
``0 <= protocol_fee <= 1``, ``0 < close factor <= 1``.

Protocol variants (``LendingMarket.protocol``)
----------------------------------------------
``aave_v3.3``
    Close factor 50% of the **whole position's** debt (v3.3 feature 2.1),
    100% when HF <= 0.95 (``CLOSE_FACTOR_HF_THRESHOLD``) or when the
    liquidated reserve's collateral or debt is below $2,000
    (``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD``); a partial liquidation may not
    leave less than $1,000 (``MIN_LEFTOVER_BASE``) of the debt or the
    collateral reserve; when an account's collateral is exhausted its
    remaining debt is burned and booked as the reserve's **deficit**.
    Source: aave-dao/aave-v3-origin ``LiquidationLogic.sol`` and
    ``docs/3.3/Aave-v3.3-features.md``.
``morpho_blue``
    One collateral and one loan asset per market; LT is the LLTV; the
    liquidator may repay any amount (no close factor); the bonus is the
    liquidation incentive factor ``LIF = min(1.15, 1 / (0.3 LLTV + 0.7))``
    (``MAX_LIQUIDATION_INCENTIVE_FACTOR``, ``LIQUIDATION_CURSOR`` in
    morpho-org/morpho-blue ``ConstantsLib.sol``; a reserve's ``lb`` is ignored); no
    protocol fee; bad debt (debt left when the collateral is zero) is
    **socialised** to the market's lenders.
``euler_v2``
    Euler Vault Kit (euler-xyz/euler-vault-kit ``Liquidation.sol``): a
    dynamic discount, the liquidator receives ``repaid / discount factor``
    of collateral with ``discount factor = HF`` floored at ``1 -
    max_discount`` (``MAXIMUM_LIQUIDATION_DISCOUNT`` = 0.2), so the bonus
    ``1 / max(HF, 0.8)`` grows as the account sinks; no close factor; no
    protocol fee on the bonus; bad debt socialised (``DebtSocialized``).
    A reserve's ``lb`` is replaced by the ceiling ``1 / (1 - max_discount)``
    (used by the toxic flag) and the ``LT x LB <= 1`` rule does not apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PROTOCOLS",
    "AssetParams",
    "EModeCategory",
    "LendingMarket",
    "morpho_lif",
]

PROTOCOLS = ("aave_v3.3", "morpho_blue", "euler_v2")
STABLE = "USD"  # the stablecoin reserve: price 1, never moved by impact

#: Morpho Blue ConstantsLib: MAX_LIQUIDATION_INCENTIVE_FACTOR, LIQUIDATION_CURSOR
MORPHO_MAX_LIF = 1.15
MORPHO_CURSOR = 0.3


def morpho_lif(lltv: float | np.ndarray) -> float | np.ndarray:
    """Morpho Blue's liquidation incentive factor ``min(1.15, 1 / (0.3 LLTV + 0.7))``."""
    return np.minimum(MORPHO_MAX_LIF, 1.0 / (MORPHO_CURSOR * np.asarray(lltv, dtype=np.float64) + 1.0 - MORPHO_CURSOR))


def _err(where: str, name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"{where}.{name}={value!r}: {rule}")


@dataclass(frozen=True)
class AssetParams:
    """One reserve's parameters (see the module docstring for each key)."""

    ltv: float
    lt: float
    lb: float = 1.05
    protocol_fee: float = 0.10
    supply_cap: float = 0.0
    borrow_cap: float = 0.0
    collateral: bool = True
    borrowable: bool = True
    debt_ceiling: float = 0.0
    borrowable_in_isolation: bool = False

    def validate(self, where: str, lt_lb_rule: bool = True) -> AssetParams:
        """Raise ``ValueError`` naming ``where.<key>``, the value and the rule."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(v, bool):
                    raise _err(where, f.name, v, "must be true or false")
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise _err(where, f.name, v, "must be a finite number")
        if not 0.0 <= self.ltv <= self.lt:
            raise _err(where, "ltv", self.ltv, f"must satisfy 0 <= ltv <= lt (lt={self.lt}); lower ltv or raise lt")
        if not 0.0 < self.lt < 1.0:
            raise _err(where, "lt", self.lt, "must satisfy 0 < lt < 1 (a fraction, e.g. 0.83 for 83%)")
        if not self.lb > 1.0:
            raise _err(where, "lb", self.lb, "must be > 1 (1.05 = a 5% bonus)")
        if lt_lb_rule and self.lt * self.lb > 1.0 + 1e-12:
            raise _err(where, "lb", self.lb, f"lt x lb = {self.lt * self.lb:.4f} must be <= 1 (Aave's configurator rule); "
                       "lower lb or lt")
        if not 0.0 <= self.protocol_fee <= 1.0:
            raise _err(where, "protocol_fee", self.protocol_fee, "must be in [0, 1] (a share of the bonus)")
        for k in ("supply_cap", "borrow_cap", "debt_ceiling"):
            if getattr(self, k) < 0:
                raise _err(where, k, getattr(self, k), "must be >= 0 USD (0 = no cap)")
        return self


@dataclass(frozen=True)
class EModeCategory:
    """An e-mode category: its own ``ltv``, ``lt``, ``lb`` for ``collateral`` assets; ``borrowable`` assets."""

    ltv: float
    lt: float
    lb: float
    collateral: tuple[str, ...] = ()
    borrowable: tuple[str, ...] = ()


@dataclass(frozen=True)
class LendingMarket:
    """A lending market: its protocol rules and one :class:`AssetParams` per reserve.

    Parameters
    ----------
    assets : mapping str -> AssetParams (or dict of its keys)
        The reserves. ``"USD"`` is the stablecoin reserve (price 1); every
        other name must be an asset of the price panel.
    protocol : {"aave_v3.3", "morpho_blue"}
    close_factor : float
        Default share of the position's debt one liquidation may repay,
        (0, 1]; Aave ``DEFAULT_LIQUIDATION_CLOSE_FACTOR`` = 0.5.
    close_factor_hf : float
        HF at or below which the close factor is 100% (Aave 0.95).
    full_close_usd : float
        ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD``: below this reserve value the
        close factor is 100% (Aave $2,000).
    min_leftover_usd : float
        ``MIN_LEFTOVER_BASE``: a partial liquidation must leave at least this
        much of the debt and collateral reserve (Aave $1,000 = half the above).
    max_discount : float
        Euler v2's largest liquidation discount, (0, 1) (0.2).
    gas_usd : float
        The liquidator's fixed cost per liquidation (USD, >= 0); a
        liquidation whose profit after impact does not exceed it is not done.
    """

    assets: Mapping[str, AssetParams]
    protocol: str = "aave_v3.3"
    close_factor: float = 0.5
    close_factor_hf: float = 0.95
    full_close_usd: float = 2000.0
    min_leftover_usd: float = 1000.0
    gas_usd: float = 0.0
    max_discount: float = 0.2
    emode: Mapping[str, EModeCategory] = field(default_factory=dict)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"lending.protocol={self.protocol!r}: valid protocols are {', '.join(PROTOCOLS)}")
        if not (isinstance(self.max_discount, int | float) and 0.0 < self.max_discount < 1.0):
            raise ValueError(f"lending.max_discount={self.max_discount!r}: must be in (0, 1) (Euler v2: 0.2)")
        if not self.assets:
            raise ValueError("lending.assets is empty: give at least one reserve, e.g. [lending.assets.ETH]")
        rows: dict[str, AssetParams] = {}
        for name, p in self.assets.items():
            where = f"lending.assets.{name}"
            if isinstance(p, Mapping):
                known = {f.name for f in fields(AssetParams)}
                unknown = set(p) - known
                if unknown:
                    raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(known)}")
                if "ltv" not in p or "lt" not in p:
                    raise ValueError(f"{where}: needs ltv and lt (fractions, ltv <= lt < 1)")
                p = AssetParams(**p)
            elif not isinstance(p, AssetParams):
                raise ValueError(f"{where}: expected a table of reserve parameters, got {type(p).__name__}")
            if self.protocol == "morpho_blue" and 0.0 < p.lt < 1.0:
                p = replace(p, lb=float(morpho_lif(p.lt)), protocol_fee=0.0)
            if self.protocol == "euler_v2":  # the bonus is dynamic; lb records its ceiling 1 / (1 - max discount)
                p = replace(p, lb=1.0 / (1.0 - float(self.max_discount)), protocol_fee=0.0)
            rows[str(name)] = p.validate(where, lt_lb_rule=self.protocol != "euler_v2")
        object.__setattr__(self, "assets", rows)
        object.__setattr__(self, "names", tuple(rows))
        if not 0.0 < self.close_factor <= 1.0:
            raise ValueError(f"lending.close_factor={self.close_factor!r}: must satisfy 0 < close_factor <= 1")
        if not 0.0 < self.close_factor_hf <= 1.0:
            raise ValueError(f"lending.close_factor_hf={self.close_factor_hf!r}: must be in (0, 1]")
        cats: dict[str, EModeCategory] = {}
        for name, c in dict(self.emode).items():
            where = f"lending.emode.{name}"
            if isinstance(c, Mapping):
                known = {f.name for f in fields(EModeCategory)}
                if set(c) - known:
                    raise ValueError(f"{where}: unknown key(s) {sorted(set(c) - known)}; valid: {sorted(known)}")
                c = EModeCategory(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in c.items()})
            AssetParams(ltv=c.ltv, lt=c.lt, lb=c.lb).validate(where)
            for k in ("collateral", "borrowable"):
                bad = [a for a in getattr(c, k) if a not in rows]
                if bad:
                    raise ValueError(f"{where}.{k}: {bad} are not reserves of the market ({', '.join(rows)})")
            for a in c.collateral:
                if not rows[a].collateral:
                    raise ValueError(f"{where}.collateral: {a} is not collateral outside e-mode (Aave v3.2 rule)")
            for a in c.borrowable:
                if not rows[a].borrowable:
                    raise ValueError(f"{where}.borrowable: {a} is not borrowable outside e-mode (Aave v3.2 rule)")
            cats[str(name)] = c
        if cats and self.protocol != "aave_v3.3":
            raise ValueError(f"lending.emode: e-mode categories are an Aave feature, not {self.protocol}'s")
        object.__setattr__(self, "emode", cats)
        for k in ("full_close_usd", "min_leftover_usd", "gas_usd"):
            v = getattr(self, k)
            if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise ValueError(f"lending.{k}={v!r}: must be a finite number >= 0 USD")

    # ------------------------------------------------------------------ arrays
    def arrays(self, assets: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Per-asset parameter vectors in the order of ``assets`` (default: the reserves).

        Under ``morpho_blue`` the bonus is the protocol's LIF of the LLTV
        (:func:`morpho_lif`; a reserve's ``lb`` is ignored) and the protocol
        fee is 0.
        """
        names = tuple(assets) if assets is not None else self.names
        missing = [a for a in names if a not in self.assets]
        if missing:
            raise KeyError(f"no lending parameters for {missing}; add [lending.assets.{missing[0]}]")
        get = self.assets.__getitem__
        out = {
            "ltv": np.array([get(a).ltv for a in names]),
            "lt": np.array([get(a).lt for a in names]),
            "lb": np.array([get(a).lb for a in names]),
            "protocol_fee": np.array([get(a).protocol_fee for a in names]),
            "supply_cap": np.array([get(a).supply_cap or np.inf for a in names]),
            "borrow_cap": np.array([get(a).borrow_cap or np.inf for a in names]),
            "collateral": np.array([get(a).collateral for a in names]),
            "borrowable": np.array([get(a).borrowable for a in names]),
            "debt_ceiling": np.array([get(a).debt_ceiling for a in names]),
            "borrowable_in_isolation": np.array([get(a).borrowable_in_isolation for a in names]),
        }
        return out

    def emode_arrays(self) -> dict[str, np.ndarray]:
        """``(1 + E, A)`` ltv, lt, lb and borrowable flags: row 0 no e-mode, row ``k + 1`` category ``k``."""
        base = self.arrays()
        E = len(self.emode)
        out = {k: np.repeat(base[k][None, :], E + 1, axis=0) for k in ("ltv", "lt", "lb", "borrowable")}
        for r, c in enumerate(self.emode.values(), start=1):
            for a in c.collateral:
                j = self.names.index(a)
                out["ltv"][r, j], out["lt"][r, j], out["lb"][r, j] = c.ltv, c.lt, c.lb
            allowed = np.array([a in c.borrowable for a in self.names])
            out["borrowable"][r] &= allowed
        out["borrowable"] = out["borrowable"].astype(np.bool_)
        return out

    def with_params(self, asset: str, **changes: Any) -> LendingMarket:
        """A copy with one reserve's parameters changed (validated)."""
        rows = dict(self.assets)
        old = rows[asset]
        rows[asset] = AssetParams(**{**{f.name: getattr(old, f.name) for f in fields(AssetParams)}, **changes})
        kw = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        kw["assets"] = rows
        return LendingMarket(**kw)

    def table(self) -> pd.DataFrame:
        """One row per reserve with every parameter (for reports)."""
        return pd.DataFrame([{"asset": a, **{f.name: getattr(p, f.name) for f in fields(AssetParams)}}
                             for a, p in self.assets.items()]).set_index("asset")

    @classmethod
    def from_config(cls, sec: Mapping[str, Any]) -> LendingMarket:
        """From a ``[lending]`` table's market keys (``protocol``, ``assets``, constants)."""
        keys = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in sec.items() if k in keys})
