"""SPAN with options: the 16-scenario grid with a real volatility dimension (``scenario_grid``).

Facts: METHODOLOGY.md 1.1-1.2 (CME SPAN). Each asset is a combined commodity
holding its spot collateral, perps and options. The risk array of an option
*contract* is computed from the pricer (full revaluation, not a per-USD
exposure): for scenario ``s`` with price move ``p_s`` (a multiple of the price
scan range PSR) and vol move ``v_s`` in {+1, -1, 0}::

    F_s     = F (1 + p_s PSR_a)
    sigma_s = sigma (1 + v_s VSR_a)          (vsr_mode="relative", default)
            = sigma + v_s VSR_a              (vsr_mode="absolute", vol points)
    RA_u[s] = -w_s (V(F_s, K, tau - look_ahead, sigma_s) - V(F, K, tau, sigma))

(``w_s`` = 1 for scenarios 1-14 and the extreme cover for 15/16, whose move is
``extreme_multiplier`` x PSR at unchanged vol; time decays by the look-ahead,
one day by default, in every scenario as CME's risk arrays do). Linear
holdings keep their per-USD fast path ``e_a RA_lin[a, s]``. Per combined
commodity, positions are summed per scenario before the maximum (so a covered
call or a delta hedge nets)::

    scan_a  = max(max_s (e_a RA_lin[a, s] + sum_u W[n, u] RA_u[s]), 0)
    SOM_a   = som_rate x PSR_a x F_a x (short calls + short puts)   (som_method="sum", CME code 2)
            = som_rate x PSR_a x F_a x max(short calls, short puts) (som_method="max", CME code 1)
    risk_a  = max(scan_a, SOM_a)
    MM      = sum_a risk_a + haircut . collateral,    IM = im_multiplier x MM

The short option minimum is "a percentage of the outright margin on one
underlying futures contract" per short option (CME advisories; METHODOLOGY
1.2); the outright margin of one unit of the underlying is ``PSR x F`` here,
so ``som_rate`` is that percentage (a free parameter: CME sets it per
product as a dollar amount).

Net option value
----------------
SPAN subtracts the net option value (long premium a credit, short premium a
charge) from the risk because its collateral excludes option premiums. In
riskmodels the account's equity includes the options' mark, so the
requirement is the risk alone and is compared with that equity: the two are
the same test. A long option's requirement therefore never exceeds its
premium (its loss is bounded by its value and ``w_s <= 1``; SOM applies to
short options only).

Limits: inter-commodity spreads (``spreads``, ``scan_spreads``) use composite
deltas that are not formed for options yet: a model with spreads refuses
options with a clear error. ``scan="joint"`` scans every asset's loss summed
per scenario: ``risk = max(joint scan, sum_a SOM_a)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from riskmodels.errors import UserError
from riskmodels.instruments.options import OptionState
from riskmodels.margin.base import Requirement, per_asset
from riskmodels.margin.options_scan import Contracts, asset_pnl, contracts, on_assets, revalue

if TYPE_CHECKING:
    from riskmodels.margin.span import FittedScenarioGrid

__all__ = ["option_risk_arrays", "requirement"]


def _vsr(fit: FittedScenarioGrid) -> np.ndarray:
    m = fit.model
    return per_asset("vsr", m.vsr, fit.panel.assets, 0.0, 10.0)  # type: ignore[attr-defined]


def option_risk_arrays(fit: FittedScenarioGrid, t: int, options: OptionState,
                       n_accounts: int) -> tuple[Contracts, np.ndarray]:
    """The contracts of ``options`` on the panel's assets and their ``(S, U)`` weighted risk arrays (loss > 0)."""
    m = fit.model
    table = fit.table
    c = on_assets(contracts(options, n_accounts), options, fit.panel.assets)
    rng = fit.ranges[int(t)]  # (A,)
    move = table.scaled[:, None] * rng[None, c.asset] + table.absolute[:, None]  # (S, U)
    vsr = _vsr(fit)[c.asset]
    vol = table.vol[:, None]
    if m.vsr_mode == "relative":  # type: ignore[attr-defined]
        sig = c.iv[None, :] * (1.0 + vol * vsr[None, :])
    else:
        sig = c.iv[None, :] + vol * vsr[None, :]
    pnl = revalue(c, 1.0 + move, sig, m.look_ahead_days)  # type: ignore[attr-defined]
    return c, -table.weight[:, None] * pnl


def requirement(fit: FittedScenarioGrid, t: int, collateral: np.ndarray, positions: np.ndarray,
                options: OptionState) -> Requirement:
    """IM and MM of ``N`` accounts holding spot, perps and options at date index ``t`` (module docstring)."""
    m = fit.model
    if m.spreads or m.scan_spreads:  # type: ignore[attr-defined]
        raise UserError(
            f"margin model {m.label!r}: inter-commodity spreads (spreads / scan_spreads) are not implemented "
            "for books with options (composite deltas of options are not formed); remove the spreads from "
            "the model's params or the options from the book"
        )
    t = int(t)
    coll = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
    pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    N, A = coll.shape
    e = coll + pos
    c, ra_opt = option_risk_arrays(fit, t, options, N)
    loss = e[:, :, None] * fit._ra0[t][None, :, :]  # (N, A, S) linear, per USD
    if c.n:
        loss += asset_pnl(c, ra_opt, A)  # weighted option losses per account and asset
    if m.scan == "joint":  # type: ignore[attr-defined]
        risk = np.maximum(np.maximum(loss.sum(axis=1).max(axis=-1), 0.0), _som(fit, t, c, N, A).sum(axis=1))
    else:
        scan = np.maximum(loss.max(axis=-1), 0.0)  # (N, A)
        scan = np.maximum(scan, _som(fit, t, c, N, A))
        risk = scan.sum(axis=1)
    mm = risk + coll @ fit.haircut
    held = (coll != 0) | (pos != 0)
    if c.n:
        held_opt = np.zeros((N, A), dtype=bool)
        rows, cols = c.weights.nonzero()
        held_opt[rows, c.asset[cols]] = True
        held |= held_opt
    bad = (held & ~fit.asset_ok[t]).any(axis=1)
    mm = np.where(bad, np.nan, mm)
    return Requirement(m.im_multiplier * mm, mm)  # type: ignore[attr-defined]


def _som(fit: FittedScenarioGrid, t: int, c: Contracts, N: int, A: int) -> np.ndarray:
    """``(N, A)`` short option minimum per account and combined commodity."""
    m = fit.model
    if c.n == 0 or m.som_rate == 0:  # type: ignore[attr-defined]
        return np.zeros((N, A))
    sh_call = sparse.csr_matrix((np.where(c.is_call, 1.0, 0.0), (np.arange(c.n), c.asset)), shape=(c.n, A))
    sh_put = sparse.csr_matrix((np.where(c.is_call, 0.0, 1.0), (np.arange(c.n), c.asset)), shape=(c.n, A))
    calls = np.asarray((c.short @ sh_call).todense())
    puts = np.asarray((c.short @ sh_put).todense())
    count = calls + puts if m.som_method == "sum" else np.maximum(calls, puts)  # type: ignore[attr-defined]
    spot = np.zeros(A)
    spot[c.asset] = c.spot
    unit = m.som_rate * np.nan_to_num(fit.ranges[t]) * spot  # type: ignore[attr-defined]
    return count * unit[None, :]
