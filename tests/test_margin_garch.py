"""GARCH margin: recursions vs arch, quantiles vs scipy, portfolio formulas, schedule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from arch.univariate import EWMAVariance, SkewStudent, StudentsT, ZeroMean
from conftest import make_panel
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from riskmodels.margin import _garch_filter as gf
from riskmodels.margin import available, garch_fit, get
from riskmodels.margin.garch import (
    EwmaMargin,
    GarchEstimationWarning,
    GarchMargin,
)
from riskmodels.margin.garch_fit import (
    MAX_PERSISTENCE,
    PERSISTENCE_CAP,
    arch_mle,
    cap_persistence,
    fit_window,
    persistence,
    quantile_multipliers,
)
from riskmodels.portfolio import Book

VOLS = {"garch": ("GARCH", 0), "gjr": ("GARCH", 1), "egarch": ("EGARCH", 1)}


def simulate_garch_t(n: int, params: list[float], seed: int) -> np.ndarray:
    """Seeded GARCH(1,1)-t percent returns simulated by arch (omega, alpha, beta, nu)."""
    m = ZeroMean(None, volatility=arch_model(None, vol="GARCH").volatility, distribution=StudentsT(seed=seed))
    return m.simulate(params, n, burn=500).data.to_numpy()


def garch_panel(T: int, A: int, seed: int, rho: float = 0.5) -> tuple:
    """A GARCH(1,1)-t panel with correlated innovations (prices from percent log returns)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta, nu = 0.3, 0.1, 0.85, 6.0
    corr = np.full((A, A), rho) + (1 - rho) * np.eye(A)
    L = np.linalg.cholesky(corr)
    g = rng.standard_normal((T + 300, A)) @ L.T
    w = rng.chisquare(nu, size=(T + 300, 1))
    z = g / np.sqrt(w / nu) * math.sqrt((nu - 2) / nu)
    s2 = np.full(A, omega / (1 - alpha - beta))
    r = np.empty_like(z)
    for t in range(z.shape[0]):
        r[t] = np.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    r = r[300:] / 100.0
    r[0] = 0.0
    return make_panel(100.0 * np.exp(np.cumsum(r, axis=0))), (omega, alpha, beta, nu)


FAST = dict(min_history=150, window_length=300, refit_every=60, fhs_window=100, n_jobs=1)


@pytest.fixture(scope="module")
def panel2():
    return garch_panel(420, 2, seed=7)[0]


@pytest.fixture(scope="module")
def fitted_t(panel2):
    return GarchMargin(vol="garch", dist="t", horizon=2, **FAST).fit(panel2)


@pytest.fixture(scope="module")
def fitted_fhs(panel2):
    return GarchMargin(vol="gjr", dist="normal", portfolio="fhs", confidence=0.95, **FAST).fit(panel2)


# ---------------------------------------------------------------- recursions
@pytest.mark.parametrize("vol", ["garch", "gjr", "egarch"])
def test_filter_equals_arch_fix(vol: str) -> None:
    """numba filter == plain reference == arch's ``fix(params).conditional_volatility`` (1e-10),
    and the extra step == arch's ``forecast(horizon=1)``."""
    y = simulate_garch_t(800, [0.2, 0.1, 0.85, 5.0], seed=3)
    name, o = VOLS[vol]
    m = arch_model(y, mean="Zero", vol=name, p=1, o=o, q=1, dist="t")
    res = m.fit(disp="off")
    p = res.params.to_numpy()
    coeffs = (p[0], p[1], p[2] if o else 0.0, p[2 + o])
    kern, ref = (gf.egarch_filter, gf.egarch_filter_py) if vol == "egarch" else (gf.garch_filter, gf.garch_filter_py)
    b, bc = gf.variance_bounds(y), gf.arch_backcast(y)
    s2 = kern(y, *coeffs, bc, b)
    np.testing.assert_allclose(np.sqrt(s2[:-1]), m.fix(p).conditional_volatility, rtol=0, atol=1e-10)
    np.testing.assert_allclose(s2, ref(y, *coeffs, bc, b), rtol=1e-13, atol=0)
    f1 = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert s2[-1] == pytest.approx(f1, rel=1e-12)


def test_ewma_filter_equals_arch_ewma_variance() -> None:
    """EWMA as GARCH(omega=0, alpha=1-lambda, beta=lambda) == arch ``EWMAVariance(0.94)``."""
    y = simulate_garch_t(500, [0.2, 0.1, 0.85, 5.0], seed=4)
    m = ZeroMean(y, volatility=EWMAVariance(0.94))
    cv = m.fix([]).conditional_volatility
    b = np.column_stack([np.zeros(500), np.full(500, np.inf)])
    s2 = gf.garch_filter(y, 0.0, 0.06, 0.0, 0.94, gf.arch_backcast(y), b)
    np.testing.assert_allclose(np.sqrt(s2[:-1]), cv, rtol=0, atol=1e-10)


def test_variance_bounds_equal_arch() -> None:
    """With the whole sample as fit window the bounds are arch's ``variance_bounds``."""
    y = simulate_garch_t(300, [0.2, 0.1, 0.85, 5.0], seed=5)
    ref = arch_model(y, mean="Zero").volatility.variance_bounds(y)
    np.testing.assert_allclose(gf.variance_bounds(y), ref, rtol=1e-12)


