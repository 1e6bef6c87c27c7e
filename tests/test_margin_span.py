"""Tests of the SPAN-like scenario grid and the Deribit-style preset.

Sources are cited per test (METHODOLOGY.md sections 1 and 2.1). Every
expected number is computed by hand in the test or by an independent
routine (numpy's quantile / corrcoef, a brute-force scenario loop).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_panel, random_walk_panel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskmodels.margin import get
from riskmodels.margin.base import FittedMargin
from riskmodels.margin.deribit import DeribitPM
from riskmodels.margin.span import ScenarioGrid
from riskmodels.margin.span_arrays import (
    correlation_credit,
    deribit_table,
    recalibration_mask,
    risk_arrays,
    span_table,
)
from riskmodels.portfolio import Book, generate_book


def flat_panel(assets: tuple[str, ...], T: int = 5) -> object:
    return make_panel(np.full((T, len(assets)), 100.0), assets)


# ----------------------------------------------------------- risk arrays
def test_span_table_structure() -> None:
    """16 scenarios: 0, +-1/3, +-2/3, +-3/3 with vol up/down pairs, extremes
    unpaired (CME "Risk Scenarios": all but 15 and 16 have a paired scenario)."""
    tab = span_table()
    assert tab.n == 16
    assert np.allclose(tab.scaled[:14:2], [0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1, -1])
    assert np.array_equal(tab.scaled[:14:2], tab.scaled[1:14:2])
    assert np.array_equal(tab.vol[:14], [1, -1] * 7)
    assert list(tab.pair) == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 14, 15]
    assert list(tab.time) == [0, 1]
    assert tab.scaled[14] == 3 and tab.scaled[15] == -3 and np.allclose(tab.weight[14:], 0.33)


def test_risk_array_mcmillan_classic() -> None:
    """McMillan, Options as a Strategic Investment ch. 34 (METHODOLOGY 1.1):
    PSR $10,000, extreme multiplier 2, cover 35% -> extreme loss $7,000.
    One long future worth $100,000 with a 10% PSR has PSR $10,000."""
    ra = risk_arrays(np.array([0.10]), span_table(2.0, 0.35))[0] * 100_000
    third = 10_000 / 3
    expected = [0, 0, -third, -third, third, third, -2 * third, -2 * third, 2 * third, 2 * third,
                -10_000, -10_000, 10_000, 10_000, -7_000, 7_000]
    assert np.allclose(ra, expected, atol=1e-9)


def test_risk_array_cme_current_cover() -> None:
    """CME current extreme move 3 x PSR at 33% cover = 0.99 x PSR: the CME
    spread-calc example's 6,138 = 0.99 x 6,200 (METHODOLOGY 1.1, advisory 08-303)."""
    ra = risk_arrays(np.array([0.062]), span_table())[0] * 100_000  # PSR $6,200
    assert round(ra[15], 6) == 6_138.0 and round(ra[14], 6) == -6_138.0
    # the scan risk of one long unit is the full -3/3 move, not the extreme
    assert np.isclose(ra.max(), 6_200.0)


def test_deribit_table_buckets() -> None:
    """Deribit PM: +-16% in 9 evenly spaced buckets incl. 0, vol up/same/down;
    extended moves -66%..+500% vol-up only (METHODOLOGY 2.1)."""
    tab = deribit_table()
    assert tab.n == 27
    ra = risk_arrays(np.array([0.16]), tab)[0]
    assert np.allclose(np.unique(-ra), [-0.16, -0.12, -0.08, -0.04, 0, 0.04, 0.08, 0.12, 0.16])
    ext = deribit_table(extended_fraction=0.1)
    assert ext.n == 35
    assert np.allclose(ext.absolute[27:], [-0.66, -0.33, 0.5, 1, 2, 3, 4, 5])
    assert np.all(ext.vol[27:] == 1) and np.allclose(ext.weight[27:], 0.1)


