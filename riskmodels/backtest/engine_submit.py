"""The model pool's tasks submitted from a thread, so that the engine's own thread can work meanwhile.

With the ``forkserver`` start method the first ``submit`` of a
:class:`~concurrent.futures.ProcessPoolExecutor` blocks until the server has
imported its preload and forked a worker (``read_signed`` of the child's
pid): in the default ``riskmodels backtest`` the parent reached its first
submit 0.35-0.46 s before the server was ready (three runs, 2026-12-04),
with its core idle. :func:`submit_all` does the submitting in a thread; the
engine runs the cheapest whole task in its own process meanwhile
(:func:`riskmodels.backtest.engine.run_models`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Submitter(threading.Thread):
    """Runs ``submit()`` once; an exception is kept in :attr:`error` for the caller to raise after :meth:`join`."""

    def __init__(self, submit: Callable[[], None]) -> None:
        super().__init__(name="riskmodels-submit", daemon=True)
        self._submit = submit
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._submit()
        except BaseException as exc:  # re-raised in the engine's thread
            self.error = exc


def submit_all(pool: Any, fn: Callable[..., Any], tasks: list[tuple[Any, int, slice]],
               task_args: Callable[[slice], tuple[Any, ...]], futures: dict[Any, tuple[str, int]]) -> Submitter:
    """Start a thread submitting ``fn(model, *task_args(sl))`` for each ``(model, chunk, sl)`` of ``tasks``.

    ``futures`` is filled as ``{future: (model label, chunk)}``; read it only
    after the returned thread's ``join()`` (and raise its ``error`` if set).
    """

    def submit() -> None:
        for m, i, sl in tasks:
            futures[pool.submit(fn, m, *task_args(sl))] = (m.label, i)

    t = Submitter(submit)
    t.start()
    return t
