"""Implied-vol sources: the IV file and DVOL readers (strict), interpolation, the EWMA proxy, no look-ahead."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.errors import UserError
from riskmodels.instruments.vol import (
    FileVol,
    ProxyVol,
    ewma_variance,
    premium_ratio,
    read_dvol,
    read_iv_table,
)
from tests.conftest import make_panel, random_walk_panel


def _write(tmp_path: Path, text: str, name: str = "iv.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_ewma_recursion_matches_a_hand_computation() -> None:
    r = np.array([[0.01], [-0.02], [np.nan], [0.03]])
    v = ewma_variance(r, 0.94)
    v1 = 0.0001
    v2 = 0.94 * v1 + 0.06 * 0.0004
    v4 = 0.94 * v2 + 0.06 * 0.0009
    np.testing.assert_allclose(v[:, 0], [v1, v2, v2, v4], rtol=1e-14)


def test_proxy_term_structure_is_hulls_garch_average_variance() -> None:
    """Hull (10th ed., sec. 23.4): sigma(T)^2 = V_L + (V_0 - V_L)(1 - e^{-aT})/(aT); checked at one cell by hand."""
    panel = random_walk_panel(T=900, A=2, seed=1)
    p = ProxyVol(panel, premium=1.2, half_life_days=20, long_run_days=365)
    t, a = 800, 1
    r = panel.returns(1, kind="log")[:, a]
    v = np.nan
    for x in r[: t + 1]:
        if np.isfinite(x):
            v = x * x if not np.isfinite(v) else 0.94 * v + 0.06 * x * x
    w = r[t - 364: t + 1]
    vl = np.mean(w[np.isfinite(w)] ** 2) * 365
    v0 = v * 365
    aa = math.log(2) / (20 / 365)
    for tau in (7 / 365, 30 / 365, 0.5):
        want = 1.2 * math.sqrt(vl + (v0 - vl) * (1 - math.exp(-aa * tau)) / (aa * tau))
        got = p.iv(t, np.array([a]), np.array([tau]), np.array([100.0]), panel.close[t])[0]
        assert got == pytest.approx(want, rel=1e-10)
    assert p.atm()[t, a] == pytest.approx(
        1.2 * math.sqrt(vl + (v0 - vl) * (1 - math.exp(-aa * 30 / 365)) / (aa * 30 / 365)), rel=1e-10)
    assert p.is_proxy and p.label.startswith("proxy: EWMA(0.94) x 1.2")


def test_proxy_skew_raises_downside_strikes() -> None:
    panel = random_walk_panel(T=200, A=1, seed=2)
    p = ProxyVol(panel, skew=0.3)
    s = panel.close[150]
    iv = p.iv(150, np.zeros(3, dtype=int), np.full(3, 0.1), s[0] * np.array([0.8, 1.0, 1.25]), s)
    assert iv[0] > iv[1] > iv[2]
    assert iv[1] == pytest.approx(p.iv(150, np.zeros(1, dtype=int), np.array([0.1]), s[:1], s)[0])


def test_proxy_has_no_look_ahead() -> None:
    panel = random_walk_panel(T=500, A=2, seed=3)
    t = 300
    close = panel.close.copy()
    close[t + 1:] *= np.exp(np.random.default_rng(0).normal(0, 0.2, close[t + 1:].shape))
    other = panel.with_close(close)
    a, b = ProxyVol(panel), ProxyVol(other)
    np.testing.assert_array_equal(a.atm()[: t + 1], b.atm()[: t + 1])
    assert not np.allclose(a.atm()[t + 5:], b.atm()[t + 5:])


def test_iv_table_interpolates_total_variance_in_tenor_and_linear_in_moneyness(tmp_path: Path) -> None:
    close = np.full((10, 1), 100.0)
    panel = make_panel(close, ("BTC",), start="2021-01-01")
    f = _write(tmp_path, "date,asset,tenor_days,strike,iv\n"
                         "2021-01-03,BTC,30,80,0.9\n2021-01-03,BTC,30,100,0.6\n2021-01-03,BTC,30,120,0.7\n"
                         "2021-01-03,BTC,90,100,0.8\n")
    src = FileVol(read_iv_table(f), panel, "file: iv.csv")
    t = 4  # 2021-01-05, two days after the quotes
    spot = panel.close[t]
    got = src.iv(t, np.zeros(4, dtype=int), np.array([30, 30, 60, 200]) / 365, np.array([90.0, 200.0, 100.0, 100.0]),
                 spot)
    k90, k80 = math.log(0.9), math.log(0.8)
    assert got[0] == pytest.approx(0.6 + (0.9 - 0.6) * (k90 - 0) / (k80 - 0), rel=1e-12)  # linear in ln K/S
    assert got[1] == pytest.approx(0.7)  # flat beyond the last strike
    tv = (0.6**2 * 30 + 0.8**2 * 90) / 2 / 365  # total variance halfway between 30 and 90 days
    assert got[2] == pytest.approx(math.sqrt(tv / (60 / 365)), rel=1e-12)
    assert got[3] == pytest.approx(0.8)  # flat vol beyond the last tenor
    assert np.isnan(src.atm()[1])  # before the first quote: unknown (no look-back into the future)
    assert src.atm()[2] == pytest.approx(0.6)
    assert np.isnan(src.atm()[9])  # older than max_age_days = 5


def test_dvol_file_is_30_day_atm_in_vol_points(tmp_path: Path) -> None:
    close = np.full((5, 1), 100.0)
    panel = make_panel(close, ("BTC",), start="2021-03-01")
    f = _write(tmp_path, "timestamp,open,high,low,close\n"
                         "1614556800000,80,85,79,82.5\n1614643200000,82.5,90,81,88\n", "dvol.csv")
    q = read_dvol(f, "BTC")
    assert list(q["iv"]) == [0.825, 0.88]
    src = FileVol(q, panel, "file: dvol.csv")
    np.testing.assert_allclose(src.atm()[:3, 0], [0.825, 0.88, 0.88])
    assert not src.is_proxy
    assert src.iv(1, np.array([0]), np.array([0.5]), np.array([150.0]), panel.close[1])[0] == pytest.approx(0.88)


def test_delta_quotes_map_to_black76_moneyness(tmp_path: Path) -> None:
    close = np.full((3, 1), 100.0)
    panel = make_panel(close, ("ETH",), start="2022-01-01")
    f = _write(tmp_path, "date,asset,tenor_days,delta,iv\n2022-01-01,ETH,30,0.25,0.7\n2022-01-01,ETH,30,0.5,0.6\n")
    src = FileVol(read_iv_table(f), panel, "f")
    from scipy.stats import norm

    tau = 30 / 365
    k25 = -0.7 * math.sqrt(tau) * norm.ppf(0.25) + 0.5 * 0.49 * tau
    got = src.iv(0, np.array([0]), np.array([tau]), np.array([100 * math.exp(k25)]), panel.close[0])[0]
    assert got == pytest.approx(0.7, rel=1e-9)


@pytest.mark.parametrize("body,needle", [
    ("date,asset,tenor_days,iv\n2021-01-01,BTC,30,\n", "line 2: iv = ''"),
    ("date,asset,tenor_days,iv\n2021-01-01,BTC,30,0.5\n2021-01-02,BTC,30,-0.1\n", "line 3: iv = '-0.1' is <= 0"),
    ("date,asset,tenor_days,iv\n2021-01-01,BTC,30,nan\n", "line 2: iv = 'nan'"),
    ("date,asset,tenor_days,iv\n2021-01-01,BTC,30,65\n", "write implied vol as a fraction"),
    ("date,asset,tenor_days,iv\n2021-13-01,BTC,30,0.5\n", "line 2: date"),
    ("date,asset,tenor_days,iv\n2021-01-01,BTC,0,0.5\n", "tenor_days = '0'"),
    ("date,asset,expiry,iv\n2021-01-05,BTC,2021-01-01,0.5\n", "expiry = '2021-01-01' is not after"),
    ("date,asset,tenor_days,strike,iv\n2021-01-01,BTC,30,-5,0.5\n", "strike = '-5'"),
    ("date,asset,tenor_days,delta,iv\n2021-01-01,BTC,30,1.5,0.5\n", "delta = '1.5'"),
    ("date,asset,iv\n2021-01-01,BTC,0.5\n", "exactly one of the columns tenor_days or expiry"),
    ("date,asset,tenor_days,iv,vega\n2021-01-01,BTC,30,0.5,1\n", "unknown column(s) ['vega']"),
    ("date,tenor_days,iv\n2021-01-01,30,0.5\n", "lacks ['asset']"),
])
def test_bad_iv_files_name_the_line_and_value(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(UserError, match=None) as exc:
        read_iv_table(_write(tmp_path, body))
    assert needle in str(exc.value)
    assert "iv.csv" in str(exc.value)


def test_dvol_with_a_bad_close_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"line 3: close = '0'"):
        read_dvol(_write(tmp_path, "date,open,high,low,close\n2021-01-01,1,1,1,80\n2021-01-02,1,1,1,0\n"), "BTC")


def test_premium_ratio_measures_dvol_over_proxy() -> None:
    panel = random_walk_panel(T=300, A=1, seed=5)
    p = ProxyVol(panel, premium=1.0)
    import pandas as pd

    dates = panel.dates.values.astype("datetime64[D]")[100:200]
    dvol = pd.DataFrame({"date": dates, "iv": 1.3 * p.atm()[100:200, 0]})
    assert premium_ratio(dvol, panel, panel.assets[0]) == pytest.approx(1.3, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(ivs=st.lists(st.floats(0.05, 3.0), min_size=6, max_size=6), tau=st.floats(1 / 365, 2.0),
       m=st.floats(-1.5, 1.5))
def test_interpolated_iv_stays_within_the_quotes(ivs: list[float], tau: float, m: float) -> None:
    """A smile linear in moneyness and total variance linear in tenor never leave the quoted range."""
    import pandas as pd

    panel = make_panel(np.full((3, 1), 100.0), ("BTC",), start="2021-01-01")
    strikes = [80.0, 100.0, 125.0]
    rows = [("2021-01-01", "BTC", tn, "strike", k, v)
            for (tn, k), v in zip([(t_, k_) for t_ in (14.0, 60.0) for k_ in strikes], ivs, strict=True)]
    q = pd.DataFrame(rows, columns=["date", "asset", "tenor_days", "kind", "x", "iv"])
    q["date"] = pd.to_datetime(q["date"]).to_numpy().astype("datetime64[D]")
    src = FileVol(q, panel, "f")
    got = src.iv(1, np.array([0]), np.array([tau]), np.array([100.0 * math.exp(m)]), panel.close[1])[0]
    assert min(ivs) - 1e-12 <= got <= max(ivs) + 1e-12


def test_config_source_uses_dvol_files_and_the_proxy_fallback(tmp_path: Path) -> None:
    from riskmodels.instruments.vol import vol_source

    panel = random_walk_panel(T=120, A=2, seed=7)
    d = panel.dates
    f = _write(tmp_path, "date,open,high,low,close\n" + "".join(
        f"{x:%Y-%m-%d},1,1,1,70\n" for x in d[60:80]), "a0_dvol.csv")
    src = vol_source(panel, {"dvol": {"A0": str(f)}, "vol_fallback": "proxy"})
    assert not src.is_proxy and src.label.startswith("file: a0_dvol.csv, else proxy: EWMA(0.94)")
    proxy = ProxyVol(panel)
    assert src.atm()[70, 0] == pytest.approx(0.70)
    assert src.atm()[100, 0] == pytest.approx(proxy.atm()[100, 0])  # stale after 5 days: the proxy
    np.testing.assert_allclose(src.atm()[:, 1], proxy.atm()[:, 1])  # no file for A1
    strict = vol_source(panel, {"dvol": {"A0": str(f)}})
    assert np.isnan(strict.iv(100, np.array([0]), np.array([0.1]), np.array([100.0]), panel.close[100])[0])
    assert vol_source(panel, {}).is_proxy


def test_stale_strike_quotes_move_with_the_spot(tmp_path: Path) -> None:
    """Strikes become moneyness at the quote date's close: two days later at a 10% higher spot, the at-the-money
    vol is still the quoted ATM one (sticky moneyness), not the vol quoted at the old ATM strike."""
    close = np.array([100.0, 105.0, 110.0, 110.0])
    panel = make_panel(close, ("BTC",), start="2021-01-01")
    f = _write(tmp_path, "date,asset,tenor_days,strike,iv\n2021-01-01,BTC,30,100,0.6\n2021-01-01,BTC,30,110,0.5\n")
    src = FileVol(read_iv_table(f), panel, "f")
    assert src.iv(2, np.array([0]), np.array([30 / 365]), np.array([110.0]), panel.close[2])[0] == pytest.approx(0.6)
    assert src.atm()[2, 0] == pytest.approx(0.6)