@pytest.mark.parametrize("vol", ["garch", "gjr"])
def test_multistep_equals_arch_forecast(vol: str) -> None:
    """Closed-form h-day variance == arch ``forecast(horizon=5).variance`` summed over the row."""
    y = simulate_garch_t(600, [0.2, 0.08, 0.88, 6.0], seed=6)
    name, o = VOLS[vol]
    res = arch_model(y, mean="Zero", vol=name, p=1, o=o, q=1, dist="t").fit(disp="off")
    p = res.params.to_numpy()
    fc = res.forecast(horizon=5, reindex=False).variance.to_numpy()[-1]
    got = gf.garch_hday_variance(np.array([fc[0]]), p[0], p[1], p[2] if o else 0.0, p[2 + o], 5)
    assert got[0] == pytest.approx(fc.sum(), rel=1e-12)


def test_egarch_simulation_equals_arch_with_same_shocks() -> None:
    """EGARCH h-day variance by simulation == arch ``forecast(method='simulation')`` fed the same shocks."""
    y = simulate_garch_t(600, [0.2, 0.08, 0.88, 6.0], seed=8)
    res = arch_model(y, mean="Zero", vol="EGARCH", p=1, o=1, q=1, dist="t").fit(disp="off")
    p = res.params.to_numpy()
    z = np.random.default_rng(1).standard_normal((400, 4))
    fc = res.forecast(horizon=4, method="simulation", simulations=400, reindex=False, rng=lambda size: z)
    v1 = np.array([fc.variance.to_numpy()[-1, 0]])
    got = gf.egarch_hday_variance(v1, p[0], p[1], p[2], p[3], z[:, :3])
    ref = gf.egarch_hday_variance_py(v1, p[0], p[1], p[2], p[3], z[:, :3])
    assert got[0] == pytest.approx(fc.variance.to_numpy()[-1].sum(), rel=1e-10)
    assert got[0] == pytest.approx(ref[0], rel=1e-13)


# ---------------------------------------------------------------- quantiles
def test_quantile_multipliers_normal_and_t() -> None:
    """Normal: z = 2.3263, ES = phi(z)/0.01 = 2.6652 (McNeil-Frey-Embrechts ex. 2.18);
    standardised t: scipy quantile x sqrt((nu-2)/nu), ES = mean of the ppf over the tail (quadrature)."""
    qn = quantile_multipliers("normal", np.empty(0), 0.99)
    np.testing.assert_allclose(qn, [2.326348, 2.326348, 2.665214, 2.665214], atol=1e-6)
    nu, c = 5.0, 0.99
    s = math.sqrt((nu - 2) / nu)
    qt = quantile_multipliers("t", np.array([nu]), c)
    es = integrate.quad(lambda u: stats.t.ppf(u, nu), c, 1)[0] / (1 - c) * s
    np.testing.assert_allclose(qt, [stats.t.ppf(c, nu) * s] * 2 + [es] * 2, rtol=1e-7)
    assert qt[0] == pytest.approx(-StudentsT().ppf(0.01, [nu]), rel=1e-10)


def test_quantile_multipliers_skewt_against_simulation() -> None:
    """Skew-t: quantiles are arch's ppf per side; ES against 500k seeded draws from arch's SkewStudent."""
    p = np.array([5.0, -0.2])
    q = quantile_multipliers("skewt", p, 0.99)
    d = SkewStudent()
    assert q[0] == pytest.approx(-d.ppf(0.01, p), rel=1e-12)
    assert q[1] == pytest.approx(d.ppf(0.99, p), rel=1e-12)
    x = d.ppf(np.random.default_rng(2).random(500_000), p)
    assert q[2] == pytest.approx(-x[x <= -q[0]].mean(), rel=0.03)
    assert q[3] == pytest.approx(x[x >= q[1]].mean(), rel=0.03)
    assert q[0] > q[1]  # negative skew: the left tail is heavier


# ------------------------------------------------------------- requirements
def _last_fit(fitted, asset: str, t: int) -> pd.Series:
    log = fitted.fit_log[(fitted.fit_log.asset == asset) & (fitted.fit_log.date <= fitted.panel.dates[t])]
    return log.iloc[-1]


def test_single_asset_var_equals_sigma_h_times_quantile(fitted_t) -> None:
    """VaR of 1 asset == sigma_h x t-quantile x notional, recomputed with arch ``fix`` +
    ``forecast`` on the fit window and scipy's t quantile (independent of the filter code)."""
    f = fitted_t
    panel = f.panel
    t = panel.n_dates - 7
    rec = _last_fit(f, "A0", t)
    assert rec.failure == "" and rec.converged
    tk = panel.dates.get_loc(rec.date)
    w0 = tk - rec.n_obs + 1
    r = panel.returns()[:, 0] * 100
    p = np.asarray(rec.params)
    res = arch_model(r[w0 : t + 1], mean="Zero", vol="GARCH", dist="t").fix(p)
    varh = res.forecast(horizon=2, reindex=False).variance.to_numpy()[-1].sum()
    nu = p[-1]
    q = stats.t.ppf(0.99, nu) * math.sqrt((nu - 2) / nu)
    expect = math.sqrt(varh) / 100 * q * 1000.0
    for coll, pos in (([1000.0, 0], [0, 0]), ([0, 0], [1000.0, 0]), ([0, 0], [-1000.0, 0]), ([400.0, 0], [600.0, 0])):
        req = f.requirement(t, np.array([coll]), np.array([pos]))
        assert req.maintenance[0] == pytest.approx(expect, rel=1e-9)
        assert req.initial[0] == pytest.approx(1.1 * expect, rel=1e-9)


