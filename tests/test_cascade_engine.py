"""Cascade engine: hand-worked rounds, netting, conservation, termination, fixed points."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_panel, random_walk_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.cascade.engine import CascadeParams, Population, run_cascade
from riskmodels.cascade.impact import AssetState, LinearImpact, SquareRootImpact
from riskmodels.margin import get


def one_asset_model():
    """Fixed haircut: MM = 5% of |perp notional|, IM 10%, no collateral haircut."""
    panel = make_panel(np.full(5, 100.0), assets=("BTC",))
    return get("fixed_haircut", imf=0.1, mmf=0.05, haircut=0.0).fit(panel)


def longs(cash, qty=10.0, price=100.0):
    n = len(cash)
    return Population(("BTC",), np.zeros((n, 1)), np.full((n, 1), qty), np.full((n, 1), price), np.asarray(cash, float))


def test_two_account_cascade_by_hand():
    """Two longs of 10 BTC entered at 100; MM = 0.05 x 10 x P = 0.5 P; penalty 1%;
    linear impact lambda = 1e-5 per USD; exogenous path 100 -> 99.

    Round 1 (R = 99): acct 1 equity 60 - 10 = 50 >= MM 49.5 (safe); acct 2
    equity 54 - 10 = 44 < 49.5 -> liquidated. Flow Q1 = -10 x 99 = -990;
    move = -0.0099, mark = 99 x 0.9901 = 98.0199; VWAP move = -0.00495,
    fill = 99 x 0.99505 = 98.50995. Acct 2 cash = 54 + 10 (98.50995 - 100)
    = 39.0995; penalty = 0.01 x 985.0995 = 9.850995 -> cash 29.248505.
    Round 2 (mark 98.0199): acct 1 equity 60 - 19.801 = 40.199 < MM 49.00995
    -> liquidated. Q2 = -990 - 980.199 = -1970.199; mark = 99 (1 - 0.01970199)
    = 97.04950299; VWAP move = -lambda/2 (1970.199 + 990) = -0.014800995,
    fill = 97.53470150; cash = 60 + 10 (97.5347015 - 100) = 35.347015;
    penalty 9.75347015 -> cash 25.59354485. Round 3: nobody left -> 2 rounds.
    """
    f = one_asset_model()
    pop = longs([60.0, 54.0])
    path = np.array([[100.0], [99.0]])
    res = run_cascade(f, pop, path, t_margin=2, impact=LinearImpact(kyle_lambda=1e-5),
                      params=CascadeParams(penalty=0.01, permanent=0.0, fixed_points=False))
    r = res.rounds
    assert len(r) == 2
    assert list(r["n_liquidated"]) == [1, 1]
    assert r["forced_notional"] == pytest.approx([985.0995, 975.347015])
    assert res.round_moves[:, 0] == pytest.approx([-0.0099, 97.04950299 / 98.0199 - 1])
    assert res.final_cash == pytest.approx([25.59354485, 29.248505])
    assert res.fund_end == pytest.approx(9.850995 + 9.75347015)
    assert res.prices[1, 0] == pytest.approx(97.04950299)
    assert r["branching"][1] == pytest.approx(975.347015 / 985.0995)
    assert res.bad_debt == 0.0


def test_price_taker_same_example_liquidates_only_one():
    """Without impact the mark stays at 99: only account 2 (equity 44 < 49.5) goes."""
    res = run_cascade(one_asset_model(), longs([60.0, 54.0]), np.array([[100.0], [99.0]]), t_margin=2)
    assert list(res.liquidated) == [False, True]
    assert res.n_rounds == 1


def test_netting_of_opposite_forced_flows():
    """A long and a short of 10 BTC both below maintenance at 100 (cash 1 -> equity 1 < 50):
    their forced orders cancel, so the price does not move and both fill at the mark."""
    f = one_asset_model()
    pop = Population(("BTC",), np.zeros((2, 1)), np.array([[10.0], [-10.0]]), np.full((2, 1), 100.0), np.array([1.0, 1.0]))
    res = run_cascade(f, pop, np.array([[100.0], [100.0]]), t_margin=2,
                      impact=LinearImpact(kyle_lambda=1e-3), params=CascadeParams(penalty=0.0))
    assert res.rounds["net_flow"][0] == 0.0
    assert res.round_moves[0, 0] == 0.0
    assert res.rounds["forced_notional"][0] == pytest.approx(2000.0)
    assert res.final_cash == pytest.approx([1.0, 1.0])


def test_greatest_and_least_fixed_points_differ():
    """Two longs, equity 52 >= MM 50 at 100. If both were liquidated (flow -2000,
    lambda 1e-5 -> P = 98) each would have equity 32 < 49: a second equilibrium.
    Least fixed point: nobody; greatest: both. The engine follows the least."""
    f = one_asset_model()
    res = run_cascade(f, longs([52.0, 52.0]), np.array([[100.0], [100.0]]), t_margin=2,
                      impact=LinearImpact(kyle_lambda=1e-5))
    fp = res.fixed_points[0]
    assert (fp["n_least"], fp["n_greatest"]) == (0, 2)
    assert fp["differs"] and res.multiple_equilibria
    assert not res.liquidated.any()


def random_population(seed, n=200, A=3, price=100.0):
    rng = np.random.default_rng(seed)
    qp = rng.normal(0, 5, (n, A)) * (rng.random((n, A)) < 0.6)
    qc = np.abs(rng.normal(0, 2, (n, A))) * (rng.random((n, A)) < 0.3)
    cash = rng.uniform(0.02, 0.2, n) * (np.abs(qp) * price).sum(1) - 0.5 * (qc * price).sum(1)
    return Population(tuple(f"A{j}" for j in range(A)), qc, qp, np.full((n, A), price), cash)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.floats(0.0, 0.3), fund=st.floats(0.0, 5e3), cf=st.sampled_from([1.0, 0.5]))
def test_conservation_every_round(seed, drop, fund, cf):
    """sum equity + fund + execution cost - mark P&L - unallocated is the same in every
    round and equals the opening sum of equity + fund (computed from the inputs)."""
    panel = random_walk_panel(T=10, A=3, seed=1)
    f = get("fixed_haircut", imf=0.1, mmf=0.05, haircut=0.1).fit(panel)
    pop = random_population(seed)
    path = 100.0 * np.array([[1, 1, 1], [1 - drop, 1 - drop / 2, 1 + drop / 3], [1 - drop / 2, 1, 1]])
    state = AssetState(pop.assets, np.full(3, 0.02), np.full(3, 1e5), np.full(3, 1e6))
    res = run_cascade(f, pop, path, t_margin=5, impact=SquareRootImpact(1.0), states=state,
                      params=CascadeParams(insurance_fund=fund, slippage=0.002, close_factor=cf, fixed_points=False))
    start = pop.equity(path[0]).sum() + fund
    if len(res.rounds):
        assert res.rounds["ledger"] == pytest.approx(np.full(len(res.rounds), start), rel=1e-9, abs=1e-6)
        # recompute the last round's equity from the final state independently of the log
        assert (res.rounds["fund"] >= -1e-9).all()
    # termination: a sub-step has at most N + 1 rounds
    assert res.max_rounds_per_substep <= pop.n_accounts + 1


def test_max_rounds_bound_raises():
    with pytest.raises(RuntimeError, match="max_rounds"):
        run_cascade(one_asset_model(), longs([60.0, 54.0]), np.array([[100.0], [99.0]]), t_margin=2,
                    impact=LinearImpact(kyle_lambda=1e-5), params=CascadeParams(max_rounds=1, fixed_points=False))


def test_partial_close_factor_with_cooldown():
    """Close factor 0.5, path 100 -> 99 -> 95. At 99: equity 45 - 10 = 35 < MM 49.5,
    half (5 BTC) is sold; then 35 >= 24.75 but the account cools down anyway. At 95:
    equity 35 + 5 x (95 - 99) = 15 < MM 23.75: half of the rest (2.5 BTC) goes."""
    res = run_cascade(one_asset_model(), longs([45.0]), np.array([[100.0], [99.0], [95.0]]), t_margin=2,
                      params=CascadeParams(close_factor=0.5, penalty=0.0))
    assert list(res.rounds["n_partial"]) == [1, 1]
    assert res.closed_long_qty[0] == pytest.approx(7.5)


def test_bad_debt_goes_to_fund_then_adl():
    """Acct 0 (long 10, equity 5 at 100) is bankrupt at 90: cash 5 - 100 = -95 of bad
    debt. Fund 40 pays 40; the 55 left is charged to acct 1 (short 10 at 100,
    unrealised profit 100 at 90): one ADL event, its cash 1000 -> 945."""
    f = one_asset_model()
    pop = Population(("BTC",), np.zeros((2, 1)), np.array([[10.0], [-10.0]]), np.full((2, 1), 100.0), np.array([5.0, 1000.0]))
    res = run_cascade(f, pop, np.array([[100.0], [90.0]]), t_margin=2,
                      params=CascadeParams(penalty=0.0, insurance_fund=40.0))
    assert res.bad_debt == pytest.approx(95.0)
    assert res.fund_end == pytest.approx(0.0)
    assert res.adl_events == 1
    assert res.final_cash == pytest.approx([0.0, 945.0])


@pytest.mark.parametrize(("kw", "name"), [({"close_factor": 0}, "close_factor"), ({"penalty": 0.6}, "penalty"),
                                          ({"permanent": 1.5}, "permanent"), ({"insurance_fund": -1}, "insurance_fund")])
def test_bad_params(kw, name):
    with pytest.raises(ValueError, match=name):
        CascadeParams(**kw)


def test_path_validation():
    with pytest.raises(ValueError, match="path"):
        run_cascade(one_asset_model(), longs([60.0]), np.array([[100.0]]), t_margin=2)
