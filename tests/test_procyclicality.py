"""Procyclicality measures (Murphy, Vasios & Vause 2014, BoE FSP 29) and the netting benefit.

Hand-built margin series with known peak-to-trough ratios and n-day
increases; independent checks with pandas; invariants with hypothesis.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest.procyclicality import (
    STRESS_WINDOWS,
    ProcyclicalityReport,
    netting_benefit,
    netting_summary,
    procyclicality,
)


def hand_series():
    """100 -> linear ramp to 300 over 10 days (2020-03-11..20) -> 300 -> 50 from 2020-05-30.

    Known answers: peak-to-trough 300/50 = 6; largest 1-day rise 200/9 = 22.2 (relative 22.2%
    of 100); largest 5-day rise 5 x 200/9 = 111.1; largest 30-day rise 200 (relative 200%);
    with notional 1,000: 2.22%, 11.1%, 20% of notional.
    """
    dates = pd.date_range("2020-01-01", periods=200, freq="D")
    m = np.full(200, 100.0)
    m[70:80] = np.linspace(100.0, 300.0, 10)
    m[80:] = 300.0
    m[150:] = 50.0
    return dates, m


def test_hand_built_series_known_values():
    dates, m = hand_series()
    rep = procyclicality(m, dates, notional=np.full(200, 1000.0), name="toy")
    full = rep.period("full")
    step = 200.0 / 9.0
    assert full["model"] == "toy" and full["n_obs"] == 200
    assert full["peak_to_trough"] == pytest.approx(6.0)
    assert (full["max_margin"], full["min_margin"]) == (300.0, 50.0)
    assert full["inc_1d_abs"] == pytest.approx(step)
    assert full["inc_1d_rel"] == pytest.approx(step / 100.0)
    assert full["inc_1d_notional"] == pytest.approx(step / 1000.0)
    assert full["inc_5d_abs"] == pytest.approx(5 * step)
    assert full["inc_5d_rel"] == pytest.approx(5 * step / 100.0)
    assert full["inc_30d_abs"] == pytest.approx(200.0)
    assert full["inc_30d_rel"] == pytest.approx(2.0)
    assert full["inc_30d_notional"] == pytest.approx(0.2)
    assert full["inc_1d_date"] == pd.Timestamp("2020-03-11")
    # the covid window (1 Mar - 15 Apr 2020) holds the whole ramp but not the later fall to 50
    cov = rep.period("covid_mar2020")
    assert cov["n_obs"] == 46
    assert cov["peak_to_trough"] == pytest.approx(3.0)
    assert cov["inc_30d_abs"] == pytest.approx(200.0)
    # windows outside the data
    ftx = rep.period("ftx_nov2022")
    assert ftx["n_obs"] == 0 and math.isnan(ftx["peak_to_trough"])
    assert set(rep.to_frame()["period"]) == {"full", *STRESS_WINDOWS}


def test_largest_increase_is_zero_when_margin_only_falls():
    dates = pd.date_range("2021-01-01", periods=50)
    rep = procyclicality(np.linspace(200.0, 100.0, 50), dates, windows={})
    full = rep.period("full")
    assert full["inc_1d_abs"] == 0.0 and full["inc_30d_rel"] == 0.0
    assert full["peak_to_trough"] == pytest.approx(2.0)


def test_volatility_matches_pandas_log_returns():
    """vol_annual = std(diff(log M), ddof=1) x sqrt(365), computed independently with pandas."""
    rng = np.random.default_rng(4)
    dates = pd.date_range("2022-01-01", periods=300)
    m = 1e6 * np.exp(np.cumsum(rng.normal(0, 0.03, 300)))
    want = np.log(pd.Series(m)).diff().std() * math.sqrt(365)
    rep = procyclicality(m, dates, windows={"luna": ("2022-05-01", "2022-06-30")})
    assert rep.period("full")["vol_annual"] == pytest.approx(want, rel=1e-12)
    s = pd.Series(m, index=dates)["2022-05-01":"2022-06-30"]
    assert rep.period("luna")["vol_annual"] == pytest.approx(np.log(s).diff().std() * math.sqrt(365))
    # 365, not 252: a constant growth rate has zero volatility, a doubled daily sd doubles it
    assert procyclicality(np.exp(0.01 * np.arange(40)), dates[:40], windows={}).period("full")["vol_annual"] \
        == pytest.approx(0.0, abs=1e-12)


def test_panel_sum_equals_series_when_no_account_is_ragged():
    rng = np.random.default_rng(7)
    dates = pd.date_range("2020-02-01", periods=120)
    P = rng.uniform(10, 20, (120, 4)) * np.exp(np.cumsum(rng.normal(0, 0.02, (120, 4)), axis=0))
    a = procyclicality(P, dates).to_frame()
    b = procyclicality(P.sum(axis=1), dates).to_frame()
    num = a.select_dtypes("number").columns
    np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-12, equal_nan=True)


def test_ragged_accounts_do_not_count_as_margin_increases():
    """An account that appears on day 50 raises total margin from 100 to 1,100 but is not a margin call."""
    dates = pd.date_range("2020-01-01", periods=100)
    P = np.full((100, 2), np.nan)
    P[:, 0] = 100.0
    P[50:, 1] = 1000.0
    P[80:, 0] = 150.0  # a real 50% increase of the first account on day 80
    rep = procyclicality(P, dates, windows={})
    full = rep.period("full")
    assert full["max_margin"] == 1150.0  # the level is the plain sum
    assert full["inc_1d_abs"] == pytest.approx(50.0)
    assert full["inc_1d_rel"] == pytest.approx(50.0 / 1100.0)  # base: both accounts present on day 79
    assert full["inc_30d_abs"] == pytest.approx(50.0)
    # chain-linked index: 1 until day 79, then 1150/1100
    assert full["peak_to_trough"] == pytest.approx(1150.0 / 1100.0)


def test_zero_trough_gives_infinite_ratio_and_all_nan_dates_dropped():
    dates = pd.date_range("2020-01-01", periods=10)
    m = np.array([5.0, 5.0, 0.0, 5.0, np.nan, 6.0, 6.0, 6.0, 6.0, 6.0])
    full = procyclicality(m, dates, windows={}, horizons=(1,)).period("full")
    assert full["peak_to_trough"] == math.inf
    assert full["n_obs"] == 9
    assert full["inc_1d_abs"] == pytest.approx(5.0)


def test_window_measures_do_not_depend_on_data_after_the_window():
    """Changing margins after a window's end leaves that window's row unchanged (no look-ahead)."""
    rng = np.random.default_rng(9)
    dates = pd.date_range("2021-03-01", periods=200)
    m = np.exp(rng.normal(0, 0.05, 200).cumsum()) * 100
    m2 = m.copy()
    m2[dates > pd.Timestamp("2021-06-30")] *= 7.0
    a = procyclicality(m, dates).period("may2021")
    b = procyclicality(m2, dates).period("may2021")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] or (pd.isna(a[k]) and pd.isna(b[k])), k
    assert procyclicality(m2, dates).period("full")["max_margin"] != procyclicality(m, dates).period("full")["max_margin"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.floats(0.01, 1000))
def test_invariants_scale_and_signs(seed, c):
    """Scaling margin by c scales USD increases by c, leaves ratios/relative/vol unchanged;
    ratios >= 1, increases >= 0."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-01", periods=60)
    m = np.exp(rng.normal(0, 0.1, (60, 3)).cumsum(axis=0))
    a = procyclicality(m, dates, windows={}).period("full")
    b = procyclicality(c * m, dates, windows={}).period("full")
    for k in ("inc_1d_abs", "inc_5d_abs", "inc_30d_abs", "mean_margin"):
        assert b[k] == pytest.approx(c * a[k], rel=1e-9, abs=1e-12)
        assert a[k] >= 0
    for k in ("peak_to_trough", "inc_1d_rel", "inc_30d_rel", "vol_annual"):
        assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-12)
    assert a["peak_to_trough"] >= 1.0