# ------------------------------------------------------ assembly by hand
def test_collateral_in_scan_plus_haircut() -> None:
    """Collateral moves with its asset: $100 of BTC spot with a 10% PSR has
    scan risk 10 (the -3/3 move; the extreme 0.99 x 10 is smaller), plus a
    5% haircut charge of 5 -> MM 15, IM 1.1 x 15 (CME HRP 110%, METHODOLOGY 1.2)."""
    f = ScenarioGrid(psr=0.10, collateral_haircut=0.05).fit(flat_panel(("BTC",)))
    req = f.requirement(2, np.array([[100.0]]), np.array([[0.0]]))
    assert np.isclose(req.maintenance[0], 15.0)
    assert np.isclose(req.initial[0], 16.5)
    # spot hedged by an equal short perp: the scan nets to 0, the haircut stays
    req = f.requirement(2, np.array([[100.0]]), np.array([[-100.0]]))
    assert np.isclose(req.maintenance[0], 5.0)


def test_wpr_inter_commodity_credit_by_hand() -> None:
    """SPAN WPR inter-commodity spread (CME Inter Spreads / HKEX PRiME,
    METHODOLOGY 1.2), every step by hand.

    Long $100,000 BTC (PSR 10%), short $150,000 ETH (PSR 12%), rate 50%.
    * scan BTC = 100,000 x 0.10 = 10,000 (scenario 13, -3/3; pair 14 same
      loss; time risk = loss at 0 move = 0) -> price risk 10,000,
      WPR = 10,000 / 100,000 = 0.10.
    * scan ETH = 150,000 x 0.12 = 18,000 -> WPR 0.12.
    Ratios 1:1: spreads = min(100,000/1, 150,000/1) = 100,000;
      credit BTC = 0.5 x 100,000 x 1 x 0.10 = 5,000, ETH = 0.5 x 100,000 x 0.12 = 6,000;
      MM = (10,000 - 5,000) + (18,000 - 6,000) = 17,000.
    Ratios 1:2: spreads = min(100,000, 150,000/2) = 75,000;
      credit BTC = 0.5 x 75,000 x 1 x 0.10 = 3,750, ETH = 0.5 x 75,000 x 2 x 0.12 = 9,000;
      MM = 6,250 + 9,000 = 15,250.
    """
    panel = flat_panel(("BTC", "ETH"))
    c = np.zeros((1, 2))
    x = np.array([[100_000.0, -150_000.0]])
    psr = {"BTC": 0.10, "ETH": 0.12}
    plain = ScenarioGrid(psr=psr).fit(panel).requirement(1, c, x)
    assert np.isclose(plain.maintenance[0], 28_000.0)
    one = ScenarioGrid(psr=psr, spreads=[{"legs": ("BTC", "ETH"), "rate": 0.5}]).fit(panel)
    assert np.isclose(one.requirement(1, c, x).maintenance[0], 17_000.0)
    assert np.isclose(one.requirement(1, c, x).initial[0], 18_700.0)
    two = ScenarioGrid(psr=psr, spreads=[{"legs": ("BTC", "ETH"), "rate": 0.5, "ratios": (1, 2)}]).fit(panel)
    assert np.isclose(two.requirement(1, c, x).maintenance[0], 15_250.0)
    # same-sign legs form no spread
    assert np.isclose(one.requirement(1, c, np.abs(x)).maintenance[0], 28_000.0)


def test_wpr_priority_consumes_delta() -> None:
    """Spreads are formed in priority order and use up delta (METHODOLOGY 1.2).

    Long $100,000 BTC (PSR 10%), short $60,000 ETH and short $80,000 SOL
    (PSR 20% each), rate 50%, 1:1. BTC-ETH first: 60,000 spreads, credits
    BTC 0.5 x 60,000 x 0.10 = 3,000, ETH 0.5 x 60,000 x 0.20 = 6,000; BTC
    delta left 40,000. BTC-SOL: 40,000 spreads, credits BTC 2,000, SOL 4,000.
    MM = (10,000 - 5,000) + (12,000 - 6,000) + (16,000 - 4,000) = 23,000.
    """
    panel = flat_panel(("BTC", "ETH", "SOL"))
    m = ScenarioGrid(
        psr={"BTC": 0.10, "default": 0.20},
        spreads=[{"legs": ("BTC", "ETH"), "rate": 0.5}, {"legs": ("BTC", "SOL"), "rate": 0.5}],
    )
    req = m.fit(panel).requirement(0, np.zeros((1, 3)), np.array([[100_000.0, -60_000.0, -80_000.0]]))
    assert np.isclose(req.maintenance[0], 23_000.0)


