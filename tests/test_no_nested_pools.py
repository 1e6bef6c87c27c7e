"""No pool inside a pool: code that starts its own pool by default runs serially in a pool's worker.

The default backtest's EWMA row has ``n_jobs`` None (every core) for its
per-asset fits; in the engine's pool (one model per core) that forked a
second pool of two processes from the worker (three processes on two
cores, measured 2026-12-03). :func:`riskmodels.margin.garch_fit.default_jobs`
is 1 wherever :func:`riskmodels.workers.in_pool_worker` holds.
"""

from __future__ import annotations

import multiprocessing
import os

from riskmodels.margin import garch_fit
from riskmodels.workers import in_pool_worker, process_pool


def _inside() -> tuple[bool, int]:
    return in_pool_worker(), garch_fit.default_jobs()


def test_in_this_process_the_default_is_every_core():
    assert not in_pool_worker()
    assert garch_fit.default_jobs() == (os.cpu_count() or 1)


def test_in_a_pool_worker_the_default_is_serial():
    with process_pool(1, multiprocessing.get_context("forkserver")) as pool:
        assert pool.submit(_inside).result() == (True, 1)


def test_run_all_starts_no_pool_in_a_worker(monkeypatch):
    """``run_all`` with ``n_jobs`` None takes the serial branch when ``default_jobs`` says 1."""
    import numpy as np

    started = []
    monkeypatch.setattr(garch_fit, "default_jobs", lambda: 1)
    monkeypatch.setattr("riskmodels.workers.process_pool", lambda *a, **k: started.append(a))
    monkeypatch.setattr(garch_fit, "_run_packed", lambda t: t[0])
    out = garch_fit.run_all(("A", "B"), np.zeros((5, 2)), None, None)  # type: ignore[arg-type]
    assert out == ["A", "B"] and started == []
