"""Account simulation: open at IM x (1 + cushion), mark daily, liquidate, re-enter.

Rules (each a documented choice; README "Conventions")
------------------------------------------------------
* **Opening** at date t (close): quantities ``q = amount / C[t]`` for the
  book's collateral and perp amounts; perps enter at ``C[t]``; cash is set so
  that equity = ``IM_t x (1 + cushion)`` (cash may be negative: a USD loan
  against collateral). The book's own cash is ignored: the model decides how
  much capital the account must bring, which is what makes models comparable.
* **Equity** ``E = cash + sum q_coll * P + sum q_perp * (P - entry)``.
* **Intraday check** on day t: every asset at its adverse extreme for the
  account - the low where the account's net quantity (collateral + perp) is
  long, the high where it is short. For books long some assets and short
  others this assumes all extremes happen at once: a conservative upper bound
  on the intraday drawdown (the true path is unknown from daily bars). The
  maintenance requirement there uses the model's state of t-1 (margin is set
  at the previous close) on the holdings valued at the adverse prices.
* **Close check** on day t: equity at the close against the maintenance
  margin the model sets at t.
* **Liquidation** closes the whole account at the trigger prices with
  slippage against the trade (sell at ``P(1 - s)``, buy back at ``P(1 + s)``),
  then charges a penalty ``pi x perp notional`` out of what is left. With
  ``closeout = "impact"`` the close-out also pays the price impact of the
  account's net order per asset against the day's volume, so the cost grows
  with the position (:mod:`riskmodels.backtest.closeout`). A positive
  remainder returns to the trader; a negative remainder is **bad debt**.
* **Re-entry**: ``reentry_days = N`` re-opens the account's book N days later
  (at the then prices and requirement); ``None`` keeps it closed.
* An account opens on the first date >= start when every asset it holds is
  eligible (live with ``min_history`` returns); an asset that stops trading
  while held closes the account at its last close with no penalty
  (event ``delisted``).
* **Path-dependent margins** (the APC buffer and speed limit,
  :mod:`riskmodels.margin.apc`): a model with ``carried_requirement`` gets
  each account's rule state from the previous close and returns the new one;
  the state is kept only at the close (the intraday check steps from it
  without committing) and starts fresh when the account opens or re-opens.

The loop runs over dates; every step is vectorised over accounts: in numba
kernels (:mod:`riskmodels.backtest.simulation_fast`) in the common case, in
numpy (:mod:`riskmodels.backtest.simulation_numpy`, also the reference the
kernels are tested against) for feedback runs and per-account intraday bounds.
"""

from __future__ import annotations

import numba
import numpy as np

from riskmodels.backtest.simulation_types import (
    EVENT_DTYPE,
    OPENING_DTYPE,
    TRIGGERS,
    LiquidationPolicy,
    SimulationResult,
)
from riskmodels.margin.base import FittedMargin
from riskmodels.portfolio import Book

__all__ = ["EVENT_DTYPE", "OPENING_DTYPE", "TRIGGERS", "LiquidationPolicy", "SimulationResult", "simulate_accounts"]


def simulate_accounts(
    fitted: FittedMargin,
    book: Book,
    policy: LiquidationPolicy,
    *,
    start: int,
    end: int | None = None,
    asset_ok: np.ndarray | None = None,
) -> SimulationResult:
    """Walk the accounts of ``book`` forward from date index ``start`` to ``end``.

    Parameters
    ----------
    fitted : FittedMargin
        The margin model fitted on the panel (its ``panel`` gives prices).
    book : Book
        Account templates (USD amounts at each opening).
    policy : LiquidationPolicy
    start, end : int
        First and last date index (inclusive) of the simulation.
    asset_ok : numpy.ndarray, optional
        ``(T, A)`` bool of assets a new account may hold (default: live).
    """
    # one requirement per date on at most a few thousand accounts: numba's thread
    # pool only adds overhead there (measured on 2 cores: the HS tail kernel on
    # 1,000 x 500 losses took 8 ms with the parallel kernel, 0.7 ms on one thread)
    from riskmodels.backtest.simulation_fast import fast_path_applies, simulate_fast
    from riskmodels.backtest.simulation_numpy import simulate_numpy

    run = simulate_fast if fast_path_applies(fitted, policy) else simulate_numpy
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return run(fitted, book, policy, start, end, asset_ok)
    finally:
        numba.set_num_threads(threads)


