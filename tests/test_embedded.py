"""The embedded dataset (issue 24): its hash, its size, its provenance, and that it is the
shared data's default universe to the last bit."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.data.embedded import (
    EMBEDDED_DIR,
    EmbeddedDataError,
    dataset_sha256,
    embedded_info,
    verify_embedded,
)
from riskmodels.data.loaders import DEFAULT_UNIVERSE, load_panel

ROOT = Path(__file__).resolve().parents[1]
# Changing the embedded data must be deliberate: rebuild, then update this constant.
EXPECTED_SHA256 = "b333565cba5a266899e4bc0b7f08fe57e475fc4ac626032230293cdb84b230cb"
FILES = sorted((EMBEDDED_DIR / "crypto-daily").glob("*.parquet"))


def test_dataset_hash_is_the_recorded_one():
    info = verify_embedded()
    assert info.sha256 == EXPECTED_SHA256
    # independent: the sha256sum manifest of the files, hashed (as `sha256sum *.parquet | sha256sum`)
    manifest = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in FILES)
    assert hashlib.sha256(manifest.encode()).hexdigest() == EXPECTED_SHA256
    assert dataset_sha256({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in FILES}) \
        == EXPECTED_SHA256


def test_altered_missing_or_extra_file_is_detected(tmp_path):
    root = tmp_path / "embedded"
    shutil.copytree(EMBEDDED_DIR, root)
    verify_embedded(root)
    target = root / "crypto-daily" / "BTC-USD_1d.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(EmbeddedDataError, match=r"BTC-USD_1d\.parquet.*differ.*build_sample"):
        verify_embedded(root)
    target.unlink()
    with pytest.raises(EmbeddedDataError, match="missing"):
        verify_embedded(root)


def test_contents_size_and_provenance():
    info = embedded_info()
    assert [p.name for p in FILES] == sorted(f"{a}-USD_1d.parquet" for a in DEFAULT_UNIVERSE)
    assert sorted(info.assets) == sorted(DEFAULT_UNIVERSE) and info.end == "2025-02-20"
    size = sum(p.stat().st_size for p in EMBEDDED_DIR.rglob("*") if p.is_file())
    assert size <= 3 * 2**20, f"embedded dataset is {size} bytes, over 3 MiB"
    prov = json.loads((EMBEDDED_DIR / "provenance.json").read_text())
    assert prov["name"] == "public daily OHLCV, 2014-2025"
    assert {"AVAX", "AAVE"} <= set(prov["known_defects"])
    for p in FILES:
        df = pd.read_parquet(p)
        assert list(df.columns) == ["datetime", "open", "high", "low", "close", "volume"]
        assert df["datetime"].max() <= pd.Timestamp("2025-02-20")
        assert prov["files"][p.name]["rows"] == len(df)


def test_package_data_ships_the_files():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pats = cfg["tool"]["setuptools"]["package-data"]["riskmodels"]
    pkg = ROOT / "riskmodels"
    shipped = {p for pat in pats for p in pkg.glob(pat)}
    assert set(FILES) <= shipped and EMBEDDED_DIR / "provenance.json" in shipped


@pytest.mark.realdata
def test_every_cell_equals_the_shared_csv(daily_dir):
    """float32 storage is exact: every open/high/low/close/volume read back equals the CSV."""
    for p in FILES:
        asset = p.name.split("-")[0]
        csv = pd.read_csv(daily_dir / f"{asset}-USD_1d.csv")
        csv = csv[pd.to_datetime(csv["datetime"]) <= pd.Timestamp("2025-02-20")]
        emb = pd.read_parquet(p)
        assert len(emb) == len(csv), asset
        np.testing.assert_array_equal(emb["datetime"].to_numpy(dtype="datetime64[ns]"),
                                      pd.to_datetime(csv["datetime"]).to_numpy(dtype="datetime64[ns]"))
        for c in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(emb[c].to_numpy(dtype=np.float64),
                                          csv[c].to_numpy(dtype=np.float64), err_msg=f"{asset} {c}")


@pytest.mark.realdata
def test_panel_equals_the_panel_of_the_shared_csv(data_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = load_panel(EMBEDDED_DIR, assets=DEFAULT_UNIVERSE, policy="truncate", interval="1d")
        b = load_panel(data_root, assets=DEFAULT_UNIVERSE, policy="truncate", interval="1d")
    assert a.fingerprint() == b.fingerprint()
    assert str(a.quality) == str(b.quality)


@pytest.mark.realdata
def test_build_sample_rebuilds_the_same_contents(data_root, tmp_path):
    from riskmodels.data.build_sample import build

    prov = build(data_root, tmp_path, assets=("BTC", "AAVE"))
    for name in ("BTC-USD_1d.parquet", "AAVE-USD_1d.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "crypto-daily" / name),
                                      pd.read_parquet(EMBEDDED_DIR / "crypto-daily" / name))
        assert prov["files"][name]["source_sha256"] == \
            embedded_info().provenance["files"][name]["source_sha256"]


def test_build_sample_refuses_a_value_float32_cannot_hold(tmp_path):
    from riskmodels.data.build_sample import build

    daily = tmp_path / "src" / "crypto-daily"
    daily.mkdir(parents=True)
    pd.DataFrame({"datetime": ["2024-01-01", "2024-01-02"], "open": [1.5, 0.1],
                  "high": [2.0, 2.0], "low": [1.0, 0.05], "close": [1.5, 1.25],
                  "volume": [10, 20]}).to_csv(daily / "BTC-USD_1d.csv", index=False)
    with pytest.raises(ValueError, match=r"open = 0\.1 .*not exact in float32"):
        build(tmp_path / "src", tmp_path / "out", assets=("BTC",))
