"""The liquidation step as Aave v3.3 and Morpho Blue define it.

Every function here is plain Python on scalars, compiled with numba
(``cache=True``) for the daily kernel; the plain function is the reference
the tests check against the protocols' worked examples (``.py_func``).
Amounts are USD at the execution (oracle) prices; the caller converts to
token quantities.

Aave v3.3 (aave-dao/aave-v3-origin ``LiquidationLogic.sol``)
------------------------------------------------------------
* Close factor: the liquidator may repay the whole reserve debt, unless the
  reserve's collateral and debt are both >= ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD``
  ($2,000) **and** HF > ``CLOSE_FACTOR_HF_THRESHOLD`` (0.95); then at most
  ``DEFAULT_LIQUIDATION_CLOSE_FACTOR`` (50%) of the **total** debt of the
  position (v3.3: the close factor applies to the whole position), capped at
  the reserve debt.
* Seized collateral (``_calculateAvailableCollateralToLiquidate``):
  ``seized = repaid x LB``; when that exceeds the collateral balance,
  ``seized = balance`` and ``repaid = balance / LB``. The protocol fee is
  ``(seized - seized / LB) x liquidationProtocolFee``; the liquidator
  receives ``seized - fee``.
* Dust rule (v3.3 feature 2.3): a liquidation that neither repays the whole
  reserve debt nor seizes the whole collateral balance must leave at least
  ``MIN_LEFTOVER_BASE`` ($1,000) of both, else it reverts (``MUST_NOT_LEAVE_DUST``).
* Deficit (v3.3 feature 1): when the account's collateral is exhausted, its
  remaining debt is burned and booked as the debt reserve's deficit.

Morpho Blue (morpho-org/morpho-blue ``Morpho.liquidate``)
---------------------------------------------------------
No close factor and no dust rule; ``seized = repaid x LIF``; no protocol
fee; bad debt when the collateral is zero is socialised to the lenders.

Euler v2 (euler-xyz/euler-vault-kit ``Liquidation.sol``)
--------------------------------------------------------
Dynamic discount: ``seized = repaid / max(HF, 1 - max_discount)``; no
close factor; bad debt socialised when no collateral is left.

The liquidator (the model's behavioural assumption)
---------------------------------------------------
It repays the largest admissible amount whose profit after price impact
exceeds its gas cost, trying the largest amount and then halves of it
(up to :data:`MAX_HALVINGS`); the seized collateral is sold and the debt
asset bought with impact ``I(Q) = sign(Q) min(k |Q|^a, m)``, the
power-law form shared by every law of :mod:`riskmodels.cascade.impact`
(square root: ``a = 1/2``; linear and depth ``beta = 1``: ``a = 1``; depth:
``a = 1/beta``), filled at the VWAP of the walk from the day's cumulative
forced flow ``q0`` to ``q1``: ``(G(|q1|) - G(|q0|)) / (q1 - q0)`` with ``G``
the antiderivative of the capped law (exact, piecewise closed form).
"""

from __future__ import annotations

import math

import numba as nb

__all__ = [
    "MAX_HALVINGS",
    "close_factor_max_repay",
    "dust_ok",
    "impact_antiderivative",
    "liquidator_profit",
    "seize",
    "vwap_move",
]

MAX_HALVINGS = 6

_jit = nb.njit(cache=True, fastmath=False, nogil=True)


@_jit
def close_factor_max_repay(reserve_debt: float, reserve_coll: float, total_debt: float, hf: float,
                           close_factor: float, close_factor_hf: float, full_close_usd: float,
                           aave: bool) -> float:
    """Largest repayment (USD) of one debt reserve one liquidation may make.

    Aave v3.3: ``reserve_debt`` unless ``reserve_coll >= full_close_usd`` and
    ``reserve_debt >= full_close_usd`` and ``hf > close_factor_hf``, then
    ``min(reserve_debt, close_factor x total_debt)``. Morpho Blue: ``reserve_debt``.
    """
    if not aave:
        return reserve_debt
    if reserve_coll >= full_close_usd and reserve_debt >= full_close_usd and hf > close_factor_hf:
        return min(reserve_debt, close_factor * total_debt)
    return reserve_debt


@_jit
def seize(repay: float, coll_balance: float, lb: float, fee_share: float) -> tuple[float, float, float]:
    """``(repaid, seized, fee)`` in USD: ``seized = repay x LB`` capped at the balance.

    When capped, ``repaid = balance / LB``; ``fee = (seized - seized / LB) x fee_share``
    (the liquidator receives ``seized - fee``).
    """
    seized = repay * lb
    if seized > coll_balance:
        seized = coll_balance
        repay = coll_balance / lb
    fee = (seized - seized / lb) * fee_share
    return repay, seized, fee


@_jit
def dust_ok(repay: float, reserve_debt: float, seized: float, coll_balance: float, min_leftover: float) -> bool:
    """Aave v3.3 dust rule: full debt, full collateral, or >= ``min_leftover`` of both left."""
    full_debt = repay >= reserve_debt * (1.0 - 1e-12)
    full_coll = seized >= coll_balance * (1.0 - 1e-12)
    if full_debt or full_coll:
        return True
    return (reserve_debt - repay >= min_leftover * (1.0 - 1e-12)) and (coll_balance - seized >= min_leftover * (1.0 - 1e-12))


@_jit
def impact_antiderivative(x: float, k: float, a: float, cap: float) -> float:
    """``G(x) = integral_0^x min(k u^a, cap) du`` for ``x >= 0``."""
    if x <= 0.0 or k <= 0.0:
        return 0.0
    if math.isinf(k):
        return cap * x
    xs = (cap / k) ** (1.0 / a)  # where the cap starts to bind
    if x <= xs:
        return k * x ** (a + 1.0) / (a + 1.0)
    return k * xs ** (a + 1.0) / (a + 1.0) + cap * (x - xs)


@_jit
def vwap_move(q0: float, q1: float, k: float, a: float, cap: float) -> float:
    """Average relative move filling the signed flow from ``q0`` to ``q1`` (odd law)."""
    if k <= 0.0:
        return 0.0
    if q1 == q0:
        m = min(k * abs(q0) ** a, cap)
        return m if q0 > 0 else (-m if q0 < 0 else 0.0)
    return (impact_antiderivative(abs(q1), k, a, cap) - impact_antiderivative(abs(q0), k, a, cap)) / (q1 - q0)


@_jit
def liquidator_profit(repay: float, seized: float, fee: float, q_coll: float, q_debt: float,
                      k_coll: float, a_coll: float, k_debt: float, a_debt: float, cap: float,
                      same_asset: bool) -> float:
    """USD profit of selling ``seized - fee`` of collateral and buying ``repay`` of the debt asset.

    ``q_coll``, ``q_debt``: the day's cumulative signed forced flow (USD) on
    each asset before this liquidation (sales < 0). Proceeds
    ``x (1 + vwap(q_coll, q_coll - x))`` with ``x = seized - fee``; cost
    ``repay (1 + vwap(q_debt, q_debt + repay))`` (after the sale when both
    legs are on the same asset).
    """
    x = seized - fee
    proceeds = x * (1.0 + vwap_move(q_coll, q_coll - x, k_coll, a_coll, cap))
    qd = q_debt - x if same_asset else q_debt
    cost = repay * (1.0 + vwap_move(qd, qd + repay, k_debt, a_debt, cap))
    return proceeds - cost