def test_two_asset_parametric_var_hand_formula(panel2) -> None:
    """VaR = z sqrt(x1^2 s1^2 + x2^2 s2^2 + 2 rho x1 x2 s1 s2) (normal innovations), with rho
    recomputed by hand as sum(z1 z2)/sqrt(sum z1^2 sum z2^2) over the window."""
    f = GarchMargin(vol="garch", dist="normal", **FAST).fit(panel2)
    t = panel2.n_dates - 1
    z = f.z[t - 300 + 1 : t + 1]
    rho = np.sum(z[:, 0] * z[:, 1]) / math.sqrt(np.sum(z[:, 0] ** 2) * np.sum(z[:, 1] ** 2))
    assert f.corr[t, 0, 1] == pytest.approx(rho, rel=1e-10)
    assert 0.3 < rho < 0.7  # simulated with rho = 0.5
    s1, s2 = f.sigma_h[t]
    x1, x2 = 700.0, -300.0
    zq = stats.norm.ppf(0.99)
    expect = zq * math.sqrt(x1**2 * s1**2 + x2**2 * s2**2 + 2 * rho * x1 * x2 * s1 * s2)
    req = f.requirement(t, np.array([[x1, 0.0]]), np.array([[0.0, x2]]))
    assert req.maintenance[0] == pytest.approx(expect, rel=1e-10)


def test_ewma_correlation_recursion(panel2) -> None:
    """Dynamic correlation: Q_t = lam Q_{t-1} + (1 - lam) z_t z_t', R = Q12 / sqrt(Q11 Q22), by hand."""
    f = GarchMargin(vol="garch", dist="normal", correlation="ewma", corr_lambda=0.9, **FAST).fit(panel2)
    z = f.z
    ok = np.isfinite(z).all(axis=1)
    q = np.zeros(3)
    for t in np.flatnonzero(ok):
        q = 0.9 * q + 0.1 * np.array([z[t, 0] * z[t, 1], z[t, 0] ** 2, z[t, 1] ** 2])
    assert f.corr[-1, 0, 1] == pytest.approx(q[0] / math.sqrt(q[1] * q[2]), rel=1e-10)


def test_fhs_var_and_es_by_hand(fitted_fhs) -> None:
    """FHS at 95% over 100 days: losses of x'(exp(z_s sigma_h(t)) - 1); VaR = 5th largest
    (k = ceil(100 x 0.05)), ES = mean of the 5 largest, recomputed with numpy."""
    f = fitted_fhs
    t = f.panel.n_dates - 1
    x = np.array([500.0, -200.0])
    ret = np.expm1(f.z[t - 99 : t + 1] * f.sigma_h[t])
    loss = np.sort(-(ret @ x))[::-1]
    assert f.model.confidence == 0.95
    try:
        f.model.measure = "var"
        assert f.requirement(t, np.zeros((1, 2)), x[None]).maintenance[0] == pytest.approx(loss[4], rel=1e-12)
        f.model.measure = "es"
        assert f.requirement(t, np.zeros((1, 2)), x[None]).maintenance[0] == pytest.approx(loss[:5].mean(), rel=1e-12)
    finally:
        f.model.measure = "var"


def test_path_matches_requirement_loop(fitted_t) -> None:
    """The chunked parametric path == the base-class loop over dates (cross and isolated)."""
    f = fitted_t
    book = Book(
        f.panel.assets,
        np.array([[100.0, 0.0], [0.0, 50.0], [30.0, 10.0]]),
        np.array([[0.0, -80.0], [20.0, 0.0], [-30.0, 40.0]]),
        isolated=np.array([False, False, True]),
    )
    fast = f.path(book)
    slow = super(type(f), f).path(book, fast.eligible)
    np.testing.assert_allclose(fast.maintenance, slow.maintenance, rtol=1e-12)
    np.testing.assert_allclose(fast.initial, slow.initial, rtol=1e-12)
    first = f.fit_log.date.min()
    assert np.isnan(fast.maintenance[f.panel.dates < first]).all()
    assert np.isfinite(fast.maintenance[f.panel.dates >= first]).all()


def test_ineligible_asset_gives_nan() -> None:
    """An asset listed later is NaN until it has min_history returns; accounts without it are priced."""
    panel, _ = garch_panel(400, 2, seed=11)
    close = panel.close.copy()
    close[:200, 1] = np.nan
    panel = make_panel(close)
    f = GarchMargin(dist="normal", **FAST).fit(panel)
    t = 300  # A1 has 99 returns
    req = f.requirement(t, np.array([[100.0, 0.0], [100.0, 1.0]]), np.zeros((2, 2)))
    assert np.isfinite(req.maintenance[0]) and np.isnan(req.maintenance[1])
    # first return of A1 at 201, first fit after 150 returns: date index 201 + 150 - 1 = 350
    assert f.asset_ok[350, 1] and not f.asset_ok[349, 1]
    assert f.fit_log[f.fit_log.asset == "A1"].date.min() == panel.dates[350]


