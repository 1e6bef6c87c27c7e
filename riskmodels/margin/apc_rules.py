"""The anti-procyclicality rules on margin paths, and their one-step (carried) forms.

Path rules act on a ``(T, ...)`` array of base margins ``b`` (rows are
dates): :func:`buffer_rule` (EMIR RTS 153/2013 Art. 28(1)(a)),
:func:`speed_limit_rule` (Murphy, Vasios & Vause 2016) and
:func:`floor_rule` (Art. 28(1)(c)); plain-numpy loop references are kept
for the parity tests. :func:`buffer_last` gives the last row of the buffer
rule from a short tail of the path where that tail decides it.

Carried steps
-------------
The account simulation carries each account's rule state from one close to
the next instead of replaying history: :func:`buffer_step` and
:func:`speed_limit_step` take today's base margins ``(N,)`` and the state
the rule left at the previous close ``(N, k)`` and return today's margin
and the new state. Iterating a step over a path from an all-NaN (fresh)
state gives exactly the path rule (``tests/test_apc_carry.py`` checks it
against the loop references), so the carried margin of an account is the
path rule applied to the account's own daily base margins since it opened.
"""

from __future__ import annotations

import numba
import numpy as np


def buffer_rule_reference(base: np.ndarray, buffer: float = 0.25) -> np.ndarray:
    """Plain-numpy :func:`buffer_rule`, a loop over dates (parity tests)."""
    b = np.asarray(base, dtype=np.float64)
    out = np.full_like(b, np.nan)
    prev = np.full(b.shape[1:], np.nan)
    for t in range(b.shape[0]):
        full = (1.0 + buffer) * b[t]
        cur = np.where(np.isnan(prev), full, np.maximum(b[t], np.minimum(full, prev)))
        cur = np.where(np.isnan(b[t]), np.nan, cur)
        out[t] = cur
        prev = cur
    return out


def speed_limit_rule_reference(base: np.ndarray, n_days: int = 20, max_increase: float = 0.5) -> np.ndarray:
    """Plain-numpy :func:`speed_limit_rule`, a loop over dates (parity tests)."""
    b = np.asarray(base, dtype=np.float64)
    out = np.full_like(b, np.nan)
    work = np.full_like(b, np.inf)  # the capped margins, +inf where NaN (ignored by min)
    for t in range(b.shape[0]):
        bt = b[t]
        if t > 0:
            ref = work[max(0, t - n_days) : t].min(axis=0)
            cur = np.where(np.isinf(ref), bt, np.minimum(bt, (1.0 + max_increase) * ref))
        else:
            cur = bt
        out[t] = cur
        work[t] = np.where(np.isnan(cur), np.inf, cur)
    return out


@numba.njit(cache=True, fastmath=False)
def _buffer_kernel(b: np.ndarray, buffer: float, out: np.ndarray) -> None:
    T, N = b.shape
    for p in range(N):
        prev = np.nan
        for t in range(T):
            bt = b[t, p]
            if np.isnan(bt):
                out[t, p] = np.nan
                prev = np.nan
                continue
            full = (1.0 + buffer) * bt
            cur = full if np.isnan(prev) else max(bt, min(full, prev))
            out[t, p] = cur
            prev = cur


def buffer_rule(base: np.ndarray, buffer: float = 0.25) -> np.ndarray:
    """EMIR Art. 28(1)(a) buffer, released when margins rise (numba).

    ``m_t = max(b_t, min((1 + B) b_t, m_{t-1}))`` with ``m = (1 + B) b`` on
    the first date (and after a NaN). In calm markets the collected margin is
    ``(1 + B) b``; when ``b`` rises the previous collected margin is kept
    (the buffer is consumed) until ``b`` exceeds it; when ``b`` falls the
    collected margin stays put unless it exceeds ``(1 + B) b``.

    Parameters
    ----------
    base : numpy.ndarray
        ``(T, ...)`` base margins, NaN where not computed.
    buffer : float
        ``B`` (0.25 in EMIR).
    """
    b = np.asarray(base, dtype=np.float64)
    b2 = np.ascontiguousarray(b.reshape(b.shape[0], -1))
    out = np.empty_like(b2)
    _buffer_kernel(b2, float(buffer), out)
    return out.reshape(b.shape)


@numba.njit(cache=True, fastmath=False)
def _buffer_last_kernel(b: np.ndarray, k: float, starts_fresh: bool, out: np.ndarray, done: np.ndarray) -> None:
    L_, N = b.shape
    for p in range(N):
        done[p] = True
        if np.isnan(b[L_ - 1, p]):
            out[p] = np.nan
            continue
        lo = -np.inf  # clamp of the dates after s, composed: clip(., lo, hi)
        hi = np.inf
        res = np.nan
        for s in range(L_ - 1, -1, -1):
            bs = b[s, p]
            if np.isnan(bs):  # the rule restarted at s + 1 with (1 + B) b_{s+1}
                res = min(max(k * b[s + 1, p], lo), hi)
                break
            u = k * bs
            if u < lo:  # m_s <= u < lo: the value is lo whatever came before
                res = lo
                break
            if bs > hi:
                res = hi
                break
            if s == 0:
                if starts_fresh:
                    res = min(max(u, lo), hi)
                else:
                    done[p] = False  # depends on dates before the span
                break
            lo = max(lo, bs)
            hi = min(hi, u)
        out[p] = res