def test_wpr_with_time_risk_on_external_arrays() -> None:
    """WPR with a non-zero time risk and vol-dependent losses, on externally
    supplied arrays (as from an exchange's risk-parameter file).

    Leg X (per USD): scenarios 1/2 lose 0.01/0.01 (time risk 0.01), the
    worst is scenario 13 (0.30) paired with 14 (0.20): price risk per USD =
    (0.30 + 0.20)/2 - 0.01 = 0.24. Long $1,000: scan 300, WPR 0.24.
    Leg Y: linear, PSR 25%: short $1,000 -> scan 250, WPR 0.25.
    Rate 0.4, 1:1 -> 1,000 spreads; credits 0.4 x 1,000 x 0.24 = 96 and
    0.4 x 1,000 x 0.25 = 100. MM = (300 - 96) + (250 - 100) = 354.
    """
    ra_x = [0.01, 0.01, -0.05, -0.05, 0.05, 0.05, -0.1, -0.1, 0.1, 0.1, -0.2, -0.2, 0.30, 0.20, -0.1, 0.1]
    panel = flat_panel(("X", "Y"))
    m = ScenarioGrid(psr={"X": 0.5, "Y": 0.25}, risk_arrays={"X": ra_x}, extreme_multiplier=2, extreme_cover=0.35,
                     spreads=[{"legs": ("X", "Y"), "rate": 0.4}])
    req = m.fit(panel).requirement(0, np.zeros((1, 2)), np.array([[1_000.0, -1_000.0]]))
    assert np.isclose(req.maintenance[0], 354.0)
    # the extreme cover applies to supplied arrays: scenario 16 counts 0.35 x 0.1
    f = m.fit(panel)
    assert np.isclose(f.ra[0, 0, 15], 0.035)


def test_scanning_based_spread_70_percent() -> None:
    """Scanning-based spread (CME Treasury curve spreads, 70% credit, 1:1;
    METHODOLOGY 1.2): legs are scanned together and in each scenario
    loss = losing-leg loss - 0.70 x gaining-leg gain.

    Long leg L with PSR $1,000, short leg S with PSR $1,500 (each $10,000
    of notional, PSRs 10% and 15%):
    * up 3/3: L gains 1,000, S loses 1,500 -> 1,500 - 0.7 x 1,000 = 800
    * down 3/3: L loses 1,000, S gains 1,500 -> 1,000 - 1,050 = -50
    * up extreme (0.99 x): 1,485 - 0.7 x 990 = 792
    Scan risk 800, versus 2,500 for the two outrights.
    """
    panel = flat_panel(("L", "S"))
    x = np.array([[10_000.0, -10_000.0]])
    base = ScenarioGrid(psr={"L": 0.10, "S": 0.15})
    assert np.isclose(base.fit(panel).requirement(0, np.zeros((1, 2)), x).maintenance[0], 2_500.0)
    m = ScenarioGrid(psr={"L": 0.10, "S": 0.15}, scan_spreads=[{"legs": ("L", "S"), "credit": 0.7}])
    assert np.isclose(m.fit(panel).requirement(0, np.zeros((1, 2)), x).maintenance[0], 800.0)


