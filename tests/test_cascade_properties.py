"""Cascade engine invariants (issue 17, item 5) and the leave-one-out bookkeeping.

* conservation: the quantity closed equals the quantity the liquidated accounts held,
  and every liquidated account's cash is the hand settlement of its book;
* monotonicity: a deeper market (more volume under the square-root law, a smaller
  Kyle lambda) never liquidates more, for a long-only book on a falling path (where
  an account's margin surplus rises with every price, so less selling can only help);
* no look-ahead: everything up to sub-step s is unchanged when the path after s changes;
* fixed points: their convergence is recorded, and a too-small iteration bound says so;
* leave-one-out: the held-out choice for a day never depends on that day's loss.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_walk_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.cascade.calibrate import LOOSettings, leave_one_out, trailing_return
from riskmodels.cascade.engine import CascadeParams, Population, run_cascade
from riskmodels.cascade.impact import AssetState, LinearImpact, NoImpact, SquareRootImpact
from riskmodels.cascade.observed import OBSERVED, predict
from riskmodels.margin import get

A = 3


def fitted():
    panel = random_walk_panel(T=10, A=A, seed=1)
    return get("fixed_haircut", imf=0.1, mmf=0.05, haircut=0.1).fit(panel)


def population(seed: int, n: int = 60, long_only: bool = False, price: float = 100.0) -> Population:
    rng = np.random.default_rng(seed)
    qp = rng.normal(0, 5, (n, A)) * (rng.random((n, A)) < 0.6)
    if long_only:
        qp = np.abs(qp)
    qc = np.abs(rng.normal(0, 2, (n, A))) * (rng.random((n, A)) < 0.3)
    cash = rng.uniform(0.02, 0.25, n) * (np.abs(qp) * price).sum(1) - 0.5 * (qc * price).sum(1)
    return Population(tuple(f"A{j}" for j in range(A)), qc, qp, np.full((n, A), price), cash)


def state(volume: float) -> AssetState:
    return AssetState(tuple(f"A{j}" for j in range(A)), np.full(A, 0.02), np.full(A, volume), np.full(A, 10 * volume))


def falling_path(drops: np.ndarray, steps: int = 4) -> np.ndarray:
    """Prices 100 -> 100 (1 - drop) in ``steps`` equal log steps (every asset falls)."""
    w = np.linspace(0, 1, steps + 1)[:, None]
    return 100.0 * np.exp(w * np.log1p(-np.asarray(drops))[None, :])


# ------------------------------------------------------------------ conservation
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.floats(0.0, 0.4), vol=st.floats(1e4, 1e7))
def test_closed_quantity_equals_liquidated_holdings(seed, drop, vol):
    """close_factor 1: the long (short) quantity closed per asset is the sum of the
    long (short) perp quantities the liquidated accounts held at the open, and every
    account not liquidated keeps its cash (the fund is large enough: no ADL)."""
    pop = population(seed)
    path = 100.0 * np.array([[1, 1, 1], [1 - drop, 1 - drop / 2, 1 + drop / 3], [1 - drop / 2, 1, 1]])
    res = run_cascade(fitted(), pop, path, t_margin=5, impact=SquareRootImpact(1.0), states=state(vol),
                      params=CascadeParams(insurance_fund=1e12, slippage=0.002, fixed_points=False))
    L = res.liquidated
    assert res.full[L].all()
    np.testing.assert_allclose(res.closed_long_qty, np.maximum(pop.q_perp[L], 0).sum(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.closed_short_qty, np.maximum(-pop.q_perp[L], 0).sum(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(res.final_cash[~L], pop.cash[~L])
    assert (res.final_cash[L] >= 0).all()  # bad debt is taken off the account, never left negative


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.floats(0.05, 0.4), slip=st.floats(0.0, 0.01), pen=st.floats(0.0, 0.05))
def test_settlement_by_hand_without_impact(seed, drop, slip, pen):
    """One sub-step, price-taker: a liquidated account's cash is
    ``max(cash + qc P (1 - s) + qp (P - entry) - s |qp| P - penalty, 0)`` with
    ``penalty = min(pen |qp| P, max(E - s (|qc| + |qp|) P, 0))`` and ``E`` its equity at P;
    it is liquidated iff ``E < MM(P)`` (the margin model's maintenance at P)."""
    f = fitted()
    pop = population(seed)
    P = 100.0 * np.array([1 - drop, 1 - drop / 2, 1 + drop / 4])
    res = run_cascade(f, pop, np.vstack([np.full(A, 100.0), P]), t_margin=5, impact=NoImpact(),
                      params=CascadeParams(insurance_fund=1e9, slippage=slip, penalty=pen, fixed_points=False))
    qc, qp = pop.q_coll, pop.q_perp
    E = pop.cash + (qc * P).sum(1) + (qp * (P - pop.entry)).sum(1)
    mm = f.account_requirement(5, qc * P, qp * P, np.zeros(len(E), bool)).maintenance
    np.testing.assert_array_equal(res.liquidated, E < mm)
    cost = slip * ((np.abs(qc) + np.abs(qp)) * P).sum(1)
    penalty = np.minimum(pen * (np.abs(qp) * P).sum(1), np.maximum(E - cost, 0.0))
    cash = np.maximum(E - cost - penalty, 0.0)
    L = res.liquidated
    np.testing.assert_allclose(res.final_cash[L], cash[L], rtol=1e-10, atol=1e-6)
    # the fund gains the penalties and pays the bad debt (what the closing left below zero)
    bad = np.maximum(cost + penalty - E, 0.0)[L].sum()
    assert res.fund_end - 1e9 == pytest.approx(penalty[L].sum() - bad, abs=1e-4)


# ------------------------------------------------------------------ monotonicity
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.floats(0.02, 0.35), v=st.floats(1e3, 1e6), deeper=st.floats(1.0, 100.0),
       perm=st.floats(0.0, 1.0))
