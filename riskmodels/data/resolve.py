"""Where price data comes from: one explicit resolution order for every command.

Order (first match wins):

1. the ``--data DIR`` flag;
2. the config's ``[data] dir`` (a config file is the run's full description, so
   the data it names wins over the shell's environment);
3. the ``RISKMODELS_DATA`` environment variable;
4. otherwise the **embedded dataset** shipped in the package
   (:mod:`riskmodels.data.embedded`): the default universe's daily OHLCV to
   2025-02-20. Nothing is downloaded and nothing on the machine is looked at.

Each of 1-3 may also be one of two names instead of a folder:

``embedded``
    the embedded dataset (e.g. ``--data embedded`` while ``RISKMODELS_DATA`` is set);
``binance`` (or ``fetch-cache``)
    the fetch cache written by ``riskmodels data fetch``:
    ``$XDG_CACHE_HOME/riskmodels`` (``~/.cache/riskmodels``). It is used only
    when named: its presence never changes a run silently.

A folder "has data" when it holds ``*.csv`` or ``*.parquet`` price files or a
``crypto-daily/`` sub-folder. A flag, key or variable that names a folder
without data is an error (it is never silently skipped).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "CACHE_NAMES",
    "EMBEDDED_NAMES",
    "ENV_DATA",
    "DataChoice",
    "DataNotFoundError",
    "choose_data",
    "default_cache_dir",
    "has_price_data",
    "resolve_data_dir",
    "user_cache_dir",
]

ENV_DATA = "RISKMODELS_DATA"
FETCH_COMMAND = "riskmodels data fetch"
EMBEDDED_NAMES = ("embedded",)
CACHE_NAMES = ("binance", "fetch-cache")

Origin = Literal["--data", "[data] dir", "RISKMODELS_DATA", "default"]


class DataNotFoundError(FileNotFoundError):
    """No price data where the resolution order looked; the message says what to run."""


def has_price_data(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a folder with ``*.csv``/``*.parquet`` files or ``crypto-daily/``."""
    p = Path(path)
    if not p.is_dir():
        return False
    if (p / "crypto-daily").is_dir():
        return True
    return any(f.is_file() for pat in ("*.csv", "*.parquet") for f in p.glob(pat))


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/riskmodels``, or ``~/.cache/riskmodels``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "riskmodels"


def default_cache_dir() -> Path:
    """The fetch cache (:func:`user_cache_dir`): where ``riskmodels data fetch`` writes and
    what ``--data binance`` reads. It never depends on the working directory."""
    return user_cache_dir()


@dataclass(frozen=True)
class DataChoice:
    """The data a run reads, and why.

    Attributes
    ----------
    path : Path
        Folder handed to the loader.
    kind : {"embedded", "fetch-cache", "dir"}
    origin : str
        Which setting chose it: ``--data``, ``[data] dir``, ``RISKMODELS_DATA`` or
        ``default`` (nothing set: the embedded dataset).
    name : str
        ``"embedded"`` / ``"binance fetch cache"`` / the folder.
    sha256 : str or None
        The embedded dataset's SHA-256 (None for other data: see the per-file
        hashes in the run's provenance).
    """

    path: Path
    kind: Literal["embedded", "fetch-cache", "dir"]
    origin: Origin
    name: str
    sha256: str | None = None

    def describe(self) -> str:
        """One line: what is read and how to choose other data."""
        if self.kind == "embedded":
            from riskmodels.data.embedded import embedded_info

            what = f"{embedded_info(self.path).describe()}, offline"
            hint = "; --data DIR, RISKMODELS_DATA or [data] dir choose other data"
            return f"data: {what}" + (hint if self.origin == "default" else f" (from {self.origin})")
        if self.kind == "fetch-cache":
            return f"data: the binance fetch cache {self.path} (from {self.origin})"
        return f"data: {self.path} (from {self.origin})"

    def label(self) -> str:
        """The dataset's name and hash for a report header."""
        if self.sha256:
            return f"{self.name} (sha256 {self.sha256})"
        return f"{self.name} (per-file SHA-256 under files_sha256)"

    def as_dict(self) -> dict[str, str | None]:
        """For summary.json: kind, origin, name, sha256, and the folder unless it is the
        embedded dataset (whose install path differs between machines while its bytes
        do not: summary.json stays byte-identical everywhere)."""
        out: dict[str, str | None] = {"kind": self.kind, "origin": self.origin,
                                      "name": self.name, "sha256": self.sha256}
        if self.kind != "embedded":
            out["path"] = str(self.path)
        return out


