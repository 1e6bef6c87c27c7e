"""Synthetic OHLCV panels with known dynamics, for testing estimators.

Model (``model="garch_t"``; ``"garch_normal"`` uses Gaussian ``z``)::

    r[t, a]      = mu + eps[t, a] + J[t, a]                       (daily log return)
    eps[t, a]    = sigma[t, a] * z[t, a]
    sigma²[t, a] = omega + alpha * eps²[t-1, a] + beta * sigma²[t-1, a]   (GARCH(1,1))
    z[t]         = L g[t] * sqrt((nu - 2) / W[t]),  g ~ N(0, I_A),  W ~ chi²(nu)
    J[t, a]      = sum of N[t, a] ~ Poisson(jump_prob) draws of N(0, jump_scale²)

* GARCH(1,1): Bollerslev (1986), J. Econometrics 31, 307-327; unconditional
  variance ``omega / (1 - alpha - beta)`` when ``alpha + beta < 1``.
* ``L`` is the Cholesky factor of the constant correlation matrix ``R``
  (Bollerslev 1990 constant-conditional-correlation model). One ``W`` per date
  is shared by all assets, so ``z[t]`` is multivariate Student t with
  correlation ``R`` and unit variances (each margin is a standardised t_nu;
  McNeil, Frey & Embrechts 2005, *Quantitative Risk Management*, sec. 3.2).
* Jumps (compound Poisson, Merton 1976) do not feed the variance recursion.

Prices: ``close[0] = start_price``, ``close[t] = close[t-1] * exp(r[t])``;
``open[t] = close[t-1]``; ``high = max(open, close) * exp(k sigma |u1|)``,
``low = min(open, close) * exp(-k sigma |u2|)`` with ``k = intraday_range`` and
``u ~ N(0, 1)``, so high >= max(open, close) >= min(open, close) >= low > 0;
volume is log-normal and > 0.

Closed forms (:func:`true_quantile`, :func:`true_expected_shortfall`) hold for
the i.i.d. special case ``alpha = beta = 0``, ``jump_prob = 0``, where
``sigma = sqrt(omega) = vol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel

__all__ = [
    "SyntheticPath",
    "simulate_returns",
    "synthetic_panel",
    "true_expected_shortfall",
    "true_quantile",
]

Model = Literal["garch_t", "garch_normal"]


@dataclass(frozen=True)
class SyntheticPath:
    """Simulated returns and their true conditional volatility.

    ``returns``, ``sigma`` and ``jumps`` are ``(T, A)``, aligned with
    :meth:`PricePanel.returns`: row 0 is NaN, row t is the return from t-1 to t
    and ``sigma[t]`` its conditional standard deviation given data up to t-1.
    """

    returns: np.ndarray
    sigma: np.ndarray
    jumps: np.ndarray
    corr: np.ndarray
    params: dict[str, float | str]


def _corr_matrix(corr: float | np.ndarray, n_assets: int) -> np.ndarray:
    if np.ndim(corr) == 0:
        rho = float(corr)  # type: ignore[arg-type]
        lo = -1.0 / (n_assets - 1) if n_assets > 1 else -1.0
        if n_assets > 1 and not (lo < rho < 1.0):
            raise ValueError(
                f"corr must be in ({lo:.4g}, 1) for {n_assets} assets (an equicorrelation matrix "
                f"must be positive definite), got {rho}"
            )
        R = np.full((n_assets, n_assets), rho)
        np.fill_diagonal(R, 1.0)
        return R
    R = np.asarray(corr, dtype=np.float64)
    if R.shape != (n_assets, n_assets):
        raise ValueError(f"corr matrix must have shape ({n_assets}, {n_assets}), got {R.shape}")
    if not np.allclose(R, R.T) or not np.allclose(np.diag(R), 1.0):
        raise ValueError("corr matrix must be symmetric with a unit diagonal")
    try:
        np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise ValueError("corr matrix must be positive definite") from None
    return R


def _check_params(n_dates: int, n_assets: int, omega: float | None, alpha: float, beta: float,
                  nu: float, model: str, jump_prob: float, jump_scale: float) -> None:
    if int(n_dates) != n_dates or n_dates < 2:
        raise ValueError(f"n_dates must be a whole number >= 2, got {n_dates}")
    if int(n_assets) != n_assets or n_assets < 1:
        raise ValueError(f"n_assets must be a whole number >= 1, got {n_assets}")
    if model not in ("garch_t", "garch_normal"):
        raise ValueError(f"model must be 'garch_t' or 'garch_normal', got {model!r}")
    if omega is not None and not (np.isfinite(omega) and omega > 0):
        raise ValueError(f"omega must be > 0 (daily variance units), got {omega}")
    if not (alpha >= 0):
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if not (beta >= 0):
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not (alpha + beta < 1):
        raise ValueError(f"alpha + beta must be < 1 for a stationary GARCH, got {alpha + beta}")
    if model == "garch_t" and not (nu > 2):
        raise ValueError(f"nu must be > 2 (finite variance), got {nu}")
    if not (0 <= jump_prob <= 1):
        raise ValueError(f"jump_prob must be in [0, 1] (jumps per asset per day), got {jump_prob}")
    if not (jump_scale >= 0):
        raise ValueError(f"jump_scale must be >= 0, got {jump_scale}")


def simulate_returns(
    n_dates: int,
    n_assets: int,
    *,
    seed: int,
    model: Model = "garch_t",
    mu: float = 0.0,
    vol: float = 0.03,
    omega: float | None = None,
    alpha: float = 0.08,
    beta: float = 0.90,
    nu: float = 5.0,
    corr: float | np.ndarray = 0.5,
    jump_prob: float = 0.0,
    jump_scale: float = 0.10,
    burn_in: int = 500,
) -> SyntheticPath:
    """Simulate the return model of the module docstring.

    Parameters
    ----------
    n_dates, n_assets : int
        ``T`` dates (``T - 1`` returns) and ``A`` assets.
    seed : int
        Seed of ``numpy.random.default_rng``.
    model : {"garch_t", "garch_normal"}
    mu : float
        Daily drift of the log return.
    vol : float
        Unconditional daily volatility; sets ``omega = vol² (1 - alpha - beta)``
        when ``omega`` is None.
    omega, alpha, beta : float
        GARCH(1,1) parameters (``omega > 0``, ``alpha, beta >= 0``,
        ``alpha + beta < 1``).
    nu : float
        Student-t degrees of freedom (> 2), ignored for ``garch_normal``.
    corr : float or (A, A) array
        Constant correlation of the innovations.
    jump_prob, jump_scale : float
        Poisson intensity of jumps per asset-day and the jump size sd.
    burn_in : int
        Variance-recursion steps discarded so the path starts in the
        stationary regime.
    """
    _check_params(n_dates, n_assets, omega, alpha, beta, nu, model, jump_prob, jump_scale)
    if omega is None:
        if not (vol > 0):
            raise ValueError(f"vol must be > 0, got {vol}")
        omega = vol**2 * (1.0 - alpha - beta)
    if int(burn_in) != burn_in or burn_in < 0:
        raise ValueError(f"burn_in must be a whole number >= 0, got {burn_in}")
    T, A, B = int(n_dates), int(n_assets), int(burn_in)
    R = _corr_matrix(corr, A)
    L = np.linalg.cholesky(R)
    rng = np.random.default_rng(seed)
    n = T - 1 + B
    g = rng.standard_normal((n, A)) @ L.T
    if model == "garch_t":
        w = rng.chisquare(nu, size=(n, 1))
        z = g * np.sqrt((nu - 2.0) / w)
    else:
        z = g
    n_jumps = rng.poisson(jump_prob, size=(n, A)) if jump_prob > 0 else np.zeros((n, A), np.int64)
    jumps = jump_scale * np.sqrt(n_jumps) * rng.standard_normal((n, A))
    eps = np.empty((n, A))
    sig2 = np.empty((n, A))
    s2 = np.full(A, omega / (1.0 - alpha - beta))
    for t in range(n):  # loop over dates, vectorised over assets
        sig2[t] = s2
        eps[t] = np.sqrt(s2) * z[t]
        s2 = omega + alpha * eps[t] ** 2 + beta * s2
    r = np.full((T, A), np.nan)
    sd = np.full((T, A), np.nan)
    jp = np.full((T, A), np.nan)
    r[1:] = mu + eps[B:] + jumps[B:]
    sd[1:] = np.sqrt(sig2[B:])
    jp[1:] = jumps[B:]
    params: dict[str, float | str] = {
        "model": model, "mu": mu, "omega": float(omega), "alpha": alpha, "beta": beta,
        "nu": nu, "jump_prob": jump_prob, "jump_scale": jump_scale,
    }
    return SyntheticPath(r, sd, jp, R, params)


def synthetic_panel(
    n_dates: int,
    assets: tuple[str, ...] | list[str] | None = None,
    n_assets: int | None = None,
    *,
    seed: int,
    start: str = "2018-01-01",
    model: Model = "garch_t",
    mu: float = 0.0,
    vol: float = 0.03,
    omega: float | None = None,
    alpha: float = 0.08,
    beta: float = 0.90,
    nu: float = 5.0,
    corr: float | np.ndarray = 0.5,
    jump_prob: float = 0.0,
    jump_scale: float = 0.10,
    start_price: float | np.ndarray = 100.0,
    intraday_range: float = 0.5,
    freq: str = "D",
) -> PricePanel:
    """A :class:`PricePanel` of ``n_dates`` daily bars from the module's model.

    Parameters
    ----------
    n_dates : int
        Number of dates (>= 2).
    assets : sequence of str, optional
        Symbols; default ``S0, S1, ...`` (``n_assets`` of them, default 3).
    n_assets : int, optional
        Number of assets when ``assets`` is not given.
    seed : int
        Random seed (required).
    start : str
        First date.
    start_price : float or (A,) array
        ``close[0]`` (> 0).
    intraday_range : float
        ``k`` in ``high = max(open, close) exp(k sigma |u|)`` (>= 0).
    freq : str
        Calendar frequency of the dates (``"D"``, ``"h"``).

    Other parameters are those of :func:`simulate_returns`.
    """
    if assets is None:
        n = 3 if n_assets is None else n_assets
        if int(n) != n or n < 1:
            raise ValueError(f"n_assets must be a whole number >= 1, got {n_assets}")
        assets = tuple(f"S{j}" for j in range(int(n)))
    elif n_assets is not None and n_assets != len(assets):
        raise ValueError(f"n_assets={n_assets} but {len(assets)} assets were named")
    assets = tuple(assets)
    A = len(assets)
    p0 = np.broadcast_to(np.asarray(start_price, dtype=np.float64), (A,))
    if not (np.all(np.isfinite(p0)) and np.all(p0 > 0)):
        raise ValueError(f"start_price must be > 0, got {start_price}")
    if not (intraday_range >= 0):
        raise ValueError(f"intraday_range must be >= 0, got {intraday_range}")
    path = simulate_returns(n_dates, A, seed=seed, model=model, mu=mu, vol=vol, omega=omega,
                            alpha=alpha, beta=beta, nu=nu, corr=corr, jump_prob=jump_prob,
                            jump_scale=jump_scale)
    T = int(n_dates)
    r = np.nan_to_num(path.returns, nan=0.0)
    close = p0 * np.exp(np.cumsum(r, axis=0))
    opn = np.vstack([p0[None, :], close[:-1]])
    sd = np.where(np.isfinite(path.sigma), path.sigma, np.nanmean(path.sigma[1:], axis=0))
    rng = np.random.default_rng([seed, 1])  # separate stream: OHLC noise does not move closes
    u = np.abs(rng.standard_normal((2, T, A)))
    high = np.maximum(opn, close) * np.exp(intraday_range * sd * u[0])
    low = np.minimum(opn, close) * np.exp(-intraday_range * sd * u[1])
    volume = 1e6 * np.exp(0.5 * rng.standard_normal((T, A)))
    dates = pd.date_range(start, periods=T, freq=freq)
    return PricePanel(dates, assets, opn, high, low, close, volume)


# --------------------------------------------------------------------------- closed forms
def _check_p(name: str, p: float) -> None:
    if not (0 < p < 1):
        raise ValueError(f"{name} must be in (0, 1), got {p}")


def true_quantile(p: float, *, vol: float, nu: float | None = None, mu: float = 0.0,
                  horizon: int = 1, kind: Literal["log", "simple"] = "log") -> float:
    """``p``-quantile of the i.i.d. model's ``horizon``-day return.

    Normal (``nu=None``): ``q = mu h + vol sqrt(h) Phi^{-1}(p)``.
    Standardised Student t (``nu > 2``, ``horizon = 1`` only, since a sum of t
    variables has no closed-form quantile): ``q = mu + vol sqrt((nu-2)/nu) t_nu^{-1}(p)``.
    ``kind="simple"`` returns ``exp(q) - 1`` (exact: the map is increasing).
    Valid for ``alpha = beta = 0``, ``jump_prob = 0``.
    """
    from scipy import stats

    _check_p("p", p)
    if not (vol > 0):
        raise ValueError(f"vol must be > 0, got {vol}")
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number of days >= 1, got {horizon}")
    if nu is None:
        q = mu * horizon + vol * np.sqrt(horizon) * stats.norm.ppf(p)
    else:
        if not nu > 2:
            raise ValueError(f"nu must be > 2, got {nu}")
        if horizon != 1:
            raise NotImplementedError("no closed form for the quantile of a sum of t variables; "
                                      "use horizon=1 or nu=None")
        q = mu + vol * np.sqrt((nu - 2.0) / nu) * stats.t.ppf(p, nu)
    if kind == "simple":
        return float(np.expm1(q))
    if kind != "log":
        raise ValueError(f"kind must be 'log' or 'simple', got {kind!r}")
    return float(q)


def true_expected_shortfall(level: float, *, vol: float, nu: float | None = None,
                            mu: float = 0.0, horizon: int = 1,
                            kind: Literal["log", "simple"] = "log") -> float:
    """Expected shortfall of the loss ``-R`` at confidence ``level`` (e.g. 0.99).

    ``ES = E[-R | -R >= VaR_level]`` for a long position, ``R`` the
    ``horizon``-day log return (``kind="log"``) or simple return
    (``kind="simple"``, normal only). Formulas (McNeil, Frey & Embrechts 2005,
    *Quantitative Risk Management*, Examples 2.18 and 2.19), with
    ``s = vol sqrt(h)`` and ``a = 1 - level``:

    * normal: ``ES = -mu h + s phi(Phi^{-1}(level)) / a``;
    * standardised t_nu (h = 1): ``ES = -mu + vol sqrt((nu-2)/nu)
      g_nu(x) (nu + x²) / ((nu - 1) a)``, ``x = t_nu^{-1}(level)``;
    * normal, simple returns: ``ES = 1 - exp(m + s²/2) Phi(z_a - s) / a`` with
      ``m = mu h``, ``z_a = Phi^{-1}(a)`` (log-normal partial expectation).
    """
    from scipy import stats

    _check_p("level", level)
    if not (vol > 0):
        raise ValueError(f"vol must be > 0, got {vol}")
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number of days >= 1, got {horizon}")
    a = 1.0 - level
    if kind not in ("log", "simple"):
        raise ValueError(f"kind must be 'log' or 'simple', got {kind!r}")
    if nu is None:
        s = vol * np.sqrt(horizon)
        m = mu * horizon
        if kind == "log":
            return float(-m + s * stats.norm.pdf(stats.norm.ppf(level)) / a)
        za = stats.norm.ppf(a)
        return float(1.0 - np.exp(m + 0.5 * s * s) * stats.norm.cdf(za - s) / a)
    if not nu > 2:
        raise ValueError(f"nu must be > 2, got {nu}")
    if horizon != 1 or kind != "log":
        raise NotImplementedError("the t closed form covers horizon=1 log returns only "
                                  "(exp of a t variable has no finite mean)")
    x = stats.t.ppf(level, nu)
    es_std = stats.t.pdf(x, nu) * (nu + x * x) / ((nu - 1.0) * a)
    return float(-mu + vol * np.sqrt((nu - 2.0) / nu) * es_std)
