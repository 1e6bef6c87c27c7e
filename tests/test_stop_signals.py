"""A stop signal stops a command whatever code it lands in (issue 23 review: three ways SIGTERM went wrong).

Found by sending SIGTERM 1-3 s into the parallel backtest of
``tests/test_outputs_atomic.py`` a few hundred times (2026-12-03):

* 1 in ~20-40 runs hung for ever: a worker killed while it wrote its result
  left the pool's manager thread in ``recv()`` on the result pipe, which the
  interpreter's exit joins (:func:`riskmodels.workers.terminate_pool`);
* a few exited 3 ("internal error"): the signal's ``SystemExit`` raised inside
  numba's dispatcher came back as ``SystemError`` (:func:`riskmodels.failures.run_guarded`);
* one exited 0 with its output written: the ``SystemExit`` raised in llvmlite's
  ctypes callback was discarded ("Exception ignored on calling ctypes callback
  function"; :func:`riskmodels.failures.check_stop`).

Each is reproduced here without timing luck.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from riskmodels.failures import run_guarded
from riskmodels.outputs import atomic_output

ROOT = Path(__file__).resolve().parents[1]


def _swallowed_sigterm() -> None:
    """What a C callback does with the handler's exception: the handler runs, its SystemExit is discarded."""
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler), "run_guarded installs a handler"
    try:
        handler(signal.SIGTERM, None)
    except SystemExit:
        pass


def test_a_signal_exit_chained_behind_another_error_exits_with_the_signal_code(capsys: pytest.CaptureFixture[str]) -> None:
    def func(_args: argparse.Namespace) -> int:
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler), "run_guarded installs a handler"
        try:
            handler(signal.SIGTERM, None)  # the signal lands in a Python callback of numba's dispatcher
        except SystemExit as e:  # which hands the exception back as another one
            raise SystemError("CPUDispatcher(<function k>) returned a result with an exception set") from e
        return 0

    with pytest.raises(SystemExit) as info:
        run_guarded(func, argparse.Namespace())
    assert info.value.code == 143
    assert "stopped by signal 15" in capsys.readouterr().err


def test_an_unrelated_error_is_still_an_internal_error(capsys: pytest.CaptureFixture[str]) -> None:
    def func(_args: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    assert run_guarded(func, argparse.Namespace()) == 3
    assert "internal error: RuntimeError: a bug" in capsys.readouterr().err


def test_a_swallowed_signal_still_stops_the_command_and_keeps_no_output(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def func(_args: argparse.Namespace) -> int:
        with atomic_output(out, command="test") as stage:
            (stage / "a.csv").write_text("x\n1\n")
            _swallowed_sigterm()  # the run goes on, as it did after llvmlite discarded the exception
        return 0

    with pytest.raises(SystemExit) as info:
        run_guarded(func, argparse.Namespace())
    assert info.value.code == 143
    assert not out.exists() and list(tmp_path.iterdir()) == []  # the staging folder is gone too


def test_a_swallowed_signal_outside_any_output_still_gives_the_signal_code() -> None:
    def func(_args: argparse.Namespace) -> int:
        _swallowed_sigterm()
        return 0

    with pytest.raises(SystemExit) as info:
        run_guarded(func, argparse.Namespace())
    assert info.value.code == 143
    assert run_guarded(lambda _a: 0, argparse.Namespace()) == 0  # the next command starts clean


def test_terminate_pool_returns_while_a_killed_worker_was_sending_its_result(tmp_path: Path) -> None:
    """The pool is terminated while a worker is half-way through sending its result; the process must exit.

    The task writes the start of a result message itself (the 4-byte length
    header of :mod:`multiprocessing.connection` announcing 1,000 bytes, then
    10 of them) to the pool's result pipe and waits: the manager thread is
    then in ``recv()`` of that message, as when SIGTERM killed a worker
    sending a real result. Before the fix the interpreter's exit joined that
    thread for ever and the child below hit the timeout (reproduced with the
    previous ``terminate_pool``). It runs in a child so that a hang fails the
    test instead of hanging the suite.
    """
    marker = tmp_path / "sending"
    script = tmp_path / "half.py"  # a file: the forkserver's workers import the task function from it
    script.write_text(textwrap.dedent(f"""
        import multiprocessing as mp, os, struct, sys, time
        from pathlib import Path
        from riskmodels.workers import process_pool

        MARKER = Path({str(marker)!r})

        def half_sent(_):
            frame = sys._getframe()
            while "result_queue" not in frame.f_locals:  # concurrent.futures.process._process_worker's queue
                frame = frame.f_back
            conn = frame.f_locals["result_queue"]._writer
            os.write(conn.fileno(), struct.pack("!i", 1000) + b"x" * 10)
            MARKER.touch()
            time.sleep(600)

        if __name__ == "__main__":
            ctx = mp.get_context("forkserver")
            try:
                with process_pool(1, ctx) as pool:
                    pool.submit(half_sent, 0)
                    end = time.monotonic() + 60
                    while not MARKER.exists() and time.monotonic() < end:
                        time.sleep(0.005)
                    print("half sent", MARKER.exists(), file=sys.stderr)
                    time.sleep(0.2)  # the manager thread reads the header, then waits for the rest
                    raise SystemExit(143)
            finally:
                manager = getattr(pool, "_executor_manager_thread", None)
                print("manager alive", manager is not None and manager.is_alive(), file=sys.stderr)
    """))
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "half sent True" in p.stderr, p.stderr
    assert p.returncode == 143, p.stderr


def test_a_swallowed_signal_followed_by_an_error_exits_with_the_signal_code() -> None:
    """The run goes on after a discarded SystemExit and then fails on what the signal interrupted (review finding)."""
    def func(_args: argparse.Namespace) -> int:
        _swallowed_sigterm()
        raise ValueError("a half-built table")

    with pytest.raises(SystemExit) as info:
        run_guarded(func, argparse.Namespace())
    assert info.value.code == 143


def test_simulation_refuses_an_asset_mask_of_the_wrong_shape() -> None:
    """The kernels index the mask without bounds checks: a wrong shape is an error, not a read past the array."""
    import numpy as np
    import pandas as pd

    from riskmodels.backtest.simulation import LiquidationPolicy
    from riskmodels.backtest.simulation_fast import simulate_fast
    from riskmodels.data.panel import PricePanel
    from riskmodels.margin.haircut import FixedHaircut
    from riskmodels.portfolio import Book

    T, A = 40, 3
    close = 100.0 * np.exp(np.cumsum(np.full((T, A), 0.001), axis=0))
    pan = PricePanel(pd.date_range("2024-01-01", periods=T), ("A", "B", "C"), close, close * 1.01, close * 0.99,
                     close, np.ones_like(close))
    book = Book(pan.assets, np.full((2, A), 100.0), np.zeros((2, A)))
    fitted = FixedHaircut().fit(pan)
    with pytest.raises(ValueError, match="asset_ok has shape"):
        simulate_fast(fitted, book, LiquidationPolicy(), 5, None, np.ones((T, A - 1), dtype=bool))
