"""The seeded option-book generator: schedules, strategies' legs, strikes, rolls, seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodels.instruments.generate import (
    STRATEGIES,
    generate_option_book,
    listed_expiries,
    strike_grid,
)
from riskmodels.instruments.vol import ProxyVol
from riskmodels.portfolio import generate_book
from tests.conftest import random_walk_panel


def test_monthly_expiries_are_last_fridays_and_weekly_are_fridays() -> None:
    m = pd.to_datetime(listed_expiries(pd.Timestamp("2021-01-01"), pd.Timestamp("2021-06-30"), "monthly"))
    assert list(m[:6].strftime("%Y-%m-%d")) == ["2021-01-29", "2021-02-26", "2021-03-26", "2021-04-30",
                                               "2021-05-28", "2021-06-25"]  # Deribit's 2021 monthlies
    w = pd.to_datetime(listed_expiries(pd.Timestamp("2021-01-01"), pd.Timestamp("2021-01-31"), "weekly"))
    assert (w.day_of_week == 4).all() and w[0] == pd.Timestamp("2021-01-01")
    with pytest.raises(ValueError, match="schedule"):
        listed_expiries(pd.Timestamp("2021-01-01"), pd.Timestamp("2021-02-01"), "daily")


def test_strike_grid() -> None:
    np.testing.assert_array_equal(strike_grid(np.array([45000.0, 3000.0, 150.0])), [500.0, 50.0, 5.0])


def _gen(mix: dict[str, float], **kw):
    panel = random_walk_panel(T=400, A=2, seed=2)
    base = generate_book(panel.assets, 40, seed=1)
    vol = ProxyVol(panel)
    return panel, generate_option_book(panel, base, vol, seed=3, start=100, end=300, mix=mix,
                                       underlyings=panel.assets, **kw)


@pytest.mark.parametrize("name,legs", [
    ("covered_call", [(True, -1)]), ("short_strangle", [(False, -1), (True, -1)]),
    ("delta_hedged_straddle", [(False, -1), (True, -1)]), ("calendar_spread", [(True, -1), (True, 1)]),
    ("put_protection", [(False, 1)]),
])
def test_each_strategy_has_its_legs(name: str, legs: list[tuple[bool, int]]) -> None:
    panel, book = _gen({name: 1.0}, roll=False)
    o = book.options
    first = o.subset(o.account == 0)
    got = sorted((bool(c), int(np.sign(q))) for c, q in zip(first.is_call, first.quantity, strict=True))
    assert got == sorted(legs)
    S = panel.close[100, first.asset[0]]
    if name in ("covered_call", "put_protection"):
        assert book.collateral[0, first.asset[0]] > 0  # the spot leg
        assert abs(first.strike[0] / S - (1.1 if name == "covered_call" else 0.9)) < 0.02
    if name == "delta_hedged_straddle":
        assert first.hedged.all()
        assert (np.abs(first.strike / S - 1) < 0.03).all()
    if name == "calendar_spread":
        near, far = sorted(first.expiry)
        assert far > near and first.strike[0] == first.strike[1]
    assert (o.trade == panel.dates.values.astype("datetime64[D]")[100]).all()


def test_rolls_chain_expiry_to_trade_and_seed_reproduces() -> None:
    _, book = _gen({"short_strangle": 1.0})
    o = book.options
    a0 = o.subset(o.account == 0)
    trades = np.unique(a0.trade)
    assert trades.size > 3
    exp = np.unique(a0.expiry)
    np.testing.assert_array_equal(trades[1:], exp[:-1])  # every roll trades at the previous expiry
    _, again = _gen({"short_strangle": 1.0})
    for f in ("account", "strike", "expiry", "quantity", "trade"):
        np.testing.assert_array_equal(getattr(o, f), getattr(again.options, f))


def test_mix_and_strategies_per_account() -> None:
    _, book = _gen(dict.fromkeys(STRATEGIES, 1.0), roll=False, strategies_per_account=(5, 5))
    per = np.bincount(book.options.account, minlength=book.n_accounts)
    assert per.max() <= 10 and per.min() >= 5
    with pytest.raises(ValueError, match="unknown"):
        _gen({"iron_condor": 1.0})
