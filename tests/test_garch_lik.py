"""GARCH/GJR likelihood with analytic gradient (riskmodels.margin._garch_lik) against arch 8.0.

References (independent of the code under test):

* the likelihood: ``arch.univariate`` components -- ``GARCH(1, o, 1).compute_variance``
  (arch's backcast and ``variance_bounds``) and ``Normal`` / ``StudentsT.loglikelihood``;
  the problem data (backcast, bounds, linear constraints) from the same objects;
* the gradient: a central finite difference of arch's own likelihood;
* the estimates: arch's own ``ZeroMean(y, GARCH(1, o, 1), dist).fit()``;
* the optimiser driver: SciPy's ``optimize.minimize(method="SLSQP", jac=True)``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from arch.univariate import GARCH, Normal, StudentsT, ZeroMean

from riskmodels.margin import _garch_lik as gl
from riskmodels.margin.garch_fit import MAX_PERSISTENCE, arch_mle, persistence

COMBOS = [("garch", "normal"), ("garch", "t"), ("gjr", "normal"), ("gjr", "t")]


def arch_parts(vol: str, dist: str) -> tuple[GARCH, Normal | StudentsT]:
    return GARCH(1, 1 if vol == "gjr" else 0, 1), (StudentsT() if dist == "t" else Normal())


def arch_nll(theta: np.ndarray, y: np.ndarray, vol: str, dist: str) -> float:
    """``-loglikelihood`` from arch's components, arch's backcast and variance bounds."""
    v, d = arch_parts(vol, dist)
    kv = v.num_params
    s2 = np.empty_like(y)
    v.compute_variance(theta[:kv], y, s2, v.backcast(y), v.variance_bounds(y))
    return -float(d.loglikelihood(theta[kv:], y, s2, False))


def random_params(rng: np.random.Generator, vol: str, dist: str, y: np.ndarray, k: int) -> list[np.ndarray]:
    """``k`` seeded points inside arch's bounds and constraints (omega scaled to the data)."""
    v2 = float(np.mean(y**2))
    out = []
    for _ in range(k):
        alpha = rng.uniform(0.01, 0.3)
        gamma = rng.uniform(-alpha, 0.3) if vol == "gjr" else 0.0
        beta = rng.uniform(0.3, 0.98 - alpha - max(gamma, 0.0) / 2)
        p = [rng.uniform(0.005, 0.2) * v2, alpha] + ([gamma] if vol == "gjr" else []) + [beta]
        out.append(np.array(p + ([rng.uniform(2.3, 30.0)] if dist == "t" else [])))
    return out


def synthetic(seed: int, n: int = 1000) -> np.ndarray:
    """Seeded GJR-GARCH-t(5) percent returns (omega 0.1, alpha 0.08, gamma 0.06, beta 0.86)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(5, n) * np.sqrt(3 / 5)
    y, s2 = np.empty(n), 4.0
    for t in range(n):
        y[t] = np.sqrt(s2) * z[t]
        s2 = 0.1 + (0.08 + 0.06 * (y[t] < 0)) * y[t] ** 2 + 0.86 * s2
    return y


def window(daily_dir: Path, sym: str, end: str, n: int = 1000) -> np.ndarray:
    """The last ``n`` daily log returns x 100 up to ``end`` (close to close)."""
    df = pd.read_csv(daily_dir / f"{sym}-USD_1d.csv", parse_dates=["datetime"], index_col="datetime")
    c = df["close"].to_numpy(dtype=np.float64)[pd.DatetimeIndex(df.index).tz_localize(None).normalize() <= end]
    return 100.0 * np.diff(np.log(c))[-n:]


@pytest.fixture(scope="module")
def real(daily_dir: Path) -> dict[str, np.ndarray]:
    return {
        "BTC": window(daily_dir, "BTC", "2024-12-23"),
        "ETH": window(daily_dir, "ETH", "2022-08-25"),
        "DOGE": window(daily_dir, "DOGE", "2021-12-18"),
    }


# ------------------------------------------------------------- the problem
@pytest.mark.parametrize("vol, dist", COMBOS)
def test_problem_equals_arch(vol: str, dist: str) -> None:
    """Backcast (bit-equal), variance bounds (1e-14), parameter bounds and linear constraints of
    ``problem`` are arch's ``GARCH.backcast / variance_bounds / bounds / constraints`` and
    ``StudentsT.bounds / constraints``."""
    y = synthetic(1)
    v, d = arch_parts(vol, dist)
    bc, vb, bounds, a, b = gl.problem(y, vol, dist)
    assert bc == v.backcast(y)
    np.testing.assert_allclose(vb, v.variance_bounds(y), rtol=1e-14)
    assert bounds == list(v.bounds(y)) + list(d.bounds(y))
    kv, kd = v.num_params, d.num_params
    av, bv = v.constraints()
    a_ref = np.zeros((av.shape[0] + (2 if kd else 0), kv + kd))
    a_ref[: av.shape[0], :kv] = av
    b_ref = list(bv)
    if kd:
        ad, bd = d.constraints()
        a_ref[av.shape[0] :, kv:] = ad
        b_ref += list(bd)
    np.testing.assert_array_equal(a, a_ref)
    np.testing.assert_array_equal(b, b_ref)
    assert gl.n_params(vol, dist) == kv + kd
    with pytest.raises(ValueError, match="vol, dist"):
        gl.problem(y, "egarch", "t")


# ---------------------------------------------------------- the likelihood
def check_likelihood(y: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for vol, dist in COMBOS:
        bc, vb, *_ = gl.problem(y, vol, dist)
        for theta in random_params(rng, vol, dist, y, 4):
            ref = arch_nll(theta, y, vol, dist)
            f, g = gl.nll_grad(theta, y, bc, vb, vol, dist)
            assert f == pytest.approx(ref, rel=1e-9)
            assert gl.nll_reference(theta, y, bc, vb, vol, dist) == pytest.approx(ref, rel=1e-12)
            assert g.shape == theta.shape and np.all(np.isfinite(g))


def test_likelihood_equals_arch_synthetic() -> None:
    """At seeded random parameter points: numba objective == arch's to 1e-9, plain reference to 1e-12."""
    check_likelihood(synthetic(2), seed=3)
    check_likelihood(synthetic(4, n=300), seed=5)


