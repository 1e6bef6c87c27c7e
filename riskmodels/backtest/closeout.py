"""Close-out cost of a liquidation: flat slippage, or price impact that grows with size.

The account simulation (:mod:`riskmodels.backtest.simulation`) asks one
question when it liquidates accounts on day ``t``::

    closeout.cost(t, q_coll, q_perp, px) -> (total_cost_usd, impact_usd)

for ``n`` accounts with quantities ``q_coll`` (>= 0) and ``q_perp`` (signed)
closed at prices ``px``, all ``(n, A)``.

Rules
-----
* ``closeout = "flat"`` (the default): ``cost = s x sum_a (|q_perp| + q_coll) px``
  with ``s`` the policy's ``slippage``: every closing trade pays the same
  fraction whatever its size.
* ``closeout = "impact"``: the flat term (read as the size-independent part:
  half-spread and fees) **plus** the price impact of the account's net order
  in each asset, ``Q_a = (q_coll_a + q_perp_a) px_a`` USD (collateral sold and
  a long perp closed both sell; a short perp closed buys; a hedged pair nets),
  filled at the volume-weighted average of the impact walk from 0 to ``Q``::

      impact_a = |Q_a| x (G(|Q_a|) / |Q_a|)   (= G(|Q_a|), capped law integrated)

  with ``g`` and ``G`` one of the laws of :mod:`riskmodels.cascade.impact`
  (``sqrt``: ``g(Q) = Y sigma sqrt(Q / V)``, VWAP = 2/3 of the final move;
  ``linear``: ``g(Q) = k Q / V``; ``depth``: ``g(Q) = (Q / (s B))^(1/beta) / 100``
  with ``B = depth_to_volume x V``). ``V`` is the asset's USD volume of day
  ``t`` and ``sigma`` the standard deviation of its daily log returns over the
  ``vol_window`` days ending at ``t`` (data up to ``t`` only). Each account's
  order is charged on its own (orders of different accounts on the same day do
  not add up here: that is the feedback of the cascade engine).
* **Missing or zero volume** (the defects listed in the data README): the
  trailing mean of the positive volumes of the ``adv_window`` days before
  ``t`` is used; where there is none either, the asset's close-out pays the
  flat term only. Both cases are reported once per run by a warning that names
  the asset, the number of days and their first and last dates.
* **Missing volatility** (fewer than 2 returns in the window): the median
  volatility of the other assets that day; else 0.05 (5% a day).

Units: the panel's volume is USD traded per day (the public daily files quote
volume in USD: BTC's 2014-09-20 row is $36.9M, not 36.9M BTC).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel

if TYPE_CHECKING:  # riskmodels.cascade imports the simulation: import its laws lazily
    from riskmodels.cascade.impact import AssetState, ImpactModel

__all__ = ["CLOSEOUT_RULES", "IMPACT_LAWS", "CloseOut", "MarketLiquidity", "closeout_impact", "market_liquidity"]

CLOSEOUT_RULES = ("flat", "impact")
IMPACT_LAWS = ("sqrt", "linear", "depth")
#: daily volatility used where no asset has a volatility estimate yet
DEFAULT_SIGMA = 0.05
_GL_X, _GL_W = np.polynomial.legendre.leggauss(32)


@dataclass(frozen=True, eq=False)
class MarketLiquidity:
    """Volume and volatility the close-out uses, ``(T, A)`` each.

    ``volume`` is the day's USD volume where positive, else the fallback ADV,
    else NaN (flat cost only); ``source`` says which (0 = day, 1 = trailing
    ADV, 2 = none); ``sigma`` the daily volatility.
    """

    assets: tuple[str, ...]
    dates: pd.DatetimeIndex
    volume: np.ndarray
    sigma: np.ndarray
    source: np.ndarray

    def fallback_report(self, start: int, end: int, live: np.ndarray) -> pd.DataFrame:
        """One row per asset with live days in ``start..end`` whose day volume was not used."""
        rows = []
        for a, name in enumerate(self.assets):
            for code, what in ((1, "trailing ADV"), (2, "flat slippage only")):
                hit = np.flatnonzero((self.source[start : end + 1, a] == code) & live[start : end + 1, a]) + start
                if len(hit):
                    rows.append({"asset": name, "fallback": what, "days": len(hit),
                                 "first": self.dates[hit[0]].date(), "last": self.dates[hit[-1]].date()})
        return pd.DataFrame(rows, columns=["asset", "fallback", "days", "first", "last"])


def _rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    """Std (ddof 1) of the finite values among rows ``t-window+1..t``, NaN with fewer than 2."""
    return pd.DataFrame(x).rolling(window, min_periods=2).std().to_numpy()


def market_liquidity(panel: PricePanel, vol_window: int = 30, adv_window: int = 30) -> MarketLiquidity:
    """Per-date volume and volatility for the close-out (module docstring), no look-ahead.

    Row ``t`` uses the volume of day ``t`` (or the ``adv_window`` days before
    it) and the returns up to ``t``.
    """
    vol_raw = np.where(np.isfinite(panel.volume) & (panel.volume > 0), panel.volume, np.nan)
    # trailing ADV of the days before t (shift by one: t's own volume is missing there)
    adv = pd.DataFrame(vol_raw).rolling(adv_window, min_periods=1).mean().shift(1).to_numpy()
    day_ok = np.isfinite(vol_raw)
    adv_ok = np.isfinite(adv) & (adv > 0)
    volume = np.where(day_ok, vol_raw, np.where(adv_ok, adv, np.nan))
    source = np.where(day_ok, 0, np.where(adv_ok, 1, 2)).astype(np.int8)
    sigma = _rolling_std(panel.returns(1), vol_window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        med = np.nanmedian(sigma, axis=1)
    med = np.where(np.isfinite(med), med, DEFAULT_SIGMA)
    sigma = np.where(np.isfinite(sigma), sigma, med[:, None])
    return MarketLiquidity(panel.assets, panel.dates, volume, sigma, source)


def _law(name: str, y: float, per_volume: float, depth_to_volume: float, depth_exponent: float,
         max_move: float) -> ImpactModel:
    from riskmodels.cascade.impact import DepthImpact, LinearImpact, SquareRootImpact

    if name == "sqrt":
        return SquareRootImpact(Y=y, max_move=max_move)
    if name == "linear":
        return LinearImpact(per_volume=per_volume, max_move=max_move)
    if name == "depth":
        return DepthImpact(depth_to_volume=depth_to_volume, exponent=depth_exponent, max_move=max_move)
    raise ValueError(f"liquidation.impact_law={name!r} is not one of {IMPACT_LAWS}")


def closeout_impact(law: ImpactModel, order_usd: np.ndarray, state: AssetState) -> np.ndarray:
    """USD impact cost ``|Q| x VWAP move`` of single orders ``Q`` from a flat book, ``(n, A)``.

    Uncapped: ``G(|Q|)`` (the antiderivative of the law). Where the law's move
    exceeds ``max_move`` the capped law is integrated by 32-point
    Gauss-Legendre quadrature (as :meth:`ImpactModel.vwap_move` does).
    Assets with a non-finite volume cost nothing here (the flat fallback).
    """
    from riskmodels.cascade.impact import AssetState

    x = np.abs(np.asarray(order_usd, dtype=np.float64))
    known = np.isfinite(state.volume)
    with np.errstate(invalid="ignore", over="ignore"):
        out = law.antiderivative(x, state)
        capped = (law.magnitude(x, state) > law.max_move) & (x > 0)
    if capped.any():
        idx = np.nonzero(capped)
        xs = x[idx]
        nodes = 0.5 * xs[None, :] * (1.0 + _GL_X[:, None])  # (32, k)
        cols = idx[-1]
        sub = AssetState(
            tuple(state.assets[c] for c in cols), state.sigma[cols], state.volume[cols], state.daily_volume[cols]
        )
        g = np.minimum(law.magnitude(nodes, sub), law.max_move)
        out = out.copy()
        out[idx] = 0.5 * xs * (_GL_W[:, None] * g).sum(axis=0)
    return np.where(known & (x > 0), out, 0.0)


class CloseOut:
    """The close-out cost rule of one simulation run (module docstring).

    Parameters
    ----------
    rule : {"flat", "impact"}
    slippage : float
        Flat fraction of each closing trade's value.
    panel : PricePanel, optional
        Needed for ``rule="impact"`` (volume and returns).
    law, impact_y, impact_per_volume, impact_depth_to_volume, impact_depth_exponent, impact_max_move
        The impact law and its parameters (see :class:`LiquidationPolicy`).
    vol_window, adv_window : int
        Days of returns for ``sigma``; days of volume for the missing-volume fallback.
    """

    def __init__(
        self,
        rule: str = "flat",
        slippage: float = 0.002,
        panel: PricePanel | None = None,
        *,
        law: str = "sqrt",
        impact_y: float = 0.7,
        impact_per_volume: float = 0.1,
        impact_depth_to_volume: float = 0.002,
        impact_depth_exponent: float = 1.0,
        impact_max_move: float = 0.95,
        vol_window: int = 30,
        adv_window: int = 30,
    ) -> None:
        if rule not in CLOSEOUT_RULES:
            raise ValueError(f"liquidation.closeout={rule!r} is not one of {CLOSEOUT_RULES}")
        self.rule = rule
        self.slippage = float(slippage)
        self.law: ImpactModel | None = None
        self.liquidity: MarketLiquidity | None = None
        if rule == "impact":
            if panel is None:
                raise ValueError("closeout='impact' needs the price panel (volume and returns)")
            self.law = _law(law, impact_y, impact_per_volume, impact_depth_to_volume, impact_depth_exponent,
                            impact_max_move)
            self.liquidity = market_liquidity(panel, vol_window, adv_window)
            self._assets: Sequence[str] = panel.assets

    @classmethod
    def from_policy(cls, policy: object, panel: PricePanel | None) -> CloseOut:
        """The rule a :class:`~riskmodels.backtest.simulation.LiquidationPolicy` states."""
        p = policy
        return cls(
            getattr(p, "closeout", "flat"), getattr(p, "slippage", 0.002), panel,
            law=getattr(p, "impact_law", "sqrt"), impact_y=getattr(p, "impact_y", 0.7),
            impact_per_volume=getattr(p, "impact_per_volume", 0.1),
            impact_depth_to_volume=getattr(p, "impact_depth_to_volume", 0.002),
            impact_depth_exponent=getattr(p, "impact_depth_exponent", 1.0),
            impact_max_move=getattr(p, "impact_max_move", 0.95),
            vol_window=getattr(p, "vol_window", 30), adv_window=getattr(p, "adv_window", 30),
        )

    def state(self, t: int) -> AssetState:
        """Market state of day ``t`` for the impact law."""
        from riskmodels.cascade.impact import AssetState

        liq = self.liquidity
        assert liq is not None
        return AssetState(tuple(self._assets), liq.sigma[t], liq.volume[t], liq.volume[t])

    def cost(self, t: int, q_coll: np.ndarray, q_perp: np.ndarray, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(total, impact)`` USD cost of closing each of the ``n`` accounts, ``(n,)`` each."""
        flat = self.slippage * ((np.abs(q_perp) + q_coll) * px).sum(1)
        if self.law is None:
            return flat, np.zeros(len(flat))
        order = (q_coll + q_perp) * px
        impact = closeout_impact(self.law, order, self.state(t)).sum(1)
        return flat + impact, impact

    def warn_fallbacks(self, start: int, end: int, live: np.ndarray, held: np.ndarray) -> pd.DataFrame:
        """Warn once about the held assets whose day volume is missing in ``start..end``."""
        if self.liquidity is None:
            return pd.DataFrame()
        rep = self.liquidity.fallback_report(start, end, live & held[None, :])
        if len(rep):
            lines = "; ".join(f"{r.asset}: {r.days} day(s) {r.first}..{r.last} -> {r.fallback}"
                              for r in rep.itertuples())
            warnings.warn(f"close-out impact: day volume missing or zero for {lines}", stacklevel=3)
        return rep
