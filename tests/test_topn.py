"""Top-N concentration shares (riskmodels.backtest.topn) against a pandas recount of the events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_panel

from riskmodels.backtest.engine import run_models
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.backtest.topn import top_accounts, top_concentration, write_top_concentration
from riskmodels.margin import FixedHaircut
from riskmodels.portfolio import generate_book


@pytest.fixture(scope="module")
def result():
    panel = random_walk_panel(250, 3, seed=4, vol=0.06)
    book = generate_book(panel.assets, 120, seed=3, collateral_assets=["A0"])
    models = [FixedHaircut(imf=0.03, mmf=0.02, haircut=0.05, label="thin"), FixedHaircut(imf=0.1, mmf=0.05, label="thick")]
    return run_models(panel, book, models, start=20, min_history=10, policy=LiquidationPolicy(slippage=0.02, penalty=0.0),
                      netting=False)


def test_top_accounts_picks_the_largest_gross_notional():
    g = np.array([5.0, 1.0, 9.0, 9.0, 3.0])
    assert top_accounts(g, 2).tolist() == [2, 3]  # tie broken by account order
    assert top_accounts(g, 0.01).tolist() == [2]  # 1% of 5 accounts rounds up to 1
    assert top_accounts(g, 30).tolist() == [2, 3, 0, 4, 1]  # capped at the book
    with pytest.raises(ValueError, match="top group size"):
        top_accounts(g, 0)


def test_shares_equal_an_independent_recount(result, tmp_path):
    tab = top_concentration(result)
    assert list(tab["group"].unique()) == ["top 1%", "top 10", "top 30"]
    ev = result.events()
    ev = ev[ev["trigger"] != "delisted"]
    for name, r in result.results.items():
        ids = np.asarray(r.simulation.account_ids)
        size = pd.Series(r.gross_notional, index=ids)
        for label, n in (("top 1%", 2), ("top 10", 10), ("top 30", 30)):
            top = set(size.sort_values(ascending=False, kind="stable").index[:n])
            row = tab[(tab["model"] == name) & (tab["group"] == label)].iloc[0]
            mine = ev[(ev["model"] == name)]
            in_top = mine["account"].isin(top)
            assert row["accounts"] == n
            assert row["share_liquidations"] == pytest.approx(in_top.mean())
            assert row["share_liquidated_notional"] == pytest.approx(mine.loc[in_top, "notional"].sum() / mine["notional"].sum())
            assert row["share_bad_debt"] == pytest.approx(mine.loc[in_top, "bad_debt"].sum() / mine["bad_debt"].sum())
            m = r.path.frame("initial").where(r.path.frame("initial").notna(), 0.0).sum()
            assert row["share_margin"] == pytest.approx(m[list(top)].sum() / m.sum(), rel=1e-6)
            assert row["share_notional"] == pytest.approx(size[list(top)].sum() / size.sum())
    out = write_top_concentration(tab, tmp_path / "concentration.csv")
    back = pd.read_csv(out)
    assert list(back.columns) == list(tab.columns) and len(back) == 6


def test_summary_metrics_carry_the_top10_shares(result):
    frame = result.metrics_frame("concentration")
    tab = top_concentration(result)
    top10 = tab[tab["group"] == "top 10"].set_index("model")
    np.testing.assert_allclose(frame["top10_margin_share"], top10["share_margin"])
    np.testing.assert_allclose(frame["top10_bad_debt_share"], top10["share_bad_debt"])


def test_table_rows_equal_top_shares_per_group_exactly(result):
    # top_concentration sums each model's margin once for all groups: the same floats as top_shares per group
    from riskmodels.backtest.topn import TOP_GROUPS, margin_per_account, top_shares

    tab = top_concentration(result)
    for name, r in result.results.items():
        im = np.asarray(r.path.initial, dtype=np.float64)
        ref = np.array([sum(im[t, a] for t in range(im.shape[0]) if r.path.eligible[t, a] and np.isfinite(im[t, a]))
                        for a in range(im.shape[1])])
        np.testing.assert_allclose(margin_per_account(r), ref, rtol=1e-12)
        for label, size in TOP_GROUPS:
            row = tab[(tab["model"] == name) & (tab["group"] == label)].iloc[0]
            want = top_shares(r, top_accounts(r.gross_notional, size))
            assert {k: row[k] for k in want} == want


def test_margin_per_account_is_recomputed_when_the_path_arrays_change(result):
    from dataclasses import replace

    from riskmodels.backtest.topn import margin_per_account

    r = next(iter(result.results.values()))
    first = margin_per_account(r)
    assert margin_per_account(r) is first and not first.flags.writeable
    doubled = replace(r, path=replace(r.path, initial=r.path.initial * 2))
    np.testing.assert_allclose(margin_per_account(doubled), 2 * first, rtol=1e-6)
    r2 = replace(r)
    np.testing.assert_array_equal(margin_per_account(r2), first)  # cached for r2 ...
    r2.path = replace(r.path, initial=r.path.initial * 3)  # ... until its path's arrays are others
    np.testing.assert_allclose(margin_per_account(r2), 3 * first, rtol=1e-6)