def test_likelihood_equals_arch_real(real: dict[str, np.ndarray]) -> None:
    """Same on real 1,000-day windows (BTC, ETH, DOGE)."""
    for k, y in enumerate(real.values()):
        check_likelihood(y, seed=10 + k)


def arch_nll_bounds(theta: np.ndarray, y: np.ndarray, vol: str, dist: str, vb: np.ndarray) -> float:
    """arch's ``-loglikelihood`` with given variance bounds (``compute_variance`` takes them as input)."""
    v, d = arch_parts(vol, dist)
    kv = v.num_params
    s2 = np.empty_like(y)
    v.compute_variance(theta[:kv], y, s2, v.backcast(y), vb)
    return -float(d.loglikelihood(theta[kv:], y, s2, False))


def test_likelihood_where_arch_variance_bounds_bind() -> None:
    """arch's own bounds made to bind by the parameters: ``omega`` huge (every step above the upper
    bound, ``hi + ln(s2 / hi)``) and ``omega`` tiny with ``alpha = beta = 0`` (every step clipped to
    the lower bound, where the variance no longer moves with the variance parameters)."""
    y = synthetic(6, n=400)
    for vol, dist, theta in [
        ("garch", "t", np.array([1e9, 0.1, 0.5, 6.0])),
        ("gjr", "normal", np.array([1e9, 0.1, 0.1, 0.5])),
        ("garch", "normal", np.array([1e-12, 0.0, 0.0])),
        ("gjr", "t", np.array([1e-12, 0.0, 0.0, 0.0, 8.0])),
    ]:
        bc, vb, *_ = gl.problem(y, vol, dist)
        f, g = gl.nll_grad(theta, y, bc, vb, vol, dist)
        assert f == pytest.approx(arch_nll(theta, y, vol, dist), rel=1e-9)
        assert gl.nll_reference(theta, y, bc, vb, vol, dist) == pytest.approx(f, rel=1e-12)
        assert np.all(np.isfinite(g))
        if theta[0] < 1.0:
            np.testing.assert_array_equal(g[: 4 if vol == "gjr" else 3], 0.0)


@pytest.mark.parametrize("vol, dist", COMBOS)
def test_gradient_where_bounds_bind(vol: str, dist: str) -> None:
    """Tight constant bounds (lower at the 25th, upper at the 75th percentile of the unbounded variance
    path) put about half the steps in a clipped branch; the likelihood equals arch's
    ``compute_variance`` with the same bounds (1e-9) and the gradient of the bounded recursion equals a
    central difference of arch's likelihood (1e-6)."""
    y = synthetic(9, n=500)
    theta = np.array([0.2, 0.1] + ([0.05] if vol == "gjr" else []) + [0.8] + ([6.0] if dist == "t" else []))
    bc, *_ = gl.problem(y, vol, dist)
    free = np.column_stack([np.zeros_like(y), np.full_like(y, np.inf)])
    kv = 4 if vol == "gjr" else 3
    s2 = np.empty_like(y)
    arch_parts(vol, dist)[0].compute_variance(theta[:kv], y, s2, bc, free)
    vb = np.column_stack([np.full_like(y, np.quantile(s2, 0.25)), np.full_like(y, np.quantile(s2, 0.75))])
    f, g = gl.nll_grad(theta, y, bc, vb, vol, dist)
    assert f == pytest.approx(arch_nll_bounds(theta, y, vol, dist, vb), rel=1e-9)
    assert gl.nll_reference(theta, y, bc, vb, vol, dist) == pytest.approx(f, rel=1e-12)
    fd = np.empty_like(theta)
    for i in range(theta.size):
        h = 1e-6 * abs(theta[i])
        up, dn = theta.copy(), theta.copy()
        up[i] += h
        dn[i] -= h
        fd[i] = (arch_nll_bounds(up, y, vol, dist, vb) - arch_nll_bounds(dn, y, vol, dist, vb)) / (2 * h)
    assert np.max(np.abs(g)) > 1.0
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(g)))


