"""Build the embedded dataset shipped inside the package.

``python -m riskmodels.data.build_sample [--source DIR] [--dest DIR]`` reads the
default universe's daily OHLCV files (``<source>/crypto-daily/SYMBOL-USD_1d.csv``,
default ``$RISKMODELS_DATA`` or ``../shared/data``), keeps every row up to
2025-02-20 exactly as published (defects included: the loader's policy deals with
them, as it does for the CSV files), and writes

* ``<dest>/crypto-daily/SYMBOL-USD_1d.parquet``: columns ``datetime`` (naive UTC
  day), ``open``/``high``/``low``/``close`` as float32, ``volume`` as int64,
  zstd-compressed;
* ``<dest>/provenance.json``: source, licence note, per-file SHA-256 of the
  Parquet files and of the CSV files they were built from, row counts, the
  known defects, and the dataset's SHA-256 (see :mod:`riskmodels.data.embedded`).

Why float32 is exact here: every open/high/low/close in the source CSV is a
float32 value printed in full (the publisher stores float32), so casting to
float32 and back to float64 returns the same number bit for bit; the build
checks this for every cell and refuses otherwise. Volumes are whole numbers up
to 3.5e11, beyond float32's 2**24 exact-integer range, so they are int64.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodels.data.loaders import DEFAULT_UNIVERSE

__all__ = ["END", "KNOWN_DEFECTS", "build", "main"]

END = "2025-02-20"
PRICE_COLS = ("open", "high", "low", "close")
KNOWN_DEFECTS = {
    "AVAX": "one row on 2020-07-13, then nothing until 2020-09-22 (a 69-day gap); the default "
            "policy 'truncate' starts AVAX on 2020-09-22",
    "AAVE": "first row 2020-10-02 has open = low = 0 and the next close is x100 (listing "
            "artefact); the default policy 'truncate' starts AAVE after it",
    "*": "days with zero volume in some assets; prices are aggregated spot quotes (USD) "
         "from one public finance site, not exchange trades",
}


def _default_source() -> Path:
    env = os.environ.get("RISKMODELS_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frame(csv: Path) -> pd.DataFrame:
    df = pd.read_csv(csv)
    if list(df.columns) != ["datetime", "open", "high", "low", "close", "volume"]:
        raise ValueError(f"{csv}: expected columns datetime,open,high,low,close,volume, got "
                         f"{list(df.columns)}")
    dt = pd.to_datetime(df["datetime"], format="ISO8601")
    keep = (dt <= pd.Timestamp(END)).to_numpy()
    out = pd.DataFrame({"datetime": dt[keep].astype("datetime64[ms]").to_numpy()})
    for c in PRICE_COLS:
        v = df[c].to_numpy(dtype=np.float64)[keep]
        f = v.astype(np.float32)
        lossy = ~((f.astype(np.float64) == v) | np.isnan(v))
        if lossy.any():
            i = int(np.flatnonzero(lossy)[0])
            raise ValueError(f"{csv}: {c} = {float(v[i])!r} on {out['datetime'].iloc[i].date()} is not exact "
                             "in float32; store this column as float64")
        out[c] = f
    vol = df["volume"].to_numpy()[keep]
    if not (np.issubdtype(vol.dtype, np.integer)
            or (np.isfinite(vol).all() and (vol == np.round(vol)).all())):
        raise ValueError(f"{csv}: volume is not a whole number on every row; store it as float64")
    out["volume"] = vol.astype(np.int64)
    return out


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd",
                      compression_level=19)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def build(source: str | os.PathLike[str], dest: str | os.PathLike[str],
          assets: tuple[str, ...] = DEFAULT_UNIVERSE) -> dict:
    """Write the embedded dataset from ``source`` into ``dest``; return the provenance."""
    from riskmodels.data.embedded import dataset_sha256

    src = Path(source)
    daily = src / "crypto-daily" if (src / "crypto-daily").is_dir() else src
    out_dir = Path(dest) / "crypto-daily"
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    for a in assets:
        csv = daily / f"{a}-USD_1d.csv"
        if not csv.is_file():
            raise FileNotFoundError(f"{csv} not found: --source must hold crypto-daily/{a}-USD_1d.csv")
        df = _frame(csv)
        name = f"{a}-USD_1d.parquet"
        _write_parquet(df, out_dir / name)
        files[name] = {
            "asset": a,
            "sha256": _sha256(out_dir / name),
            "rows": len(df),
            "first": str(df["datetime"].iloc[0].date()),
            "last": str(df["datetime"].iloc[-1].date()),
            "source_file": csv.name,
            "source_sha256": _sha256(csv),
        }
    prov = {
        "name": "public daily OHLCV, 2014-2025",
        "description": f"daily OHLCV of the default universe ({len(assets)} assets), UTC calendar "
                       f"days, USD quotes, up to {END}",
        "source": "public GitHub dataset of crypto OHLCV files downloaded from a public finance "
                  "API in Feb 2025 (the project's shared data, crypto-daily/)",
        "built_by": "python -m riskmodels.data.build_sample",
        "storage": "Parquet (zstd), one file per asset; open/high/low/close float32 (exact: the "
                   "source values are float32), volume int64",
        "end": END,
        "assets": list(assets),
        "known_defects": KNOWN_DEFECTS,
        "files": files,
        "sha256": dataset_sha256({k: v["sha256"] for k, v in files.items()}),
    }
    text = json.dumps(prov, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".provenance.", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, Path(dest) / "provenance.json")
    return prov


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m riskmodels.data.build_sample",
                                description="Build riskmodels' embedded daily dataset.")
    p.add_argument("--source", default=None,
                   help="folder with crypto-daily/ (default $RISKMODELS_DATA or ../shared/data)")
    p.add_argument("--dest", default=str(Path(__file__).resolve().parent / "embedded"),
                   help="output folder (default: the package's data/embedded/)")
    args = p.parse_args(argv)
    try:
        prov = build(args.source or _default_source(), args.dest)
    except (OSError, ValueError) as e:
        print(f"build_sample: error: {e}", file=sys.stderr)
        return 2
    size = sum((Path(args.dest) / "crypto-daily" / n).stat().st_size for n in prov["files"])
    print(f"wrote {len(prov['files'])} files ({size / 1e6:.2f} MB) to {args.dest}; "
          f"dataset sha256 {prov['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
