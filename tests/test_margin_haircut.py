"""FixedHaircut against hand calculations and published exchange examples."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_panel
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from riskmodels.margin import FixedHaircut, get
from riskmodels.margin.haircut import bracket_charge

ASSETS = ("BTC", "ETH", "SOL")


@pytest.fixture
def panel():
    close = np.array([[100.0, 10.0, 1.0]] * 5)
    return make_panel(close, ASSETS)


def test_cross_account_by_hand(panel):
    """Collateral BTC 10k (h=10%), ETH 5k (h=20%); perps SOL +20k, BTC -4k; IMF 5%, MMF 3%.

    Hand calculation: the short BTC perp hedges 4k of the BTC collateral, so
    BTC collateral is charged on 6k: 600; ETH 1,000; SOL IM 1,000 / MM 600;
    hedged BTC perp 0. IM = 2,600, MM = 2,200. Isolated (no hedge):
    IM = 1,000 + 1,000 + 1,000 + 200 = 3,200; MM = 1,000 + 1,000 + 600 + 120 = 2,720.
    """
    m = FixedHaircut(haircut={"BTC": 0.10, "ETH": 0.20, "default": 0.3}, imf=0.05, mmf=0.03).fit(panel)
    coll = np.array([[10_000.0, 5_000.0, 0.0]])
    pos = np.array([[-4_000.0, 0.0, 20_000.0]])
    req = m.requirement(0, coll, pos)
    assert req.initial[0] == pytest.approx(2_600.0)
    assert req.maintenance[0] == pytest.approx(2_200.0)
    iso = m.isolated_requirement(0, coll, pos)
    assert iso.initial[0] == pytest.approx(3_200.0)
    assert iso.maintenance[0] == pytest.approx(2_720.0)
    both = m.account_requirement(0, np.vstack([coll, coll]), np.vstack([pos, pos]), np.array([False, True]))
    np.testing.assert_allclose(both.initial, [2_600.0, 3_200.0])


def test_dydx_large_cap_tier():
    """dYdX v4 large-cap: IMF 0.05, MMF = 0.6 x IMF = 0.03 (METHODOLOGY.md 2.3).

    A 1,000,000 USDC notional needs IMR 50,000 and MMR 30,000.
    """
    panel = make_panel(np.ones((3, 1)) * 50_000.0, ("BTC",))
    m = get("fixed_haircut", imf=0.05, mmf=0.05 * 0.6, haircut=0.0).fit(panel)
    req = m.requirement(0, np.zeros((1, 1)), np.array([[1_000_000.0]]))
    assert req.initial[0] == pytest.approx(50_000.0)
    assert req.maintenance[0] == pytest.approx(30_000.0)


def test_binance_bracket_tiers():
    """Binance cross-margin collateral tiers are applied bracket-wise (METHODOLOGY.md 2.2).

    BTC: ratio 100% on 0-100M, 97.5% on 100-120M -> a 110M holding is haircut
    2.5% x 10M = 0.25M. Token X: 100% (0-0.5M), 90% (0.5-1M), 80% (1-2M),
    60% (2-4M) -> a 3M holding is haircut 0.1 x 0.5M + 0.2 x 1M + 0.4 x 1M = 0.65M.
    """
    btc = np.array([[0.0, 0.0], [100e6, 0.025], [120e6, 0.05], [150e6, 0.10], [180e6, 0.15]])
    assert bracket_charge(np.array([110e6]), btc[:, 0], btc[:, 1])[0] == pytest.approx(0.25e6)
    tok = np.array([[0, 0.0], [0.5e6, 0.1], [1e6, 0.2], [2e6, 0.4], [4e6, 0.7], [7e6, 0.9]])
    assert bracket_charge(np.array([3e6]), tok[:, 0], tok[:, 1])[0] == pytest.approx(0.65e6)
    panel = make_panel(np.ones((3, 1)), ("TOK",))
    m = FixedHaircut(collateral_tiers={"TOK": tok.tolist()}).fit(panel)
    req = m.requirement(0, np.array([[3e6]]), np.zeros((1, 1)))
    assert req.initial[0] == pytest.approx(0.65e6)
    assert not m.homogeneous


def test_position_tiers_bracketwise(panel):
    """Tiers [0: 5%/3%], [100k: 10%/5%]: a 150k position needs IM 5k + 5k = 10k, MM 3k + 2.5k = 5.5k."""
    m = FixedHaircut(position_tiers={"default": [[0, 0.05, 0.03], [100_000, 0.10, 0.05]]}).fit(panel)
    req = m.requirement(0, np.zeros((1, 3)), np.array([[150_000.0, 0, 0]]))
    assert req.initial[0] == pytest.approx(10_000.0)
    assert req.maintenance[0] == pytest.approx(5_500.0)
    # isolated on a non-homogeneous model uses the stacked evaluation: the same here
    iso = m.isolated_requirement(0, np.zeros((1, 3)), np.array([[150_000.0, -50_000.0, 0]]))
    assert iso.initial[0] == pytest.approx(10_000.0 + 2_500.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"imf": 1.5}, "imf=1.5 is outside"),
        ({"imf": 0.03, "mmf": 0.05}, "must not exceed"),
        ({"haircut": -0.1}, "haircut=-0.1 is outside"),
        ({"collateral_tiers": {"BTC": [[10, 0.1]]}}, "start at 0"),
        ({"hedge_rate": 2}, "hedge_rate=2 is outside"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FixedHaircut(**kwargs)


def test_missing_asset_in_mapping_is_named(panel):
    with pytest.raises(KeyError, match="SOL"):
        FixedHaircut(haircut={"BTC": 0.1, "ETH": 0.1}).fit(panel)


amounts = arrays(np.float64, (4, 3), elements=st.floats(0, 1e7, allow_nan=False))
signed = arrays(np.float64, (4, 3), elements=st.floats(-1e7, 1e7, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(coll=amounts, pos=signed, k=st.floats(0.0, 1e3))
def test_flat_haircut_invariants(coll, pos, k):
    """Non-negative, linear in position size, unchanged by a zero position."""
    panel = make_panel(np.ones((2, 3)), ASSETS)
    m = FixedHaircut(haircut={"BTC": 0.1, "ETH": 0.2, "SOL": 0.3}, imf=0.08, mmf=0.04).fit(panel)
    base = m.requirement(0, coll, pos)
    assert (base.initial >= 0).all() and (base.maintenance >= 0).all()
    assert (base.maintenance <= base.initial + 1e-9).all()
    scaled = m.requirement(0, k * coll, k * pos)
    np.testing.assert_allclose(scaled.initial, k * base.initial, rtol=1e-9, atol=1e-6)
    # adding an asset column the account does not hold changes nothing
    m2 = FixedHaircut(haircut={"BTC": 0.1, "ETH": 0.2}, imf=0.08, mmf=0.04).fit(
        make_panel(np.ones((2, 2)), ASSETS[:2])
    )
    c0, p0 = coll.copy(), pos.copy()
    c0[:, 2] = 0.0
    p0[:, 2] = 0.0
    np.testing.assert_allclose(m.requirement(0, c0, p0).initial, m2.requirement(0, c0[:, :2], p0[:, :2]).initial)
