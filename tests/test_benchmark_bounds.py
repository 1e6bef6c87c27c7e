"""The benchmark's yardsticks: the reasonable reference's vectorisation, the stage bounds, the JSON schema.

* The reasonable reference (``benchmarks/reference/vectorised.py``) prices
  ``(P, A)`` books at once; each requirement must equal the loop reference's
  one-account requirement (``benchmarks/reference/margins.py``, a plain
  transcription of the documented formulas) on random books, cross and
  isolated (hypothesis). Its GARCH filter (``scipy.signal.lfilter``) and
  windowed correlations (cumulative sums) must equal the loop reference's
  Python recursion and per-date window sums.
* ``benchmarks/bounds.stage_bounds``: the terms checked against the counts
  worked out by hand in benchmarks/README.md, at round rates.
* ``benchmarks/standard.py --json``: the issue-23 keys, exactly.

No timing is asserted here (benchmarks/ measures speed).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._standard_doc import summarise
from benchmarks.bounds import Workload, stage_bounds
from benchmarks.reference.margins import GarchRef, HaircutRef, HistoricalRef, SpanRef
from benchmarks.reference.vectorised import VGarch, VHaircut, VHistorical, VSpan
from tests.conftest import random_walk_panel

PANEL = random_walk_panel(T=760, A=3, seed=5, vol=0.04)


@pytest.fixture(scope="module")
def fitted() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "haircut": (VHaircut().fit(PANEL), HaircutRef),
            "span": (VSpan().fit(PANEL), SpanRef),
            "hs": (VHistorical(window=250).fit(PANEL), HistoricalRef),
            "garch": (VGarch(window_length=400, refit_every=40).fit(PANEL), GarchRef),
        }


def _book(seed: int, P: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = len(PANEL.assets)
    held = rng.random((P, A)) < 0.6
    coll = np.where(held & (rng.random((P, A)) < 0.5), rng.uniform(0, 5e4, (P, A)), 0.0)
    pos = np.where(held, rng.uniform(-8e4, 8e4, (P, A)), 0.0)
    pos[0] = 0.0  # a collateral-only account
    coll[1], pos[1, 0] = 0.0, 0.0  # perps only
    coll[2, 0], pos[2, 0] = 3e4, -5e4  # spot hedging a short perp on the same asset
    return coll, pos, rng.random(P) < 0.4


@pytest.mark.parametrize("model", ["haircut", "span", "hs", "garch"])
@given(seed=st.integers(0, 2**31 - 1), t=st.integers(560, 759))
@settings(max_examples=25, deadline=None)
def test_vectorised_requirement_equals_one_account_loop(fitted: dict, model: str, seed: int, t: int) -> None:
    vec, loop_cls = fitted[model]
    coll, pos, iso = _book(seed)
    im, mm = vec.requirement(t, coll, pos, iso)
    for p in range(coll.shape[0]):
        im_p, mm_p = loop_cls.requirement(vec, t, coll[p], pos[p], bool(iso[p]))
        np.testing.assert_allclose([im[p], mm[p]], [im_p, mm_p], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("model", ["haircut", "span", "hs", "garch"])
def test_vectorised_path_equals_requirement_per_date(fitted: dict, model: str) -> None:
    """The one-product constant-notional path equals the batch requirement date by date."""
    vec, _ = fitted[model]
    coll, pos, iso = _book(11, P=30)
    elig = np.zeros((PANEL.n_dates, coll.shape[0]), dtype=bool)
    elig[560:] = True
    im, mm = vec.path(coll, pos, iso, elig)
    assert np.isnan(im[:560]).all()
    for t in (560, 640, 759):
        want_im, want_mm = vec.requirement(t, coll, pos, iso)
        np.testing.assert_allclose(im[t], want_im, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(mm[t], want_mm, rtol=1e-12, atol=1e-9)


def test_vectorised_garch_filter_and_correlation_equal_the_loop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vec = VGarch(window_length=400, refit_every=40).fit(PANEL)
        loop = GarchRef(window_length=400, refit_every=40).fit(PANEL)
    assert np.isfinite(loop.varh).sum() > 1000
    np.testing.assert_allclose(vec.var1, loop.var1, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(vec.varh, loop.varh, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(vec.corr, loop.corr, rtol=1e-9, atol=1e-12, equal_nan=True)


RATES = {"F_flops": 1e10, "E_ops": 1e9, "B_bytes": 1e10, "L_step_s": 1e-9, "X_logs": 1e9}


def test_stage_bounds_terms_by_hand() -> None:
    w = Workload(T=1000, Te=500, A=10, P=100, W=200, n_fits=50, n_obs=400, n_evals=10, intraday_share=1.0)
    b = stage_bounds(RATES, w)
    hs = b["simulation"]["models"]["hs"]["terms"]
    # two requirements per date, each a (100 x 10) @ (10 x 200) product: 2 x 500 x 2 x 100 x 10 x 200 flops
    assert hs["gemm"] == pytest.approx(2 * 500 * 400_000 / 1e10)
    assert hs["select"] == pytest.approx(2 * 500 * 100 * 200 / 1e9)
    assert hs["book"] == pytest.approx(24 * 500 * 100 * 10 / 1e9)
    g = b["fit"]["models"]["garch"]["terms"]
    assert g["recursion"] == pytest.approx(50 * 10 * 400 * 1e-9)
    assert g["likelihood"] == pytest.approx(50 * 10 * 400 * (2 / 1e9 + 30 / 1e9))
    # SPAN path: two (Te x A) @ (A x P) products + IM and MM written in float32
    sp = b["path"]["models"]["span"]["terms"]
    assert sp["gemm"] == pytest.approx(4 * 500 * 10 * 100 / 1e10)
    assert sp["write"] == pytest.approx(2 * 500 * 100 * 4 / 1e10)
    # a stage's bound is the sum of its models (and the shared loss for coverage)
    cov = b["coverage"]
    assert cov["bound_s"] == pytest.approx(sum(m["bound_s"] for m in cov["models"].values())
                                           + cov["shared_loss"]["bound_s"])
    # the screen share lowers only the intraday half of HS VaR's requirements
    half = stage_bounds(RATES, Workload(T=1000, Te=500, A=10, P=100, W=200, intraday_share=0.0))
    assert half["simulation"]["models"]["hs"]["terms"]["gemm"] == pytest.approx(hs["gemm"] / 2)
    assert half["simulation"]["models"]["garch"] == b["simulation"]["models"]["garch"]


def test_standard_json_has_the_issue_keys() -> None:
    stage = {"stages": {s: 1.0 for s in ("load", "fit", "path", "coverage", "simulation", "statistics")},
             "cpu": {s: 1.0 for s in ("load", "fit", "path", "coverage", "simulation", "statistics")},
             "per_model": {}, "liquidations": {}}
    bounds = {"stages": stage_bounds(RATES, Workload())}
    eng = {"total": 10.0, "cpu": 9.0, "liquidations": {"a": 1}, "coverage": {"a": [5, 1]}}
    rea = {"total": 30.0, "cpu": 29.0, "liquidations": {"a": 1}, "coverage": {"a": [5, 1]}}
    runs = {"engine_1": [eng] * 3, "reasonable_1": [rea] * 3, "engine_2": [eng], "reasonable_2": [rea]}
    args = argparse.Namespace(accounts=1000, repeat=3, n_jobs=2, skip_parallel=False)
    scale = {"accounts": 10000, "total": 100.0, "peak_rss": 2 * 1024**3, "n_jobs": 2, "cpu": 150.0}
    doc = summarise(args, {"cpu": "x"}, stage, runs, scale, None, bounds, [[0.0, 1.0]])
    assert list(doc)[:9] == ["accounts", "total_s", "reasonable_s", "ratio_vs_reasonable", "stages", "scale",
                             "machine", "load", "serial"]
    assert doc["ratio_vs_reasonable"] == pytest.approx(3.0)
    assert set(doc["stages"]["simulation"]) == {"s", "bound_s"}
    assert doc["scale"] == {"accounts": 10000, "total_s": 100.0, "peak_gib": 2.0, "n_jobs": 2, "cpu_s": 150.0}
    assert doc["parallel"]["ratio_vs_reasonable"] == pytest.approx(3.0)
    assert doc["loop_reference"] is None
