"""Issue 22 items 3 and 5 on the real data: causal cleaning and FHS on the DOGE January 2021 episode."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import riskmodels.margin as margin
from riskmodels.cli import main
from riskmodels.data import load_panel

CONFIG = """
[data]
universe = ["BTC", "ETH"]
start = "2021-06-01"
end = "2023-06-30"
policy = "truncate"
[book]
accounts = 20
seed = 3
collateral_assets = ["BTC"]
[backtest]
min_history = 365
netting = false
n_jobs = 1
[[models]]
name = "fixed_haircut"
label = "flat"
params = { imf = 0.1, mmf = 0.05 }
[[models]]
name = "historical_var"
label = "hs"
params = { window = 250 }
"""


def _copy_with_bad_tick(daily_dir: Path, root: Path, day: str | None) -> Path:
    """A data root with BTC and ETH; BTC's close x 100 on ``day`` (a bad tick), if given."""
    d = root / "crypto-daily"
    d.mkdir(parents=True)
    for sym in ("BTC", "ETH"):
        shutil.copy(daily_dir / f"{sym}-USD_1d.csv", d / f"{sym}-USD_1d.csv")
    if day is not None:
        f = d / "BTC-USD_1d.csv"
        df = pd.read_csv(f)
        i = df.index[df["datetime"] == day][0]
        df.loc[i, ["close", "high"]] = df.loc[i, ["close", "high"]] * 100
        df.to_csv(f, index=False)
    return root


def _run(root: Path, cfg: Path, out: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["backtest", "--config", str(cfg), "--data", str(root), "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    s.pop("data", None)  # names the price folder, which differs between the runs by construction
    s.pop("data_fingerprint")
    return s


@pytest.mark.slow
def test_a_defect_after_the_window_changes_no_output_and_one_before_still_acts(daily_dir: Path, tmp_path: Path) -> None:
    """The bad tick on BTC 2024-06-10 of the issue: after a 2021-06..2023-06 window it must not matter."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    clean = _run(_copy_with_bad_tick(daily_dir, tmp_path / "clean", None), cfg, tmp_path / "o0")
    after = _run(_copy_with_bad_tick(daily_dir, tmp_path / "after", "2024-06-10"), cfg, tmp_path / "o1")
    assert after == clean
    for name in ("summary.csv", "coverage.csv", "liquidations.csv", "comparison.csv"):
        assert (tmp_path / "o0" / name).read_bytes() == (tmp_path / "o1" / name).read_bytes(), name
    # a defect inside the window's history still truncates BTC: the outputs change
    before = _run(_copy_with_bad_tick(daily_dir, tmp_path / "before", "2022-03-01"), cfg, tmp_path / "o2")
    assert before["window"]["priced_account_days"] < clean["window"]["priced_account_days"]


def test_load_panel_decides_the_policy_on_data_up_to_end(daily_dir: Path, tmp_path: Path) -> None:
    root = _copy_with_bad_tick(daily_dir, tmp_path / "r", "2024-06-10")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = load_panel(root, assets=["BTC", "ETH"], policy="truncate", end="2023-06-30")
    assert not [w for w in caught if "truncated" in str(w.message)]
    assert p.dates[-1] == pd.Timestamp("2023-06-30")
    btc = p.close[:, p.assets.index("BTC")]
    assert np.isfinite(btc[p.date_index("2021-06-01")])  # history before the window kept
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cut = load_panel(root, assets=["BTC", "ETH"], policy="truncate")
    assert any("BTC truncated" in str(w.message) for w in caught)  # without the end: the whole history goes
    assert not np.isfinite(cut.close[cut.date_index("2021-06-01"), cut.assets.index("BTC")])


def test_fhs_is_bounded_on_doge_january_2021(data_root: Path) -> None:
    """DOGE +355% on 2021-01-28: unbounded FHS asked a short-DOGE account for many times its notional."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(data_root, assets=["BTC", "DOGE"], policy="truncate", end="2021-03-31")
    j = panel.assets.index("DOGE")
    t0, t1 = panel.date_index("2021-01-25"), panel.date_index("2021-02-28")
    short = np.zeros((1, 2))
    short[0, j] = -1.0
    zero = np.zeros((1, 2))
    out = {}
    for cap in (3.0, None):
        f = margin.get("filtered_hs", window=500, max_vol_ratio=cap).fit(panel)
        out[cap] = np.array([f.requirement(t, zero, short).initial[0] for t in range(t0, t1 + 1)])
    assert np.nanmax(out[None]) > 10  # the pathology: > 10x notional
    # capped: at most the largest historical 2-day up-move in the window, rescaled by at most 3
    f = margin.get("filtered_hs", window=500, max_vol_ratio=3.0).fit(panel)
    bound = max(np.expm1(3.0 * np.nanmax(f.R[t - 499 : t + 1, j])) for t in range(t0, t1 + 1))
    assert np.nanmax(out[3.0]) <= bound + 1e-12
    assert np.nanmax(out[3.0]) < np.nanmax(out[None]) / 5
