"""Start-up overlap of ``riskmodels backtest``: the pool's forkserver early, the tail's imports while the models run.

The engine's model pool (:func:`riskmodels.backtest.engine.run_models`)
forks its workers from a ``forkserver`` that imports the engine and the
margin models (~0.9 s of CPU). Started by the pool, that import runs after
the parent's own imports and data loading, while the second core idles.
:func:`prestart` starts it before them, from a prediction made on the TOML
text alone (this module imports only the standard library, so the
prediction costs milliseconds): the dense run of a margin config with
``n_jobs > 1`` and more than one model, not streamed and without options.
A wrong prediction changes no number: the pool starts the server itself when
it was not started here, and a server started for nothing is an idle
process that exits with the run.

:class:`ImportOnFirstCall` wraps the run's progress callback: its first call
(once the models run), or :meth:`ImportOnFirstCall.start` (the CLI, when it
started the server), imports the modules only the tables and files after
the models need (:data:`TAIL_MODULES`) in a daemon thread, while this process
waits for the pool.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import tomllib
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

#: books above this many accounts are streamed (``riskmodels.backtest.stream.STREAM_ABOVE``; a test checks
#: they agree): this module cannot import that one (it would import numpy and the models)
STREAM_ABOVE = 20_000


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _configs(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The default config and the ``--config`` file as parsed TOML, or None if either does not read or parse."""
    try:
        base = tomllib.loads(files("riskmodels").joinpath("configs/default.toml").read_text(encoding="utf-8"))
        user = tomllib.loads(Path(args.config).read_text(encoding="utf-8")) if getattr(args, "config", None) else {}
    except (OSError, ValueError):
        return None
    return base, user


def will_use_pool(args: argparse.Namespace) -> bool:
    """True if ``riskmodels backtest`` with ``args`` is predicted to run its models in a process pool.

    The prediction follows the engine's rule on the merged config (the
    default, then ``--config``; tables merge key by key, lists replace):
    ``[backtest] n_jobs > 1`` and at least two ``[[models]]``, a margin market
    (not ``[market] kind = "lending"``), a generated book without
    ``[options]`` (options books use their own spawned pool), and a dense run
    (no ``--chunk-accounts``, ``--workers`` or ``--scheduler``, ``[backtest]
    chunk_accounts = 0`` and at most :data:`STREAM_ABOVE` accounts). A file
    that does not parse gives False (the real config check reports it).
    """
    if multiprocessing.current_process().daemon:
        return False
    if any(getattr(args, k, None) for k in ("chunk_accounts", "workers", "scheduler")):
        return False
    docs = _configs(args)
    if docs is None:
        return False
    base, user = docs
    if _table(user, "market").get("kind", "margin") != "margin" or "options" in user:
        return False
    bt = {**_table(base, "backtest"), **_table(user, "backtest")}
    book = {**_table(base, "book"), **_table(user, "book")}
    models = user.get("models", base.get("models", []))
    try:
        accounts = int(getattr(args, "accounts", None) or book.get("accounts", 0))
        n_jobs = int(bt.get("n_jobs", 1))
        chunk = int(bt.get("chunk_accounts", 0))
    except (TypeError, ValueError):
        return False
    if book.get("source", "generate") != "generate" or chunk or accounts > STREAM_ABOVE:
        return False
    return n_jobs > 1 and isinstance(models, list) and len(models) > 1


#: model names whose fit imports ``arch`` (GARCH and EWMA estimate with its components; ~0.6 s of CPU)
ARCH_MODELS = frozenset({"garch", "ewma"})


def _names(node: Any) -> set[str]:
    """Every ``name`` value in a TOML tree (a wrapper's ``params.inner`` included)."""
    if isinstance(node, dict):
        here = {node["name"]} if isinstance(node.get("name"), str) else set()
        return here.union(*(_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_names(v) for v in node))
    return set()


def uses_arch(args: argparse.Namespace) -> bool:
    """True if a model of the merged config (default, then ``--config``) is named in :data:`ARCH_MODELS`."""
    docs = _configs(args)
    if docs is None:
        return False
    base, user = docs
    return bool(_names(user.get("models", base.get("models", []))) & ARCH_MODELS)


def prestart(args: argparse.Namespace) -> bool:
    """Start the forkserver of the model pool now if :func:`will_use_pool`; True if started.

    The server also imports ``arch.univariate`` when :func:`uses_arch`: the
    GARCH row's worker then forks with it loaded instead of importing it
    inside its first fit (~0.6 s of CPU on the run's longest worker; the
    server imports while this process loads the data).
    """
    if not will_use_pool(args):
        return False
    from riskmodels.workers import ENGINE_PRELOAD, start_forkserver

    return start_forkserver(ENGINE_PRELOAD + (("arch.univariate",) if uses_arch(args) else ()))


#: modules only the tables and files after the models import (matplotlib's alone: ~0.5 s of CPU; scipy.stats
#: ~0.3 s: the coverage tests import it where they use it)
TAIL_MODULES = ("scipy.stats", "matplotlib.figure", "matplotlib.backends.backend_agg", "riskmodels.backtest.feedback_report",
                "riskmodels.backtest.options_path", "riskmodels.backtest.paths_parquet", "riskmodels.csv_fast",
                "riskmodels.report.console")


#: tail modules whose ``warm()`` compiles their numba kernels when the cache lacks them (a no-op when warm)
TAIL_WARM = ("riskmodels.backtest._verdict_kernel",)


def preimport(names: tuple[str, ...], warm: tuple[str, ...] = ()) -> None:
    """Import ``names``, then call ``warm()`` of the modules ``warm``; a module that fails is skipped.

    (The import or call that needs it in the main thread raises the error.)
    """
    import importlib

    for name in (*names, *warm):
        try:
            mod = importlib.import_module(name)
            if name in warm:
                mod.warm()
        except Exception:  # the main thread's own import or call reports it
            continue


class ImportOnFirstCall:
    """A progress callback that, on its first call, imports ``modules`` in a daemon thread, then calls ``progress``.

    The first call comes once the models run (with the pool: when the first
    row is done; in one process: before the first model), while this process
    mostly waits: the imports then cost the run's tail nothing. They are the
    modules the tail imports anyway, so no output changes.
    """

    def __init__(self, progress: Callable[[str, int, int], None], modules: tuple[str, ...] = TAIL_MODULES) -> None:
        self.progress, self.modules = progress, modules
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the import thread now (once; the first call then only forwards).

        The CLI calls it just before the models when it started the pool's
        forkserver (:func:`prestart`): the server's own imports (the engine,
        ``arch``) end after this process is ready to submit (measured: the
        parent at 0.9 s, the server at ~1.4 s), and the thread's imports fill
        that wait instead of competing with the workers later.
        """
        if self.thread is None:
            self.thread = threading.Thread(target=preimport, args=(self.modules, TAIL_WARM),
                                           name="riskmodels-preimport", daemon=True)
            self.thread.start()

    def __call__(self, what: str, i: int, n: int) -> None:
        self.start()
        self.progress(what, i, n)