def test_joint_deribit_preset_by_hand() -> None:
    """Deribit X:PM joint scan (METHODOLOGY 2.1): all assets move by the
    same bucket; v-A contingency 1% of offsetting exposure.

    $100 BTC collateral + short $50 ETH perp: worst joint move -16% loses
    16 - 8 = 8; offsetting exposure (150 - 50)/2 = 50 -> 0.5; MM 8.5.
    Long $100 BTC perp + short $100 ETH perp: scan 0, contingency 1.0 —
    the cross-asset netting risk the module docstring warns about.
    """
    f = get("deribit_pm").fit(flat_panel(("BTC", "ETH")))
    req = f.requirement(0, np.array([[100.0, 0], [0, 0]]), np.array([[0, -50.0], [100.0, -100.0]]))
    assert np.allclose(req.maintenance, [8.5, 1.0])
    assert np.allclose(req.initial, req.maintenance)
    # extended table at 10%: a short loses max(16, 10% x 500) = 50
    ext = DeribitPM(extended_fraction=0.1, futures_contingency=0).fit(flat_panel(("BTC",)))
    assert np.isclose(ext.requirement(0, np.zeros((1, 1)), np.array([[-100.0]])).maintenance[0], 50.0)
    assert np.isclose(ext.requirement(0, np.zeros((1, 1)), np.array([[100.0]])).maintenance[0], 16.0)
    va = DeribitPM.parameter_set("v-A").fit(flat_panel(("BTC",)))
    assert np.isclose(va.requirement(0, np.zeros((1, 1)), np.array([[100.0]])).maintenance[0], 10.0)


# --------------------------------------------------------- calibration
def test_calibrated_psr_matches_numpy_quantile() -> None:
    """PSR = max(floor, expm1(99% quantile of |2-day log return| over the
    last 365 rows)): compared with an independent np.quantile on the window."""
    panel = random_walk_panel(T=500, A=2, seed=3, vol=0.04)
    f = ScenarioGrid(psr_lookback=365, psr_horizon=2, psr_quantile=0.99, psr_floor=0.05).fit(panel)
    c = panel.close
    for t in (91, 200, 364, 365, 499):
        for a in range(2):
            window = [abs(np.log(c[s, a] / c[s - 2, a])) for s in range(max(2, t - 364), t + 1)]
            expected = max(0.05, np.expm1(np.quantile(window, 0.99)))
            assert np.isclose(f.ranges[t, a], expected, rtol=1e-12), (t, a)
    assert np.isnan(f.ranges[90, 0])  # 89 two-day returns < psr_min_obs=90
    # the floor binds for a quiet asset
    quiet = ScenarioGrid(psr_floor=0.5).fit(panel)
    assert np.allclose(quiet.ranges[200], 0.5)


def test_monthly_schedule_holds_psr_within_month() -> None:
    """Between recalibration dates the PSR is the value of the last one <= t."""
    panel = random_walk_panel(T=400, A=2, seed=5)
    f = ScenarioGrid(recalibration="monthly").fit(panel)
    daily = ScenarioGrid(recalibration="daily").fit(panel)
    month = panel.dates.to_period("M")
    first = recalibration_mask(panel.dates, "monthly")
    for a in range(2):
        s = pd.Series(f.ranges[:, a], index=panel.dates)
        live = s.notna().to_numpy()
        for _, grp in s[live].groupby(month[live]):
            if grp.index[0].day == 1:  # a full calibrated month
                assert grp.nunique() == 1
        t_first = np.flatnonzero(first & live)
        assert np.allclose(f.ranges[t_first, a], daily.ranges[t_first, a])
    assert first.sum() == len(set(month))


def test_no_look_ahead() -> None:
    """Perturbing prices after t leaves every requirement up to t unchanged
    (calibrated PSR, correlation-derived credits, monthly schedule)."""
    panel = random_walk_panel(T=400, A=3, seed=7)
    model = ScenarioGrid(spreads=[{"legs": ("A0", "A1"), "rate": "correlation", "ratios": "psr"}],
                         recalibration="weekly", corr_min_rho=-1.0)
    book = generate_book(panel.assets, 40, seed=1, collateral_assets=("A0",), isolated_share=0.2)
    base = model.fit(panel).path(book)
    rng = np.random.default_rng(11)
    for t in (150, 251):
        close = panel.close.copy()
        close[t + 1 :] *= np.exp(0.3 * rng.standard_normal(close[t + 1 :].shape))
        pert = model.fit(panel.with_close(close)).path(book)
        assert np.array_equal(base.maintenance[: t + 1], pert.maintenance[: t + 1], equal_nan=True)
        assert not np.allclose(base.maintenance[t + 1 :], pert.maintenance[t + 1 :], equal_nan=True)