# ------------------------------------------------------------- estimation
def test_parameter_recovery_on_simulated_garch_t() -> None:
    """arch fit on 4,000 seeded GARCH(1,1)-t returns recovers (omega, alpha, beta, nu) =
    (0.2, 0.1, 0.85, 5) within sampling tolerance."""
    y = simulate_garch_t(4000, [0.2, 0.1, 0.85, 5.0], seed=21)
    p, ll, flag, failure = fit_window(y, "garch", "t", 0.94, None)
    assert failure == "" and flag == 0 and np.isfinite(ll)
    assert p[0] == pytest.approx(0.2, rel=0.5)
    assert p[1] == pytest.approx(0.1, abs=0.03)
    assert p[2] == pytest.approx(0.85, abs=0.04)
    assert p[3] == pytest.approx(5.0, abs=1.2)


def kupiec_pvalue(exceptions: int, n: int, p: float) -> float:
    """Kupiec (1995) POF likelihood ratio, chi2(1) p-value."""
    x = exceptions
    phat = x / n
    ll0 = (n - x) * math.log(1 - p) + x * math.log(p)
    ll1 = (n - x) * math.log(1 - phat) + (x * math.log(phat) if x else 0.0)
    return float(stats.chi2.sf(-2 * (ll0 - ll1), 1))


def test_coverage_kupiec_on_simulated_garch_t() -> None:
    """On seeded GARCH-t data the 99% one-day GARCH-t VaR of a long position has a Kupiec p-value
    > 5%; plain 250-day historical VaR on the same data is rejected (clustered volatility)."""
    panel, _ = garch_panel(3300, 1, seed=5)
    f = GarchMargin(vol="garch", dist="t", min_history=300, window_length=1000, refit_every=250, n_jobs=1).fit(panel)
    var = f.sigma_h[:, 0] * f.quantiles[:, 0, 0]  # VaR of 1 USD long (log-return units)
    lin_loss = -panel.forward_returns(1, "log")[:, 0]
    ok = np.isfinite(var) & np.isfinite(lin_loss)
    exc = int(np.sum(lin_loss[ok] > var[ok]))
    assert kupiec_pvalue(exc, int(ok.sum()), 0.01) > 0.05
    r = panel.returns(1, "log")[:, 0]
    hs = np.full_like(r, np.nan)
    for t in range(300, len(r)):
        hs[t] = -np.quantile(r[t - 249 : t + 1], 0.01)
    ok2 = ok & np.isfinite(hs)
    exc_hs = int(np.sum(lin_loss[ok2] > hs[ok2]))
    assert kupiec_pvalue(exc_hs, int(ok2.sum()), 0.01) < 0.05


def test_failure_tiny_and_constant_series_warn_and_fall_back() -> None:
    """Too little history (min_history=20 < 100) and a constant price raise GarchEstimationWarning
    naming asset, date, failure and fallback; the fallback is EWMA(0.94), recomputed by hand."""
    rng = np.random.default_rng(3)
    close = np.column_stack([100 * np.exp(np.cumsum(0.02 * rng.standard_normal(60))), np.full(60, 5.0)])
    panel = make_panel(close)
    with pytest.warns(GarchEstimationWarning) as rec:
        f = GarchMargin(min_history=20, window_length=40, fhs_window=20, refit_every=30, n_jobs=1).fit(panel)
    msgs = [str(w.message) for w in rec if issubclass(w.category, GarchEstimationWarning)]
    assert any("A0" in m and "too little history" in m and "EWMA lambda=0.94" in m and "2020-01-21" in m for m in msgs)
    assert any("A1" in m and "constant returns" in m for m in msgs)
    log = f.fit_log
    assert (~log.converged).all() and (log.fallback != "").all()
    r = panel.returns()[:, 0] * 100
    y = r[1:21]  # the first fit window: 20 returns up to date index 20
    v = gf.arch_backcast(y)
    for e in y:
        v = 0.94 * v + 0.06 * e * e
    assert f.sigma1[20, 0] == pytest.approx(math.sqrt(v) / 100, rel=1e-12)
    assert f.requirement(25, np.array([[0.0, 100.0]]), np.zeros((1, 2))).maintenance[0] == 0.0


@pytest.mark.parametrize(
    "kw",
    [dict(vol="garch", dist="t"), dict(vol="egarch", dist="normal", horizon=3, correlation="ewma"),
     dict(vol="gjr", dist="normal", portfolio="fhs")],
)
def test_no_look_ahead(kw: dict) -> None:
    """Perturbing every price after t leaves all margins up to t unchanged (refit dates included)."""
    panel, _ = garch_panel(330, 2, seed=13)
    t = 260
    close = panel.close.copy()
    close[t + 1 :] *= np.exp(np.random.default_rng(0).normal(0, 0.2, close[t + 1 :].shape))
    book = Book(panel.assets, np.array([[100.0, 50.0], [0.0, 0.0]]), np.array([[0.0, -80.0], [40.0, 60.0]]))
    kw = {**FAST, "refit_every": 50, **kw}
    a = GarchMargin(**kw).fit(panel).path(book)
    b = GarchMargin(**kw).fit(panel.with_close(close)).path(book)
    np.testing.assert_array_equal(a.maintenance[: t + 1], b.maintenance[: t + 1])
    assert np.isfinite(a.maintenance[t]).all()
    assert not np.allclose(a.maintenance[t + 2 :], b.maintenance[t + 2 :])


