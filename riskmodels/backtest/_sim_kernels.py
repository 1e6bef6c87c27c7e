"""numba kernels of the account simulation's per-date steps (:mod:`.simulation_fast`).

Each kernel does, in one pass over the accounts' held assets (:func:`held_lists`) and without
temporaries, what one phase of the numpy loop
(:func:`riskmodels.backtest.simulation_numpy.simulate_numpy`) does with a dozen
array expressions. The arithmetic is the same; only the order of the sums
over assets may differ (sequential here, pairwise in numpy), i.e. by a few
ulps of each equity.

State (one row per account): ``q_coll`` / ``q_pos`` quantities, ``entry``
perp entry prices, ``cash``, ``q_net = q_coll + q_pos``, ``pos_cost =
sum_a q_pos entry``; equity at prices ``px`` is
``E = cash - pos_cost + sum_a q_net_a px_a``.
"""

from __future__ import annotations

import numba
import numpy as np

from riskmodels._numba_cache import frozen


def held_lists(held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The held assets of each account as compressed rows: account ``p`` holds ``hidx[hptr[p]:hptr[p + 1]]``.

    ``held`` is the book's ``(P, A)`` mask (:meth:`riskmodels.portfolio.Book.held`);
    the assets of a row are in increasing order, so a sum over them adds the
    terms a loop over every asset adds, in the same order, minus the
    exact zeros of the assets the account does not hold.
    """
    held = np.asarray(held, dtype=np.bool_)
    hptr = np.zeros(held.shape[0] + 1, dtype=np.int64)
    np.cumsum(held.sum(axis=1), out=hptr[1:])
    return hptr, np.nonzero(held)[1].astype(np.int64)


@numba.njit(cache=True, inline="always")
def equity_row(cash: np.ndarray, pos_cost: np.ndarray, q_net: np.ndarray, p: int, px: np.ndarray,
               hptr: np.ndarray, hidx: np.ndarray) -> float:
    """``cash_p - pos_cost_p + sum_a q_net[p, a] px_a`` over the held assets (the others' terms are exact zeros)."""
    s = 0.0
    for j in range(hptr[p], hptr[p + 1]):
        a = hidx[j]
        s += q_net[p, a] * px[a]
    return cash[p] - pos_cost[p] + s


@numba.njit(cache=True, inline="always")
def adverse_price(c: float, q_net: float, lo: float, hi: float) -> float:
    """The low where the account is net long in the asset, the high where net short, else the close ``c``."""
    long = 1.0 if q_net > 0 else 0.0
    short = 1.0 if q_net < 0 else 0.0
    return c + long * (lo - c) + short * (hi - c)


@numba.njit(cache=True, fastmath=False)
def delisted_rows(is_open: np.ndarray, hptr: np.ndarray, hidx: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Open accounts that hold an asset with no close today (``hptr`` / ``hidx``: :func:`held_lists`)."""
    P = is_open.size
    out = np.empty(P, dtype=np.int64)
    n = 0
    for p in range(P):
        if is_open[p]:
            for j in range(hptr[p], hptr[p + 1]):
                if not finite[hidx[j]]:
                    out[n] = p
                    n += 1
                    break
    return out[:n]


@numba.njit(cache=True, fastmath=False)
def intraday_rows(
    is_open: np.ndarray,
    hptr: np.ndarray,
    hidx: np.ndarray,
    q_coll: np.ndarray,
    q_pos: np.ndarray,
    q_net: np.ndarray,
    cash: np.ndarray,
    pos_cost: np.ndarray,
    cz: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    prev: np.ndarray,
    lip: np.ndarray,
    use_lip: bool,
    mm_prev: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open accounts whose intraday requirement must be computed, at their adverse prices.

    The adverse price of asset ``a`` is the low where the account is net long,
    the high where net short, the close otherwise (``cz + long (lo - cz) +
    short (hi - cz)``, as the numpy loop writes it). With ``use_lip`` an
    account is skipped when its equity at those prices is provably above the
    maintenance (the screen of
    :func:`riskmodels.backtest.simulation_numpy._intraday_safe`)::

        ub = mm_prev + move + 1e-9 (|mm_prev| + move + scale),
        move = sum_a L_a g_a |px_a - prev_a|,  scale = sum_a L_a g_a px_a,
        g_a = |q_coll_a| + |q_pos_a|  (held assets only; L_a = +inf where not finite)

    and ``E >= ub`` with ``ub`` finite.

    The sums run over each account's held assets (``hptr`` / ``hidx``,
    :func:`held_lists`) in asset order: an asset it does not hold has zero
    quantities, so its terms are exact zeros and its adverse price is the
    close (``lo``, ``hi`` and ``cz`` are finite), the numbers of a loop over
    every asset (issue 23: ~4.5 of the default book's 18 assets are held).

    Returns
    -------
    rows, px, collateral, positions, equity
        ``(n,)`` account indices, ``(n, A)`` adverse prices, USD collateral
        ``q_coll px`` and perp amounts ``q_pos px``, ``(n,)`` equity at ``px``.
    """
    P, A = q_net.shape
    idx = np.empty(P, dtype=np.int64)
    eqs = np.empty(P)
    n = 0
    for p in range(P):
        if not is_open[p]:
            continue
        s = 0.0
        for j in range(hptr[p], hptr[p + 1]):
            a = hidx[j]
            s += q_net[p, a] * adverse_price(cz[a], q_net[p, a], lo[a], hi[a])
        e = cash[p] - pos_cost[p] + s
        if use_lip:
            m0 = mm_prev[p]
            move = 0.0
            scale = 0.0
            for j in range(hptr[p], hptr[p + 1]):
                a = hidx[j]
                g = abs(q_coll[p, a]) + abs(q_pos[p, a])
                if g > 0:
                    x = adverse_price(cz[a], q_net[p, a], lo[a], hi[a])
                    la = lip[a] if np.isfinite(lip[a]) else np.inf
                    move += g * abs(x - prev[a]) * la
                    scale += g * x * la
            ub = m0 + move + 1e-9 * (abs(m0) + move + scale)
            if np.isfinite(ub) and e >= ub:
                continue
        eqs[n] = e
        idx[n] = p
        n += 1
    pxs = np.empty((n, A))
    cx = np.empty((n, A))
    pp = np.empty((n, A))
    for i in range(n):
        p = idx[i]
        for a in range(A):
            x = adverse_price(cz[a], q_net[p, a], lo[a], hi[a])
            pxs[i, a] = x
            cx[i, a] = q_coll[p, a] * x
            pp[i, a] = q_pos[p, a] * x
    return idx[:n].copy(), pxs, cx, pp, eqs[:n].copy()


@numba.njit(cache=True, fastmath=False)
def close_rows(
    is_open: np.ndarray,
    reopen_at: np.ndarray,
    live_t: np.ndarray,
    hptr: np.ndarray,
    hidx: np.ndarray,
    t: int,
    q_coll: np.ndarray,
    q_pos: np.ndarray,
    cz: np.ndarray,
    coll_t: np.ndarray,
    pos_t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Accounts priced at the close: the open ones and those (re-)opening today.

    An account opens when it is closed, due (``0 <= reopen_at <= t``) and
    eligible: every asset it holds (``hptr`` / ``hidx``, :func:`held_lists`)
    is ok at ``t`` (``live_t`` ``(A,)``; the row ``t`` of
    :func:`riskmodels.margin.base.account_eligibility`). Open accounts are
    priced on their quantities at the close ``cz``; opening ones on the
    book's template amounts.

    Returns
    -------
    rows, new, collateral, positions
        ``(n,)`` indices, ``(n,)`` bool opening today, ``(n, A)`` USD amounts.
    """
    P, A = q_coll.shape
    idx = np.empty(P, dtype=np.int64)
    n = 0
    for p in range(P):
        take = is_open[p]
        if not take and reopen_at[p] >= 0 and reopen_at[p] <= t:
            take = True
            for j in range(hptr[p], hptr[p + 1]):
                if not live_t[hidx[j]]:
                    take = False
                    break
        if take:
            idx[n] = p
            n += 1
    new = np.empty(n, dtype=np.bool_)
    cx = np.empty((n, A))
    pp = np.empty((n, A))
    for i in range(n):
        p = idx[i]
        new[i] = not is_open[p]
        if new[i]:
            for a in range(A):
                cx[i, a] = coll_t[p, a]
                pp[i, a] = pos_t[p, a]
        else:
            for a in range(A):
                cx[i, a] = q_coll[p, a] * cz[a]
                pp[i, a] = q_pos[p, a] * cz[a]
    return idx[:n].copy(), new, cx, pp


@numba.njit(cache=True, fastmath=False)
def close_hits(rows: np.ndarray, new: np.ndarray, cash: np.ndarray, pos_cost: np.ndarray, q_net: np.ndarray,
               cz: np.ndarray, maintenance: np.ndarray, hptr: np.ndarray, hidx: np.ndarray) -> np.ndarray:
    """Positions ``i`` into ``rows`` of accounts open before today whose close equity is below ``maintenance[i]``.

    A NaN maintenance never liquidates (the comparison is False), as in numpy.
    """
    out = np.empty(rows.size, dtype=np.int64)
    n = 0
    for i in range(rows.size):
        if not new[i]:
            if equity_row(cash, pos_cost, q_net, rows[i], cz, hptr, hidx) < maintenance[i]:
                out[n] = i
                n += 1
    return out[:n].copy()


@numba.njit(cache=True, fastmath=False)
def open_accounts(
    nr: np.ndarray,
    cz: np.ndarray,
    held: np.ndarray,
    coll_t: np.ndarray,
    pos_t: np.ndarray,
    initial: np.ndarray,
    k: float,
    q_coll: np.ndarray,
    q_pos: np.ndarray,
    entry: np.ndarray,
    q_net: np.ndarray,
    pos_cost: np.ndarray,
    cash: np.ndarray,
    is_open: np.ndarray,
) -> np.ndarray:
    """Open accounts ``nr`` at the close: ``q = amount / cz``, perps enter at ``cz``, equity = ``IM (1 + k)``.

    ``cash = (1 + k) IM - sum_a collateral_a`` (the perps are worth 0 at
    entry). Returns the ``(n,)`` gross perp notional of each opening.
    """
    A = cz.size
    notional = np.empty(nr.size)
    for i in range(nr.size):
        p = nr[i]
        cost = 0.0
        csum = 0.0
        gross = 0.0
        for a in range(A):
            h = held[p, a]
            safe = cz[a] if h else 1.0
            qc = coll_t[p, a] / safe
            qp = pos_t[p, a] / safe
            en = cz[a] if h else 0.0
            q_coll[p, a] = qc
            q_pos[p, a] = qp
            entry[p, a] = en
            q_net[p, a] = qc + qp
            cost += qp * en
            csum += coll_t[p, a]
            gross += abs(pos_t[p, a])
        pos_cost[p] = cost
        cash[p] = (1.0 + k) * initial[i] - csum
        is_open[p] = True
        notional[i] = gross
    return notional


@numba.njit(cache=True, fastmath=False)
def record_close(
    rows: np.ndarray,
    pp: np.ndarray,
    maintenance: np.ndarray,
    is_open: np.ndarray,
    cash: np.ndarray,
    pos_cost: np.ndarray,
    q_net: np.ndarray,
    cz: np.ndarray,
    mm_last: np.ndarray,
    out_mm: np.ndarray,
    out_eq: np.ndarray,
    out_open: np.ndarray,
    hptr: np.ndarray,
    hidx: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Record the close: maintenance of the priced accounts still open, equity and the open flag of all.

    Returns the gross perp notional of the priced accounts still open and the
    positions ``i`` into ``rows`` of those accounts (their carried state is
    committed by the caller).
    """
    notional = 0.0
    still = np.empty(rows.size, dtype=np.int64)
    n = 0
    for i in range(rows.size):
        p = rows[i]
        if is_open[p]:
            m = maintenance[i]
            out_mm[p] = m
            mm_last[p] = m
            for j in range(hptr[p], hptr[p + 1]):  # the other assets' amounts are zeros
                notional += abs(pp[i, hidx[j]])
            still[n] = i
            n += 1
    for p in range(is_open.size):
        if is_open[p]:
            out_eq[p] = equity_row(cash, pos_cost, q_net, p, cz, hptr, hidx)
            out_open[p] = True
    return notional, still[:n].copy()


def cache_is_warm() -> bool:
    """True if numba's cache has every kernel of :func:`warm` for this source and CPU (:mod:`riskmodels._numba_cache`).

    With a warm cache :func:`warm` would only load the kernels into a
    process that does not run them (0.16-0.33 CPU-s taken from the
    workers); the engine then skips it.
    """
    from riskmodels._numba_cache import is_cached

    return is_cached(delisted_rows, intraday_rows, close_rows, close_hits, open_accounts, record_close)


def warm() -> None:
    """Compile (or load from numba's cache) every kernel on tiny inputs.

    The engine calls it in a thread of the parent while the model workers fit,
    so that on a cold cache the kernels compile once (~6 CPU-s) instead of once
    per worker, off the workers' critical path.
    """
    P, A = 2, 2
    z = np.zeros((P, A))
    no = np.zeros(P, dtype=np.bool_)
    v = np.zeros(P)
    a = np.ones(A)
    hptr, hidx = held_lists(np.zeros((P, A), dtype=np.bool_))
    live = np.ones(A, dtype=np.bool_)
    delisted_rows(no, hptr, hidx, live)  # ``finite`` of a date: a fresh writable array
    intraday_rows(no, hptr, hidx, z, z, z, v, v, a, a, a, a, a, True, v)
    zf = frozen(z)  # the book's collateral and positions: read-only views (simulation_fast)
    rows, new, _, pp = close_rows(no, np.zeros(P, dtype=np.int64), frozen(np.ones((1, A), dtype=np.bool_))[0], hptr,
                                  hidx, 0, z, z, a, zf, zf)  # live_t: a row of the frozen (T, A) mask
    close_hits(rows, new, v, v, z, a, v, hptr, hidx)
    open_accounts(rows, a, np.zeros((P, A), dtype=np.bool_), zf, zf, v, 0.5, z, z, z, z, v, v, no.copy())
    record_close(rows, pp, v, no, v, v, z, a, v, np.zeros(P, np.float32), np.zeros(P, np.float32), no.copy(),
                 hptr, hidx)
