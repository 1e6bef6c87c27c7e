"""Synthetic generator: moments, quantiles, GARCH persistence and correlation recovered
within Monte Carlo error (all seeded), closed forms against published values and
independent numerical integration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from riskmodels.data import synthetic_panel, true_expected_shortfall, true_quantile
from riskmodels.data.synthetic import simulate_returns


def test_iid_normal_moments_and_quantile() -> None:
    """alpha = beta = 0: r ~ N(mu, vol²) i.i.d. Sample sd within 4 standard errors
    (se of a sample sd ~ sigma / sqrt(2n)); the empirical 1% quantile within 4 se of the
    order statistic (se = sqrt(p(1-p)/n) / f(q))."""
    vol, mu = 0.02, 0.001
    path = simulate_returns(40_001, 2, seed=11, model="garch_normal", alpha=0.0, beta=0.0,
                            vol=vol, mu=mu, corr=0.0)
    r = path.returns[1:].ravel()
    n = r.size
    assert abs(r.std() - vol) < 4 * vol / np.sqrt(2 * n)
    assert abs(r.mean() - mu) < 4 * vol / np.sqrt(n)
    p = 0.01
    q = true_quantile(p, vol=vol, mu=mu)
    se = np.sqrt(p * (1 - p) / n) / stats.norm.pdf(q, loc=mu, scale=vol)
    assert abs(np.quantile(r, p) - q) < 4 * se
    np.testing.assert_allclose(path.sigma[1:], vol)


def test_iid_t_distribution_ks() -> None:
    """alpha = beta = 0, Student t nu = 4: r / vol is a unit-variance t_4
    (scale sqrt((nu-2)/nu)); Kolmogorov-Smirnov test does not reject (seeded)."""
    vol, nu = 0.03, 4.0
    path = simulate_returns(20_001, 1, seed=5, alpha=0.0, beta=0.0, vol=vol, nu=nu)
    z = path.returns[1:, 0] / vol
    res = stats.kstest(z, stats.t(df=nu, scale=np.sqrt((nu - 2) / nu)).cdf)
    assert res.pvalue > 0.01
    p = 0.005
    q = true_quantile(p, vol=vol, nu=nu)
    n = z.size
    se = np.sqrt(p * (1 - p) / n) / (stats.t.pdf(q / (vol * np.sqrt((nu - 2) / nu)), nu)
                                     / (vol * np.sqrt((nu - 2) / nu)))
    assert abs(np.quantile(path.returns[1:, 0], p) - q) < 4 * se


def test_garch_parameters_recovered_by_arch() -> None:
    """Fitting GARCH(1,1)-t with the independent ``arch`` package recovers alpha, beta and
    nu within 4 of its standard errors; the unconditional variance is omega/(1-alpha-beta)
    (Bollerslev 1986)."""
    from arch import arch_model

    alpha, beta, nu, vol = 0.10, 0.85, 6.0, 0.03
    path = simulate_returns(6_001, 1, seed=2024, alpha=alpha, beta=beta, nu=nu, vol=vol)
    y = 100 * path.returns[1:, 0]
    res = arch_model(y, mean="Zero", vol="GARCH", p=1, q=1, dist="t").fit(disp="off")
    for name, true in (("alpha[1]", alpha), ("beta[1]", beta), ("nu", nu)):
        est, se = res.params[name], res.std_err[name]
        assert abs(est - true) < 4 * se, (name, est, se)
    assert path.params["omega"] == pytest.approx(vol**2 * (1 - alpha - beta))
    # the returned sigma follows the recursion exactly
    o = path.params["omega"]
    r = path.returns[1:, 0]
    s = path.sigma[1:, 0]
    np.testing.assert_allclose(s[1:] ** 2, o + alpha * r[:-1] ** 2 + beta * s[:-1] ** 2)


def test_volatility_clustering_persistence() -> None:
    """|r| autocorrelation is positive with GARCH and absent when alpha = beta = 0."""
    def acf1(x: np.ndarray) -> float:
        x = x - x.mean()
        return float((x[1:] * x[:-1]).sum() / (x * x).sum())

    g = simulate_returns(20_001, 1, seed=1, alpha=0.1, beta=0.85).returns[1:, 0]
    i = simulate_returns(20_001, 1, seed=1, alpha=0.0, beta=0.0).returns[1:, 0]
    se = 1 / np.sqrt(20_000)
    assert acf1(np.abs(g)) > 10 * se
    assert abs(acf1(np.abs(i))) < 4 * se


@pytest.mark.parametrize("model", ["garch_t", "garch_normal"])
def test_correlation_recovered(model: str) -> None:
    """Devolatilised returns r / sigma have the given correlation matrix; sample
    correlation se = (1 - rho²) / sqrt(n)."""
    R = np.array([[1.0, 0.6, -0.2], [0.6, 1.0, 0.3], [-0.2, 0.3, 1.0]])
    path = simulate_returns(8_001, 3, seed=7, model=model, corr=R)  # type: ignore[arg-type]
    z = path.returns[1:] / path.sigma[1:]
    C = np.corrcoef(z.T)
    se = (1 - R**2) / np.sqrt(z.shape[0])
    assert np.all(np.abs(C - R) < 5 * se + 1e-12)


def test_jump_variance() -> None:
    """Compound Poisson jumps add jump_prob * jump_scale² to the variance (Merton 1976)."""
    vol, lam, js = 0.02, 0.05, 0.1
    path = simulate_returns(50_001, 2, seed=3, model="garch_normal", alpha=0.0, beta=0.0,
                            vol=vol, corr=0.0, jump_prob=lam, jump_scale=js)
    r = path.returns[1:].ravel()
    var = vol**2 + lam * js**2
    # se of the sample variance: sqrt((m4 - var²) / n), m4 from the sample itself
    se = np.sqrt((np.mean(r**4) - r.var() ** 2) / r.size)
    assert abs(r.var() - var) < 4 * se


def test_published_normal_es_and_var() -> None:
    """Standard normal: VaR_0.99 = 2.326, ES_0.99 = phi(2.326)/0.01 = 2.665
    (McNeil, Frey & Embrechts 2005, QRM, Example 2.18)."""
    assert -true_quantile(0.01, vol=1.0) == pytest.approx(2.3263, abs=1e-4)
    assert true_expected_shortfall(0.99, vol=1.0) == pytest.approx(2.6652, abs=1e-4)
    assert true_expected_shortfall(0.975, vol=1.0) == pytest.approx(2.3378, abs=1e-4)


@pytest.mark.parametrize("nu", [3.0, 5.0, 10.0])
def test_t_es_against_quadrature(nu: float) -> None:
    """ES = (1/(1-a)) * integral_a^1 VaR_u du (Acerbi & Tasche 2002), by quadrature of
    scipy's t quantile function."""
    level, vol = 0.99, 0.04
    s = vol * np.sqrt((nu - 2) / nu)
    val, _ = integrate.quad(lambda u: -s * stats.t.ppf(1 - u, nu), level, 1, limit=200)
    assert true_expected_shortfall(level, vol=vol, nu=nu) == pytest.approx(val / (1 - level), rel=1e-6)


