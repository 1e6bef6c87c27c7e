"""Correlation of the GARCH standardised returns (the parametric portfolio method).

``R_t`` of :mod:`riskmodels.margin.garch` ``portfolio="parametric"``, from the
standardised returns ``z = r / sigma`` up to t, pairwise (a pair uses the days
both assets are observed) and uncentred (``z`` has mean ~0 by construction):

* ``correlation="constant"`` (:func:`constant_correlation`): ``R_ab(t) =
  sum z_a z_b / sqrt(sum z_a^2 sum z_b^2)`` over the estimation window;
* ``correlation="ewma"`` (:func:`ewma_correlation`): ``Q_t = lambda Q_{t-1} +
  (1 - lambda) z_t z_t'`` (RiskMetrics-style dynamic correlation);
* :func:`nearest_psd_corr` repairs an indefinite pairwise matrix (eigenvalues
  clipped at 0, unit diagonal).
"""

from __future__ import annotations

import numpy as np


def _pairwise_corr(sxy: np.ndarray, sxx: np.ndarray) -> np.ndarray:
    """``sxy / sqrt(sxx * sxx^T)`` with 0 where undefined and a unit diagonal."""
    den = np.sqrt(sxx * np.swapaxes(sxx, -1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, sxy / den, 0.0)
    r = np.clip(r, -1.0, 1.0)
    idx = np.arange(r.shape[-1])
    r[..., idx, idx] = 1.0
    return r


def constant_correlation(z: np.ndarray, window: int | None) -> np.ndarray:
    """``(T, A, A)`` uncentred pairwise correlation of ``z`` over ``(t - window, t]``.

    ``R_ab(t) = sum z_a z_b / sqrt(sum z_a^2 sum z_b^2)`` over the days in the
    window where both are observed (``window=None``: all days up to t).
    """
    m = np.isfinite(z).astype(np.float64)
    zf = np.nan_to_num(z)
    sxy = np.cumsum(zf[:, :, None] * zf[:, None, :], axis=0)
    sxx = np.cumsum((zf**2)[:, :, None] * m[:, None, :], axis=0)
    if window is not None and window < z.shape[0]:
        sxy[window:] = sxy[window:] - sxy[:-window].copy()
        sxx[window:] = sxx[window:] - sxx[:-window].copy()
    return _pairwise_corr(sxy, sxx)


def ewma_correlation(z: np.ndarray, lam: float) -> np.ndarray:
    """``(T, A, A)`` pairwise EWMA correlation, ``Q_t = lam Q_{t-1} + (1 - lam) z_t z_t'``.

    A pair is updated only on days both are observed; ``R = Q_ab /
    sqrt(Q_aa|b Q_bb|a)`` with the squared terms accumulated on the same days.
    """
    T, A = z.shape
    m = np.isfinite(z)
    zf = np.nan_to_num(z)
    q = np.zeros((A, A))
    qxx = np.zeros((A, A))
    out_xy = np.empty((T, A, A))
    out_xx = np.empty((T, A, A))
    for t in range(T):
        both = m[t][:, None] & m[t][None, :]
        q = np.where(both, lam * q + (1 - lam) * np.outer(zf[t], zf[t]), q)
        qxx = np.where(both, lam * qxx + (1 - lam) * (zf[t] ** 2)[:, None], qxx)
        out_xy[t] = q
        out_xx[t] = qxx
    return _pairwise_corr(out_xy, out_xx)


def nearest_psd_corr(r: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues of a correlation matrix to 0 and restore a unit diagonal."""
    w, v = np.linalg.eigh(r)
    if w[0] >= -1e-12:
        return r
    c = (v * np.maximum(w, 0.0)) @ v.T
    d = np.sqrt(np.clip(np.diag(c), 1e-300, None))
    c = c / d[:, None] / d[None, :]
    np.fill_diagonal(c, 1.0)
    return c
