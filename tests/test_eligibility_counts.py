"""Eligibility and missing-price counts as float64 products equal their definitions (riskmodels.margin.base)."""

from __future__ import annotations

import numpy as np
from conftest import make_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest.coverage import realised_loss
from riskmodels.margin.base import account_eligibility
from riskmodels.portfolio import Book


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(1, 60), A=st.integers(1, 40), P=st.integers(1, 30),
       p_ok=st.floats(0.0, 1.0), p_held=st.floats(0.0, 1.0))
def test_account_eligibility_is_every_held_asset_ok(seed, T, A, P, p_ok, p_held) -> None:
    rng = np.random.default_rng(seed)
    ok = rng.random((T, A)) < p_ok
    coll = np.where(rng.random((P, A)) < p_held, 1.0, 0.0)
    pos = np.where(rng.random((P, A)) < p_held / 2, -2.0, 0.0)
    book = Book(tuple(f"A{a}" for a in range(A)), coll, pos)
    held = (coll != 0) | (pos != 0)
    # the definition: account p is eligible at t iff no held asset is not ok
    expected = ~np.any(~ok[:, None, :] & held[None, :, :], axis=2)
    np.testing.assert_array_equal(account_eligibility(ok, book), expected)


def test_realised_loss_is_nan_exactly_where_a_held_asset_has_no_forward_price() -> None:
    rng = np.random.default_rng(5)
    close = 100.0 * np.exp(np.cumsum(0.02 * rng.standard_normal((80, 4)), axis=0))
    close[10:20, 1] = np.nan
    close[50:, 3] = np.nan
    pan = make_panel(close)
    coll = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 2.0], [1.0, 1.0, 1.0, 0]]) * 1e4
    book = Book(pan.assets, coll, np.zeros_like(coll))
    loss = realised_loss(pan, book, 2)
    fwd = pan.forward_returns(2, kind="simple")
    held = coll != 0
    missing = np.any(~np.isfinite(fwd)[:, None, :] & held[None, :, :], axis=2)
    np.testing.assert_array_equal(np.isnan(loss), missing)
    # where priced: minus the sum of held exposures times the forward returns (an fsum per cell)
    import math

    for t, p in zip(*np.nonzero(~missing), strict=True):
        want = -math.fsum(float(fwd[t, a] * coll[p, a]) for a in range(4) if held[p, a])
        assert abs(loss[t, p] - want) <= 1e-9 * max(1.0, abs(want))
