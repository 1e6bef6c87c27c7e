"""The embedded dataset: real daily OHLCV shipped inside the package.

Like the example data sets of ``arch`` and ``statsmodels``, riskmodels carries
one small real dataset so that ``riskmodels backtest`` runs offline on a fresh
machine and gives the same numbers everywhere: the default universe's daily
OHLCV (18 assets, to 2025-02-20, "public daily OHLCV, 2014-2025"), built by
:mod:`riskmodels.data.build_sample` from the shared data, stored as one Parquet
file per asset under ``riskmodels/data/embedded/crypto-daily/`` with
``provenance.json`` beside it (source, known defects, per-file SHA-256).

Dataset hash
------------
The dataset's SHA-256 is the SHA-256 of its ``sha256sum`` manifest: the lines
``"<sha256 of file>  <file name>\\n"`` sorted by file name. It can be checked
without Python::

    cd riskmodels/data/embedded/crypto-daily && sha256sum *.parquet | sha256sum
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "EMBEDDED_DIR",
    "EMBEDDED_NAME",
    "EmbeddedDataError",
    "dataset_sha256",
    "embedded_info",
    "verify_embedded",
]

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_NAME = "embedded"


class EmbeddedDataError(ValueError):
    """The embedded dataset is missing or its files do not match their recorded SHA-256."""


def dataset_sha256(file_hashes: Mapping[str, str]) -> str:
    """SHA-256 of the ``sha256sum`` manifest ``"<hash>  <name>\\n"`` sorted by name."""
    manifest = "".join(f"{file_hashes[n]}  {n}\n" for n in sorted(file_hashes))
    return hashlib.sha256(manifest.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EmbeddedInfo:
    """What :func:`embedded_info` returns: where the data is and what it is."""

    root: Path
    name: str
    sha256: str
    assets: tuple[str, ...]
    end: str
    provenance: dict

    def describe(self) -> str:
        """One line for the terminal and the report."""
        return (f"the embedded dataset ({self.name}, {len(self.assets)} assets, daily to "
                f"{self.end}, sha256 {self.sha256[:12]})")

    def as_dict(self) -> dict:
        return {"source": EMBEDDED_NAME, "name": self.name, "sha256": self.sha256,
                "path": str(self.root), "assets": list(self.assets), "end": self.end}


@lru_cache(maxsize=1)
def _cached(root: str) -> EmbeddedInfo:
    base = Path(root)
    prov_path = base / "provenance.json"
    try:
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EmbeddedDataError(
            f"the embedded dataset is missing or unreadable ({prov_path}: {e}); reinstall "
            "riskmodels, rebuild it with `python -m riskmodels.data.build_sample`, or use "
            "--data DIR / RISKMODELS_DATA"
        ) from None
    return EmbeddedInfo(base, str(prov["name"]), str(prov["sha256"]), tuple(prov["assets"]),
                        str(prov["end"]), prov)


def embedded_info(root: str | Path = EMBEDDED_DIR) -> EmbeddedInfo:
    """The embedded dataset's location, name, SHA-256 and provenance (read once)."""
    return _cached(str(root))


def verify_embedded(root: str | Path = EMBEDDED_DIR) -> EmbeddedInfo:
    """Check every embedded file against its recorded SHA-256 and the dataset hash.

    Raises
    ------
    EmbeddedDataError
        A file is missing, extra, or altered, naming it and the remedy.
    """
    info = embedded_info(root)
    folder = Path(root) / "crypto-daily"
    recorded = {n: f["sha256"] for n, f in info.provenance["files"].items()}
    present = {p.name for p in folder.glob("*.parquet")} if folder.is_dir() else set()
    missing = sorted(set(recorded) - present)
    extra = sorted(present - set(recorded))
    if missing or extra:
        raise EmbeddedDataError(
            f"the embedded dataset in {folder} does not match provenance.json (missing "
            f"{missing}, unexpected {extra}); reinstall riskmodels or rebuild it with "
            "`python -m riskmodels.data.build_sample`"
        )
    actual = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in sorted(recorded)}
    bad = [n for n in recorded if actual[n] != recorded[n]]
    if bad:
        raise EmbeddedDataError(
            f"embedded file(s) {bad} in {folder} differ from their recorded SHA-256; the dataset "
            "was altered: reinstall riskmodels or rebuild it with "
            "`python -m riskmodels.data.build_sample`"
        )
    if dataset_sha256(actual) != info.sha256:
        raise EmbeddedDataError(f"{folder}: dataset sha256 does not match provenance.json")
    return info