def test_deeper_market_never_gives_a_larger_cascade(seed, drop, v, deeper, perm):
    """One sub-step: the rounds reach the least fixed point of ``S -> L(P(S))``, and a
    deeper market's map is pointwise below the thin one's (less impact for the same
    sales, and a long-only book's surplus rises with the price), so its least fixed
    point is a subset (Tarski). Across several sub-steps this is not a theorem (the
    timing of the sales differs, and a concave law moves a split order more), so it
    is not asserted there."""
    pop = population(seed, long_only=True)
    path = falling_path(np.array([drop, drop / 2, drop / 3]), steps=1)
    f = fitted()
    runs = {}
    for name, impact, st_ in (
        ("thin sqrt", SquareRootImpact(1.0), state(v)),
        ("deep sqrt", SquareRootImpact(1.0), state(v * deeper)),
        ("thin linear", LinearImpact(kyle_lambda=1.0 / v), state(v)),
        ("deep linear", LinearImpact(kyle_lambda=1.0 / (v * deeper)), state(v)),
        ("infinitely deep", NoImpact(), state(v)),
    ):
        runs[name] = run_cascade(f, pop, path, t_margin=5, impact=impact, states=st_,
                                 params=CascadeParams(permanent=perm, insurance_fund=1e12, fixed_points=False))
    for law in ("sqrt", "linear"):
        thin, deep = runs[f"thin {law}"], runs[f"deep {law}"]
        assert not (deep.liquidated & ~thin.liquidated).any()  # the deep set is inside the thin one
        assert (deep.closed_long_qty <= thin.closed_long_qty + 1e-9).all()
        assert (deep.prices[-1] >= thin.prices[-1] * (1 - 1e-12)).all()
        assert not (runs["infinitely deep"].liquidated & ~deep.liquidated).any()


# ------------------------------------------------------------------ no look-ahead
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 3), shock=st.floats(-0.5, 0.5))
def test_engine_no_look_ahead(seed, cut, shock):
    """Changing the path after node ``cut`` leaves sub-steps 1..cut untouched."""
    pop = population(seed)
    path = falling_path(np.array([0.2, 0.1, -0.1]), steps=4)
    other = path.copy()
    other[cut + 1 :] *= np.exp(shock)
    kw = dict(t_margin=5, impact=SquareRootImpact(1.0), states=state(1e5),
              params=CascadeParams(insurance_fund=1e5))
    a = run_cascade(fitted(), pop, path, **kw)
    b = run_cascade(fitted(), pop, other, **kw)
    np.testing.assert_array_equal(a.prices[: cut + 1], b.prices[: cut + 1])
    np.testing.assert_array_equal(a.flow[:cut], b.flow[:cut])
    ra, rb = a.rounds[a.rounds["substep"] <= cut], b.rounds[b.rounds["substep"] <= cut]
    for name in ra.dtype.names:  # field by field: NaN (round 1's branching) equals NaN
        np.testing.assert_array_equal(ra[name], rb[name])
    early = (a.first_substep >= 1) & (a.first_substep <= cut)
    np.testing.assert_array_equal(early, (b.first_substep >= 1) & (b.first_substep <= cut))
    np.testing.assert_array_equal(a.fixed_points[:cut], b.fixed_points[:cut])