def test_results_do_not_depend_on_n_jobs() -> None:
    """Serial and 2-process fits give identical arrays and logs (EGARCH simulation seeded per asset)."""
    panel, _ = garch_panel(260, 3, seed=17)
    kw = {**FAST, "vol": "egarch", "horizon": 2, "refit_every": 100}
    a = GarchMargin(**{**kw, "n_jobs": 1}).fit(panel)
    b = GarchMargin(**{**kw, "n_jobs": 2}).fit(panel)
    np.testing.assert_array_equal(a.sigma_h, b.sigma_h)
    np.testing.assert_array_equal(a.corr, b.corr)
    pd.testing.assert_frame_equal(a.fit_log, b.fit_log)


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(150, 419),
    x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=4),
    k=st.floats(0.01, 100.0),
    fhs=st.booleans(),
)
def test_invariants(fitted_t, fitted_fhs, t: int, x: list[float], k: float, fhs: bool) -> None:
    """Non-negative; homogeneous of degree 1; a zero position or zero collateral adds nothing."""
    f = fitted_fhs if fhs else fitted_t
    c = np.abs(np.array([x[:2]]))
    p = np.array([x[2:]])
    r = f.requirement(t, c, p)
    assert (r.maintenance >= 0).all() and (r.initial >= r.maintenance).all()
    np.testing.assert_allclose(f.requirement(t, k * c, k * p).maintenance, k * r.maintenance, rtol=1e-9, atol=1e-9)
    both = f.requirement(t, np.vstack([c, c]), np.vstack([p, np.zeros_like(p)]))
    alone = f.requirement(t, c, np.zeros_like(p))
    assert both.maintenance[0] == pytest.approx(r.maintenance[0], rel=1e-12, abs=1e-12)
    assert both.maintenance[1] == pytest.approx(alone.maintenance[0], rel=1e-12, abs=1e-12)
    assert f.requirement(t, np.zeros((1, 2)), np.zeros((1, 2))).maintenance[0] == 0.0


