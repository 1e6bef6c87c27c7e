"""Cover-N, stressed loss beyond margin and reverse stress against hand-worked examples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.portfolio import Book
from riskmodels.stress.cover import (
    GroupIndex,
    group_codes,
    group_sum,
    reverse_stress,
    scenario_losses,
    stress_book,
    top2,
    top_n_sum,
)
from riskmodels.stress.scenarios import Scenario, ScenarioSet

ASSETS = ("BTC", "ETH")


def toy_book() -> tuple[Book, np.ndarray]:
    """Five accounts in four groups (G1 holds two related accounts), margins by hand."""
    coll = np.array([[0, 0], [0, 0], [0, 20_000], [0, 0], [0, 0]], dtype=float)
    pos = np.array([[100_000, 0], [0, -50_000], [60_000, 0], [-40_000, 0], [0, 0]], dtype=float)
    cash = np.array([0, 0, 0, 0, 30_000], dtype=float)
    book = Book(ASSETS, coll, pos, cash, account_ids=("a1", "a2", "a3", "a4", "a5"),
                group=("G1", "G1", "G2", "G3", "G4"))
    margin = np.array([10_000, 5_000, 8_000, 4_000, 0], dtype=float)
    return book, margin


SCEN = ScenarioSet(ASSETS, (
    Scenario("down", "user", {"BTC": -0.30, "ETH": -0.20}),
    Scenario("up", "user", {"BTC": 0.20, "ETH": 0.40}),
    Scenario("depeg", "user", cash=-0.10),
    Scenario("hedges break", "user", default=0.20, mode="adverse"),
))


def test_cover_n_on_a_hand_worked_book_with_related_accounts():
    book, margin = toy_book()
    r = stress_book(book.exposure, book.cash, margin, SCEN, book.account_ids, book.group)
    # by hand (directional L = -x.m - cash+ x m_cash; U = max(L - M, 0)):
    # down:  a1 30k-10k=20k, a2 gains 10k -> 0, a3 18k+4k-8k=14k, a4 gains -> 0, a5 0
    # up:    a1 gains, a2 20k-5k=15k, a3 gains, a4 8k-4k=4k
    # depeg: a5 3k - 0 = 3k
    # hedges break 20% (|x| |m|): a1 20k-10k=10k, a2 10k-5k=5k, a3 16k-8k=8k, a4 8k-4k=4k
    expect = np.array([[20_000, 0, 0, 10_000], [0, 15_000, 0, 5_000], [14_000, 0, 0, 8_000],
                       [0, 4_000, 0, 4_000], [0, 0, 3_000, 0]], dtype=float)
    np.testing.assert_allclose(r.uncovered, expect, atol=1e-6)
    # groups: G1 = a1 + a2 (no netting of a2's surplus against a1's deficit)
    g = dict(zip(r.group_labels, r.group_uncovered, strict=True))
    np.testing.assert_allclose(g["G1"], [20_000, 15_000, 0, 15_000], atol=1e-6)
    tab = r.table()
    np.testing.assert_allclose(tab["cover1"], [20_000, 15_000, 3_000, 15_000], atol=1e-6)
    np.testing.assert_allclose(tab["cover2"], [34_000, 19_000, 3_000, 23_000], atol=1e-6)
    c1, s1, g1 = r.cover(1)
    assert c1 == pytest.approx(20_000) and s1 == "down" and g1 == ("G1",)
    c2, s2, g2 = r.cover(2)
    assert c2 == pytest.approx(34_000) and s2 == "down" and g2 == ("G1", "G2")
    assert list(tab["accounts_beyond_margin"]) == [2, 2, 1, 4]
    assert list(tab["largest_group"]) == ["G1", "G1", "G4", "G1"]


def test_unpriced_accounts_are_left_out():
    book, margin = toy_book()
    margin[0] = np.nan
    r = stress_book(book.exposure, book.cash, margin, SCEN, book.account_ids, book.group)
    assert (r.uncovered[0] == 0).all()
    # without a1: down 14k (G2) + 0, up 15k (G1 = a2) + 4k (G3), hedges break 8k + 5k -> Cover-2 = 19k (up)
    c2, s2, g2 = r.cover(2)
    assert c2 == pytest.approx(19_000) and s2 == "up" and g2 == ("G1", "G3")


def test_reverse_stress_threshold_by_hand():
    book, margin = toy_book()
    # all assets fall x: G1 = a1 (100k x - 10k)+, G2 = a3 (80k x - 8k)+ (a2, a4 gain):
    # cover2 = 180k x - 18k > 10k  <=>  x > 28/180
    r = reverse_stress(book.exposure, margin, book.group, 10_000.0, measure="cover2", tol=1e-9)
    assert r.move == pytest.approx(28 / 180, abs=1e-8)
    # all assets rise x: a2 (50k x - 5k)+ and a4 (40k x - 4k)+ -> 90k x - 9k > 10k <=> x > 19/90
    r = reverse_stress(book.exposure, margin, book.group, 10_000.0, direction=np.ones(2), bound=3.0, tol=1e-9)
    assert r.move == pytest.approx(19 / 90, abs=1e-8)
    # cover1 (largest group only): 100k x - 10k > 10k <=> x > 0.2
    r = reverse_stress(book.exposure, margin, book.group, 10_000.0, measure="cover1", tol=1e-9)
    assert r.move == pytest.approx(0.2, abs=1e-8)
    # resources no fall can exhaust
    r = reverse_stress(book.exposure, margin, book.group, 1e9)
    assert r.move is None and r.value_at_bound == pytest.approx(90_000 + 72_000)
    with pytest.raises(ValueError, match="reverse_measure"):
        reverse_stress(book.exposure, margin, book.group, 1.0, measure="cover3")


books = st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.floats(-1e5, 1e5), min_size=3, max_size=3), min_size=n, max_size=n),
    st.lists(st.floats(0, 2e4), min_size=n, max_size=n),
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
))


@settings(max_examples=60, deadline=None)
@given(books, st.floats(0, 5e4), st.sampled_from(["cover1", "cover2", "total"]))
def test_reverse_stress_is_the_smallest_move_and_the_measure_is_monotone(b, resources, measure):
    x, m, g = np.array(b[0]), np.array(b[1]), tuple(f"g{k}" for k in b[2])
    tol = 1e-7
    r = reverse_stress(x, m, g, resources, measure=measure, tol=tol)

    def f(s: float) -> float:
        return reverse_stress(x, m, g, 0.0, measure=measure, bound=max(s, 1e-300)).value_at_bound

    grid = np.linspace(0, 1, 21)
    vals = [f(s) for s in grid]
    assert all(b2 >= b1 - 1e-9 * (1 + abs(b1)) for b1, b2 in itertools.pairwise(vals))
    if r.move is None:
        assert f(1.0) <= resources
    else:
        assert f(r.move) > resources
        assert f(max(r.move - 2 * tol, 0.0)) <= resources + 1e-6


@settings(max_examples=60, deadline=None)
@given(books, st.floats(0.1, 10), st.floats(-0.9, 2.0), st.floats(-0.9, 2.0))
def test_loss_beyond_margin_is_never_negative_and_scales_with_the_book(b, k, m1, m2):
    x, m, g = np.array(b[0]), np.array(b[1]), tuple(f"g{i}" for i in b[2])
    scen = ScenarioSet(("A", "B", "C"), (Scenario("s", "user", {"A": m1, "B": m2}, default=-0.5),
                                         Scenario("adv", "user", default=abs(m1), mode="adverse")))
    cash = np.zeros(len(m))
    r = stress_book(x, cash, m, scen, tuple(map(str, range(len(m)))), g)
    rk = stress_book(k * x, cash, k * m, scen, tuple(map(str, range(len(m)))), g)
    assert (r.uncovered >= 0).all()
    np.testing.assert_allclose(rk.uncovered, k * r.uncovered, rtol=1e-9, atol=1e-6)
    # loss beyond margin never exceeds the stressed loss; adverse is the worst sign pattern
    assert (r.uncovered <= np.maximum(r.loss, 0) + 1e-9).all()
    adverse_bound = np.abs(x) @ np.abs(scen.moves[1])
    np.testing.assert_allclose(r.loss[:, 1], adverse_bound)


def test_losses_are_an_independent_sum_and_cash_moves_only_when_positive():
    x = np.array([[1_000.0, -2_000.0]])
    scen = ScenarioSet(ASSETS, (Scenario("s", "user", {"BTC": -0.1, "ETH": 0.05}, cash=-0.5),))
    loss = scenario_losses(x, np.array([-400.0]), scen)
    assert loss[0, 0] == pytest.approx(1_000 * 0.1 + 2_000 * 0.05)  # the loan (negative cash) stays at par
    loss = scenario_losses(x, np.array([400.0]), scen)
    assert loss[0, 0] == pytest.approx(200 + 200)


def test_top_n_sum_ties_and_small_counts():
    v = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 0.0]])
    tot, idx = top_n_sum(v, 2)
    np.testing.assert_allclose(tot, [5.0, 10.0])
    assert idx[:, 0].tolist() == [1, 2]
    tot, idx = top_n_sum(v[:1], 2)
    np.testing.assert_allclose(tot, [1.0, 5.0])
    assert idx.shape == (1, 2)
    c1, c2 = top2(v)
    np.testing.assert_allclose(c1, [3.0, 5.0])
    np.testing.assert_allclose(c2, [5.0, 10.0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=30), st.integers(0, 2**31))
def test_group_index_sums_equal_the_reference_and_top2_a_full_sort(codes, seed):
    vals = np.random.default_rng(seed).uniform(0, 10, (len(codes), 4))
    groups = tuple(f"g{c}" for c in codes)
    gi = GroupIndex(groups)
    c, labels = group_codes(groups)
    np.testing.assert_allclose(gi.sum(vals), group_sum(vals, c, len(labels)))
    assert list(labels) == list(dict.fromkeys(groups))
    g = gi.sum(vals)
    srt = -np.sort(-g, axis=0)
    c1, c2 = top2(g)
    np.testing.assert_allclose(c1, srt[0])
    np.testing.assert_allclose(c2, srt[:2].sum(axis=0))
