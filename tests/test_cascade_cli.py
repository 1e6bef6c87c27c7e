"""``riskmodels cascade --day`` and ``--suite`` end to end on the real data (small markets).

The failure these guard against (issue 17): the cascade loaded prices from a fixed
2019-01-01 while the 500-day historical-VaR models need 502 (HS) and 522 (FHS) daily
rows, so ``--day 2020-03-12`` and ``--suite`` stopped with "no tradable asset".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from riskmodels.cascade.history import history_start, rows_needed
from riskmodels.cascade.observed import OBSERVED
from riskmodels.cascade.replay import CRASH_DAYS
from riskmodels.cli import main
from riskmodels.margin import get

MODELS = """
[[models]]
name = "fixed_haircut"
label = "flat"
params = { imf = 0.05, mmf = 0.03, haircut = 0.10 }
[[models]]
name = "historical_var"
label = "HS VaR"
params = { confidence = 0.99, horizon = 2, window = 500 }
[[models]]
name = "filtered_hs"
label = "FHS VaR"
params = { confidence = 0.99, horizon = 2, window = 500, ewma_lambda = 0.94 }
"""

CASCADE = """
[cascade]
universe = ["BTC", "ETH", "XRP", "LTC"]
accounts = 150
calm_days = 6
calibration_accounts = 150
substeps = 6
[cascade.calibration]
low_weight = [0.7, 1.0]
mid_leverage = [3.0]
oi_to_volume = [0.1, 0.3]
impact_y = [0.7]
rally_beta = [0.0, 1.0]
leverage_beta = [0.0, 0.5]
leverage_days = [90]
accounts = 120
calm_days = 6
calibration_accounts = 120
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    p = tmp_path / "cascade.toml"
    p.write_text(MODELS + CASCADE)
    return p


def test_history_start_covers_the_most_demanding_model():
    models = [get("fixed_haircut", imf=0.05, mmf=0.03), get("historical_var", window=500, horizon=2),
              get("filtered_hs", window=500, horizon=2)]
    # HS: 500 overlapping 2-day scenarios need 501 returns = 502 prices; FHS adds its 20-day EWMA warm-up
    assert [m.required_history for m in models] == [1, 502, 522]
    assert rows_needed(models, 30) == 522
    assert rows_needed(models[:1], 30) == 31  # the market state's lookback + 1 closes
    start = history_start(models, ["2021-05-19", "2020-03-12"], 30)
    assert (pd.Timestamp("2020-03-12") - start).days >= 522


