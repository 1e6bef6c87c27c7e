"""Price-impact plug-ins: relative price move caused by a net USD order flow.

Every model answers ``price_move(net_flow_usd, state) -> relative move`` per
asset, an odd function of the signed flow (buys > 0 push the price up,
sells < 0 push it down), vectorised over assets. Impact is a function of the
**cumulative** net forced flow within a sub-step (the laws are concave: two
orders of Q/2 move the price as much as one order of Q, not twice half of it),
so the engine always passes the cumulative flow and differences the moves.

Settlement: an order that takes the cumulative flow from ``q0`` to ``q1``
walks the price from ``I(q0)`` to ``I(q1)`` and fills at the volume-weighted
average of that walk,

    VWAP move = (1 / (q1 - q0)) * integral_{q0}^{q1} I(q) dq
              = (G(|q1|) - G(|q0|)) / (q1 - q0),

with ``G`` the antiderivative of the impact magnitude ``g`` (``I(q) =
sign(q) g(|q|)`` is odd, so ``G(|q|)`` is an antiderivative of ``I``). For a
single order from zero this gives the textbook results: 2/3 of the final move
under the square-root law and 1/2 under a linear law.

Models (sources in METHODOLOGY.md section 6.1 and CRASH_DAYS.md)
----------------------------------------------------------------
* :class:`SquareRootImpact`: ``g(Q) = Y sigma sqrt(Q / V)`` with ``sigma`` and
  ``V`` the volatility and the USD volume *over the sub-step* (Y ~ 0.5-1;
  the exponent 0.49 of the Tokyo SE study).
* :class:`DepthImpact`: the book holds ``D(x) = s B x^beta`` USD within ``x``
  percent of the mid (``B`` = depth per 1%, ``beta`` the power-law exponent,
  ``s`` the survival factor of depth that vanishes in a crash, e.g. 1/3.4 for
  the median 3.4x fall of CRASH_DAYS.md); absorbing ``Q`` needs
  ``g(Q) = (Q / (s B))^(1/beta) / 100``.
* :class:`LinearImpact`: Kyle's lambda, ``g(Q) = lambda Q`` (``lambda`` per
  USD, or ``kappa / V`` with ``kappa`` per unit of sub-step volume).
* :class:`NoImpact`: the price-taker (replay variant A).

Moves are capped at ``max_move`` (default 0.95) in magnitude so that a price
never reaches zero; while the cap binds, the VWAP is integrated numerically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from riskmodels.margin.base import check_range, per_asset

__all__ = [
    "IMPACT_MODELS",
    "AssetState",
    "DepthImpact",
    "ImpactModel",
    "LinearImpact",
    "NoImpact",
    "SquareRootImpact",
    "build_impact",
]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(32)


@dataclass(frozen=True)
class AssetState:
    """Market state of the ``A`` assets over one sub-step.

    Parameters
    ----------
    assets : tuple of str
    sigma : numpy.ndarray
        ``(A,)`` volatility of log returns over the sub-step (fraction).
    volume : numpy.ndarray
        ``(A,)`` USD traded over the sub-step (> 0 where the asset trades).
    daily_volume : numpy.ndarray
        ``(A,)`` USD traded per day (for depth scaled to volume).
    """

    assets: tuple[str, ...]
    sigma: np.ndarray
    volume: np.ndarray
    daily_volume: np.ndarray


Param = float | Mapping[str, float] | Sequence[float] | np.ndarray


class ImpactModel(ABC):
    """Relative price move of a cumulative net flow (an odd, concave law)."""

    name: str = ""

    def __init__(self, max_move: float = 0.95) -> None:
        self.max_move = check_range("max_move", max_move, 0.0, 1.0, lo_open=True, hi_open=True)

    @abstractmethod
    def magnitude(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        """Uncapped move ``g(x)`` for flow magnitudes ``x >= 0`` (``(A,)`` or ``(K, A)``)."""

    @abstractmethod
    def antiderivative(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        """``G(x) = integral_0^x g(u) du`` of the uncapped law."""

    def price_move(self, net_flow_usd: np.ndarray, state: AssetState) -> np.ndarray:
        """Relative move ``sign(Q) min(g(|Q|), max_move)`` of the cumulative flow ``Q``."""
        q = np.asarray(net_flow_usd, dtype=np.float64)
        g = np.minimum(self.magnitude(np.abs(q), state), self.max_move)
        return np.sign(q) * g

    def vwap_move(self, q0: np.ndarray, q1: np.ndarray, state: AssetState) -> np.ndarray:
        """Average relative move over the fill of the flow from ``q0`` to ``q1`` (per asset).

        ``(G(|q1|) - G(|q0|)) / (q1 - q0)``; where ``q1 == q0`` the move at
        ``q0``; where the cap binds, 32-point Gauss-Legendre quadrature of the
        capped law.
        """
        q0 = np.asarray(q0, dtype=np.float64)
        q1 = np.asarray(q1, dtype=np.float64)
        dq = q1 - q0
        same = dq == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (self.antiderivative(np.abs(q1), state) - self.antiderivative(np.abs(q0), state)) / dq
        capped = (self.magnitude(np.maximum(np.abs(q0), np.abs(q1)), state) > self.max_move) & ~same
        if capped.any():
            nodes = 0.5 * (q0 + q1) + 0.5 * dq * _GL_X[:, None]  # (32, A)
            vals = self.price_move(nodes, state)
            out = np.where(capped, 0.5 * (_GL_W[:, None] * vals).sum(axis=0), out)
        return np.where(same, self.price_move(q0, state), out)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class NoImpact(ImpactModel):
    """Price-taker: forced flow never moves the price (replay variant A)."""

    name = "none"

    def magnitude(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        return np.zeros_like(np.asarray(x, dtype=np.float64))

    def antiderivative(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        return np.zeros_like(np.asarray(x, dtype=np.float64))


class SquareRootImpact(ImpactModel):
    """Square-root law ``I(Q) = Y sigma sqrt(Q / V)`` over the sub-step.

    Parameters
    ----------
    Y : float
        Prefactor, (0, 10]; 0.5-1 in the literature (METHODOLOGY.md 6.1). Default 0.7.
    max_move : float
        Cap on |move|, (0, 1).

    Antiderivative ``G(x) = (2/3) Y sigma x^(3/2) / sqrt(V)``.
    """

    name = "sqrt"

    def __init__(self, Y: float = 0.7, max_move: float = 0.95) -> None:
        super().__init__(max_move)
        self.Y = check_range("Y", Y, 0.0, 10.0, lo_open=True)

    def _coef(self, state: AssetState) -> np.ndarray:
        v = np.asarray(state.volume, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.where(v > 0, self.Y * state.sigma / np.sqrt(np.where(v > 0, v, 1.0)), np.inf)

    def magnitude(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        c = self._coef(state)
        with np.errstate(invalid="ignore"):
            return np.where(x > 0, c * np.sqrt(x), 0.0)

    def antiderivative(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        c = self._coef(state)
        with np.errstate(invalid="ignore"):
            return np.where(x > 0, (2.0 / 3.0) * c * x**1.5, 0.0)


class DepthImpact(ImpactModel):
    """Depth power law: ``D(x) = s B x^beta`` USD within ``x`` percent of the mid.

    Parameters
    ----------
    depth_1pct : float, mapping or sequence, optional
        ``B``, USD depth within 1% per asset. Default: ``depth_to_volume x``
        daily volume.
    depth_to_volume : float
        ``B / daily USD volume`` when ``depth_1pct`` is not given, (0, 1].
        Default 0.002: Kaiko's BTC 2% depth of ~11k BTC before FTX (~$110M per
        1% at ~$20k, CRASH_DAYS.md) against a daily volume of tens of $B.
    exponent : float
        ``beta`` in (0, 5]; 1 = uniform book density (linear impact), > 1
        concave impact. Default 1.
    survival : float
        ``s`` in (0, 1], the fraction of depth left in the crash; 1/3.4 is
        the median fall of CRASH_DAYS.md. Default 1.
    max_move : float
        Cap on |move|, (0, 1).

    ``g(Q) = (Q / (s B))^(1/beta) / 100``;
    ``G(x) = (s B)^(-1/beta) x^(1 + 1/beta) / (100 (1 + 1/beta))``.
    """

    name = "depth"

    def __init__(
        self,
        depth_1pct: Param | None = None,
        depth_to_volume: float = 0.002,
        exponent: float = 1.0,
        survival: float = 1.0,
        max_move: float = 0.95,
    ) -> None:
        super().__init__(max_move)
        self.depth_1pct = depth_1pct
        self.depth_to_volume = check_range("depth_to_volume", depth_to_volume, 0.0, 1.0, lo_open=True)
        self.exponent = check_range("exponent", exponent, 0.0, 5.0, lo_open=True)
        self.survival = check_range("survival", survival, 0.0, 1.0, lo_open=True)

    def depth(self, state: AssetState) -> np.ndarray:
        """Surviving depth within 1%, ``s B`` (USD, per asset)."""
        if self.depth_1pct is None:
            b = self.depth_to_volume * np.asarray(state.daily_volume, dtype=np.float64)
        else:
            b = per_asset("depth_1pct", self.depth_1pct, state.assets, 0.0)
        return self.survival * b

    def magnitude(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        d = self.depth(state)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.where(d > 0, (x / np.where(d > 0, d, 1.0)) ** (1.0 / self.exponent) / 100.0, np.inf), 0.0)

    def antiderivative(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        d = self.depth(state)
        a = 1.0 / self.exponent
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * (x / np.where(d > 0, d, 1.0)) ** a / (100.0 * (1.0 + a)), 0.0)


class LinearImpact(ImpactModel):
    """Kyle's linear impact ``I(Q) = lambda Q``.

    Parameters
    ----------
    kyle_lambda : float, mapping or sequence, optional
        Relative move per USD of net flow, per asset, >= 0.
    per_volume : float
        When ``kyle_lambda`` is not given, ``lambda = per_volume / V`` with
        ``V`` the sub-step volume: a flow equal to the sub-step's volume moves
        the price by ``per_volume``. [0, 10], default 0.1.
    max_move : float
        Cap on |move|, (0, 1).

    ``G(x) = lambda x^2 / 2``.
    """

    name = "linear"

    def __init__(self, kyle_lambda: Param | None = None, per_volume: float = 0.1, max_move: float = 0.95) -> None:
        super().__init__(max_move)
        self.kyle_lambda = kyle_lambda
        self.per_volume = check_range("per_volume", per_volume, 0.0, 10.0)

    def lam(self, state: AssetState) -> np.ndarray:
        if self.kyle_lambda is not None:
            return per_asset("kyle_lambda", self.kyle_lambda, state.assets, 0.0)
        v = np.asarray(state.volume, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.where(v > 0, self.per_volume / np.where(v > 0, v, 1.0), np.inf)

    def magnitude(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(x > 0, self.lam(state) * x, 0.0)

    def antiderivative(self, x: np.ndarray, state: AssetState) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(x > 0, 0.5 * self.lam(state) * x * x, 0.0)


IMPACT_MODELS: dict[str, type[ImpactModel]] = {
    "none": NoImpact,
    "sqrt": SquareRootImpact,
    "depth": DepthImpact,
    "linear": LinearImpact,
}


def build_impact(name: str, **params: object) -> ImpactModel:
    """Impact model by name (``none``, ``sqrt``, ``depth``, ``linear``)."""
    try:
        cls = IMPACT_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown impact model {name!r}; valid names: {', '.join(IMPACT_MODELS)}") from None
    return cls(**params)  # type: ignore[arg-type]
