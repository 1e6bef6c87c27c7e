"""arch's documented Value-at-Risk forecasting example, reproduced with riskmodels' GARCH pieces.

Source: arch documentation, "Volatility Forecasting" -> "Value-at-Risk
Forecasting" -> "Parametric VaR" (the S&P 500 data arch ships in
``arch.data.sp500``): GARCH(1,1) with skew-t innovations fitted up to
2017-12-31, one-step forecasts for 2018, and

    VaR_q = -mu - sigma_{t+1} * F^{-1}(q)          q in {1%, 5%}

The printed table of that page could not be retrieved here, so the
reference numbers are recomputed by arch itself in the test (its own
fit, forecast and ppf), and riskmodels' numba variance filter and
skew-t quantile multipliers must give the same 2018 VaR path, day by
day, to 1e-8 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

arch = pytest.importorskip("arch")
sp500 = pytest.importorskip("arch.data.sp500")

from arch import arch_model  # noqa: E402

from riskmodels.margin import _garch_filter as gf  # noqa: E402
from riskmodels.margin.garch_fit import quantile_multipliers  # noqa: E402


def test_parametric_var_example_of_arch_docs():
    market = sp500.load()["Adj Close"]
    returns = 100 * market.pct_change().dropna()
    am = arch_model(returns, vol="Garch", p=1, o=0, q=1, dist="skewt")
    res = am.fit(disp="off", last_obs="2017-12-31")
    forecasts = res.forecast(start="2018-1-1", reindex=False)
    cond_mean = forecasts.mean["2018":]
    cond_var = forecasts.variance["2018":]
    q = am.distribution.ppf([0.01, 0.05], res.params[-2:])
    expected = -cond_mean.values - np.sqrt(cond_var).values * q[None, :]

    mu, omega, alpha, beta = (float(res.params[k]) for k in ("mu", "omega", "alpha[1]", "beta[1]"))
    resids = returns.to_numpy() - mu
    n_fit = int((returns.index <= "2017-12-31").sum())
    var = gf.garch_filter(
        resids, omega, alpha, 0.0, beta, gf.arch_backcast(resids[:n_fit]), gf.variance_bounds(resids, n_fit)
    )
    # var[t] is the variance of day t given data up to t-1: the forecast made on day d is var[d + 1]
    rows = np.flatnonzero(returns.index >= "2018-01-01") + 1
    sigma = np.sqrt(var[rows])
    for col, c in ((0, 0.99), (1, 0.95)):
        q_loss = quantile_multipliers("skewt", np.asarray(res.params[-2:]), c)[0]  # -F^{-1}(1 - c)
        ours = -mu + sigma * q_loss
        np.testing.assert_allclose(ours, expected[:, col], rtol=1e-8)
    # sanity: the example's 1% VaR is larger than its 5% VaR on every day
    assert (expected[:, 0] > expected[:, 1]).all()
