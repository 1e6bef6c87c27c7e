"""Where price data comes from: one resolution order for every command.

Order (first match wins):

1. the ``--data DIR`` flag;
2. the ``RISKMODELS_DATA`` environment variable;
3. the fetch cache, :func:`default_cache_dir`: ``./data`` in the working
   directory if it holds price files, else ``$XDG_CACHE_HOME/riskmodels``
   (``~/.cache/riskmodels`` when ``XDG_CACHE_HOME`` is unset);
4. nothing found: with ``fetch_if_missing`` the default universe is downloaded
   into the cache (:func:`riskmodels.data.fetch.fetch`); with ``offline`` a
   :class:`DataNotFoundError` says which command to run.

A folder "has data" when it holds ``*.csv`` or ``*.parquet`` price files or a
``crypto-daily/`` sub-folder. A flag or environment variable that points at a
folder without data is an error (it is never silently skipped).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "ENV_DATA",
    "DataNotFoundError",
    "default_cache_dir",
    "has_price_data",
    "resolve_data_dir",
    "user_cache_dir",
]

ENV_DATA = "RISKMODELS_DATA"
FETCH_COMMAND = "riskmodels data fetch"


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
    """``./data`` if it holds price files, else :func:`user_cache_dir`."""
    local = Path.cwd() / "data"
    return local if has_price_data(local) else user_cache_dir()


def _missing_message(looked: list[str], cache: Path) -> str:
    return (
        "no price data found (looked in: " + "; ".join(looked) + "). "
        f"Run `{FETCH_COMMAND}` (needs internet, downloads the default universe from "
        f"Binance's public archive into {cache}), or point at existing files with "
        f"`--data DIR` or `{ENV_DATA}=DIR`."
    )


def resolve_data_dir(
    flag: str | os.PathLike[str] | None,
    *,
    offline: bool,
    fetch_if_missing: bool,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The folder to read prices from.

    Parameters
    ----------
    flag : path or None
        The ``--data`` command-line value.
    offline : bool
        Never download; raise :class:`DataNotFoundError` naming the command to run.
    fetch_if_missing : bool
        When no data is found (and not offline), fetch the default universe into
        :func:`default_cache_dir` first, announcing it through ``progress``.
    progress : callable, optional
        Receives one-line status messages (also passed to the fetch).

    Raises
    ------
    DataNotFoundError
        The flag or ``RISKMODELS_DATA`` names a folder without price data, or
        nothing was found and fetching is off (or fetched nothing usable).
    """
    if flag is not None and str(flag) != "":
        p = Path(flag).expanduser()
        if not has_price_data(p):
            raise DataNotFoundError(
                f"--data {flag}: no price files there (expected *.csv or *.parquet files or a "
                f"crypto-daily/ folder). Run `{FETCH_COMMAND} --dest {flag}` to download them."
            )
        return p
    env = os.environ.get(ENV_DATA)
    if env:
        p = Path(env).expanduser()
        if not has_price_data(p):
            raise DataNotFoundError(
                f"{ENV_DATA}={env}: no price files there (expected *.csv or *.parquet files or "
                f"a crypto-daily/ folder). Unset it, or run `{FETCH_COMMAND} --dest {env}`."
            )
        return p
    local = Path.cwd() / "data"
    cache = user_cache_dir()
    for cand in (local, cache):
        if has_price_data(cand):
            return cand
    looked = ["--data (not given)", f"{ENV_DATA} (not set)", str(local), str(cache)]
    if offline or not fetch_if_missing:
        raise DataNotFoundError(_missing_message(looked, cache))

    from riskmodels.data.fetch import DEFAULT_UNIVERSE, fetch

    if progress is not None:
        progress(
            f"no price data found; fetching the default universe ({len(DEFAULT_UNIVERSE)} "
            f"symbols, daily) from Binance's public archive into {cache} (one time; "
            "use --offline to stop this, --data DIR to use your own files)"
        )
    report = fetch(dest=cache, progress=progress)
    if not report.ok:
        raise DataNotFoundError(
            "fetching the default universe produced no usable data:\n" + report.table()
            + f"\nCheck the connection and rerun `{FETCH_COMMAND}`, or use `--data DIR`."
        )
    return cache