def test_report_object_and_validation():
    dates, m = hand_series()
    rep = procyclicality(pd.Series(m, index=dates))  # dates from the index
    assert isinstance(rep, ProcyclicalityReport)
    assert "peak_to_trough" in str(rep) and "<table" in rep.to_html()
    assert rep.to_markdown().splitlines()[2].startswith("| period | start | end |")
    both = ProcyclicalityReport.combine({"a": rep, "b": rep})
    assert list(both.to_frame()["model"]) == ["a"] * 5 + ["b"] * 5
    with pytest.raises(KeyError, match="unknown period"):
        rep.period("nope")
    with pytest.raises(ValueError, match="dates has"):
        procyclicality(m, dates[:10])
    with pytest.raises(ValueError, match="horizons"):
        procyclicality(m, dates, horizons=(0,))
    with pytest.raises(ValueError, match="end is before start"):
        procyclicality(m, dates, windows={"w": ("2020-02-01", "2020-01-01")})
    with pytest.raises(ValueError, match="periods_per_year"):
        procyclicality(m, dates, periods_per_year=0)
    with pytest.raises(ValueError, match="notional"):
        procyclicality(m, dates, notional=np.ones((200, 3)))


# ---------------------------------------------------------------------------
# netting benefit
# ---------------------------------------------------------------------------