# ----------------------------------------------------------- API / validation
@pytest.mark.parametrize(
    "kw, word",
    [
        (dict(vol="figarch"), "vol"), (dict(dist="ged"), "dist"), (dict(confidence=1.0), "confidence"),
        (dict(horizon=11), "horizon"), (dict(measure="cvar"), "measure"), (dict(portfolio="mc"), "portfolio"),
        (dict(correlation="dcc"), "correlation"), (dict(corr_lambda=1.0), "corr_lambda"),
        (dict(refit_every=0), "refit_every"), (dict(window="fixed"), "window"),
        (dict(window_length=100), "window_length"), (dict(min_history=1), "min_history"),
        (dict(fhs_window=300), "fhs_window"), (dict(im_multiplier=0.9), "im_multiplier"),
        (dict(n_jobs=0), "n_jobs"), (dict(ewma_lambda=0.0), "ewma_lambda"),
        (dict(max_param_age=-1), "max_param_age"), (dict(max_param_age=2.5), "max_param_age"),
    ],
)
def test_bad_parameters_name_themselves(kw: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        GarchMargin(**kw)


def test_registry_and_ewma_model(panel2) -> None:
    """``get("garch")`` / ``get("ewma")`` build the models; EWMA sigma follows the RiskMetrics recursion."""
    assert {"garch", "ewma"} <= set(available())
    assert isinstance(get("garch", vol="gjr"), GarchMargin)
    m = get("ewma", ewma_lambda=0.97, min_history=150, n_jobs=1)
    assert isinstance(m, EwmaMargin) and m.vol == "ewma" and m.params()["ewma_lambda"] == 0.97
    f = m.fit(panel2)
    r = panel2.returns()[:, 1]
    t = 400
    w0 = f.fit_log[f.fit_log.asset == "A1"].date.iloc[-1]
    tk = panel2.dates.get_loc(w0)
    y = r[max(1, tk - 999) : t + 1] * 100
    v = gf.arch_backcast(y[: tk - max(1, tk - 999) + 1])
    for e in y:
        v = 0.97 * v + 0.03 * e * e
    assert f.sigma1[t, 1] == pytest.approx(math.sqrt(v) / 100, rel=1e-12)
    assert f.fit_log.failure.eq("").all()


def test_real_btc_eth_margin_is_plausible(daily_dir) -> None:
    """BTC and ETH 2019-2021 (real data): every fit converges (none falls back), at-bound fits are
    accepted with one warning per affected asset, and the 1-day 99% VaR of 1 USD long is between 2% and
    100% of notional, higher in March 2020 than in calm Q4 2019."""
    frames = {}
    for sym in ("BTC", "ETH"):
        df = pd.read_csv(daily_dir / f"{sym}-USD_1d.csv", parse_dates=["datetime"], index_col="datetime")
        df.index = pd.DatetimeIndex(df.index).tz_localize(None).normalize()
        frames[sym] = df.loc["2018-01-01":"2021-12-31", ["open", "high", "low", "close", "volume"]]
    from riskmodels.data.panel import PricePanel

    panel = PricePanel.from_frames(frames)
    with pytest.warns(GarchEstimationWarning) as rec:
        f = GarchMargin(vol="gjr", dist="t", refit_every=120, n_jobs=1).fit(panel)
    log = f.fit_log
    assert log.converged.all() and (log.fallback == "").all()
    # integrated-GARCH-like estimates are common on crypto and are accepted, flagged, summarised once per asset
    assert log.at_bound.any() and (log.persistence <= PERSISTENCE_CAP + 1e-12).all()
    msgs = [str(w.message) for w in rec if issubclass(w.category, GarchEstimationWarning)]
    assert sorted(m.split(":")[0] for m in msgs) == sorted(f"GARCH estimation for {a}" for a in log[log.at_bound].asset.unique())
    rate = f.path(Book(panel.assets, np.array([[1.0, 0.0]]), np.zeros((1, 2)))).maintenance[:, 0]
    ok = np.isfinite(rate)
    # 1-day 99% VaR of 1 USD of BTC: above 2% and below the whole notional (it peaks at ~34% on 2020-03-12,
    # at the close of the COVID crash day, CRASH_DAYS.md)
    assert ((rate[ok] > 0.02) & (rate[ok] < 1.0)).all()
    s = pd.Series(rate, index=panel.dates)
    assert s["2020-03-13":"2020-03-20"].mean() > s["2019-10-01":"2019-12-31"].mean()


# ------------------------------------------------- estimator, bounds, fallbacks
def simulate_igarch_t(n: int, seed: int, omega: float = 0.05, alpha: float = 0.12, nu: float = 5.0) -> np.ndarray:
    """Seeded IGARCH(1,1)-t percent returns: ``s2' = omega + alpha r^2 + (1 - alpha) s2`` (persistence 1)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, n + 200) * math.sqrt((nu - 2) / nu)
    s2, r = 4.0, np.empty(n + 200)
    for t in range(n + 200):
        r[t] = math.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + (1 - alpha) * s2
    return r[200:]


@pytest.mark.parametrize(
    "vol, dist, data",
    [("garch", "t", "garch"), ("gjr", "skewt", "garch"), ("egarch", "t", "garch"), ("garch", "t", "igarch")],
)
def test_fast_estimator_matches_arch_fit(vol: str, dist: str, data: str) -> None:
    """``arch_mle`` (arch's likelihood, SLSQP with the stacked exact constraint Jacobian) == arch's own
    ``fit()`` to optimiser tolerance, interior and at-bound (IGARCH) estimates; its log-likelihood is
    arch's ``fix(params).loglikelihood`` at its own parameters (1e-8)."""
    y = simulate_garch_t(800, [0.2, 0.1, 0.85, 5.0], seed=31) if data == "garch" else simulate_igarch_t(700, seed=1)
    name, o = VOLS[vol]
    mod = arch_model(y, mean="Zero", vol=name, p=1, o=o, q=1, dist={"t": "t", "skewt": "skewt"}[dist], rescale=False)
    ref = mod.fit(disp="off")
    p, ll, status = arch_mle(y, vol, dist, 0.94, None)
    assert status == 0 and ref.convergence_flag == 0
    np.testing.assert_allclose(p, ref.params.to_numpy(), rtol=2e-3, atol=2e-4)
    assert ll == pytest.approx(ref.loglikelihood, abs=1e-4)
    assert ll == pytest.approx(mod.fix(p).loglikelihood, rel=1e-10)
    if data == "igarch":
        assert persistence(vol, p) >= MAX_PERSISTENCE and persistence(vol, ref.params.to_numpy()) >= MAX_PERSISTENCE
    # warm start from the optimum stays there (the schedule warm-starts every refit)
    _, ll2, _ = arch_mle(y, vol, dist, 0.94, p)
    assert ll2 >= ll - 1e-6


def test_cap_persistence_by_hand() -> None:
    """alpha, gamma, beta (EGARCH beta) scaled by cap/p when p > 1 - 1e-6; omega and nu unchanged."""
    p = np.array([0.1, 0.3, 0.72, 5.0])  # GARCH: p = 1.02
    c = cap_persistence("garch", p)
    k = (1 - 1e-6) / 1.02
    np.testing.assert_allclose(c, [0.1, 0.3 * k, 0.72 * k, 5.0], rtol=1e-15)
    assert persistence("garch", c) == pytest.approx(PERSISTENCE_CAP, rel=1e-15)
    g = np.array([0.1, 0.2, 0.1, 0.75, 6.0])  # GJR: 0.2 + 0.05 + 0.75 = 1
    np.testing.assert_allclose(cap_persistence("gjr", g), [0.1, 0.2 * (1 - 1e-6), 0.1 * (1 - 1e-6), 0.75 * (1 - 1e-6), 6.0])
    e = np.array([0.01, 0.2, -0.1, 1.0])
    np.testing.assert_allclose(cap_persistence("egarch", e), [0.01, 0.2, -0.1, 1 - 1e-6])
    inside = np.array([0.1, 0.1, 0.85, 5.0])
    np.testing.assert_array_equal(cap_persistence("garch", inside), inside)


def test_igarch_estimate_accepted_flagged_and_warned_once() -> None:
    """Synthetic IGARCH-t (persistence 1): every refit hits the bound, is accepted (no fallback), flagged
    ``at_bound`` and used with persistence <= 1 - 1e-6; one warning for that asset (none for the GARCH
    asset) counting the at-bound refits. The margin volatility equals arch's ``fix(params)`` one-step
    forecast on the fit window plus the segment (independent of the filter code)."""
    r = np.column_stack([simulate_igarch_t(700, seed=1), simulate_garch_t(700, [0.2, 0.05, 0.9, 6.0], seed=2)])
    r[0] = 0.0
    panel = make_panel(100.0 * np.exp(np.cumsum(r / 100.0, axis=0)))
    with pytest.warns(GarchEstimationWarning) as rec:
        f = GarchMargin(dist="t", min_history=400, window_length=600, refit_every=100, n_jobs=1).fit(panel)
    log = f.fit_log
    a0 = log[log.asset == "A0"]
    assert a0.at_bound.all() and (a0.failure == "").all() and (a0.fallback == "").all() and a0.converged.all()
    assert (a0.persistence <= PERSISTENCE_CAP + 1e-12).all() and (a0.persistence >= MAX_PERSISTENCE).all()
    assert a0.bound.str.contains("integrated-GARCH-like").all()
    msgs = [str(w.message) for w in rec if issubclass(w.category, GarchEstimationWarning)]
    assert len(msgs) == 1 and "A0" in msgs[0] and f"{len(a0)} of {len(a0)} refits" in msgs[0]
    assert not log[log.asset == "A1"].at_bound.any()
    rec0 = a0.iloc[-1]
    tk = panel.dates.get_loc(rec0.date)
    w0 = tk - rec0.n_obs + 1
    t = panel.n_dates - 1
    y = panel.returns()[:, 0] * 100
    res = arch_model(y[w0 : tk + 1], mean="Zero", vol="GARCH", dist="t", rescale=False).fix(np.asarray(rec0.params))
    # arch's in-sample path at tk gives the one-step forecast for tk + 1
    f1 = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert f.sigma1[tk, 0] == pytest.approx(math.sqrt(f1) / 100, rel=1e-10)
    assert np.isfinite(f.sigma_h[t]).all()


def test_stale_previous_parameters_fall_back_to_ewma(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fits 1-2 succeed, later ones fail: refit 3 reuses the refit-2 parameters (99 days old at its
    segment end <= max_param_age=120), refit 4 would use 149-day-old ones and falls back to EWMA(0.94),
    recomputed by hand; one warning names the first failure and counts both fallbacks."""
    real = garch_fit.fit_window
    calls = {"n": 0}

    def flaky(y, vol, dist, lam, start, driver="fast"):
        calls["n"] += 1
        if calls["n"] <= 2:
            return real(y, vol, dist, lam, start, driver)
        return None, np.nan, 9, "optimizer did not converge (SLSQP status=9)"

    monkeypatch.setattr(garch_fit, "fit_window", flaky)
    panel, _ = garch_panel(460, 1, seed=3)
    m = GarchMargin(dist="normal", min_history=200, window_length=300, refit_every=50, max_param_age=120, n_jobs=1)
    with pytest.warns(GarchEstimationWarning) as rec:
        f = m.fit(panel)
    log = f.fit_log
    assert list(log.date) == list(panel.dates[[200, 250, 300, 350, 400, 450]])
    assert list(log.failure == "") == [True, True, False, False, False, False]
    assert log.fallback.iloc[2] == "previous parameters (fitted at date index 250)"
    assert log.params.iloc[2] == log.params.iloc[1]
    assert log.fallback.iloc[3].startswith("EWMA lambda=0.94, normal innovations (previous parameters would be 149")
    assert (log.vol.iloc[3:] == "ewma").all()
    msgs = [str(w.message) for w in rec if issubclass(w.category, GarchEstimationWarning)]
    assert len(msgs) == 1
    assert "4 of 6 refits failed (first on 2020-10-27" in msgs[0] and "previous parameters 1x, EWMA 3x" in msgs[0]
    # refit 4 (t = 350): EWMA from arch's backcast of its window (last 300 returns), by hand
    r = panel.returns()[:, 0] * 100
    y = r[51:361]
    v = gf.arch_backcast(y[:300])
    for e in y:
        v = 0.94 * v + 0.06 * e * e
    assert f.sigma1[360, 0] == pytest.approx(math.sqrt(v) / 100, rel=1e-12)
    # refit 3 (t = 300) uses the refit-2 GARCH parameters, filtered on its own window: arch fix()
    p = np.asarray(log.params.iloc[1])
    res = arch_model(r[1:301], mean="Zero", vol="GARCH", dist="normal", rescale=False).fix(p)
    f1 = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert f.sigma1[300, 0] == pytest.approx(math.sqrt(f1) / 100, rel=1e-10)


def test_gap_inside_live_range_names_asset_date_and_remedy() -> None:
    """A missing close inside an asset's live range: a ValueError naming asset, date and the loader remedies."""
    panel, _ = garch_panel(300, 2, seed=4)
    close = panel.close.copy()
    close[120, 1] = np.nan
    with pytest.raises(ValueError, match=r"A1 has no return on 2020-04-30.*policy='truncate'.*max_fill") as e:
        GarchMargin(**FAST).fit(make_panel(close))
    assert "date index 120" in str(e.value)


@pytest.mark.parametrize("portfolio", ["parametric", "fhs"])
def test_min_history_matches_panel_eligibility_and_unfitted_assets_are_nan(portfolio: str) -> None:
    """``asset_ok`` == ``panel.eligible(model.min_history)`` on a ragged panel (the engine's rule); an engine
    mask from a smaller ``min_history`` or an asset never fitted gives NaN for accounts holding it, not a crash."""
    panel, _ = garch_panel(400, 3, seed=12)
    close = panel.close.copy()
    close[:180, 1] = np.nan  # A1: first return at 181, first fit at 181 + 150 - 1 = 330
    close[:300, 2] = np.nan  # A2: 99 returns at the end, never fitted
    panel = make_panel(close)
    m = GarchMargin(dist="normal", portfolio=portfolio, **FAST)
    f = m.fit(panel)
    np.testing.assert_array_equal(f.asset_ok, panel.eligible(m.min_history))
    assert f.asset_ok[330, 1] and not f.asset_ok[329, 1] and not f.asset_ok[:, 2].any()
    book = Book(panel.assets, np.array([[100.0, 0, 0], [0, 0, 0], [0, 0, 0]]), np.array([[0, 0, 0], [50.0, 20, 0], [0, 0, 10.0]]))
    path = f.path(book, eligible=np.tile(panel.eligible(10)[:, :1], (1, 3)))  # engine mask too loose
    mm = path.maintenance
    assert np.isfinite(mm[150:, 0]).all()
    assert np.isnan(mm[:330, 1]).all() and np.isfinite(mm[330:, 1]).all()
    assert np.isnan(mm[:, 2]).all()
    req = f.requirement(350, np.zeros((2, 3)), np.array([[0, 0, 5.0], [5.0, 0, 0]]))
    assert np.isnan(req.maintenance[0]) and np.isfinite(req.maintenance[1])


def test_parametric_lipschitz_bound_holds_and_fhs_has_none(fitted_t, fitted_fhs) -> None:
    """|MM(x') - MM(x)| <= sum_a L_a (|dc_a| + |dp_a|), cross and isolated, sign changes included (issue 23).

    The bound is derived in ``FittedGarch.maintenance_lipschitz`` (a norm's triangle inequality);
    the simulation's intraday skip relies on it being exact.
    """
    from riskmodels.margin.base import FittedMargin

    rng = np.random.default_rng(11)
    n = 400
    for t in (200, 300, 419):
        lip = fitted_t.maintenance_lipschitz(t)
        assert lip is not None and lip.shape == (2,) and np.all(lip > 0)
        c = np.abs(rng.normal(0, 1e4, (n, 2))) * (rng.random((n, 2)) < 0.5)
        p = rng.normal(0, 2e4, (n, 2))
        dc = np.maximum(c + c * rng.uniform(-0.5, 0.5, c.shape), 0.0) - c
        dp = rng.normal(0, 1e4, p.shape)  # flips the sign of many positions
        bound = (np.abs(dc) + np.abs(dp)) @ lip
        for req in (fitted_t.requirement, fitted_t.isolated_requirement):
            m0 = req(t, c, p).maintenance
            m1 = req(t, c + dc, p + dp).maintenance
            assert np.isfinite(m0).all() and np.isfinite(m1).all()  # NaN would pass the comparison vacuously
            assert np.all(np.abs(m1 - m0) <= bound * (1 + 1e-9) + 1e-9)
        # the bound is tight enough to be useful: a single-asset account moves by exactly L |dx|
        one = np.array([[0.0, 0.0]]), np.array([[1e4, 0.0]])
        step = fitted_t.requirement(t, one[0], one[1] * 1.01).maintenance - fitted_t.requirement(t, *one).maintenance
        assert step[0] == pytest.approx(100.0 * fitted_t.sigma_h[t, 0] * fitted_t._qpos[t, 0], rel=1e-9)
        assert step[0] <= lip[0] * 100.0 * (1 + 1e-12)
    assert fitted_fhs.maintenance_lipschitz(300) is None
    assert FittedMargin.account_requirement is type(fitted_t).account_requirement
@pytest.mark.parametrize("corr", [-0.9, 0.0, 0.95])
def test_maintenance_lipschitz_bounds_parametric_mm(fitted_t, fitted_fhs, corr) -> None:
    """|MM(c', p') - MM(c, p)| <= sum_a L_a (|dc_a| + |dp_a|) at every date (cross and isolated)."""
    panel = garch_panel(420, 3, seed=11, rho=corr if corr > -0.45 else -0.45)[0]
    f = GarchMargin(vol="garch", dist="t", horizon=2, **FAST).fit(panel)
    assert fitted_fhs.maintenance_lipschitz(300) is None
    rng = np.random.default_rng(5)
    c = np.abs(rng.normal(0, 1e4, (200, 3))) * (rng.random((200, 3)) < 0.5)
    p = rng.normal(0, 1e4, (200, 3))
    c2 = np.abs(c * rng.uniform(0, 2, c.shape))
    p2 = p * rng.uniform(-1, 2, p.shape)
    iso = rng.random(200) < 0.3
    checked = 0
    for t in range(150, 420, 13):
        L = f.maintenance_lipschitz(t)
        if not np.isfinite(L).all():
            continue
        m1 = f.account_requirement(t, c, p, iso).maintenance
        m2 = f.account_requirement(t, c2, p2, iso).maintenance
        bound = ((np.abs(c2 - c) + np.abs(p2 - p)) * L).sum(axis=1)
        assert (np.abs(m2 - m1) <= bound * (1 + 1e-9) + 1e-9).all()
        checked += 1
    assert checked > 5
