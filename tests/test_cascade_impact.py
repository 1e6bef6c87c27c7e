"""Impact plug-ins against hand-computed values (formulas in riskmodels/cascade/impact.py).

Square-root law I = Y sigma sqrt(Q/V) (METHODOLOGY.md 6.1); the VWAP of a
single order under a power law I ~ Q^d is I(Q)/(1+d): 2/3 for d = 1/2, 1/2 for
the linear (Kyle) law -- the integral (1/Q) int_0^Q c q^d dq = c Q^d / (1+d).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.cascade.impact import (
    AssetState,
    DepthImpact,
    LinearImpact,
    NoImpact,
    SquareRootImpact,
    build_impact,
)


def state(sigma=0.02, volume=1e6, daily=2.4e7, n=1):
    return AssetState(tuple(f"A{j}" for j in range(n)), np.full(n, sigma), np.full(n, volume), np.full(n, daily))


def test_square_root_hand_values():
    """Y=0.5, sigma=0.02, V=1e6, Q=250,000: I = 0.5*0.02*sqrt(0.25) = 0.005."""
    m = SquareRootImpact(Y=0.5)
    s = state()
    assert m.price_move(np.array([250_000.0]), s)[0] == pytest.approx(0.005)
    assert m.price_move(np.array([-250_000.0]), s)[0] == pytest.approx(-0.005)
    # cumulative, not summed: two orders of 250k move the price by I(500k) = 0.0070711, not 0.01
    assert m.price_move(np.array([500_000.0]), s)[0] == pytest.approx(0.5 * 0.02 * np.sqrt(0.5))
    # VWAP of one order from 0 = 2/3 of the final move
    assert m.vwap_move(np.zeros(1), np.array([-250_000.0]), s)[0] == pytest.approx(-0.005 * 2 / 3)


def test_depth_power_law_hand_values():
    """B=1e6 per 1%, survival 0.5, beta=2, Q=2e6: move = (2e6/5e5)^(1/2) / 100 = 0.02; VWAP = 0.02/1.5."""
    m = DepthImpact(depth_1pct=1e6, exponent=2.0, survival=0.5)
    s = state()
    assert m.price_move(np.array([2e6]), s)[0] == pytest.approx(0.02)
    assert m.vwap_move(np.zeros(1), np.array([2e6]), s)[0] == pytest.approx(0.02 / 1.5)
    # depth from volume: B = 0.002 * 2.4e7 = 48,000 USD per 1%; beta = 1: Q = 48,000 -> 1%
    m2 = DepthImpact(depth_to_volume=0.002)
    assert m2.price_move(np.array([48_000.0]), s)[0] == pytest.approx(0.01)


def test_linear_hand_values():
    """lambda = 1e-8 per USD: Q = 1e6 -> 1%; fill from 1e6 to 3e6 averages 1% and 3% = 2%."""
    m = LinearImpact(kyle_lambda=1e-8)
    s = state()
    assert m.price_move(np.array([1e6]), s)[0] == pytest.approx(0.01)
    assert m.vwap_move(np.zeros(1), np.array([1e6]), s)[0] == pytest.approx(0.005)
    assert m.vwap_move(np.array([1e6]), np.array([3e6]), s)[0] == pytest.approx(0.02)
    # per volume: lambda = 0.1 / V, a flow of V moves the price 10%
    assert LinearImpact(per_volume=0.1).price_move(np.array([1e6]), s)[0] == pytest.approx(0.1)


def test_netting_across_zero_vwap():
    """Flow from +1e6 to -1e6 under a linear law: by symmetry the VWAP move is 0."""
    m = LinearImpact(kyle_lambda=1e-8)
    assert m.vwap_move(np.array([1e6]), np.array([-1e6]), state())[0] == pytest.approx(0.0, abs=1e-15)


def test_cap_and_capped_vwap():
    """Linear law capped at 0.95 with the flow twice the cap point u*: average move
    = (0.5*0.95*u* + 0.95*u*) / (2u*) = 0.7125."""
    m = LinearImpact(kyle_lambda=1e-6, max_move=0.95)
    s = state()
    u = 0.95 / 1e-6
    assert m.price_move(np.array([-10 * u]), s)[0] == pytest.approx(-0.95)
    assert m.vwap_move(np.zeros(1), np.array([-2 * u]), s)[0] == pytest.approx(-0.7125, rel=2e-3)


def test_no_impact_and_registry():
    s = state(n=3)
    assert (NoImpact().price_move(np.array([1e9, -1e9, 0.0]), s) == 0).all()
    assert isinstance(build_impact("sqrt", Y=1.0), SquareRootImpact)
    with pytest.raises(KeyError, match="valid names"):
        build_impact("quadratic")


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: SquareRootImpact(Y=-1), "Y"),
        (lambda: DepthImpact(survival=0), "survival"),
        (lambda: DepthImpact(exponent=0), "exponent"),
        (lambda: LinearImpact(per_volume=-1), "per_volume"),
        (lambda: SquareRootImpact(max_move=1.0), "max_move"),
    ],
)
def test_bad_parameters_name_the_parameter(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


@settings(max_examples=60, deadline=None)
@given(q=st.floats(1.0, 1e9), k=st.floats(1.01, 10.0))
def test_laws_are_odd_monotone_concave(q, k):
    s = state()
    for m in (SquareRootImpact(1.0, max_move=0.999), DepthImpact(depth_1pct=1e7, exponent=1.5, max_move=0.999)):
        a = m.price_move(np.array([q]), s)[0]
        b = m.price_move(np.array([k * q]), s)[0]
        assert m.price_move(np.array([-q]), s)[0] == pytest.approx(-a)
        assert b >= a >= 0
        assert b <= k * a * (1 + 1e-12)  # concave through 0: I(kQ) <= k I(Q)
        # VWAP of an order lies between the start and end move
        v = m.vwap_move(np.array([q]), np.array([k * q]), s)[0]
        assert a - 1e-12 <= v <= b + 1e-12