def test_netting_benefit_formula():
    cross = np.array([[50.0, 10.0, 5.0], [80.0, np.nan, 0.0]])
    iso = np.array([[100.0, 10.0, 0.0], [100.0, 20.0, 0.0]])
    b = netting_benefit(cross, iso)
    np.testing.assert_allclose(b, [[0.5, 0.0, np.nan], [0.2, np.nan, np.nan]])
    with pytest.raises(ValueError, match="same shape"):
        netting_benefit(cross, iso[:, :2])


@pytest.mark.parametrize("shape", [(1, 3), (64, 5), (203, 17), (7,)])
def test_netting_benefit_blocks_equal_the_whole_array_formula(shape):
    """Blocks of rows (float32 inputs widened per block) give the whole-array float64 formula bit for bit."""
    rng = np.random.default_rng(len(shape) * 1000 + sum(shape))
    cross = rng.lognormal(3, 1, shape).astype(np.float32)
    iso = (cross / rng.uniform(0.2, 1.0, shape)).astype(np.float32)
    for arr, share in ((cross, 0.1), (iso, 0.1)):
        arr[rng.random(shape) < share] = np.nan
    iso[rng.random(shape) < 0.1] = 0.0
    c, s = cross.astype(np.float64), iso.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where((s != 0) & ~np.isnan(s) & ~np.isnan(c), 1.0 - c / s, np.nan)
    got = netting_benefit(cross, iso)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    scalar = netting_benefit(2.0, 8.0)
    assert scalar.shape == () and scalar == 0.75


def test_netting_summary_distribution_and_crash_day():
    """Per-account mean benefit quantiles (checked with a per-account loop and np.quantile), and the
    worst cross-sectional day: netting vanishes on 2020-03-12 in the covid window."""
    rng = np.random.default_rng(12)
    dates = pd.date_range("2020-02-01", periods=90)
    T, P = 90, 40
    iso = rng.uniform(1, 2, (T, P))
    cross = iso * rng.uniform(0.3, 0.8, P)
    crash = dates.get_loc(pd.Timestamp("2020-03-12"))
    cross[crash] = iso[crash] * 0.98
    iso[:, 0] = 0.0  # account with nothing isolated: excluded
    b = netting_benefit(cross, iso)
    rep = netting_summary(b, dates, name="span")
    full = rep.to_frame().iloc[0]
    per_acct = np.array([np.nanmean(b[:, j]) for j in range(1, P)])
    assert full["model"] == "span" and full["n_accounts"] == P - 1
    assert full["mean"] == pytest.approx(per_acct.mean())
    assert full["p5"] == pytest.approx(np.quantile(per_acct, 0.05))
    assert full["median"] == pytest.approx(np.median(per_acct))
    assert full["p95"] == pytest.approx(np.quantile(per_acct, 0.95))
    cov = rep.to_frame().set_index("period").loc["covid_mar2020"]
    assert cov["worst_day"] == pd.Timestamp("2020-03-12")
    assert cov["worst_day_mean"] == pytest.approx(0.02)
    assert cov["n_dates"] == 46  # 1 Mar - 15 Apr inclusive


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), K=st.integers(1, 40), P=st.integers(1, 30), with_n=st.booleans(),
       f32=st.booleans())
