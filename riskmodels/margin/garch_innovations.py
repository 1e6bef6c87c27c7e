"""Innovation distributions of the GARCH margin: quantile and ES multipliers, ppf.

Holds :func:`quantile_multipliers` (the loss multipliers ``[qL, qS, esL, esS]``
of the fitted unit-variance innovation distribution: normal, Student-t,
Hansen skew-t) and ``_dist_ppf`` (its inverse CDF, used to draw the EGARCH
simulation's common random numbers). Used by the schedule of
:mod:`riskmodels.margin.garch_fit`, which re-exports
:func:`quantile_multipliers`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

# scipy.stats and scipy.integrate are imported where used: at module level they were ~0.34 s of
# every `riskmodels backtest` start-up (the engine imports this module through the GARCH model)


def quantile_multipliers(dist: str, params: np.ndarray, c: float) -> np.ndarray:
    """Loss multipliers of a unit-variance innovation: ``[qL, qS, esL, esS]``.

    * normal: ``q = Phi^{-1}(c)``, ``ES = phi(q) / (1 - c)`` (both sides);
    * Student-t standardised to unit variance (arch's ``StudentsT``):
      ``q = t_nu^{-1}(c) sqrt((nu - 2) / nu)`` and
      ``ES = sqrt((nu - 2)/nu) f_nu(t_c) (nu + t_c^2) / ((nu - 1)(1 - c))``
      (McNeil, Frey & Embrechts 2015, *Quantitative Risk Management*, ex. 2.19);
    * Hansen skew-t (arch's ``SkewStudent``, parameters ``eta, lambda``):
      ``qL = -F^{-1}(1 - c)``, ``qS = F^{-1}(c)`` from arch's ppf, ES by
      numerical integration of the ppf over the tail,
      ``ES = (1/(1 - c)) int_c^1 q(u) du``.
    """
    if dist == "normal":
        from scipy import stats

        q = float(stats.norm.ppf(c))
        es = float(stats.norm.pdf(q) / (1.0 - c))
        return np.array([q, q, es, es])
    if dist == "t":
        nu = float(params[0])
        # scipy.special directly: scipy.stats' frozen-distribution overhead was a
        # quarter of the GARCH schedule's time (one call per refit)
        tc = float(special.stdtrit(nu, c))
        s = math.sqrt((nu - 2.0) / nu)
        log_pdf = (special.gammaln((nu + 1.0) / 2.0) - special.gammaln(nu / 2.0) - 0.5 * math.log(nu * math.pi)
                   - (nu + 1.0) / 2.0 * math.log1p(tc * tc / nu))
        es = s * math.exp(log_pdf) * (nu + tc * tc) / ((nu - 1.0) * (1.0 - c))
        return np.array([s * tc, s * tc, es, es])
    if dist == "skewt":
        from arch.univariate import SkewStudent
        from scipy import integrate

        d = SkewStudent()
        p = np.asarray(params, dtype=np.float64)

        def ppf(u: float) -> float:
            return float(d.ppf(np.array([u]), p)[0])

        qL = -ppf(1.0 - c)
        qS = ppf(c)
        lo = integrate.quad(ppf, 0.0, 1.0 - c, limit=200)[0]
        hi = integrate.quad(ppf, c, 1.0, limit=200)[0]
        return np.array([qL, qS, -lo / (1.0 - c), hi / (1.0 - c)])
    raise ValueError(f"dist must be 'normal', 't' or 'skewt', got {dist!r}")


def _dist_ppf(dist: str, params: np.ndarray, u: np.ndarray) -> np.ndarray:
    if dist == "normal":
        from scipy import stats

        return stats.norm.ppf(u)
    from arch.univariate import SkewStudent, StudentsT

    d = StudentsT() if dist == "t" else SkewStudent()
    return np.asarray(d.ppf(u.ravel(), np.asarray(params)), dtype=np.float64).reshape(u.shape)
