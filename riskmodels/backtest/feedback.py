"""Endogenous cascades in the multi-year backtest: forced sales move the day's prices.

With ``[liquidation] feedback = true`` the account simulation
(:mod:`riskmodels.backtest.simulation`) stops treating accounts as price-takers.
On each day ``t``:

1. **Scale.** The book stands for the whole market: each USD the book holds in
   asset ``a`` at the previous close stands for ``k_a = OI_a / B_a`` USD of the
   real market, with ``B_a`` the open accounts' gross holdings (collateral +
   |perp|) of ``a`` at ``C[t-1]`` and ``OI_a = oi_to_volume x`` the trailing
   ``adv_window``-day mean USD volume before ``t`` (the cascade seeder's rule,
   :mod:`riskmodels.cascade.population`: default 0.5, BTC perp open interest of
   ~$25B before 19 May 2021 against ~$50-70B/day of aggregated spot volume).
   The book's liquidations are thus read as the same share of the real open
   interest: the cascade does not depend on how many accounts simulate it.
2. **Rounds to a fixed point** (as the cascade engine's, from below). ``Q`` is
   the day's cumulative real-market forced flow per asset (USD, buys > 0),
   starting at 0; the mark is the reference price times ``1 + I(Q)`` (the
   impact law of ``impact_law`` with the day's volume and volatility). Every
   open account is checked at the mark; those below maintenance are liquidated;
   their net orders ``-(q_coll + q_perp) x mark`` are summed per asset and
   scaled, ``Q1 = Q + k x sum``; each order fills at the VWAP of the walk from
   ``Q`` to ``Q1`` and pays ``order x (vwap(Q, Q1) - I(Q)) / (1 + I(Q))`` on top of
   the flat slippage (signed: an order against the flow gains). Repeat at the
   new mark until a round liquidates nobody (at most one round per account, so
   it terminates). The intraday check runs the rounds at the adverse extremes,
   then the close check at the close, both adding to the same ``Q``.
3. **Marking.** The day's close is marked at ``C[t] (1 + I(Q))`` (equity,
   requirements and openings of that day). The impact is transient: day
   ``t + 1`` starts again from the historical prices.

:class:`FeedbackLog` records per day the rounds and the final moves
(convergence is reported, not assumed). :func:`feedback_comparison` puts two
backtests of the same config side by side: liquidations and bad debt per model
with and without feedback, and the cascade amplification (liquidated notional
with feedback / without).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodels.backtest.closeout import CloseOut

__all__ = ["FEEDBACK_LOG_DTYPE", "FeedbackMarket", "feedback_comparison"]

FEEDBACK_LOG_DTYPE = np.dtype([("t", np.int32), ("rounds", np.int32), ("liquidated", np.int32),
                               ("max_move", np.float64)])


@dataclass
class FeedbackMarket:
    """The market side of the feedback rounds for one simulation (module docstring)."""

    closeout: CloseOut
    open_interest: np.ndarray  # (T, A) oi_to_volume x trailing ADV before t (USD)

    @classmethod
    def build(cls, closeout: CloseOut, panel: object, oi_to_volume: float, adv_window: int) -> FeedbackMarket:
        if closeout.law is None:
            raise ValueError("liquidation.feedback = true needs liquidation.closeout = \"impact\" (the impact law)")
        vol = np.asarray(panel.volume, dtype=np.float64)  # type: ignore[attr-defined]
        v = np.where(np.isfinite(vol) & (vol > 0), vol, np.nan)
        adv = pd.DataFrame(v).rolling(int(adv_window), min_periods=1).mean().shift(1).to_numpy()
        return cls(closeout, oi_to_volume * np.where(np.isfinite(adv), adv, 0.0))

    def scale(self, t: int, holdings_usd: np.ndarray) -> np.ndarray:
        """``(A,)`` real USD per book USD: ``OI_a / B_a`` (0 where the book holds nothing)."""
        b = np.asarray(holdings_usd, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(b > 0, self.open_interest[t] / np.where(b > 0, b, 1.0), 0.0)
        return k

    def move(self, t: int, q: np.ndarray) -> np.ndarray:
        """``(A,)`` relative mark move ``I(Q)`` of the day's cumulative flow (0 where no volume is known)."""
        st = self.closeout.state(t)
        out = self.closeout.law.price_move(q, st)  # type: ignore[union-attr]
        return np.where(np.isfinite(st.volume) & np.isfinite(out), out, 0.0)

    def fill(self, t: int, q0: np.ndarray, orders: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fill the round's ``(n, A)`` book orders (USD at the mark): ``(cost per account, Q1)``."""
        q1 = q0 + k * orders.sum(axis=0)
        st = self.closeout.state(t)
        law = self.closeout.law
        m0 = self.move(t, q0)
        vw = law.vwap_move(q0, q1, st)  # type: ignore[union-attr]
        vw = np.where(np.isfinite(st.volume) & np.isfinite(vw), vw, 0.0)
        cost = (orders * ((vw - m0) / (1.0 + m0))[None, :]).sum(axis=1)
        return cost, q1


def _simulations(x: object) -> dict[str, object]:
    """``{model: SimulationResult}`` of a BacktestResult, or the mapping itself."""
    res = getattr(x, "results", None)
    if res is not None:
        return {n: r.simulation for n, r in res.items()}
    return dict(x)  # type: ignore[call-overload]


def feedback_comparison(without: object, with_feedback: object) -> pd.DataFrame:
    """Per model: liquidations, liquidated notional and bad debt without and with feedback, and the amplification.

    ``without`` and ``with_feedback``: BacktestResults, or ``{model:
    SimulationResult}`` mappings. ``amplification = liquidated notional with
    feedback / without`` (NaN when nothing is liquidated without feedback).
    """
    s0, s1 = _simulations(without), _simulations(with_feedback)
    rows = []
    for name, r0 in s0.items():
        r1 = s1.get(name)
        if r1 is None:
            continue
        l0, l1 = r0.liquidations, r1.liquidations  # type: ignore[attr-defined]
        n0, n1 = float(l0["notional"].sum()), float(l1["notional"].sum())
        log = getattr(r1, "feedback_log", None)
        rows.append({
            "model": name,
            "liquidations": len(l0), "liquidations_feedback": len(l1),
            "liquidated_notional": n0, "liquidated_notional_feedback": n1,
            "bad_debt": float(l0["bad_debt"].sum()), "bad_debt_feedback": float(l1["bad_debt"].sum()),
            "amplification": n1 / n0 if n0 > 0 else float("nan"),
            "max_rounds_per_day": int(log["rounds"].max()) if log is not None and len(log) else 0,
        })
    return pd.DataFrame(rows)
