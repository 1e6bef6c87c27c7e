"""The registry and the generic parts of the MarginModel contract."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from conftest import make_panel

from riskmodels.margin import FittedMargin, MarginModel, Requirement, available, get, register
from riskmodels.portfolio import Book


class _Fitted(FittedMargin):
    """Requirement = rate_a x |exposure_a| with rate NaN for the last asset (not yet priced)."""

    def requirement(self, t, collateral, positions):
        rate = np.array([0.1, 0.2, np.nan])
        x = np.abs(np.atleast_2d(collateral)) + np.abs(np.atleast_2d(positions))
        held = x != 0
        req = np.where(held, x * rate, 0.0).sum(axis=1)
        req[(held & np.isnan(rate)).any(axis=1)] = np.nan
        return Requirement(req, 0.5 * req)


class Toy(MarginModel):
    name: ClassVar[str] = "toy_for_tests"

    def fit(self, panel):
        return _Fitted(self, panel)


def test_register_get_and_unknown_names():
    register(Toy)
    assert "toy_for_tests" in available()
    assert isinstance(get("toy_for_tests"), Toy)
    with pytest.raises(KeyError, match=r"valid names: .*fixed_haircut"):
        get("no_such_model")
    with pytest.raises(TypeError, match="valid parameters"):
        get("fixed_haircut", imff=0.1)

    class Other(Toy):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register(Other, name="fixed_haircut")
    with pytest.raises(TypeError):
        register(int)  # type: ignore[arg-type]


def test_isolated_requirement_ignores_assets_not_held():
    """Homogeneous unit trick: 10k BTC collateral (10%) + 5k ETH short (20%) = 1,000 + 1,000;
    the NaN rate of the third asset must not leak into accounts that do not hold it."""
    panel = make_panel(np.ones((3, 3)), ("BTC", "ETH", "NEW"))
    f = Toy().fit(panel)
    coll = np.array([[10_000.0, 0, 0], [0, 0, 1.0]])
    pos = np.array([[0.0, -5_000.0, 0], [0, 0, 0]])
    iso = f.isolated_requirement(0, coll, pos)
    assert iso.initial[0] == pytest.approx(2_000.0)
    assert np.isnan(iso.initial[1])


def test_generic_path_matches_requirement_per_date():
    panel = make_panel(np.ones((4, 3)), ("BTC", "ETH", "NEW"))
    book = Book(panel.assets, [[1_000.0, 0, 0]], [[0, 2_000.0, 0]], isolated=[True])
    path = Toy().fit(panel).path(book)
    np.testing.assert_allclose(path.initial[:, 0], 100.0 + 400.0)
    np.testing.assert_allclose(path.maintenance[:, 0], 250.0)
