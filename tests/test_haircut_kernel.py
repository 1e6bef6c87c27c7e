"""The numba haircut kernel against the retained array reference and an independent loop; Lipschitz bound."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.margin import FixedHaircut

ASSETS = ("BTC", "ETH", "SOL", "DOGE")
TIERS = {"default": [[0, 0.05, 0.03], [100_000, 0.10, 0.05], [500_000, 0.20, 0.10]]}
CTIERS = {"ETH": [[0, 0.10], [50_000, 0.25]]}
MODELS = {
    "dydx": dict(imf=0.05, mmf=0.03, haircut=0.10),
    "conservative": dict(imf=0.10, mmf=0.05, haircut=0.15),
    "tiered": dict(imf=0.05, mmf=0.03, haircut=0.10, position_tiers=TIERS),
    "both_tiers_hedge": dict(imf=0.05, mmf=0.03, haircut=0.10, maintenance_haircut=0.08,
                             position_tiers=TIERS, collateral_tiers=CTIERS, hedge_rate=0.02),
    "no_netting": dict(imf=0.05, mmf=0.03, haircut=0.10, netting=False),
}


def _fitted(name: str):
    panel = make_panel(np.ones((3, len(ASSETS))) * 10.0, ASSETS)
    return FixedHaircut(**MODELS[name]).fit(panel)


def _book(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A = len(ASSETS)
    coll = np.where(rng.random((n, A)) < 0.4, rng.lognormal(10, 1.5, (n, A)), 0.0)
    pos = np.where(rng.random((n, A)) < 0.5, rng.normal(0, 1, (n, A)) * rng.lognormal(11, 1.5, (n, A)), 0.0)
    pos[: n // 4, 0] = -coll[: n // 4, 0] * rng.uniform(0, 2, n // 4)  # short perps against collateral
    return coll, pos, rng.random(n) < 0.3


def _independent(params: dict, c: float, p: float, netting: bool) -> tuple[float, float]:
    """One asset's (IM, MM) charge, written from the formulas in the module docstring."""
    def brackets(x: float, rows: list, col: int) -> float:
        total = 0.0
        for k, row in enumerate(rows):
            hi = rows[k + 1][0] if k + 1 < len(rows) else float("inf")
            total += row[col] * min(max(x - row[0], 0.0), hi - row[0])
        return total

    hedged = min(c, max(-p, 0.0)) if netting and params.get("netting", True) else 0.0
    cc, nn = c - hedged, abs(p) - hedged
    ct = params.get("collateral_tiers", {})
    h, hmm = params["haircut"], params.get("maintenance_haircut", params["haircut"])
    return cc, nn, hedged, ct, h, hmm, brackets  # type: ignore[return-value]


def _independent_account(params: dict, coll: np.ndarray, pos: np.ndarray, netting: bool) -> tuple[float, float]:
    im = mm = 0.0
    for a, asset in enumerate(ASSETS):
        cc, nn, hedged, ct, h, hmm, br = _independent(params, float(coll[a]), float(pos[a]), netting)
        ctab = ct.get(asset, ct.get("default"))
        c_im, c_mm = (cc * h, cc * hmm) if ctab is None else (br(cc, ctab, 1), br(cc, ctab, 1))
        ptab = params.get("position_tiers", {}).get("default")
        p_im, p_mm = (nn * params["imf"], nn * params["mmf"]) if ptab is None else (br(nn, ptab, 1), br(nn, ptab, 2))
        hc = params.get("hedge_rate", 0.0) * hedged
        im += c_im + p_im + hc
        mm += c_mm + p_mm + hc
    return im, mm


@pytest.mark.parametrize("name", sorted(MODELS))
def test_kernel_equals_reference_and_independent(name):
    f = _fitted(name)
    coll, pos, iso = _book(np.random.default_rng(3), 400)
    nets = f.model.netting
    for netting in (nets, False):
        new = f._charges(coll, pos, netting)
        ref = f._charges_reference(coll, pos, netting)
        np.testing.assert_allclose(new.initial, ref.initial, rtol=1e-12, atol=0)
        np.testing.assert_allclose(new.maintenance, ref.maintenance, rtol=1e-12, atol=0)
        if not (f.coll_tiers or f.pos_tiers):  # flat rates: the same products summed in numpy's order
            assert np.array_equal(new.initial, ref.initial) and np.array_equal(new.maintenance, ref.maintenance)
        for i in range(0, 400, 37):
            im, mm = _independent_account(MODELS[name], coll[i], pos[i], netting)
            assert new.initial[i] == pytest.approx(im, rel=1e-12)
            assert new.maintenance[i] == pytest.approx(mm, rel=1e-12)
    # account_requirement in one pass == cross rows from requirement, isolated rows from isolated_requirement
    acc = f.account_requirement(0, coll, pos, iso)
    cross = f._charges_reference(coll, pos, nets)
    alone = f._charges_reference(coll, pos, False)
    np.testing.assert_allclose(acc.initial, np.where(iso, alone.initial, cross.initial), rtol=1e-12, atol=0)
    np.testing.assert_allclose(acc.maintenance, np.where(iso, alone.maintenance, cross.maintenance), rtol=1e-12, atol=0)


def test_nan_amount_poisons_only_its_account():
    f = _fitted("tiered")
    coll = np.array([[1.0, np.nan, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    pos = np.array([[0.0, 0.0, -5.0, 0.0], [0.0, 0.0, np.nan, 0.0]])
    for netting in (True, False):
        new, ref = f._charges(coll, pos, netting), f._charges_reference(coll, pos, netting)
        assert np.isnan(new.initial).all() and np.isnan(ref.initial).all()
    ok = f._charges(np.ones((1, 4)), np.zeros((1, 4)), True)
    assert np.isfinite(ok.initial).all()


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(MODELS)), seed=st.integers(0, 2**31 - 1), k=st.floats(0.0, 50.0))
def test_invariants(name, seed, k):
    """Never negative; homogeneous of degree 1 for flat rates; MM <= IM."""
    f = _fitted(name)
    coll, pos, iso = _book(np.random.default_rng(seed), 30)
    req = f.account_requirement(0, coll, pos, iso)
    assert (req.initial >= 0).all() and (req.maintenance >= 0).all()
    assert (req.maintenance <= req.initial * (1 + 1e-12)).all()
    if f.homogeneous:
        scaled = f.account_requirement(0, k * coll, k * pos, iso)
        np.testing.assert_allclose(scaled.initial, k * req.initial, rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(MODELS)), seed=st.integers(0, 2**31 - 1))
def test_maintenance_lipschitz_bound(name, seed):
    """|MM(c', p') - MM(c, p)| <= sum_a L_a (|dc_a| + |dp_a|), cross and isolated."""
    f = _fitted(name)
    rng = np.random.default_rng(seed)
    coll, pos, iso = _book(rng, 40)
    c2 = np.maximum(coll * rng.uniform(0.0, 2.0, coll.shape), 0.0)
    p2 = pos * rng.uniform(-1.0, 2.0, pos.shape) + rng.normal(0, 1e4, pos.shape) * (rng.random(pos.shape) < 0.2)
    L = f.maintenance_lipschitz(0)
    assert L.shape == (len(ASSETS),) and (L >= 0).all() and (L <= 1).all()
    m1 = f.account_requirement(0, coll, pos, iso).maintenance
    m2 = f.account_requirement(0, c2, p2, iso).maintenance
    bound = ((np.abs(c2 - coll) + np.abs(p2 - pos)) * L).sum(axis=1)
    assert (np.abs(m2 - m1) <= bound * (1 + 1e-9) + 1e-6).all()
