"""The per-date numba kernel of :mod:`riskmodels.lending.simulate` (one pass over the accounts).

The rules it applies are documented in :mod:`riskmodels.lending.simulate` and
:mod:`riskmodels.lending.liquidation`; the column layouts of its outputs are
:data:`DAY_COLUMNS`, :data:`TOTAL_COLUMNS` and :data:`EVENT_COLUMNS`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from riskmodels.lending.liquidation import (
    MAX_HALVINGS,
    close_factor_max_repay,
    dust_ok,
    liquidator_profit,
    seize,
)

__all__ = ["DAY_COLUMNS", "EVENT_COLUMNS", "TOTAL_COLUMNS"]

#: per-date, per-asset statistics (``LendingResult.daily[t, a, c]``)
DAY_COLUMNS = ("liquidations", "seized_usd", "repaid_usd", "protocol_fee_usd", "liquidator_profit_usd",
               "deficit_usd", "bad_debt_by_collateral_usd", "supply_usd", "borrow_usd", "unprofitable")
#: per-date scalars (``LendingResult.totals[t, c]``)
TOTAL_COLUMNS = ("insolvent_usd", "underwater_accounts", "toxic_accounts", "toxic_debt_usd", "active_accounts",
                 "refused_accounts")
EVENT_COLUMNS = ("t", "account", "debt_asset", "collateral_asset", "repaid_usd", "seized_usd", "protocol_fee_usd",
                 "liquidator_profit_usd", "hf_before", "deficit_usd")

PENDING, ACTIVE, CLOSED, REFUSED = 0, 1, 2, 3
_D_LIQ, _D_SEIZED, _D_REPAID, _D_FEE, _D_PROFIT, _D_DEFICIT, _D_BYCOLL, _D_SUPPLY, _D_BORROW, _D_UNPROF = range(10)
_T_INSOLVENT, _T_UNDER, _T_TOXIC, _T_TOXDEBT, _T_ACTIVE, _T_REFUSED = range(6)


@nb.njit(cache=True, fastmath=False, nogil=True)
def _day(t, live, close, low, high, k_imp, a_imp, cap, em_lt, em_ltv, em_lb, em_borrow, emode, fee, coll_ok,
         supply_cap, borrow_cap, ceiling, iso_ok, iso_debt, iso_of, coll_q, debt_q, entry, exit_, state, tot_c, tot_d,
         aave, euler, max_disc, cf, cf_hf, full_usd, leftover, gas, max_rounds, hf_out, tox_out, ev, day, tot):
    """Advance every account through date ``t``: entries, liquidations at adverse prices, the close.

    Mutates ``coll_q``, ``debt_q``, ``state``, the reserve totals, ``iso_debt``/``iso_of`` and writes
    ``hf_out`` (close HF per account), ``tox_out`` (toxic flag at the close), ``day`` (``(A, len(DAY_COLUMNS))``), ``tot``
    (``TOTAL_COLUMNS``) and the first rows of ``ev`` (``EVENT_COLUMNS``); returns the number of events.
    ``em_*`` rows are indexed by ``emode`` (row 0 = reserve parameters).
    """
    n, A = coll_q.shape
    flow = np.zeros(A)
    n_ev = 0
    for i in range(n):
        lt = em_lt[emode[i]]
        ltv = em_ltv[emode[i]]
        lb = em_lb[emode[i]]
        if state[i] == PENDING and entry[i] == t:
            ok = True
            bp = 0.0
            dv = 0.0
            n_coll = 0
            iso = -1
            for a in range(A):
                if coll_q[i, a] > 0:
                    n_coll += 1
                    if ceiling[a] > 0.0:
                        iso = a
                if debt_q[i, a] > 0 and not em_borrow[emode[i], a]:
                    ok = False
            if iso >= 0:  # isolation mode: the only collateral, stablecoin-type debt, within the debt ceiling
                if n_coll > 1:
                    ok = False
                for a in range(A):
                    if debt_q[i, a] > 0:
                        if not iso_ok[a]:
                            ok = False
                        dv += debt_q[i, a] * close[a]
                if iso_debt[iso] + dv > ceiling[iso]:
                    ok = False
                dv = 0.0
            for a in range(A):
                if (coll_q[i, a] > 0 or debt_q[i, a] > 0) and not live[a]:
                    ok = False
                if coll_q[i, a] > 0:
                    if not coll_ok[a] or (tot_c[a] + coll_q[i, a]) * close[a] > supply_cap[a]:
                        ok = False
                    bp += coll_q[i, a] * close[a] * ltv[a]
                if debt_q[i, a] > 0:
                    dv += debt_q[i, a] * close[a]
                    if (tot_d[a] + debt_q[i, a]) * close[a] > borrow_cap[a]:
                        ok = False
            if dv > bp * (1.0 + 1e-9):
                ok = False
            if ok:
                state[i] = ACTIVE
                iso_of[i] = iso
                for a in range(A):
                    tot_c[a] += coll_q[i, a]
                    tot_d[a] += debt_q[i, a]
                    if iso >= 0:
                        iso_debt[iso] += debt_q[i, a] * close[a]
            else:
                state[i] = REFUSED
                tot[_T_REFUSED] += 1.0
                continue
            rounds = max_rounds  # opened at today's close: first exposed to liquidation tomorrow
        elif state[i] != ACTIVE:
            continue
        else:
            rounds = 0
        while rounds < max_rounds:
            cv = 0.0
            C = 0.0
            D = 0.0
            j = -1
            kc = -1
            best_d = 0.0
            best_c = 0.0
            for a in range(A):
                if coll_q[i, a] > 0 and coll_ok[a]:
                    v = coll_q[i, a] * low[a]
                    cv += v * lt[a]
                    C += v
                    if v > best_c:
                        best_c = v
                        kc = a
                if debt_q[i, a] > 0:
                    v = debt_q[i, a] * high[a]
                    D += v
                    if v > best_d:
                        best_d = v
                        j = a
            if D <= 0.0 or cv >= D:
                break
            hf = cv / D
            if kc < 0:  # no collateral left: the whole debt is a deficit
                for a in range(A):
                    if debt_q[i, a] > 0:
                        day[a, _D_DEFICIT] += debt_q[i, a] * high[a]
                        tot_d[a] -= debt_q[i, a]
                        debt_q[i, a] = 0.0
                break
            # Euler v2: the bonus is 1 / discount factor, discount factor = HF floored at 1 - max discount
            lbk = 1.0 / max(hf, 1.0 - max_disc) if euler else lb[kc]
            r_max = close_factor_max_repay(best_d, best_c, D, hf, cf, cf_hf, full_usd, aave)
            rep, sz, fe = seize(r_max, best_c, lbk, fee[kc])
            if aave and not dust_ok(rep, best_d, sz, best_c, leftover):
                r2 = min(best_d - leftover, (best_c - leftover) / lbk)
                if r2 <= 0.0:
                    break
                rep, sz, fe = seize(r2, best_c, lbk, fee[kc])
            done = False
            scale = 1.0
            profit = 0.0
            for _h in range(MAX_HALVINGS + 1):
                rr, s2, f2 = seize(rep * scale, best_c, lbk, fee[kc])
                scale *= 0.5
                if aave and not dust_ok(rr, best_d, s2, best_c, leftover):
                    continue
                profit = liquidator_profit(rr, s2, f2, flow[kc], flow[j], k_imp[kc], a_imp[kc], k_imp[j], a_imp[j],
                                           cap, kc == j) - gas
                if profit > 0.0:
                    rep, sz, fe = rr, s2, f2
                    done = True
                    break
            if not done:
                day[kc, _D_UNPROF] += 1.0
                break
            # execute
            flow[kc] -= sz - fe
            flow[j] += rep
            if sz >= best_c * (1.0 - 1e-12):
                tot_c[kc] -= coll_q[i, kc]
                coll_q[i, kc] = 0.0
            else:
                dq = sz / low[kc]
                coll_q[i, kc] -= dq
                tot_c[kc] -= dq
            if rep >= best_d * (1.0 - 1e-12):
                tot_d[j] -= debt_q[i, j]
                debt_q[i, j] = 0.0
            else:
                dq = rep / high[j]
                debt_q[i, j] -= dq
                tot_d[j] -= dq
            if iso_of[i] >= 0:  # Aave: the isolated debt falls by the repaid amount, not by a deficit
                iso_debt[iso_of[i]] = max(iso_debt[iso_of[i]] - rep, 0.0)
            day[kc, _D_LIQ] += 1.0
            day[kc, _D_SEIZED] += sz
            day[j, _D_REPAID] += rep
            day[kc, _D_FEE] += fe
            day[kc, _D_PROFIT] += profit
            deficit = 0.0
            left = 0.0
            for a in range(A):
                if coll_q[i, a] > 0 and coll_ok[a]:
                    left += coll_q[i, a]
            if left <= 0.0:  # collateral exhausted: v3.3 burns the remaining debt into the reserve deficit
                for a in range(A):
                    if debt_q[i, a] > 0:
                        v = debt_q[i, a] * high[a]
                        day[a, _D_DEFICIT] += v
                        deficit += v
                        tot_d[a] -= debt_q[i, a]
                        debt_q[i, a] = 0.0
                day[kc, _D_BYCOLL] += deficit
            if n_ev < ev.shape[0]:
                ev[n_ev, 0] = t
                ev[n_ev, 1] = i
                ev[n_ev, 2] = j
                ev[n_ev, 3] = kc
                ev[n_ev, 4] = rep
                ev[n_ev, 5] = sz
                ev[n_ev, 6] = fe
                ev[n_ev, 7] = profit
                ev[n_ev, 8] = hf
                ev[n_ev, 9] = deficit
                n_ev += 1
            rounds += 1
        # close
        cv = 0.0
        C = 0.0
        D = 0.0
        best_c = 0.0
        kc = -1
        for a in range(A):
            if coll_q[i, a] > 0:
                v = coll_q[i, a] * close[a]
                C += v
                if coll_ok[a]:
                    cv += v * lt[a]
                day[a, _D_SUPPLY] += v
                if v > best_c:
                    best_c = v
                    kc = a
            if debt_q[i, a] > 0:
                v = debt_q[i, a] * close[a]
                D += v
                day[a, _D_BORROW] += v
        tot[_T_ACTIVE] += 1.0
        if D > 0.0:
            h = cv / D
            hf_out[i] = h
            if h < 1.0:
                tot[_T_UNDER] += 1.0
            if D > C:
                tot[_T_INSOLVENT] += D - C
            if kc >= 0 and D * lb[kc] > C:
                tox_out[i] = True
                tot[_T_TOXIC] += 1.0
                tot[_T_TOXDEBT] += D
            if t >= exit_[i] and h >= 1.0:
                state[i] = CLOSED
                if iso_of[i] >= 0:
                    iso_debt[iso_of[i]] = max(iso_debt[iso_of[i]] - D, 0.0)
                for a in range(A):
                    tot_c[a] -= coll_q[i, a]
                    tot_d[a] -= debt_q[i, a]
        else:
            hf_out[i] = np.inf
            if t >= exit_[i] or C <= 0.0:
                state[i] = CLOSED
                for a in range(A):
                    tot_c[a] -= coll_q[i, a]
    return n_ev