def test_correlation_credit_mapping_and_rate() -> None:
    """rate = clip(1 - sqrt((1 - rho)/2), 0, max) for rho >= min_rho (the
    credit that leaves a risk-matched spread's sigma sqrt(2(1-rho)))."""
    assert np.allclose(correlation_credit(np.array([1.0, 0.5, 0.4, 0.9]), 0.5, 0.8),
                       [0.8, 0.5, 0.0, 1 - np.sqrt(0.05)])
    rng = np.random.default_rng(2)
    z = rng.standard_normal((300, 2))
    r = np.column_stack([z[:, 0], 0.8 * z[:, 0] + 0.6 * z[:, 1]]) * 0.03
    close = 100 * np.exp(np.cumsum(r, axis=0))
    panel = make_panel(close, ("BTC", "ETH"))
    m = ScenarioGrid(psr=0.1, spreads=[{"legs": ("BTC", "ETH"), "rate": "correlation"}],
                     corr_lookback=100, corr_min_obs=50, corr_min_rho=0.0, corr_max_rate=1.0)
    f = m.fit(panel)
    t = 250
    lr = np.diff(np.log(close), axis=0)[t - 100 : t]  # returns ending at rows t-99..t
    rho = np.corrcoef(lr.T)[0, 1]
    assert np.isclose(f._spreads[0]["rate"][t], 1 - np.sqrt((1 - rho) / 2))
    assert f._spreads[0]["rate"][40] == 0.0  # no correlation history yet: no credit