@pytest.mark.realdata
def test_cascade_day_runs_every_model_on_covid_day(data_root: Path, config: Path, tmp_path: Path, capsys):
    out = tmp_path / "day"
    rc = main(["cascade", "--day", "2020-03-12", "--config", str(config), "--data", str(data_root),
               "--out", str(out), "--offline", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    for f in ("variants.csv", "rounds_B.csv", "cross_vs_isolated.csv", "methods.csv",
              "transmission_cross.csv", "transmission_isolated.csv"):
        assert (out / f).is_file(), f
    methods = pd.read_csv(out / "methods.csv")
    assert list(methods["model"]) == ["flat", "HS VaR", "FHS VaR"]
    assert (methods["accounts_liquidated"] > 0).all()  # BTC fell ~40% intraday
    iso = pd.read_csv(out / "cross_vs_isolated.csv")
    assert list(iso["mode"]) == ["cross", "isolated"]
    # same traders, same equity: isolating can only raise the initial margin (no netting)
    assert iso.loc[1, "initial_margin"] >= iso.loc[0, "initial_margin"] * (1 - 1e-9)
    assert iso.loc[0, "equity"] == pytest.approx(iso.loc[1, "equity"], rel=1e-9)


@pytest.mark.realdata
def test_cascade_start_too_late_is_an_error_naming_the_key(data_root: Path, tmp_path: Path, capsys):
    p = tmp_path / "late.toml"
    p.write_text(MODELS + CASCADE.replace("[cascade]\n", '[cascade]\nstart = "2019-06-01"\n'))
    rc = main(["cascade", "--day", "2020-03-12", "--config", str(p), "--data", str(data_root),
               "--out", str(tmp_path / "x"), "--offline", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "[cascade].start" in err and "2019-06-01" in err and "auto" in err
    assert "Traceback" not in err


@pytest.mark.realdata
@pytest.mark.slow
def test_cascade_suite_writes_the_loo_table(data_root: Path, config: Path, tmp_path: Path, capsys):
    out = tmp_path / "suite"
    rc = main(["cascade", "--suite", "--config", str(config), "--data", str(data_root),
               "--out", str(out), "--offline", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    suite = pd.read_csv(out / "suite.csv")
    for col in ("day", "observed", "predicted", "ratio", "metric", "in_sample", "scope", "bound", "consistent"):
        assert col in suite.columns
    # what each record measures is stated in the table, never silently
    assert set(suite["bound"]) == {"point", "lower"}
    bitmex = suite[(suite["day"] == "2020-03-12") & suite["primary"]]
    assert (bitmex["scope"] == "venue share 0.36").all() and (bitmex["metric"] == "liq_long_usd_btc").all()
    low = suite[suite["bound"] == "lower"]
    assert (low["consistent"] == ((low["ratio"] >= 0.5) & (low["ratio"] <= 4.0))).all()
    pt = suite[(suite["bound"] == "point") & suite["ratio"].notna()]
    assert (pt["consistent"] == pt["within_2x"]).all()
    days = sorted({d.date for d in CRASH_DAYS})
    assert sorted(set(suite["day"]) - {"calm"}) == days
    # one held-out and one in-sample row per observation, plus the calm-day base rates
    assert len(suite) == 2 * len(OBSERVED) + 4
    assert set(suite["in_sample"]) == {True, False}
    prim = suite[suite["primary"] & ~suite["in_sample"]]
    assert sorted(prim["day"]) == days  # exactly one primary figure per day
    ok = suite["predicted"] > 0
    assert (suite.loc[ok, "ratio"] - suite.loc[ok, "predicted"] / suite.loc[ok, "observed"]).abs().max() < 1e-9
    ci = pd.read_csv(out / "cross_vs_isolated.csv")
    assert sorted(ci["day"]) == days
    assert (ci[["cross_liq_usd", "isolated_liq_usd"]] > 0).all().all()
    fits = pd.read_csv(out / "loo_fits.csv")
    assert list(fits["held_out"]) == ["all", *[d.date for d in CRASH_DAYS]]
    assert set(fits["leverage_beta"]) <= {0.0, 0.5} and set(fits["leverage_days"]) == {90}
    for m in ("flat", "HS_VaR", "FHS_VaR"):
        v = pd.read_csv(out / f"validation_{m}.csv")
        assert len(v) == len(CRASH_DAYS)


@pytest.mark.realdata
@pytest.mark.slow
def test_cascade_suite_every_model_of_the_default_config(data_root: Path, tmp_path: Path, capsys):
    """Every crash day under every model of the default config (the failure of issue 17:
    the run stopped after 5 of 9 models)."""
    from riskmodels.backtest.engine import build_models
    from riskmodels.config import load_config

    p = tmp_path / "defaults.toml"
    p.write_text(CASCADE.replace("universe = [\"BTC\", \"ETH\", \"XRP\", \"LTC\"]", "universe = [\"BTC\", \"ETH\"]"))
    out = tmp_path / "suite"
    rc = main(["cascade", "--suite", "--config", str(p), "--data", str(data_root), "--out", str(out),
               "--offline", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    labels = [m.label for m in build_models(load_config(None))]
    assert len(labels) == 11  # nine rows and the two APC rows (issue 23)
    for label in labels:
        v = pd.read_csv(out / f"validation_{label.replace(' ', '_')}.csv")
        assert list(v["day"]) == [d.date for d in CRASH_DAYS], label
        assert v["sim_frac_oi_B"].between(0, 1).all(), label