def test_simple_return_es_against_monte_carlo_free_quadrature() -> None:
    """Simple-return ES of a log-normal: quadrature of 1 - exp(q_u) over the tail."""
    level, vol, mu = 0.99, 0.05, 0.001
    val, _ = integrate.quad(lambda u: -np.expm1(mu + vol * stats.norm.ppf(1 - u)), level, 1)
    got = true_expected_shortfall(level, vol=vol, mu=mu, kind="simple")
    assert got == pytest.approx(val / (1 - level), rel=1e-7)
    assert true_quantile(0.01, vol=vol, mu=mu, kind="simple") == pytest.approx(
        np.expm1(mu + vol * stats.norm.ppf(0.01)))
    # h-day normal quantile: sqrt-time scaling
    assert true_quantile(0.01, vol=vol, horizon=4) == pytest.approx(2 * true_quantile(0.01, vol=vol))


def test_closed_form_limits() -> None:
    with pytest.raises(NotImplementedError):
        true_quantile(0.01, vol=0.02, nu=5, horizon=2)
    with pytest.raises(NotImplementedError):
        true_expected_shortfall(0.99, vol=0.02, nu=5, kind="simple")
    with pytest.raises(ValueError, match="p must be in"):
        true_quantile(1.5, vol=0.02)
    with pytest.raises(ValueError, match="nu must be > 2"):
        true_expected_shortfall(0.99, vol=0.02, nu=2.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 60), a=st.integers(1, 4),
       jump=st.floats(0, 0.5), rng_=st.floats(0, 3))
def test_ohlc_consistent_and_volume_positive(seed: int, n: int, a: int, jump: float,
                                             rng_: float) -> None:
    p = synthetic_panel(n, n_assets=a, seed=seed, jump_prob=jump, jump_scale=0.3,
                        intraday_range=rng_, corr=0.2)
    assert p.n_dates == n and p.n_assets == a
    assert np.all(p.high >= np.maximum(p.open, p.close))
    assert np.all(p.low <= np.minimum(p.open, p.close))
    assert np.all(p.low > 0) and np.all(p.volume > 0)
    np.testing.assert_allclose(p.close[0], 100.0)
    np.testing.assert_allclose(p.open[1:], p.close[:-1])


def test_panel_returns_match_simulated_path() -> None:
    p = synthetic_panel(300, ("A", "B"), seed=9, start="2020-01-01")
    path = simulate_returns(300, 2, seed=9)
    np.testing.assert_allclose(p.returns(1)[1:], path.returns[1:], rtol=1e-9, atol=1e-12)
    assert p.dates[0].isoformat() == "2020-01-01T00:00:00" and p.assets == ("A", "B")
    again = synthetic_panel(300, ("A", "B"), seed=9, start="2020-01-01")
    assert again.fingerprint() == p.fingerprint()
    other = synthetic_panel(300, ("A", "B"), seed=10, start="2020-01-01")
    assert other.fingerprint() != p.fingerprint()


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [({"alpha": 0.5, "beta": 0.6}, "alpha \\+ beta must be < 1"),
     ({"alpha": -0.1}, "alpha must be >= 0"),
     ({"nu": 2.0}, "nu must be > 2"),
     ({"omega": 0.0}, "omega must be > 0"),
     ({"corr": 0.99 + 0.02}, "corr must be in"),
     ({"corr": -0.6}, "corr must be in \\(-0.5, 1\\)"),
     ({"corr": np.eye(2)}, "corr matrix must have shape \\(3, 3\\)"),
     ({"jump_prob": 1.5}, "jump_prob must be in \\[0, 1\\]"),
     ({"start_price": -1.0}, "start_price must be > 0"),
     ({"intraday_range": -1.0}, "intraday_range must be >= 0"),
     ({"model": "egarch"}, "model must be 'garch_t' or 'garch_normal'")],
)
def test_bad_parameters_name_the_parameter(kwargs: dict[str, object], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        synthetic_panel(50, n_assets=3, seed=0, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_dates must be a whole number >= 2"):
        synthetic_panel(1, n_assets=3, seed=0)
