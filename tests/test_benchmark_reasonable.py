"""Parity of riskmodels with the reasonable reference at full scale (issue 23).

The reasonable reference (``benchmarks/reference/vectorised.py`` and
``vsim.py``: numpy over accounts, pandas rolling quantile, arch on the 20-day
warm refit schedule, the declared MM rule, no numba) is the yardstick of
``benchmarks/standard.py``'s ``ratio_vs_reasonable``; a speed ratio means
something only if both compute the same thing. On the standard workload
itself (the default config's clean 18-asset universe, 2018-01-01 to the last
date, 1,000 seeded accounts, the four standard models, the default
liquidation policy with ``maintenance_ratio = 1/1.1``) both must give:

* haircut, SPAN grid, HS VaR: identical coverage observation and exception
  counts and the identical list of liquidation events (account, date,
  trigger), amounts equal to 1e-9 relative (summation order only);
* GARCH-t (arch's own optimiser in the reference, riskmodels' SLSQP driver
  with the analytic gradient, both stopping at ftol 1e-6): margin paths
  within 1e-3 relative, coverage counts identical, liquidation events
  identical but for at most two accounts whose first differing event is a
  near tie (equity within 1e-3 of the maintenance: with arch 8.0.0 one
  account of 1,000 flips, and then its later history differs),
  amounts within 1e-3 of the larger of the amount and the event's perp
  notional (an equity near zero is a difference of large numbers: measured
  7 of 8,551 equities differ by up to 0.44 USD, 0.8% of themselves).

The whole history is used (the full panel for the fit, 2,608 evaluation
dates); the test takes about 105 s of CPU, 1.2 GB (the reference's ~2,000 arch
fits dominate), hence ``slow``. Speed is never tested here.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reference.vectorised import VGarch, VHaircut, VHistorical, VSpan
from benchmarks.reference.vsim import run_model
from benchmarks.standard import STANDARD_LABELS, _setup
from riskmodels.backtest.engine import build_models, run_models
from riskmodels.config import liquidation_policy

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

PATH_RTOL = {"haircut": 1.2e-7, "span": 1.2e-7, "hs": 1.2e-7, "garch": 1e-3}  # float32 storage: 2**-23
EVENT_RTOL = {"haircut": 1e-9, "span": 1e-9, "hs": 1e-9, "garch": 1e-3}
FIELDS = ("equity", "maintenance", "notional", "slippage", "penalty", "bad_debt", "returned")
KEYS = dict(zip(("haircut", "span", "hs", "garch"), STANDARD_LABELS, strict=True))


@pytest.fixture(scope="module")
def both(data_root: Path) -> dict:
    panel, book, cfg, start, end, _ = _setup(str(data_root), 1000)
    bt = cfg["backtest"]
    models = build_models(cfg)
    pol = liquidation_policy(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_models(panel, book, models, mpor=int(bt["mpor"]), min_history=int(bt["min_history"]),
                         start=start, end=end, policy=pol, config=cfg, netting=False, n_jobs=1)
        params = {m["label"]: m.get("params", {}) for m in cfg["models"]}
        hc, sp, hs, ga = (params[k] for k in STANDARD_LABELS)
        refs = {
            "haircut": VHaircut(haircut=hc["haircut"], imf=hc["imf"], mmf=hc["mmf"]),
            "span": VSpan(quantile=sp["psr_quantile"], horizon=sp["psr_horizon"], lookback=sp["psr_lookback"],
                          floor=sp["psr_floor"], im_multiplier=sp["im_multiplier"]),
            "hs": VHistorical(confidence=hs["confidence"], horizon=hs["horizon"], window=hs["window"]),
            "garch": VGarch(horizon=ga["horizon"], refit_every=ga["refit_every"]),
        }
        need = max([int(bt["min_history"]), *(m.min_history for m in models)])
        b = book.align(panel.assets)
        policy = {"cushion": pol.cushion, "slippage": pol.slippage, "penalty": pol.penalty,
                  "reentry_days": pol.reentry_days}
        out = {k: run_model(ref, panel, b.collateral, b.positions, b.isolated, start, end, need=need,
                            mpor=int(bt["mpor"]), ratio=pol.maintenance_ratio, policy=policy)
               for k, ref in refs.items()}
    return {"rm": res, "ref": out}


@pytest.mark.parametrize("model", list(KEYS))
def test_full_scale_margin_paths_agree(both: dict, model: str) -> None:
    rm_res = both["rm"]
    a = rm_res.results[KEYS[model]].path.initial.astype(np.float64)
    b = both["ref"][model]["initial"][rm_res.start : rm_res.end + 1]
    assert a.shape == (2608, 1000)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.isfinite(a).sum() > 1_000_000  # not vacuous
    np.testing.assert_allclose(a, b, rtol=PATH_RTOL[model], atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("model", list(KEYS))
def test_full_scale_coverage_counts_identical(both: dict, model: str) -> None:
    cov = both["rm"].results[KEYS[model]].coverage
    ref = both["ref"][model]
    assert cov.n_exceptions > 0
    assert (cov.n_obs, cov.n_exceptions) == (ref["n_obs"], ref["n_exceptions"])


def _near_tie_accounts(ev, ref, mine, theirs):  # type: ignore[no-untyped-def]
    """Accounts whose event lists differ, each checked to first differ at a near tie (|E - MM| <= 1e-3 scale)."""
    by: dict[int, tuple[list, list]] = {}
    for i, k in enumerate(mine):
        by.setdefault(k[0], ([], []))[0].append(i)
    for i, k in enumerate(theirs):
        by.setdefault(k[0], ([], []))[1].append(i)
    near = []
    for acct, (im, it) in by.items():
        a, b = [mine[i] for i in im], [theirs[i] for i in it]
        if a == b:
            continue
        j = next(j for j in range(max(len(a), len(b))) if j >= len(a) or j >= len(b) or a[j] != b[j])
        side, idx = (ev, im[j]) if j < len(a) and (j >= len(b) or a[j] < b[j]) else (ref, it[j])
        e, m, n = (float(side[f][idx]) for f in ("equity", "maintenance", "notional"))
        assert abs(e - m) <= 1e-3 * max(abs(m), n), (acct, a[j:j + 2], b[j:j + 2], e, m, n)
        near.append(acct)
    keep_m = np.array([k[0] not in near for k in mine], dtype=bool)
    keep_t = np.array([k[0] not in near for k in theirs], dtype=bool)
    return near, keep_m, keep_t


@pytest.mark.parametrize("model", list(KEYS))
def test_full_scale_liquidations_identical(both: dict, model: str) -> None:
    ev = both["rm"].results[KEYS[model]].simulation.events
    ref = both["ref"][model]["simulation"].events
    assert len(ev) > 1000
    mine = list(zip(ev["account"].tolist(), ev["t"].tolist(), ev["trigger"].tolist(), strict=True))
    theirs = list(zip(ref["account"].astype(int).tolist(), ref["t"].astype(int).tolist(),
                      ref["trigger"].astype(int).tolist(), strict=True))
    if model == "garch":
        # arch's optimiser and riskmodels' stop at ftol 1e-6 with margins within 1e-3 of each other, so an
        # intraday check whose equity is that close to the maintenance can go either way (seen with arch
        # 8.0.0: one account of 1,000, then its own later history): such accounts are set aside, and only
        # if their first differing event is such a near tie; every other account's events are identical
        near, keep_m, keep_t = _near_tie_accounts(ev, ref, mine, theirs)
        assert len(near) <= 2, near
        ev = ev[keep_m]
        ref = ref[keep_t] if isinstance(ref, np.ndarray) else {k: np.asarray(v)[keep_t] for k, v in dict(ref).items()}
        mine = [k for k, ok in zip(mine, keep_m, strict=True) if ok]
        theirs = [k for k, ok in zip(theirs, keep_t, strict=True) if ok]
    assert mine == theirs
    # amounts relative to the account's size: an equity is a difference of large numbers (cash set at
    # opening from IM minus the collateral), so a 1e-5 difference in GARCH's IM moves a near-zero equity
    # by a larger share of itself; the scale is the event's gross perp notional (or the amount itself)
    scale = np.maximum(np.abs(np.asarray(ref["notional"], dtype=np.float64)), 1.0)
    for f in FIELDS:
        a, b = np.asarray(ev[f], dtype=np.float64), np.asarray(ref[f], dtype=np.float64)
        assert np.array_equal(np.isnan(a), np.isnan(b)), f
        ok = np.isfinite(b)
        err = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), scale[ok])
        assert err.max(initial=0.0) <= EVENT_RTOL[model], (f, float(err.max()))
