"""Concentration add-on wrapper (riskmodels.margin.concentration) against its published laws.

* Eurex Clearing Prisma liquidity add-on: a linear Liquidity Factor of position
  size over Market Capacity scales the market risk (Eurex Clearing circulars
  097/21, 072/24): add-on = slope x max(r - threshold, 0) x market-risk margin.
* Drift protocol-v2 size premium (``calculate_size_premium_liability_weight``):
  weight = max(w, 0.8 w + imf sqrt(size)); here imf sqrt(size) = coef sqrt(r) w.
* Collateral value tiers (Binance cross-margin collateral tiers, METHODOLOGY.md 2.2):
  bracket-wise charges, e.g. a holding of 0.3 capacity with tiers
  [0, 0.05, 0.2] -> [0, 5%, 15%] pays 5% x 0.15 + 15% x 0.1 = 2.25% of capacity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.data.panel import PricePanel
from riskmodels.margin import FixedHaircut, get
from riskmodels.margin.concentration import (
    ConcentrationAddon,
    adv_capacity,
    linear_factor,
    sqrt_factor,
)
from riskmodels.portfolio import Book

V = 1e7  # daily USD volume of every asset in the flat test panel


def flat_panel(T: int = 40, A: int = 2, volume: float = V, seed: int = 0) -> PricePanel:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal((T, A)), axis=0))
    vol = np.full((T, A), volume)
    dates = pd.date_range("2021-01-01", periods=T)
    return PricePanel(dates, tuple(f"A{j}" for j in range(A)), close, close * 1.01, close * 0.99, close, vol)


def fitted(law: str = "linear", **kw):
    inner = FixedHaircut(imf=0.1, mmf=0.05, haircut=0.2, netting=False)
    return ConcentrationAddon(inner, law=law, **kw).fit(flat_panel())


def test_linear_law_is_eurex_slope_times_excess_over_threshold():
    """Perp of 3M on capacity 10M: r = 0.3; f = 2 x (0.3 - 0.1) = 0.4; IM = 0.1 x 3M x 1.4."""
    f = fitted("linear", threshold=0.1, slope=2.0)
    req = f.requirement(30, np.zeros((1, 2)), np.array([[3e6, 0.0]]))
    assert req.initial[0] == pytest.approx(0.1 * 3e6 * 1.4, rel=1e-12)
    assert req.maintenance[0] == pytest.approx(0.05 * 3e6 * 1.4, rel=1e-12)
    below = f.requirement(30, np.zeros((1, 2)), np.array([[0.9e6, 0.0]]))  # r = 0.09 < 0.1
    assert below.initial[0] == pytest.approx(0.1 * 0.9e6, rel=1e-12)


def test_sqrt_law_is_drifts_size_premium():
    """Drift: weight = max(w, 0.8 w + imf sqrt(size)) with imf sqrt(size) = coef w sqrt(X / V)."""
    f = fitted("sqrt", coef=1.5, discount=0.2)
    w = 0.1
    for X in (1e4, 1e5, 4e5, 2e6, 8e6, 3e7):
        drift = max(w, 0.8 * w + 1.5 * w * np.sqrt(X / V)) * X
        got = f.requirement(30, np.zeros((1, 2)), np.array([[0.0, -X]])).initial[0]
        assert got == pytest.approx(drift, rel=1e-12)


def test_sqrt_premium_doubles_for_four_times_the_size():
    r = np.array([0.5, 2.0])
    f = sqrt_factor(r, coef=1.0, discount=0.2) + 0.2
    assert f[1] / f[0] == pytest.approx(np.sqrt(4.0), rel=1e-12)


def test_tiers_charge_collateral_bracket_wise_in_capacity_units():
    f = fitted("tiers", tiers=[[0, 0], [0.05, 0.05], [0.2, 0.15], [1.0, 0.3]])
    req = f.requirement(30, np.array([[3e6, 0.0]]), np.zeros((1, 2)))
    extra = (0.05 * (0.2 - 0.05) + 0.15 * (0.3 - 0.2)) * V
    assert extra == pytest.approx(225_000.0)
    assert req.initial[0] == pytest.approx(0.2 * 3e6 + extra, rel=1e-12)
    assert req.maintenance[0] == pytest.approx(0.2 * 3e6 + extra, rel=1e-12)
    usd = fitted("tiers", tiers=[[0, 0], [1e6, 0.1]], basis="usd").requirement(30, np.array([[3e6, 0.0]]), np.zeros((1, 2)))
    assert usd.initial[0] == pytest.approx(0.2 * 3e6 + 0.1 * 2e6, rel=1e-12)


def test_cross_add_on_allocates_the_margin_by_stand_alone_shares():
    """Two holdings, r = 0.5 and 0.05: f = 0.4 and 0 (slope 1, threshold 0.1).

    Stand-alone IM: s0 = 0.1 x 5M = 500k (perp), s1 = 0.2 x 0.5M = 100k (collateral);
    the inner cross IM (no netting) is their sum M = 600k; add-on = M (0.4 x 500k) / 600k = 200k.
    """
    f = fitted("linear", threshold=0.1, slope=1.0)
    req = f.requirement(30, np.array([[0.0, 5e5]]), np.array([[5e6, 0.0]]))
    assert req.initial[0] == pytest.approx(600_000 + 200_000, rel=1e-12)
    iso = f.isolated_requirement(30, np.array([[0.0, 5e5]]), np.array([[5e6, 0.0]]))
    assert iso.initial[0] == pytest.approx(600_000 + 0.4 * 500_000, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(x=st.floats(1e2, 5e8), k=st.floats(1.0, 10.0), law=st.sampled_from(["linear", "sqrt", "tiers"]),
       coll=st.booleans())
def test_add_on_is_nonnegative_zero_below_threshold_and_monotone_in_size(x, k, law, coll):
    f = FITTED[law]
    inner = f.inner
    def req(size):
        c = np.array([[size, 0.0]]) if coll else np.zeros((1, 2))
        p = np.zeros((1, 2)) if coll else np.array([[size, 0.0]])
        return f.requirement(30, c, p).initial[0], inner.requirement(30, c, p).initial[0]
    a1, b1 = req(x)
    a2, b2 = req(k * x)
    add1, add2 = a1 - b1, a2 - b2
    assert add1 >= -1e-9 * b1 and add2 >= add1 - 1e-9 * b2
    r = x / V
    if (law == "linear" and r <= 0.1) or (law == "sqrt" and r <= 0.04) or (law == "tiers" and (not coll or r <= 0.05)):
        assert add1 == pytest.approx(0.0, abs=1e-9 * b1)


FITTED = {law: fitted(law) for law in ("linear", "sqrt", "tiers")}


def test_capacity_is_trailing_adv_without_look_ahead():
    """Capacity at t = mean positive volume of days t-w+1..t; perturbing later volumes leaves t alone."""
    p = flat_panel(T=60)
    vol = np.random.default_rng(1).uniform(1e6, 1e7, (60, 2))
    vol[10, 0] = 0.0
    panel = PricePanel(p.dates, p.assets, p.open, p.high, p.low, p.close, vol)
    cap = adv_capacity(panel, 5, 0.5)
    assert cap[12, 0] == pytest.approx(0.5 * vol[[8, 9, 11, 12], 0].mean())
    vol2 = vol.copy()
    vol2[31:] *= 50.0
    panel2 = PricePanel(p.dates, p.assets, p.open, p.high, p.low, p.close, vol2)
    m = ConcentrationAddon(FixedHaircut(imf=0.1, mmf=0.05), law="sqrt", window=5)
    holdings = (np.array([[1e6, 0.0]]), np.array([[3e6, -2e6]]))
    for t in (20, 30):
        assert m.fit(panel).requirement(t, *holdings) == m.fit(panel2).requirement(t, *holdings)
    assert m.fit(panel).requirement(31, *holdings) != m.fit(panel2).requirement(31, *holdings)


def test_path_equals_the_daily_requirement_for_cross_and_isolated_accounts():
    panel = flat_panel(T=60, A=3)
    rng = np.random.default_rng(2)
    book = Book(panel.assets, rng.uniform(0, 4e6, (6, 3)) * (rng.random((6, 3)) < 0.5),
                rng.normal(0, 4e6, (6, 3)), isolated=[False, True, False, True, False, False])
    for inner in ("historical_var", FixedHaircut(imf=0.1, mmf=0.05, position_tiers={"default": [[0, 0.1, 0.05],
                                                                                               [1e6, 0.2, 0.1]]})):
        spec = {"name": "historical_var", "window": 20, "min_window": 20} if inner == "historical_var" else inner
        f = ConcentrationAddon(spec, law="linear", threshold=0.05).fit(panel)
        path = f.path(book)
        t = 50
        req = f.account_requirement(t, book.collateral, book.positions, book.isolated)
        np.testing.assert_allclose(path.initial[t], req.initial, rtol=1e-10)
        np.testing.assert_allclose(path.maintenance[t], req.maintenance, rtol=1e-10)
        assert np.all(path.initial[t] > f.inner.path(book).initial[t])


def test_built_from_the_registry_with_a_mapping_inner():
    m = get("concentration", inner={"name": "fixed_haircut", "imf": 0.05}, law="sqrt", label="x")
    assert m.label == "x" and m.inner.imf == 0.05
    assert m.params()["inner"]["name"] == "fixed_haircut"


@pytest.mark.parametrize(("kw", "msg"), [({"law": "cubic"}, "law"), ({"threshold": -1}, "threshold"),
                                          ({"tiers": [[1, 0.1]]}, "tiers"), ({"window": 0}, "window"),
                                          ({"basis": "coins"}, "basis"), ({"discount": 1.0}, "discount")])
def test_bad_parameters_name_the_key(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ConcentrationAddon("fixed_haircut", **kw)


def test_linear_factor_formula():
    np.testing.assert_allclose(linear_factor(np.array([0.0, 0.1, 0.35]), 0.1, 2.0), [0.0, 0.0, 0.5])


class _NoSkip:
    """The same fitted model without any Lipschitz bound: every intraday requirement is computed."""

    def __init__(self, fitted):
        self._f = fitted

    def __getattr__(self, name):
        if name in ("intraday_lipschitz", "maintenance_lipschitz"):
            raise AttributeError(name)
        return getattr(self._f, name)


def test_intraday_skip_with_the_add_on_changes_no_event():
    """The per-account bound (inner L where the add-on is zero on the whole price move) is exact:
    the simulation gives the same events as one that computes every intraday requirement
    (amounts to rounding: a requirement computed in another batch of rows can differ in its last bit,
    as with the plain HS model's own skip)."""
    from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
    from riskmodels.portfolio import generate_book

    rng = np.random.default_rng(9)
    T, A = 160, 3
    close = 100 * np.exp(np.cumsum(0.05 * rng.standard_normal((T, A)), axis=0))
    vol = np.full((T, A), 2e7)
    panel = PricePanel(pd.date_range("2020-01-01", periods=T), ("A0", "A1", "A2"), close, close * 1.04,
                       close * 0.95, close, vol)
    book = generate_book(panel.assets, 80, seed=4, collateral_assets=["A0"], median_notional=1e6)
    for law in ("linear", "tiers"):
        f = ConcentrationAddon({"name": "historical_var", "window": 40, "min_window": 40}, law=law,
                               threshold=0.02).fit(panel)
        pol = LiquidationPolicy(closeout="impact")
        fast = simulate_accounts(f, book, pol, start=45)
        slow = simulate_accounts(_NoSkip(f), book, pol, start=45)
        assert len(fast.liquidations) > 5
        assert len(fast.events) == len(slow.events)
        for name in fast.events.dtype.names:  # the requirement of a different batch of rows may differ in the
            np.testing.assert_allclose(fast.events[name], slow.events[name], rtol=1e-12)  # last bit (as plain HS)
        for name in ("account", "t", "trigger"):
            np.testing.assert_array_equal(fast.events[name], slow.events[name])
        r = f.ratio(50, book.collateral, book.positions)
        assert (r > 0.02).any() and (r[r > 0] < 0.02).any()  # some accounts above, some below the threshold
