"""Black-76: European options on a forward, vectorised over positions.

Formula (Black 1976, "The pricing of commodity contracts", J. Fin. Econ. 3;
Hull, *Options, Futures and Other Derivatives*, 10th ed., sec. 18.8)::

    d1 = (ln(F / K) + sigma^2 tau / 2) / (sigma sqrt(tau)),   d2 = d1 - sigma sqrt(tau)
    call = D (F N(d1) - K N(d2)),      put = D (K N(-d2) - F N(-d1))

with ``D = exp(-r tau)`` the discount factor. Put-call parity:
``call - put = D (F - K)``.

Conventions of riskmodels
-------------------------
* Crypto options are modelled **USD-linear and cash-settled** (premium and
  settlement in USD, one contract = one unit of the underlying). Deribit's
  options are inverse (premium and settlement in the coin); the USD value of
  an inverse option equals the USD-linear one at the same moment, but its P&L
  in coin terms differs: riskmodels measures everything in USD.
* The forward is the spot (zero rates and zero basis, ``D = 1``): crypto
  futures basis is small against option margins and is documented as ignored.
* ``tau`` is in years of **365 days** (crypto trades every day); at
  ``tau <= 0`` the price is the intrinsic value ``max(F - K, 0)`` (call) or
  ``max(K - F, 0)`` (put).

Greeks (per unit of underlying, with respect to F; ``n`` the normal density)::

    delta_call = D N(d1),  delta_put = -D N(-d1)
    gamma      = D n(d1) / (F sigma sqrt(tau))
    vega       = D F n(d1) sqrt(tau)            (per unit of volatility, 1.0 = 100 vol points)
    theta      = -D F n(d1) sigma / (2 sqrt(tau))   (per year, r = 0; sign: value lost as time passes)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

_SQRT_2PI = np.sqrt(2.0 * np.pi)


def _inputs(*args: object) -> list[np.ndarray]:
    """``F, K, tau, sigma, is_call, discount`` as broadcast float arrays (``is_call`` bool)."""
    F, K, tau, sigma, is_call, discount = args
    return np.broadcast_arrays(
        np.asarray(F, dtype=np.float64), np.asarray(K, dtype=np.float64), np.asarray(tau, dtype=np.float64),
        np.asarray(sigma, dtype=np.float64), np.asarray(is_call, dtype=bool), np.asarray(discount, dtype=np.float64),
    )


def _d1(F: np.ndarray, K: np.ndarray, tau: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sq = sigma * np.sqrt(tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(F / K) + 0.5 * sq * sq) / sq
    return d1, d1 - sq


def price(
    F: np.ndarray | float,
    K: np.ndarray | float,
    tau: np.ndarray | float,
    sigma: np.ndarray | float,
    is_call: np.ndarray | bool,
    discount: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Black-76 price per unit of underlying, broadcasting every argument.

    Parameters
    ----------
    F : array_like
        Forward (riskmodels: spot) price, > 0.
    K : array_like
        Strike, > 0.
    tau : array_like
        Time to expiry in years of 365 days; ``<= 0`` gives intrinsic value.
    sigma : array_like
        Implied volatility (annualised, 0.8 = 80%), > 0.
    is_call : array_like of bool
        True for calls, False for puts.
    discount : array_like, optional
        Discount factor ``exp(-r tau)``; default 1 (r = 0).

    Returns
    -------
    numpy.ndarray
        The broadcast shape of the inputs.
    """
    F, K, tau, sigma, is_call, discount = _inputs(F, K, tau, sigma, is_call, discount)
    live = tau > 0
    t = np.where(live, tau, 1.0)
    d1, d2 = _d1(F, K, t, sigma)
    call = F * ndtr(d1) - K * ndtr(d2)
    put = K * ndtr(-d2) - F * ndtr(-d1)
    val = np.where(is_call, call, put)
    intrinsic = np.where(is_call, np.maximum(F - K, 0.0), np.maximum(K - F, 0.0))
    return discount * np.where(live, val, intrinsic)


class Greeks(NamedTuple):
    """Black-76 sensitivities per unit of underlying (see the module docstring)."""

    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray


def greeks(
    F: np.ndarray | float,
    K: np.ndarray | float,
    tau: np.ndarray | float,
    sigma: np.ndarray | float,
    is_call: np.ndarray | bool,
    discount: np.ndarray | float = 1.0,
) -> Greeks:
    """Closed-form Black-76 delta, gamma, vega and theta (r = 0 theta).

    At ``tau <= 0`` delta is the intrinsic value's slope (1/0 for calls,
    -1/0 for puts; 0 exactly at the money) and the others are 0.
    """
    F, K, tau, sigma, is_call, discount = _inputs(F, K, tau, sigma, is_call, discount)
    live = tau > 0
    t = np.where(live, tau, 1.0)
    d1, _ = _d1(F, K, t, sigma)
    pdf = np.exp(-0.5 * d1 * d1) / _SQRT_2PI
    sq = np.sqrt(t)
    delta = np.where(is_call, ndtr(d1), -ndtr(-d1))
    gamma = pdf / (F * sigma * sq)
    vega = F * pdf * sq
    theta = -F * pdf * sigma / (2.0 * sq)
    expired_delta = np.where(is_call, (F > K).astype(float), -(F < K).astype(float))
    zero = np.zeros_like(F)
    return Greeks(
        discount * np.where(live, delta, expired_delta),
        discount * np.where(live, gamma, zero),
        discount * np.where(live, vega, zero),
        discount * np.where(live, theta, zero),
    )
