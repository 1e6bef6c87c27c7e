"""The parametric GARCH/EWMA margin path of cross-margined accounts in one numba pass.

For account ``p`` with USD exposures ``x_{p,a}`` and date ``t``, with the
h-day volatility ``sigma_{t,a}``, the side's innovation multiplier
``q_{t,a}`` (``q+`` for a long, ``q-`` for a short) and the correlation
matrix ``R_t``::

    v_a   = x_a sigma_{t,a} q_{t,a}                  (0 where x_a = 0)
    MM    = sqrt(max(v' R_t v, 0))

(:meth:`riskmodels.margin.garch.FittedGarch.risk`, the variance-covariance
VaR/ES of the account). Only the held assets enter (an account holds 1-5 of
18), so a date costs ``m^2`` multiply-adds per account instead of the dense
``(P, A) @ (A, A)`` product and row dot; the sum runs over the held pairs in
asset order, equal to the dense path's to rounding (the dense product adds
the same non-zero terms in BLAS's order). ``path_reference`` in the tests is
the dense form.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, fastmath=False)
def cross_path(x: np.ndarray, sigma: np.ndarray, q_pos: np.ndarray, q_neg: np.ndarray, corr: np.ndarray,
               out: np.ndarray) -> None:
    """``out[t, p] = sqrt(max(v' R_t v, 0))`` for ``t < out.shape[0]`` (module docstring).

    ``x`` ``(P, A)``; ``sigma``, ``q_pos``, ``q_neg`` ``(T, A)``; ``corr``
    ``(T, A, A)``; ``out`` ``(T, P)``. A NaN volatility, multiplier or
    correlation of a held asset gives NaN (as the dense form).
    """
    P, A = x.shape
    T = out.shape[0]
    held = np.empty(A, dtype=np.int64)
    xv = np.empty(A)
    v = np.empty(A)
    for p in range(P):
        m = 0
        for a in range(A):
            if x[p, a] != 0.0:
                held[m] = a
                xv[m] = x[p, a]
                m += 1
        for t in range(T):
            for i in range(m):
                a = held[i]
                q = q_pos[t, a] if xv[i] > 0.0 else q_neg[t, a]
                v[i] = xv[i] * sigma[t, a] * q
            quad = 0.0
            for i in range(m):
                w = 0.0
                ai = held[i]
                for j in range(m):
                    w += v[j] * corr[t, held[j], ai]
                quad += w * v[i]
            out[t, p] = math.sqrt(quad) if quad > 0.0 else (quad if quad != quad else 0.0)