# ------------------------------------------------ reference / parity
def brute_force_mm(f, t: int, coll: np.ndarray, pos: np.ndarray, spreads) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Plain-Python SPAN assembly straight from the definitions, per account."""
    ra = f.ra[t]
    tab = f.table
    out = []
    for n in range(coll.shape[0]):
        e = coll[n] + pos[n]
        scan, wpr = [], []
        for a in range(len(e)):
            losses = [e[a] * ra[a, s] for s in range(tab.n)]
            s_star = int(np.argmax(losses))
            scan.append(max(losses[s_star], 0.0))
            tr = np.mean([losses[s] for s in tab.time])
            pr = (losses[s_star] + losses[tab.pair[s_star]]) / 2 - tr
            wpr.append(max(pr / abs(e[a]), 0.0) if e[a] != 0 else 0.0)
        credit = [0.0] * len(e)
        d = list(e)
        for legs, rate in spreads:
            i, j = legs
            n_sp = min(abs(d[i]), abs(d[j])) if d[i] * d[j] < 0 else 0.0
            credit[i] += rate * n_sp * wpr[i]
            credit[j] += rate * n_sp * wpr[j]
            d[i] -= np.sign(d[i]) * n_sp
            d[j] -= np.sign(d[j]) * n_sp
        out.append(sum(max(s - c, 0.0) for s, c in zip(scan, credit, strict=True)))
    return np.array(out)


def test_vectorised_scan_matches_brute_force() -> None:
    panel = random_walk_panel(T=300, A=4, seed=9)
    spreads = [((0, 1), 0.6), ((0, 2), 0.3), ((1, 3), 0.5)]
    m = ScenarioGrid(spreads=[{"legs": (f"A{i}", f"A{j}"), "rate": r} for (i, j), r in spreads],
                     extreme_multiplier=2, extreme_cover=0.35)
    f = m.fit(panel)
    rng = np.random.default_rng(4)
    coll = np.maximum(rng.normal(0, 100, (60, 4)), 0)
    pos = rng.normal(0, 300, (60, 4)) * (rng.random((60, 4)) < 0.7)
    for t in (120, 299):
        got = f.requirement(t, coll, pos).maintenance
        assert np.allclose(got, brute_force_mm(f, t, coll, pos, spreads))


@pytest.mark.parametrize("name", ["scenario_grid", "deribit_pm"])
def test_path_matches_base_loop(name: str) -> None:
    """The vectorised path() equals the base class's date loop (which calls
    requirement / isolated_requirement), including isolated accounts."""
    panel = random_walk_panel(T=250, A=4, seed=2)
    params = {"spreads": [{"legs": ("A0", "A1"), "rate": "correlation", "ratios": "psr"}],
              "scan_spreads": [{"legs": ("A2", "A3"), "credit": 0.7}], "recalibration": "weekly",
              "corr_min_rho": -1.0, "collateral_haircut": 0.02} if name == "scenario_grid" else {"futures_contingency": 0.02}
    f = get(name, **params).fit(panel)
    book = generate_book(panel.assets, 80, seed=3, collateral_assets=("A0", "A2"), isolated_share=0.3)
    fast = f.path(book)
    slow = FittedMargin.path(f, book, eligible=fast.eligible)
    assert fast.eligible.any() and (~fast.eligible).any() == (name == "scenario_grid")
    assert np.allclose(fast.maintenance, slow.maintenance, equal_nan=True, rtol=1e-12, atol=1e-9)
    assert np.allclose(fast.initial, slow.initial, equal_nan=True, rtol=1e-12, atol=1e-9)


# ---------------------------------------------------------- invariants
PANEL = random_walk_panel(T=200, A=3, seed=21)
FITS = {
    "grid": ScenarioGrid(spreads=[{"legs": ("A0", "A1"), "rate": 0.5}], psr_min_obs=30,
                         collateral_haircut=0.05).fit(PANEL),
    "scan_spread": ScenarioGrid(scan_spreads=[{"legs": ("A1", "A2"), "credit": 0.7}], psr_min_obs=30).fit(PANEL),
    "deribit": DeribitPM(extended_fraction=0.2).fit(PANEL),
}
amounts = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(sorted(FITS)),
    pos=st.lists(amounts, min_size=3, max_size=3),
    coll=st.lists(st.floats(0, 1e6), min_size=3, max_size=3),
    k=st.floats(0, 50),
    t=st.integers(60, 199),
)
def test_invariants(which: str, pos: list[float], coll: list[float], k: float, t: int) -> None:
    """Non-negative; positive homogeneous; a zero holding changes nothing;
    cross margin never exceeds the sum of isolated requirements (for the
    joint Deribit scan this holds while contingency/2 <= range, true here)."""
    f = FITS[which]
    c = np.array([coll])
    x = np.array([pos])
    req = f.requirement(t, c, x)
    mm = req.maintenance[0]
    assert mm >= 0 and req.initial[0] >= mm
    assert np.isclose(f.requirement(t, k * c, k * x).maintenance[0], k * mm, rtol=1e-9, atol=1e-6)
    # a zero account costs nothing and does not change its neighbour's requirement
    both = f.requirement(t, np.vstack([c, np.zeros((1, 3))]), np.vstack([x, np.zeros((1, 3))]))
    assert both.maintenance[1] == 0.0 and np.isclose(both.maintenance[0], mm, rtol=1e-12)
    iso = f.isolated_requirement(t, c, x).maintenance[0]
    assert mm <= iso + 1e-6 * max(1.0, iso)


@settings(max_examples=40, deadline=None)
@given(amount=st.floats(1.0, 1e7), a=st.integers(0, 2), t=st.integers(60, 199))
def test_same_asset_hedge_nets_to_zero(amount: float, a: int, t: int) -> None:
    """Spot collateral hedged by an equal short perp on the same asset: zero
    scan risk (only the haircut remains); a long and short perp likewise."""
    f = ScenarioGrid(psr_min_obs=30).fit(PANEL)
    c = np.zeros((1, 3))
    x = np.zeros((1, 3))
    c[0, a] = amount
    x[0, a] = -amount
    assert f.requirement(t, c, x).maintenance[0] == 0.0
    # adding zero-exposure in other assets changes nothing
    assert f.requirement(t, np.zeros((1, 3)), np.zeros((1, 3))).maintenance[0] == 0.0


# --------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"im_multiplier": 2.5}, "im_multiplier"),
        ({"extreme_cover": 1.5}, "extreme_cover"),
        ({"psr": 0.0}, "psr"),
        ({"psr_quantile": 1.0}, "psr_quantile"),
        ({"psr_horizon": 0}, "psr_horizon"),
        ({"recalibration": "hourly"}, "recalibration"),
        ({"spreads": [{"legs": ("A0", "A1"), "rate": 1.2}]}, "spreads[0].rate"),
        ({"spreads": [{"legs": ("A0",), "rate": 0.5}]}, "spreads[0].legs"),
        ({"scan_spreads": [{"legs": ("A0", "A1")}]}, "scan_spreads[0].credit"),
        ({"scan": "joint", "spreads": [{"legs": ("A0", "A1"), "rate": 0.5}]}, "scan='per_asset'"),
        ({"risk_arrays": {"A0": [0.1] * 5}}, "risk_arrays[A0]"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        ScenarioGrid(**kwargs)


def test_deribit_bad_parameters() -> None:
    with pytest.raises(ValueError, match="n_buckets"):
        DeribitPM(n_buckets=8)
    with pytest.raises(ValueError, match="futures_contingency"):
        DeribitPM(futures_contingency=0.5)
    with pytest.raises(ValueError, match="parameter set"):
        DeribitPM.parameter_set("v-Z")


def test_registry_and_ragged_start() -> None:
    """Both names are registered; an asset without a scan range yet makes
    the accounts holding it NaN, not the others."""
    assert isinstance(get("scenario_grid"), ScenarioGrid)
    assert isinstance(get("deribit_pm"), DeribitPM)
    close = random_walk_panel(T=300, A=2, seed=1).close.copy()
    close[:200, 1] = np.nan
    f = ScenarioGrid().fit(make_panel(close))
    req = f.requirement(250, np.zeros((2, 2)), np.array([[100.0, 0.0], [100.0, 50.0]]))
    assert np.isfinite(req.maintenance[0]) and np.isnan(req.maintenance[1])
    book = Book(("A0", "A1"), np.zeros((2, 2)), np.array([[100.0, 0.0], [100.0, 50.0]]))
    mp = f.path(book)
    assert mp.eligible[250, 0] and not mp.eligible[250, 1]


# ------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_btc_eth_scan_ranges(daily_dir) -> None:  # type: ignore[no-untyped-def]
    """On real BTC/ETH closes the calibrated 2-day 99% range is a plausible
    crypto margin (5%-40%), monthly ranges move less often than daily ones."""
    frames = {}
    for sym in ("BTC", "ETH"):
        df = pd.read_csv(daily_dir / f"{sym}-USD_1d.csv", parse_dates=["datetime"], index_col="datetime")
        df = df[~df.index.duplicated()].sort_index()
        frames[sym] = df[["open", "high", "low", "close", "volume"]]
    from riskmodels.data.panel import PricePanel

    panel = PricePanel.from_frames(frames)
    daily = ScenarioGrid().fit(panel).ranges
    monthly = ScenarioGrid(recalibration="monthly").fit(panel).ranges
    ok = np.isfinite(daily)
    assert np.all((daily[ok] >= 0.05) & (daily[ok] <= 0.40))
    n_changes = lambda r: int((np.diff(r[np.isfinite(r)]) != 0).sum())  # noqa: E731
    assert n_changes(monthly[:, 0]) < n_changes(daily[:, 0]) / 5


@pytest.mark.parametrize("model", [
    ScenarioGrid(psr={"BTC": 0.10, "ETH": 0.2, "SOL": 0.3}, collateral_haircut=0.05),
    ScenarioGrid(psr=0.15, scan="joint"),
    DeribitPM(futures_contingency=0.02),
    DeribitPM(),
    DeribitPM(price_range=0.16, n_buckets=9),
])
def test_maintenance_lipschitz_bounds_mm(model) -> None:
    """|MM(c', p') - MM(c, p)| <= sum_a L_a (|dc_a| + |dp_a|), cross and isolated; None with spreads."""
    f = model.fit(flat_panel(("BTC", "ETH", "SOL")))
    rng = np.random.default_rng(9)
    c = np.abs(rng.normal(0, 1e4, (300, 3))) * (rng.random((300, 3)) < 0.5)
    p = rng.normal(0, 1e4, (300, 3))
    c2 = np.abs(c * rng.uniform(0, 2, c.shape))
    p2 = p * rng.uniform(-1, 2, p.shape)
    iso = rng.random(300) < 0.3
    L = f.maintenance_lipschitz(1)
    assert L.shape == (3,) and np.isfinite(L).all()
    m1 = f.account_requirement(1, c, p, iso).maintenance
    m2 = f.account_requirement(1, c2, p2, iso).maintenance
    bound = ((np.abs(c2 - c) + np.abs(p2 - p)) * L).sum(axis=1)
    assert (np.abs(m2 - m1) <= bound * (1 + 1e-9) + 1e-9).all()
    spread = ScenarioGrid(psr=0.1, spreads=[{"legs": ("BTC", "ETH"), "rate": 0.5}]).fit(flat_panel(("BTC", "ETH")))
    assert spread.maintenance_lipschitz(1) is None


@pytest.mark.parametrize("model", [ScenarioGrid(psr=0.15, scan="joint"), DeribitPM(), DeribitPM(n_buckets=9)])
def test_one_date_joint_scan_is_the_einsum_of_that_date(model) -> None:
    """The simulation's one-date scan (a plain GEMM) equals ``einsum`` of that date bit for bit.

    ``_maintenance`` prices one date as ``(RA_t^T @ e^T)^T`` instead of
    ``einsum("na,bas->bns", e, RA[[t]], optimize=True)`` (einsum's path
    search cost a fifth of the Deribit row's simulation). The scan loss is
    compared with that einsum with ``array_equal`` on 1, 2, 5 and 300 accounts
    over many dates, 18 assets (so the account simulation's numbers are unchanged;
    the untransposed ``e @ RA_t`` fails this), and
    the one-date maintenance with the margin path's multi-date evaluation to
    1e-12 (the batched product may round its last bit differently).
    """
    panel = random_walk_panel(T=200, A=18, seed=13)  # the default universe's width: BLAS's blocked path
    f = model.fit(panel)
    rng = np.random.default_rng(4)
    for n in (1, 2, 5, 300):
        c = np.abs(rng.normal(0, 10 ** rng.uniform(2, 6), (n, 18))) * (rng.random((n, 18)) < 0.5)
        p = rng.normal(0, 10 ** rng.uniform(2, 6), (n, 18)) * (rng.random((n, 18)) < 0.7)
        e = c + p
        ts = np.arange(60, 200, 2)
        many = f._maintenance(ts, c, p)
        for j, t in enumerate(ts):
            loss = np.einsum("na,bas->bns", e, f._ra0[np.array([t])], optimize=True)[0]
            ref = np.maximum(loss.max(axis=-1), 0.0)  # the joint scan, then the contingency and the haircut
            if f.contingency > 0:
                ref = ref + f.contingency * 0.5 * (np.abs(c).sum(1) + np.abs(p).sum(1) - np.abs(e.sum(1)))
            ref = ref + c @ f.haircut
            one = f._maintenance(np.array([t]), c, p)[0]
            assert np.array_equal(one, ref, equal_nan=True), (n, t)
            np.testing.assert_allclose(one, many[j], rtol=1e-12, atol=1e-9)
            assert np.array_equal(f.requirement(int(t), c, p).maintenance, one, equal_nan=True)
