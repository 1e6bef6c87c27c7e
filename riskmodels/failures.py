"""How a command fails: one message and a non-zero exit code, never a traceback (unless ``--debug``).

:func:`run_guarded` runs a sub-command's function and maps what it raises:

=====================================  =====  =====================================================
raised                                 exit   printed on stderr
=====================================  =====  =====================================================
:class:`~riskmodels.errors.UserError`   2     ``riskmodels: error: <file/key: value: remedy>``
``ValueError``, ``KeyError``, ``OSError``,
CSV/TOML parse and decode errors        2     the same, with the exception's own text
``KeyboardInterrupt``, SIGTERM, SIGHUP 130/143 ``riskmodels: interrupted ...``
anything else (a bug)                   3     ``riskmodels: internal error: ...; rerun with --debug``
=====================================  =====  =====================================================

SIGTERM and SIGHUP are turned into ``SystemExit`` in the main thread, so
``finally`` blocks and context managers run: worker pools shut down, spill
folders and half-written output folders are removed (see
:mod:`riskmodels.outputs` and :mod:`riskmodels.workers`). ``--debug`` (or
``RISKMODELS_DEBUG=1``) re-raises with the full traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from riskmodels.errors import UserError


def _user_error_types() -> tuple[type[BaseException], ...]:
    import pandas as pd

    return (UserError, ValueError, KeyError, OSError, UnicodeError, tomllib.TOMLDecodeError,
            pd.errors.ParserError, pd.errors.EmptyDataError)


def describe(exc: BaseException) -> str:
    """The one-line text of an error (a KeyError's message without its quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, UnicodeDecodeError):
        return (f"a file is not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                "is it compressed or binary? Price and book files are plain CSV")
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}"
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split("\n")[:3])


#: the stop signals :func:`terminate_as_exit`'s handler received (cleared when a guarded command starts)
_RECEIVED: list[int] = []


def check_stop() -> None:
    """Raise ``SystemExit(128 + signum)`` if a stop signal arrived and its exception was swallowed.

    The handler raises in whatever Python code the main thread runs. Where
    that code is a callback of C code that discards exceptions (llvmlite's
    object-cache callback, seen when SIGTERM hit numba loading a cached
    kernel: "Exception ignored on calling ctypes callback function") the run
    went on and wrote its output with exit code 0. The commands call this at
    their checkpoints (each model row that arrives, before an output folder
    is put in place), so such a signal still stops the run there.
    """
    if _RECEIVED:
        raise SystemExit(128 + _RECEIVED[0])


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """In the main thread, SIGTERM and SIGHUP raise ``SystemExit(128 + signum)`` (cleanup runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _RECEIVED.clear()

    def handler(signum: int, _frame: object) -> None:
        _RECEIVED.append(signum)
        raise SystemExit(128 + signum)

    old = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        _RECEIVED.clear()  # a later command (a test calling main() again, the API) starts clean


def run_guarded(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
                debug: bool = False) -> int:
    """Run ``func(args)``; return its exit code, or print the error as one line and return 2/3/130."""
    debug = debug or os.environ.get("RISKMODELS_DEBUG", "") not in ("", "0")
    try:
        with terminate_as_exit():
            try:
                code = int(func(args) or 0)
            except Exception as exc:
                # the handler's SystemExit came back as another error (raised inside a callback of C code, e.g.
                # numba's dispatcher: "SystemError: ... returned a result with an exception set"), or C code
                # discarded it and the run then failed on what the signal interrupted: stopped by the signal
                if _RECEIVED:
                    raise SystemExit(128 + _RECEIVED[0]) from exc
                raise
            check_stop()  # a signal whose exception C code discarded: the run was stopped all the same
            return code
    except KeyboardInterrupt:
        if debug:
            raise
        print("riskmodels: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, int) and exc.code > 128:
            print(f"riskmodels: stopped by signal {exc.code - 128}; no partial output was kept", file=sys.stderr)
        raise
    except _user_error_types() as exc:
        if debug:
            raise
        print(f"riskmodels: error: {describe(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line, the traceback under --debug
        if debug:
            raise
        print(f"riskmodels: internal error: {type(exc).__name__}: {describe(exc)}; rerun with --debug for the "
              "traceback and report it", file=sys.stderr)
        return 3


__all__ = ["check_stop", "describe", "run_guarded", "terminate_as_exit"]