def buffer_last(base: np.ndarray, buffer: float, starts_fresh: bool) -> tuple[np.ndarray, np.ndarray]:
    """Last row of :func:`buffer_rule` from the last rows of the base path, where they decide it.

    ``m_s = clip(m_{s-1}, b_s, (1 + B) b_s)`` is a clamp, and clamps compose:
    ``clip(clip(m, l, u), L, U) = clip(m, max(l, L), min(u, U))`` when the
    intervals meet, and the constant ``L`` (``u < L``) or ``U`` (``l > U``)
    when they do not. Walking back from the last date, ``m_T`` is therefore
    known exactly as soon as an earlier interval misses the composed one, or
    at a restart (a NaN base, or the first row when ``starts_fresh``).

    Returns
    -------
    last, done : numpy.ndarray
        ``(N,)`` the last buffered value, and True where the span decided it
        (elsewhere ``last`` is NaN and the caller replays a longer span).
    """
    b = np.ascontiguousarray(np.asarray(base, dtype=np.float64).reshape(base.shape[0], -1))
    out = np.empty(b.shape[1])
    done = np.empty(b.shape[1], dtype=np.bool_)
    _buffer_last_kernel(b, 1.0 + float(buffer), bool(starts_fresh), out, done)
    return out, done


@numba.njit(cache=True, fastmath=False)
def _speed_kernel(b: np.ndarray, n_days: int, max_increase: float, out: np.ndarray) -> None:
    T, N = b.shape
    for p in range(N):
        for t in range(T):
            bt = b[t, p]
            ref = np.inf
            for s in range(max(0, t - n_days), t):
                v = out[s, p]
                if not np.isnan(v) and v < ref:
                    ref = v
            if np.isinf(ref) or np.isnan(bt):
                out[t, p] = bt
            else:
                out[t, p] = min(bt, (1.0 + max_increase) * ref)


def speed_limit_rule(base: np.ndarray, n_days: int = 20, max_increase: float = 0.5) -> np.ndarray:
    """Speed limit on margin increases (Murphy, Vasios & Vause 2016, BoE SWP 597), numba.

    The margin may not rise by more than ``x = max_increase`` over any
    ``n`` days: ``m_t = min(b_t, (1 + x) min_{t-n <= s < t} m_s)`` (minimum
    over the finite ``m_s``; ``m_t = b_t`` when there are none). Decreases pass
    through at once. The capped margin can sit below the base margin for a
    while: the trade-off the paper studies.
    """
    b = np.asarray(base, dtype=np.float64)
    b2 = np.ascontiguousarray(b.reshape(b.shape[0], -1))
    out = np.empty_like(b2)
    _speed_kernel(b2, int(n_days), float(max_increase), out)
    return out.reshape(b.shape)


def floor_rule(base: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``max(base, floor)``; a NaN floor lets the base through, a NaN base stays NaN."""
    b = np.asarray(base, dtype=np.float64)
    f = np.asarray(floor, dtype=np.float64)
    return np.where(np.isfinite(f), np.maximum(b, f), b)


# ------------------------------------------------------------ carried steps
def buffer_step(base: np.ndarray, prev: np.ndarray, buffer: float) -> np.ndarray:
    """One date of :func:`buffer_rule`: ``m = max(b, min((1 + B) b, m_prev))``, ``(1 + B) b`` if fresh.

    ``prev`` is the margin the rule set at the previous date (NaN = fresh:
    a new or re-opened account, or after a NaN base). A NaN base gives NaN.
    """
    b = np.asarray(base, dtype=np.float64)
    full = (1.0 + float(buffer)) * b
    with np.errstate(invalid="ignore"):
        cur = np.where(np.isnan(prev), full, np.maximum(b, np.minimum(full, prev)))
    return np.where(np.isnan(b), np.nan, cur)


def speed_limit_step(base: np.ndarray, last: np.ndarray, max_increase: float) -> tuple[np.ndarray, np.ndarray]:
    """One date of :func:`speed_limit_rule` from the ``n`` previous capped margins.

    ``last`` is ``(N, n)``: the capped margins of the ``n`` previous dates,
    oldest first, NaN where there was none (ignored by the minimum, as the
    path rule ignores NaN dates). ``m = min(b, (1 + x) min(last))``, or ``b``
    when ``last`` has no finite value. Returns ``m`` and the shifted window.
    """
    b = np.asarray(base, dtype=np.float64)
    ref = np.where(np.isnan(last), np.inf, last).min(axis=1) if last.shape[1] else np.full(b.shape, np.inf)
    cur = np.where(np.isinf(ref) | np.isnan(b), b, np.minimum(b, (1.0 + float(max_increase)) * ref))
    new = np.empty_like(last)
    if last.shape[1]:
        new[:, :-1] = last[:, 1:]
        new[:, -1] = cur
    return cur, new