def _embedded(origin: Origin) -> DataChoice:
    from riskmodels.data.embedded import EMBEDDED_DIR, embedded_info

    info = embedded_info(EMBEDDED_DIR)
    return DataChoice(EMBEDDED_DIR, "embedded", origin, f"embedded: {info.name}", info.sha256)


def _named(value: str, origin: Origin, remedy: str) -> DataChoice:
    text = str(value).strip()
    if text.lower() in EMBEDDED_NAMES:
        return _embedded(origin)
    if text.lower() in CACHE_NAMES:
        cache = user_cache_dir()
        if not has_price_data(cache):
            raise DataNotFoundError(
                f"{origin} {text}: the fetch cache {cache} holds no price files yet; run "
                f"`{FETCH_COMMAND}` (needs internet) first, or leave the data unset to use the "
                "embedded dataset"
            )
        return DataChoice(cache, "fetch-cache", origin, "binance fetch cache")
    p = Path(text).expanduser()
    if not has_price_data(p):
        raise DataNotFoundError(
            f"{origin} {text}: no price files there (expected *.csv or *.parquet files or a "
            f"crypto-daily/ folder). {remedy}"
        )
    return DataChoice(p, "dir", origin, str(p))


def choose_data(flag: str | os.PathLike[str] | None = None,
                config_dir: str | os.PathLike[str] | None = None,
                interval: str | None = None) -> DataChoice:
    """The data to read, by the order in the module docstring.

    Parameters
    ----------
    flag : path or str, optional
        The ``--data`` value (a folder, ``embedded`` or ``binance``).
    config_dir : path or str, optional
        The config's ``[data] dir`` (``""`` = not set).
    interval : str, optional
        The bar interval the run needs; the embedded dataset is daily only, so
        another interval with the embedded dataset is an error saying so.

    Raises
    ------
    DataNotFoundError
        The chosen setting names a folder without price files, or the fetch
        cache before anything was fetched.
    """
    choice = _choose(flag, config_dir)
    if choice.kind == "embedded" and interval not in (None, "1d"):
        raise DataNotFoundError(
            f"[data] interval = {interval!r}: the embedded dataset is daily (1d) only; use "
            f"--data DIR (e.g. a folder with crypto-hourly/), or `{FETCH_COMMAND} --interval "
            f"{interval}` then --data binance"
        )
    return choice


def _choose(flag: str | os.PathLike[str] | None,
            config_dir: str | os.PathLike[str] | None) -> DataChoice:
    if flag is not None and str(flag).strip() != "":
        return _named(str(flag), "--data",
                      f"Run `{FETCH_COMMAND} --dest {flag}` to download them, or drop --data "
                      "to use the embedded dataset.")
    if config_dir is not None and str(config_dir).strip() != "":
        return _named(str(config_dir), "[data] dir",
                      "Fix the key, or set it to \"\" to use the embedded dataset.")
    env = os.environ.get(ENV_DATA)
    if env:
        return _named(env, "RISKMODELS_DATA",
                      f"Unset it (the embedded dataset is used then), or run "
                      f"`{FETCH_COMMAND} --dest {env}`.")
    return _embedded("default")


def resolve_data_dir(
    flag: str | os.PathLike[str] | None,
    *,
    offline: bool = True,
    fetch_if_missing: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The folder to read prices from (:func:`choose_data` with ``flag``; kept for callers
    that merge ``--data`` and ``[data] dir`` themselves).

    ``offline`` and ``fetch_if_missing`` are accepted for compatibility and ignored:
    resolution never downloads (the embedded dataset is the default). ``progress``
    receives the :meth:`DataChoice.describe` line.
    """
    choice = choose_data(flag)
    if progress is not None:
        progress(choice.describe())
    return choice.path