# ------------------------------------------------------------------ fixed points
def test_fixed_point_convergence_is_recorded():
    pop = population(3, n=120)
    path = falling_path(np.array([0.3, 0.2, 0.1]), steps=3)
    kw = dict(t_margin=5, impact=SquareRootImpact(2.0), states=state(2e4))
    ok = run_cascade(fitted(), pop, path, params=CascadeParams(insurance_fund=1e9), **kw)
    assert len(ok.fixed_points) == 3
    assert ok.fixed_points["converged"].all() and ok.fixed_points_converged
    assert ok.summary()["fixed_points_converged"] is True
    # the least fixed point's iteration count is what the rounds needed from nobody liquidated
    assert (ok.fixed_points["iter_least"] >= 1).all()
    # one iteration cannot reach a fixed point when the cascade takes several rounds
    assert ok.max_rounds_per_substep >= 2
    cut = run_cascade(fitted(), pop, path, params=CascadeParams(insurance_fund=1e9, max_fp_iter=1), **kw)
    assert not cut.fixed_points_converged
    assert not cut.fixed_points["converged"].all()
    # the cascade itself (the rounds) does not depend on the diagnostic's bound
    np.testing.assert_array_equal(ok.liquidated, cut.liquidated)


# ------------------------------------------------------------------ leave-one-out
def test_leave_one_out_choice_never_sees_its_day():
    rng = np.random.default_rng(0)
    L = rng.random((40, 8))
    c_all, held = leave_one_out(L)
    assert c_all == int(np.argmin(L.sum(1)))
    for j in range(8):
        assert held[j] == int(np.argmin(np.delete(L, j, axis=1).sum(1)))
        worse = L.copy()
        worse[:, j] = rng.random(40) * 100  # any loss on day j
        assert leave_one_out(worse)[1][j] == held[j]


def test_loo_settings_validation_names_the_key():
    with pytest.raises(ValueError, match=r"\[cascade.calibration\].low_weight = 1.5"):
        LOOSettings(low_weight=(0.5, 1.5))
    with pytest.raises(ValueError, match="oi_to_volume"):
        LOOSettings(oi_to_volume=(0.0,))
    with pytest.raises(ValueError, match="unknown key"):
        LOOSettings.from_mapping({"low_weigth": [0.5]})
    with pytest.raises(ValueError, match="calm_days"):
        LOOSettings(calm_days=1)


def test_observed_metrics_by_hand():
    """predict() on a hand-built result: BTC long OI 100 with 30 long + 10 short liquidated,
    ETH long OI 50 with 5 long liquidated (USD at the open)."""

    class R:  # the fields predict() reads
        assets = ("BTC", "ETH")
        liquidated_long_usd = np.array([30.0, 5.0])
        liquidated_short_usd = np.array([10.0, 0.0])
        oi_long = np.array([100.0, 50.0])

    r = R()
    assert predict([r], "liq_usd") == 45.0  # type: ignore[list-item]
    assert predict([r], "liq_long_usd") == 35.0  # type: ignore[list-item]
    assert predict([r], "long_share") == pytest.approx(35 / 45)  # type: ignore[list-item]
    assert predict([r], "liq_frac_oi") == pytest.approx(45 / 150)  # type: ignore[list-item]
    assert predict([r], "liq_frac_oi_btc") == pytest.approx(40 / 100)  # type: ignore[list-item]
    assert predict([r], "oi_usd_btc") == 100.0  # type: ignore[list-item]
    assert predict([r, r], "liq_usd") == 90.0  # type: ignore[list-item]
    assert predict([r, r], "liq_frac_oi") == pytest.approx(45 / 150)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown metric"):
        predict([r], "nonsense")  # type: ignore[list-item]
    # every observed figure names a metric predict() knows, and each day has one primary figure
    for o in OBSERVED:
        predict([r], o.metric)  # type: ignore[list-item]
    days = {o.day for o in OBSERVED}
    assert all(sum(o.primary for o in OBSERVED if o.day == d) == 1 for d in days)


def test_regime_return_uses_only_data_before_the_day():
    panel = random_walk_panel(T=200, A=2, seed=4)
    from dataclasses import replace

    panel = replace(panel, assets=("BTC", "ETH"))
    t = 150
    c = panel.close[:, 0]
    assert trailing_return(panel, t, 90) == pytest.approx(np.log(c[t - 1] / c[t - 91]), rel=1e-12)
    future = panel.close.copy()
    future[t:] *= 3.0  # the day itself and everything after
    assert trailing_return(replace(panel, close=future), t, 90) == trailing_return(panel, t, 90)
    assert trailing_return(panel, 50, 90) == 0.0  # not enough history: no regime term
    with pytest.raises(ValueError, match="rally_beta"):
        LOOSettings(rally_beta=(9.0,))