# ------------------------------------------------------------- the gradient
def central_difference(theta: np.ndarray, y: np.ndarray, vol: str, dist: str) -> np.ndarray:
    bc, vb, *_ = gl.problem(y, vol, dist)
    out = np.empty_like(theta)
    for i in range(theta.size):
        h = 1e-5 * max(abs(theta[i]), 1e-2)
        up, dn = theta.copy(), theta.copy()
        up[i] += h
        dn[i] -= h
        out[i] = (gl.nll_reference(up, y, bc, vb, vol, dist) - gl.nll_reference(dn, y, bc, vb, vol, dist)) / (2 * h)
    return out


@pytest.mark.parametrize("vol, dist", COMBOS)
def test_gradient_equals_central_difference(vol: str, dist: str, real: dict[str, np.ndarray]) -> None:
    """Analytic gradient (bounded recursion d s2/d theta, digamma for nu) == central difference of the
    plain reference likelihood to 1e-6 relative (per component, relative to the largest component),
    and not trivially zero, on a synthetic and a real window."""
    rng = np.random.default_rng(21)
    for y in (synthetic(7), real["ETH"]):
        bc, vb, *_ = gl.problem(y, vol, dist)
        for theta in random_params(rng, vol, dist, y, 3):
            _, g = gl.nll_grad(theta, y, bc, vb, vol, dist)
            fd = central_difference(theta, y, vol, dist)
            assert np.max(np.abs(g)) > 1.0
            np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(g)))


# -------------------------------------------------------------- estimates
def arch_fit(y: np.ndarray, vol: str, dist: str) -> tuple[np.ndarray, float]:
    v, d = arch_parts(vol, dist)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ZeroMean(y, volatility=v, distribution=d, rescale=False).fit(disp="off", show_warning=False)
    assert res.convergence_flag == 0
    return res.params.to_numpy(), float(res.loglikelihood)


@pytest.mark.parametrize(
    "sym, vol, dist, at_bound",
    [
        ("BTC", "garch", "t", True),
        ("ETH", "garch", "t", False),
        ("ETH", "gjr", "normal", False),
        ("DOGE", "gjr", "normal", True),
        ("DOGE", "garch", "normal", True),
        ("BTC", "gjr", "t", False),
    ],
)
def test_estimates_equal_arch_fit(real: dict[str, np.ndarray], sym: str, vol: str, dist: str, at_bound: bool) -> None:
    """``arch_mle`` (analytic gradient) == arch's own ``fit()`` on real 1,000-day windows ending
    BTC 2024-12-23, ETH 2022-08-25, DOGE 2021-12-18: parameters to 1e-3 relative, log-likelihood to
    1e-6 relative, including windows where persistence hits its bound (alpha + gamma/2 + beta = 1)."""
    y = real[sym]
    p, ll, status = arch_mle(y, vol, dist, 0.94, None)
    ref, ref_ll = arch_fit(y, vol, dist)
    assert status == 0
    np.testing.assert_allclose(p, ref, rtol=1e-3, atol=1e-6)
    assert ll == pytest.approx(ref_ll, rel=1e-6)
    assert ll == pytest.approx(-arch_nll(p, y, vol, dist), rel=1e-12)
    assert (persistence(vol, p) >= MAX_PERSISTENCE) == at_bound
    assert (persistence(vol, ref) >= MAX_PERSISTENCE) == at_bound


def test_estimate_where_lower_variance_bound_binds() -> None:
    """A window with stretches of near-zero returns (stale prices): at the estimate the variance
    recursion hits arch's lower bound ``max(ewma / 1e6, var / 1e8)`` on >100 days; the estimate
    still equals arch's ``fit()`` (parameters 1e-3, log-likelihood 1e-6)."""
    rng = np.random.default_rng(5)
    rng.standard_normal(1000)
    y = rng.standard_normal(1000) * 3.0
    for s in range(100, 1000, 150):
        y[s : s + 40] *= 1e-4
    p, ll, status = arch_mle(y, "gjr", "t", 0.94, None)
    ref, ref_ll = arch_fit(y, "gjr", "t")
    assert status == 0
    np.testing.assert_allclose(p, ref, rtol=1e-3, atol=1e-6)
    assert ll == pytest.approx(ref_ll, rel=1e-6)
    v = GARCH(1, 1, 1)
    vb = v.variance_bounds(y)
    unclipped = np.empty_like(y)
    lo_off = vb.copy()
    lo_off[:, 0], lo_off[:, 1] = 0.0, np.inf
    v.compute_variance(p[:4], y, unclipped, v.backcast(y), lo_off)
    assert int(np.sum(unclipped < vb[:, 0])) > 100


# ---------------------------------------------------------- SLSQP driver
