"""The liquidation step against the protocols' own worked examples and source constants.

Sources:
* Aave v3.3 features document, aave-dao/aave-v3-origin docs/3.3/Aave-v3.3-features.md
  (sections 2.1 close factor on the whole position, 2.2 position-size 100% close factor,
  2.3 forced position cleanup / MIN_LEFTOVER_BASE examples).
* aave-dao/aave-v3-origin src/contracts/protocol/libraries/logic/LiquidationLogic.sol
  (constants 0.5e4, 0.95e18, 2000e8, MIN_LEFTOVER_BASE = threshold / 2;
  _calculateAvailableCollateralToLiquidate).
* Aave developer docs, https://aave.com/docs/developers/liquidations (HF worked example).
* METHODOLOGY.md 2.5 / 6: fork test of a 10% protocol fee, received / repaid = 1.09 at LB 1.10
  and 1.135 at LB 1.15.
* Morpho Blue ConstantsLib.sol (MAX_LIQUIDATION_INCENTIVE_FACTOR = 1.15, LIQUIDATION_CURSOR = 0.3).
"""

from __future__ import annotations

import math

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
)
from riskmodels.lending.health import health_factor, toxic
from riskmodels.lending.liquidation import (
    close_factor_max_repay,
    dust_ok,
    liquidator_profit,
    seize,
    vwap_move,
)
from riskmodels.lending.market import morpho_lif
from riskmodels.lending.simulate import impact_power_law

AAVE = dict(close_factor=0.5, close_factor_hf=0.95, aave=True)

BOTH = pytest.mark.parametrize("impl", ["py", "jit"])


def _f(fn, impl):
    return fn.py_func if impl == "py" else fn


def test_health_factor_aave_docs_example():
    # aave.com/docs/developers/liquidations: $10,000 ETH at LT 80%, $6,000 debt -> HF 1.333
    hf = health_factor(np.array([[5.0, 0.0]]), np.array([[0.0, 6000.0]]), np.array([2000.0, 1.0]),
                       np.array([0.80, 0.0]))
    assert hf[0] == pytest.approx(8000 / 6000)
    assert np.isinf(health_factor(np.array([[1.0]]), np.array([[0.0]]), np.array([1.0]), np.array([0.8]))[0])


@BOTH
def test_close_factor_v33_whole_position_example(impl):
    # v3.3 doc 2.1: 3k GHO + 3k USDC + 3k DAI debt, 9k ETH collateral: the 50% close factor applies to the
    # whole position (4.5k), so the whole 3k of one reserve can be liquidated in one call (v3.2: 1.5k).
    cf = _f(close_factor_max_repay, impl)
    assert cf(3000.0, 9000.0, 9000.0, 0.97, 0.5, 0.95, 2000.0, True) == pytest.approx(3000.0)


@BOTH
def test_close_factor_v33_small_position_example(impl):
    # v3.3 doc 2.2 with MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 1,000: collateral A 2,300, B 800,
    # debt A 900, debt B 1,100, HF 0.96. Debt A (< 1,000) can be repaid 100%; debt B against collateral B
    # (< 1,000) 100%; debt B against collateral A is capped at 50% of the total debt 2,000 = 1,000.
    cf = _f(close_factor_max_repay, impl)
    assert cf(900.0, 2300.0, 2000.0, 0.96, 0.5, 0.95, 1000.0, True) == pytest.approx(900.0)
    assert cf(1100.0, 800.0, 2000.0, 0.96, 0.5, 0.95, 1000.0, True) == pytest.approx(1100.0)
    assert cf(1100.0, 2300.0, 2000.0, 0.96, 0.5, 0.95, 1000.0, True) == pytest.approx(1000.0)
    # HF <= 0.95 (CLOSE_FACTOR_HF_THRESHOLD, inclusive): 100%
    assert cf(1100.0, 2300.0, 2000.0, 0.95, 0.5, 0.95, 1000.0, True) == pytest.approx(1100.0)
    # Morpho Blue: no close factor
    assert cf(1100.0, 2300.0, 2000.0, 0.99, 0.5, 0.95, 1000.0, False) == pytest.approx(1100.0)


@BOTH
def test_dust_rule_v33_example(impl):
    # v3.3 doc 2.3, threshold 1,000, MIN_LEFTOVER_BASE 500: collateral A 400, B 1,000, debt A 900, B 400,
    # HF 0.94. Allowed: 100% of debt B; 100% of collateral A; up to 400 of debt A or 100% of it;
    # up to 500 of collateral B or 100% of it. (LB 1.0 here so that repaid value = seized value and the
    # collateral and debt statements of the example can be checked independently.)
    ok = _f(dust_ok, impl)
    lb = 1.0
    # debt B (400) in full against collateral B: allowed
    assert ok(400.0, 400.0, 400.0 * lb, 1000.0, 500.0)
    # debt A: 400 leaves 500 of debt and 600 of collateral B: allowed; 401 leaves 499: reverts
    assert ok(400.0, 900.0, 400.0 * lb, 1000.0, 500.0)
    assert not ok(401.0, 900.0, 401.0 * lb, 1000.0, 500.0)
    # 100% of debt A (900) against collateral B: allowed although 100 of collateral is left
    assert ok(900.0, 900.0, 900.0 * lb, 1000.0, 500.0)
    # collateral A seized in full (400) against part of debt A: allowed
    assert ok(400.0, 900.0, 400.0, 400.0, 500.0)
    # collateral B: seizing 500 leaves 500: allowed; 600 leaves 400: reverts
    assert ok(500.0, 900.0 + 500.0, 500.0, 1000.0, 500.0)
    assert not ok(600.0, 900.0 + 600.0, 600.0, 1000.0, 500.0)


