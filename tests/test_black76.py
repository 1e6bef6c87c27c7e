"""Black-76 against an independent implementation, parity, Greeks and a published example.

The reference pricer below uses only :mod:`math` (``erf``), not scipy's
``ndtr`` the package uses, so an error in either shows up here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.instruments import black76


def _N(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def ref_price(F: float, K: float, tau: float, sigma: float, call: bool, D: float = 1.0) -> float:
    """Black (1976) in plain Python (Hull, Options, Futures and Other Derivatives, eq. 18.9/18.10)."""
    if tau <= 0:
        return D * (max(F - K, 0.0) if call else max(K - F, 0.0))
    sq = sigma * math.sqrt(tau)
    d1 = (math.log(F / K) + 0.5 * sq * sq) / sq
    d2 = d1 - sq
    if call:
        return D * (F * _N(d1) - K * _N(d2))
    return D * (K * _N(-d2) - F * _N(-d1))


CASES = [
    (100.0, 100.0, 0.5, 0.2, True), (100.0, 120.0, 0.25, 0.8, True), (30000.0, 20000.0, 30 / 365, 0.9, False),
    (1.0, 1.5, 2.0, 1.5, False), (2500.0, 2400.0, 7 / 365, 0.6, True), (50.0, 40.0, 1.0, 0.05, False),
]


@pytest.mark.parametrize("F,K,tau,sigma,call", CASES)
def test_price_matches_independent_reference(F: float, K: float, tau: float, sigma: float, call: bool) -> None:
    got = float(black76.price(F, K, tau, sigma, call))
    assert got == pytest.approx(ref_price(F, K, tau, sigma, call), rel=1e-12, abs=1e-12 * F)


def test_hull_worked_example_put_on_crude_oil_futures() -> None:
    """Hull, Options, Futures and Other Derivatives, chapter "Futures options", the worked example of Black's
    model (Example 18.8 in the 8th edition as we recall it; the number differs between editions, and the page
    could not be checked here): European put on crude-oil futures, F0 = K = 20, r = 9%, T = 4 months,
    sigma = 25%: d1 = 0.07216, d2 = -0.07216, put = 1.12."""
    T = 4 / 12
    D = math.exp(-0.09 * T)
    put = float(black76.price(20.0, 20.0, T, 0.25, False, discount=D))
    assert round(put, 2) == 1.12
    sq = 0.25 * math.sqrt(T)
    assert (math.log(1.0) + sq * sq / 2) / sq == pytest.approx(0.07216, abs=1e-5)  # Hull rounds to 5 digits


def test_put_call_parity_to_1e_10() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    F = rng.uniform(1, 1e5, n)
    K = F * np.exp(rng.normal(0, 0.5, n))
    tau = rng.uniform(1 / 365, 2, n)
    sig = rng.uniform(0.05, 2.0, n)
    D = np.exp(-rng.uniform(0, 0.1, n) * tau)
    c = black76.price(F, K, tau, sig, True, D)
    p = black76.price(F, K, tau, sig, False, D)
    np.testing.assert_allclose(c - p, D * (F - K), rtol=0, atol=1e-10 * np.maximum(F, K).max())
    # relative, per position
    assert np.all(np.abs(c - p - D * (F - K)) <= 1e-10 * np.maximum(F, K))


@pytest.mark.parametrize("F,K,tau,sigma,call", CASES)
def test_closed_form_greeks_match_finite_differences(F: float, K: float, tau: float, sigma: float,
                                                     call: bool) -> None:
    """Central differences of the independent reference (step h ~ 1e-4 relative, error O(h^2))."""
    g = black76.greeks(F, K, tau, sigma, call)
    hF = 1e-4 * F
    delta = (ref_price(F + hF, K, tau, sigma, call) - ref_price(F - hF, K, tau, sigma, call)) / (2 * hF)
    gamma = (ref_price(F + hF, K, tau, sigma, call) - 2 * ref_price(F, K, tau, sigma, call)
             + ref_price(F - hF, K, tau, sigma, call)) / hF**2
    hs = 1e-5
    vega = (ref_price(F, K, tau, sigma + hs, call) - ref_price(F, K, tau, sigma - hs, call)) / (2 * hs)
    ht = 1e-6 * tau
    theta = -(ref_price(F, K, tau + ht, sigma, call) - ref_price(F, K, tau - ht, sigma, call)) / (2 * ht)
    assert float(g.delta) == pytest.approx(delta, rel=1e-6, abs=1e-9)  # O(h^2) truncation
    assert float(g.gamma) == pytest.approx(gamma, rel=1e-4, abs=1e-9 / F)
    assert float(g.vega) == pytest.approx(vega, rel=1e-7, abs=1e-9 * F)
    assert float(g.theta) == pytest.approx(theta, rel=1e-6, abs=1e-9 * F)


@pytest.mark.parametrize("F,K,tau,sigma,call", CASES)
def test_greeks_match_their_closed_forms_to_1e_10(F: float, K: float, tau: float, sigma: float, call: bool) -> None:
    """The closed forms (Hull ch. 19, with r = 0 on a forward) written independently with math.erf."""
    sq = sigma * math.sqrt(tau)
    d1 = (math.log(F / K) + 0.5 * sq * sq) / sq
    n = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    g = black76.greeks(F, K, tau, sigma, call)
    assert float(g.delta) == pytest.approx(_N(d1) if call else _N(d1) - 1.0, rel=1e-10, abs=1e-12)
    assert float(g.gamma) == pytest.approx(n / (F * sq), rel=1e-10)
    assert float(g.vega) == pytest.approx(F * n * math.sqrt(tau), rel=1e-10)
    assert float(g.theta) == pytest.approx(-F * n * sigma / (2 * math.sqrt(tau)), rel=1e-10)


def test_expired_options_are_worth_intrinsic() -> None:
    p = black76.price(np.array([110.0, 90.0, 110.0, 90.0]), 100.0, 0.0, 0.5, np.array([True, True, False, False]))
    np.testing.assert_array_equal(p, [10.0, 0.0, 0.0, 10.0])


pos = st.floats(0.5, 2e5)


@settings(max_examples=200, deadline=None)
@given(F=pos, m=st.floats(-2.0, 2.0), tau=st.floats(1 / 365, 3.0), s1=st.floats(0.02, 3.0), s2=st.floats(0.02, 3.0))
def test_bounds_and_monotone_in_sigma(F: float, m: float, tau: float, s1: float, s2: float) -> None:
    """max(F - K, 0) <= call <= F, max(K - F, 0) <= put <= K, both non-decreasing in sigma."""
    K = F * math.exp(m)
    c1, c2 = (float(black76.price(F, K, tau, s, True)) for s in (s1, s2))
    p1 = float(black76.price(F, K, tau, s1, False))
    tol = 1e-9 * max(F, K)
    assert max(F - K, 0.0) - tol <= c1 <= F + tol
    assert max(K - F, 0.0) - tol <= p1 <= K + tol
    lo, hi = (c1, c2) if s1 <= s2 else (c2, c1)
    assert lo <= hi + tol


@settings(max_examples=100, deadline=None)
@given(F=pos, m=st.floats(-1.0, 1.0), tau=st.floats(1 / 365, 2.0), s=st.floats(0.05, 2.0), k=st.floats(0.01, 100.0))
def test_homogeneous_of_degree_one_in_F_and_K(F: float, m: float, tau: float, s: float, k: float) -> None:
    K = F * math.exp(m)
    for call in (True, False):
        assert float(black76.price(k * F, k * K, tau, s, call)) == pytest.approx(
            k * float(black76.price(F, K, tau, s, call)), rel=1e-9, abs=1e-12 * k * max(F, K))
