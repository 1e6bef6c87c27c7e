"""Plain-numpy lending simulation: what a competent quant writes without numba.

Written from the documented rules (riskmodels/lending/simulate.py and
liquidation.py docstrings: Aave v3.3 close factor, dust rule, seizure, fee,
deficit; adverse low/high prices; accounts open at the close of their entry
date and leave at the close of their exit date when healthy), not from the
kernel's code. Vectorised over accounts: each date runs up to ``max_rounds``
rounds, each round liquidates every liquidatable account once with numpy
array operations. Scope: no price impact (the impact of the kernel depends on
the order of the fills within a day, which a round-vectorised program cannot
reproduce), no supply or borrow caps, no e-mode, no isolation mode. Under that scope the results are the
kernel's (the liquidator's halving never helps without impact).
"""

from __future__ import annotations

import numpy as np


def simulate_numpy(p: dict, close, low, high, coll_q, debt_q, entry, exit_, start, end, *, aave=True, cf=0.5,
                   cf_hf=0.95, full=2000.0, leftover=1000.0, gas=0.0, max_rounds=20):
    """Returns ``hf`` (T_w, n) at the close and ``deficit`` (T_w, A) by debt reserve."""
    coll = coll_q.astype(np.float64).copy()
    debt = debt_q.astype(np.float64).copy()
    n, A = coll.shape
    lt, ltv, lb, fee = p["lt"], p["ltv"], p["lb"], p["protocol_fee"]
    cok = p["collateral"].astype(np.float64)
    state = np.zeros(n, dtype=np.int8)
    state[entry < start] = 3
    Tw = end - start + 1
    hf_out = np.full((Tw, n), np.nan)
    deficit = np.zeros((Tw, A))
    for w, t in enumerate(range(start, end + 1)):
        live = np.isfinite(close[t]) & (close[t] > 0)
        c_t, l_t, h_t = (np.where(live, x[t], 1.0) for x in (close, low, high))
        new = np.flatnonzero((state == 0) & (entry == t))
        if new.size:
            held = (coll[new] > 0) | (debt[new] > 0)
            ok = ~(held & ~live).any(axis=1) & ~((coll[new] > 0) & (cok == 0)).any(axis=1)
            ok &= debt[new] @ c_t <= (coll[new] * c_t) @ ltv * (1 + 1e-9)
            state[new[ok]] = 1
            state[new[~ok]] = 3
        act = (state == 1)
        act[new] = False
        for _ in range(max_rounds):
            cvals = coll * l_t * cok
            dvals = debt * h_t
            cv = cvals @ lt
            D = dvals.sum(axis=1)
            idx = np.flatnonzero(act & (D > 0) & (cv < D))
            if idx.size == 0:
                break
            cvi, dvi, Di = cvals[idx], dvals[idx], D[idx]
            C = cvi.sum(axis=1)
            k = cvi.argmax(axis=1)
            j = dvi.argmax(axis=1)
            bc = cvi[np.arange(idx.size), k]
            bd = dvi[np.arange(idx.size), j]
            hf = cv[idx] / Di
            empty = C <= 0
            if empty.any():
                e = idx[empty]
                deficit[w] += (debt[e] * h_t).sum(axis=0)
                debt[e] = 0.0
            lbk, fk = lb[k], fee[k]
            part = aave & (bc >= full) & (bd >= full) & (hf > cf_hf)
            rmax = np.where(part, np.minimum(bd, cf * Di), bd)

            def seize(r, lbk=lbk, bc=bc, fk=fk):
                sz = r * lbk
                cap = sz > bc
                sz = np.where(cap, bc, sz)
                r = np.where(cap, bc / lbk, r)
                return r, sz, (sz - sz / lbk) * fk

            def dust(r, sz, bd=bd, bc=bc):
                fulls = (r >= bd * (1 - 1e-12)) | (sz >= bc * (1 - 1e-12))
                tol = leftover * (1 - 1e-12)
                return fulls | ((bd - r >= tol) & (bc - sz >= tol))

            rep, sz, fe = seize(rmax)
            if aave:
                bad = ~dust(rep, sz)
                r2 = np.minimum(bd - leftover, (bc - leftover) / lbk)
                rep2, sz2, fe2 = seize(np.maximum(r2, 0.0))
                rep, sz, fe = (np.where(bad, x2, x) for x, x2 in ((rep, rep2), (sz, sz2), (fe, fe2)))
                stuck = bad & (r2 <= 0)
                ok_dust = dust(rep, sz)
            else:
                stuck = np.zeros(idx.size, dtype=bool)
                ok_dust = np.ones(idx.size, dtype=bool)
            profit = (sz - fe) - rep - gas
            do = ~empty & ~stuck & ok_dust & (profit > 0)
            act[idx[~do]] = False  # not liquidated this day any more
            if not do.any():
                continue
            ii, kk, jj = idx[do], k[do], j[do]
            fullc = sz[do] >= bc[do] * (1 - 1e-12)
            coll[ii, kk] = np.where(fullc, 0.0, coll[ii, kk] - sz[do] / l_t[kk])
            fulld = rep[do] >= bd[do] * (1 - 1e-12)
            debt[ii, jj] = np.where(fulld, 0.0, debt[ii, jj] - rep[do] / h_t[jj])
            gone = ((coll[ii] > 0) & (cok > 0)).sum(axis=1) == 0
            if gone.any():
                g = ii[gone]
                deficit[w] += (debt[g] * h_t).sum(axis=0)
                debt[g] = 0.0
        opened = (state == 1)
        cvc = (coll * c_t * cok) @ lt
        Dc = debt @ c_t
        h = np.where(Dc > 0, cvc / np.where(Dc > 0, Dc, 1.0), np.inf)
        hf_out[w, opened] = h[opened]
        leave = opened & (t >= exit_) & ((Dc == 0) | (h >= 1.0))
        leave |= opened & (Dc == 0) & ((coll * c_t).sum(axis=1) <= 0)
        state[leave] = 2
    return hf_out, deficit
