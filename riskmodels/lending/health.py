"""Health factor, borrowing power and the toxic-liquidation frontier.

``HF = sum_i(collateral_i x P_i x LT_i) / sum_j(debt_j x P_j)`` (Aave
``GenericLogic.calculateUserAccountData``; worked example in the Aave
developer docs, https://aave.com/docs/developers/liquidations: $10,000 of
ETH at LT 80% against $6,000 of debt gives HF = 1.333). An account is
liquidatable when ``HF < 1``; it may open (borrow) only while
``sum(debt) <= sum(collateral x LTV)``. With no debt HF is ``+inf``.

Toxic frontier (Warmuz, Chaudhary & Pinna, "Toxic Liquidation Spirals",
arXiv 2212.07306): repaying ``d`` against collateral ``d x LB`` moves the
loan-to-value ``D / C`` to ``(D - d) / (C - d LB)``, which is *larger* than
``D / C`` exactly when ``D / C > 1 / LB``: beyond that frontier every
liquidation makes the account worse and it cannot be liquidated profitably
to health. :func:`toxic` flags it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["borrow_power", "health_factor", "loan_to_value", "toxic"]


def health_factor(coll_q: np.ndarray, debt_q: np.ndarray, prices: np.ndarray, lt: np.ndarray) -> np.ndarray:
    """``HF`` per account: ``(coll_q * prices) @ lt / (debt_q @ prices)``; ``inf`` without debt.

    ``coll_q``, ``debt_q``: ``(n, A)`` token quantities; ``prices``: ``(A,)``
    USD per token; ``lt``: ``(A,)`` liquidation thresholds.
    """
    coll_q = np.atleast_2d(np.asarray(coll_q, dtype=np.float64))
    debt_q = np.atleast_2d(np.asarray(debt_q, dtype=np.float64))
    num = (coll_q * prices) @ lt
    den = debt_q @ prices
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


def borrow_power(coll_q: np.ndarray, prices: np.ndarray, ltv: np.ndarray) -> np.ndarray:
    """USD an account may borrow in total: ``(coll_q * prices) @ ltv``."""
    return (np.atleast_2d(np.asarray(coll_q, dtype=np.float64)) * prices) @ ltv


def loan_to_value(coll_q: np.ndarray, debt_q: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """``D / C`` per account (``inf`` with debt and no collateral, 0 without debt)."""
    c = (np.atleast_2d(coll_q) * prices).sum(axis=1)
    d = (np.atleast_2d(debt_q) * prices).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, np.where(c > 0, d / np.where(c > 0, c, 1.0), np.inf), 0.0)


def toxic(ltv_now: np.ndarray, lb: np.ndarray | float) -> np.ndarray:
    """True where ``D / C > 1 / LB``: a liquidation raises the account's LTV (toxic)."""
    return np.asarray(ltv_now) > 1.0 / np.asarray(lb)