@BOTH
@pytest.mark.parametrize("lb, ratio", [(1.10, 1.09), (1.15, 1.135)])
def test_protocol_fee_share_of_bonus(impl, lb, ratio):
    # fee = (seized - seized / LB) x 10%: the liquidator receives 1.09 (LB 1.10) or 1.135 (LB 1.15) per 1 repaid
    rep, sz, fee = _f(seize, impl)(1000.0, 1e9, lb, 0.10)
    assert rep == pytest.approx(1000.0)
    assert sz == pytest.approx(1000.0 * lb)
    assert (sz - fee) / rep == pytest.approx(ratio)


@BOTH
def test_seize_capped_at_balance(impl):
    # _calculateAvailableCollateralToLiquidate: seized = balance, debt needed = balance / LB
    rep, sz, fee = _f(seize, impl)(15000.0, 14000.0, 1.05, 0.10)
    assert sz == pytest.approx(14000.0)
    assert rep == pytest.approx(14000.0 / 1.05)
    assert fee == pytest.approx((14000.0 - 14000.0 / 1.05) * 0.10)


def test_morpho_lif_formula():
    # LIF = min(1.15, 1 / (0.3 LLTV + 0.7)), computed independently
    for lltv in (0.625, 0.77, 0.86, 0.915, 0.945, 0.965, 0.98):
        assert morpho_lif(lltv) == pytest.approx(1.0 / (0.3 * lltv + 0.7))
    assert morpho_lif(0.86) == pytest.approx(1.0438, abs=1e-4)
    assert morpho_lif(0.2) == pytest.approx(1.15)  # 1 / 0.76 = 1.316 is capped


def test_toxic_frontier():
    # Warmuz et al. 2022: LTV* = 1 / (1 + LI): 5% -> 95.24%, 10% -> 90.91%
    assert toxic(np.array([0.9524, 0.9523]), 1.05).tolist() == [True, False]
    assert toxic(np.array([0.9092, 0.9090]), 1.10).tolist() == [True, False]
    # and a liquidation beyond it raises the LTV: (D - d) / (C - d LB) > D / C
    C, D, d, lb = 100.0, 96.0, 10.0, 1.05
    assert (D - d) / (C - d * lb) > D / C


def _state(A=2):
    return AssetState(tuple(f"A{i}" for i in range(A)), np.array([0.04, 0.08]), np.array([1e7, 5e6]),
                      np.array([1e7, 5e6]))


@pytest.mark.parametrize("model", [SquareRootImpact(Y=0.7), LinearImpact(per_volume=0.1),
                                   DepthImpact(depth_to_volume=0.002, exponent=1.5, survival=0.5), NoImpact(),
                                   SquareRootImpact(Y=5.0, max_move=0.3)])
def test_vwap_matches_cascade_impact(model):
    # the kernel's power-law VWAP equals cascade/impact.py's vwap_move (closed form there), and where the
    # cap binds (cascade integrates by 32-point Gauss-Legendre) an adaptive quadrature of the capped law
    from scipy.integrate import quad

    st_ = _state()
    k, a = impact_power_law(model, st_)
    for q0, q1 in [(0.0, -2e5), (-1e5, -3e6), (5e4, -5e4), (0.0, 4e6), (-2e7, -2.5e7)]:
        ref = model.vwap_move(np.array([q0, q0]), np.array([q1, q1]), st_)
        got = [vwap_move(q0, q1, k[i], a[i], model.max_move) for i in range(2)]
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-12)
        for i in range(2):
            def move(q, i=i):
                return float(model.price_move(np.array([q, q]), st_)[i])
            lo, hi = min(q0, q1), max(q0, q1)
            exact = quad(move, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-9)[0] / (hi - lo)
            assert got[i] == pytest.approx(exact, rel=1e-7, abs=1e-12)


def test_liquidator_profit_linear_by_hand():
    # linear law I(q) = lam q: selling x from 0 fills at -lam x / 2 (half the final move)
    lam = 1e-7
    rep, sz, fee = seize(10_000.0, 1e9, 1.05, 0.10)
    x = sz - fee
    got = liquidator_profit(rep, sz, fee, 0.0, 0.0, lam, 1.0, 0.0, 1.0, 0.95, False)
    assert got == pytest.approx(x * (1 - lam * x / 2) - rep)


@settings(max_examples=200, deadline=None)
@given(repay=st.floats(1.0, 1e7), bal=st.floats(1.0, 1e7), lb=st.floats(1.001, 1.2), fee=st.floats(0.0, 1.0))
def test_seize_invariants(repay, bal, lb, fee):
    rep, sz, f = seize(repay, bal, lb, fee)
    assert sz <= bal * (1 + 1e-12)
    assert rep <= repay * (1 + 1e-12)
    assert sz == pytest.approx(rep * lb, rel=1e-9)
    assert 0.0 <= f <= (sz - sz / lb) * (1 + 1e-12)
    assert sz - f >= rep * (1 - 1e-12)  # the liquidator never receives less than it repaid (before impact)


@settings(max_examples=200, deadline=None)
@given(rd=st.floats(0.0, 1e7), rc=st.floats(0.0, 1e7), extra=st.floats(0.0, 1e7), hf=st.floats(0.0, 1.0))
def test_close_factor_invariants(rd, rc, extra, hf):
    total = rd + extra
    m = close_factor_max_repay(rd, rc, total, hf, 0.5, 0.95, 2000.0, True)
    assert 0.0 <= m <= rd
    assert m >= min(rd, 0.5 * total) - 1e-9
    assert math.isfinite(m)