def test_partial_sums_kernel_equals_the_numpy_sums(seed: int, K: int, P: int, with_n: bool, f32: bool):
    """The numba pass against the masked-numpy reference (issue 23), horizons longer than the panel included."""
    from riskmodels.backtest.procyclicality import partial_sums, partial_sums_numpy

    rng = np.random.default_rng(seed)
    M = rng.lognormal(10, 1, (K, P)).astype(np.float32 if f32 else np.float64)
    M[rng.random((K, P)) < 0.3] = np.nan
    N = np.where(rng.random((K, P)) < 0.1, np.nan, rng.lognormal(12, 1, (K, P))) if with_n else None
    a = partial_sums_numpy(M, N, (1, 5, 30), block=7)
    b = partial_sums(M, N, (1, 5, 30))
    for k in ("level", "s_prev", "s_cur"):
        np.testing.assert_allclose(b[k], a[k], rtol=1e-13)
    np.testing.assert_array_equal(b["both_any"], a["both_any"])
    assert list(a["inc"]) == list(b["inc"])
    for n in a["inc"]:
        for x, y in zip(a["inc"][n][:3], b["inc"][n][:3], strict=True):
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-6 * np.nanmax(M, initial=1.0))
        np.testing.assert_array_equal(b["inc"][n][3], a["inc"][n][3])


def _netting_numpy(B: np.ndarray, dates: pd.DatetimeIndex, windows: dict) -> list[tuple]:
    """The per-period numpy statement of netting_summary's account means and worst day (the fused pass's reference)."""
    valid = ~np.isnan(B)
    cnt_day = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        day_mean = np.where(cnt_day > 0, np.where(valid, B, 0.0).sum(axis=1) / np.maximum(cnt_day, 1), np.nan)
    out = []
    for a, b in [(None, None), *windows.values()]:
        sel = np.ones(len(dates), bool) if a is None else (dates >= pd.Timestamp(a)) & (
            dates < pd.Timestamp(b) + pd.Timedelta(days=1))
        vsub = valid[sel]
        cnt = vsub.sum(axis=0)
        has = cnt > 0
        acc = np.where(vsub, B[sel], 0.0).sum(axis=0)[has] / cnt[has]
        dm = day_mean[sel]
        out.append((int(has.sum()), acc.mean() if acc.size else np.nan,
                    *(np.quantile(acc, [0.05, 0.5, 0.95]) if acc.size else [np.nan] * 3),
                    np.nanmin(dm) if dm.size and not np.isnan(dm).all() else np.nan))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), T=st.integers(1, 400), P=st.integers(1, 40))
def test_netting_summary_fused_pass_equals_the_numpy_statement_bitwise(seed: int, T: int, P: int):
    rng = np.random.default_rng(seed)
    B = rng.normal(0.3, 0.2, (T, P))
    B[rng.random((T, P)) < 0.3] = np.nan
    B[rng.random((T, P)) < 0.05] = -0.0
    B[:, rng.random(P) < 0.1] = np.nan  # accounts never priced
    dates = pd.date_range("2020-01-01", periods=T, freq="D")
    windows = {"w1": ("2020-02-01", "2020-03-15"), "w2": ("2020-06-10", "2020-06-12"), "none": ("2030-01-01", "2030-02-01")}
    got = netting_summary(B, dates, windows=windows).to_frame()
    ref = _netting_numpy(B, dates, windows)
    for i, (n, mean, p5, med, p95, worst) in enumerate(ref):
        row = got.iloc[i]
        assert row["n_accounts"] == n
        for k, v in (("mean", mean), ("p5", p5), ("median", med), ("p95", p95), ("worst_day_mean", worst)):
            assert (np.isnan(v) and np.isnan(row[k])) or row[k] == v, (k, row[k], v)


def test_netting_summary_fused_pass_at_full_size():
    """The default run's shape (2,608 dates x 1,000 accounts, past numpy's 8,192-element buffers), bitwise."""
    rng = np.random.default_rng(4)
    B = rng.normal(0.3, 0.2, (2608, 1000))
    B[rng.random(B.shape) < 0.2] = np.nan
    dates = pd.date_range("2018-08-15", periods=2608, freq="D")
    got = netting_summary(B, dates).to_frame()
    from riskmodels.backtest.procyclicality_inputs import STRESS_WINDOWS

    for i, (n, mean, p5, med, p95, worst) in enumerate(_netting_numpy(B, dates, dict(STRESS_WINDOWS))):
        row = got.iloc[i]
        assert row["n_accounts"] == n and row["mean"] == mean and row["median"] == med
        assert row["p5"] == p5 and row["p95"] == p95 and row["worst_day_mean"] == worst
