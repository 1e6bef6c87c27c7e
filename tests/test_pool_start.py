"""The CLI's early forkserver start (riskmodels.backtest.pool_start) and the mapped spill files."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest

from riskmodels.backtest import engine_transfer, pool_start
from riskmodels.backtest.pool_start import will_use_pool


def _args(tmp_path: Path | None = None, text: str | None = None, **kw) -> argparse.Namespace:
    config = None
    if text is not None:
        assert tmp_path is not None
        config = tmp_path / "c.toml"
        config.write_text(text)
    base = {"config": config, "accounts": None, "chunk_accounts": None, "workers": None, "scheduler": None}
    return argparse.Namespace(**{**base, **kw})


def test_stream_threshold_is_the_streamed_runs_own():
    from riskmodels.backtest.stream import STREAM_ABOVE

    assert pool_start.STREAM_ABOVE == STREAM_ABOVE


def test_default_run_is_predicted_pooled_and_the_engine_agrees():
    from riskmodels.backtest.engine import account_splits, build_models
    from riskmodels.config import load_config

    assert will_use_pool(_args())
    cfg = load_config(None)
    models = build_models(cfg)
    n_jobs = int(cfg["backtest"]["n_jobs"])
    share = n_jobs if len(models) < n_jobs else 1
    tasks = sum(len(account_splits(m, share, int(cfg["book"]["accounts"]))) for m in models)
    assert n_jobs > 1 and tasks > 1  # the engine's own condition for the pool


@pytest.mark.parametrize("text, kw", [
    ("[backtest]\nn_jobs = 1\n", {}),
    ('[[models]]\nname = "historical_var"\n', {}),  # one model: the list replaces the default's
    ('[market]\nkind = "lending"\n', {}),
    ("[backtest]\nchunk_accounts = 500\n", {}),
    ('[book]\nsource = "book.csv"\n', {}),
    ("[options]\n", {}),
    (None, {"chunk_accounts": 100}),
    (None, {"workers": 2}),
    (None, {"scheduler": "tcp://x:1"}),
    (None, {"accounts": 20_001}),
    ("this is [not toml", {}),
])
def test_runs_without_the_model_pool_start_no_server(tmp_path, text, kw):
    assert not will_use_pool(_args(tmp_path, text, **kw))


def test_a_config_that_keeps_the_pool(tmp_path):
    text = '[book]\naccounts = 300\n[[models]]\nname = "historical_var"\n[[models]]\nname = "scenario_grid"\n'
    assert will_use_pool(_args(tmp_path, text))
    assert will_use_pool(_args(tmp_path, "[backtest]\nn_jobs = 2\n", accounts=20_000))


@pytest.mark.parametrize("mapped", [True, False])
def test_spill_files_load_as_the_arrays_written_and_are_deleted(tmp_path, monkeypatch, mapped):
    monkeypatch.setattr(engine_transfer, "MAP_SPILLS", mapped)
    rng = np.random.default_rng(0)
    arrays = [rng.random((7, 5)).astype(np.float32), rng.random((6, 3)) < 0.5, rng.standard_normal((4, 9)),
              np.zeros((0, 4)), np.asfortranarray(rng.random((3, 8)))]
    for i, a in enumerate(arrays):
        f = str(tmp_path / f"{i}.npy")
        np.save(f, a, allow_pickle=False)
        back = engine_transfer._load(engine_transfer._Spilled(f))
        assert not os.path.exists(f)
        assert type(back) is np.ndarray and back.dtype == a.dtype and back.shape == a.shape
        np.testing.assert_array_equal(back, a)
        assert back.flags.writeable
        if back.size:
            back.flat[0] = back.flat[-1]  # writable, and the write stays private
            np.testing.assert_array_equal(back.flat[1:-1], a.flat[1:-1])


def test_import_on_first_call_imports_once_and_forwards_every_call():
    import sys

    from riskmodels.backtest.pool_start import TAIL_MODULES, ImportOnFirstCall

    calls = []
    cb = ImportOnFirstCall(lambda *a: calls.append(a), modules=("json", "riskmodels.no_such_module"))
    cb("a: done", 1, 3)
    first = cb.thread
    cb("b: done", 2, 3)
    assert cb.thread is first and calls == [("a: done", 1, 3), ("b: done", 2, 3)]
    first.join(10)
    assert not first.is_alive() and "json" in sys.modules  # a missing module is skipped, not raised
    assert "matplotlib.figure" in TAIL_MODULES


def test_preimport_calls_warm_of_the_warm_modules_only(monkeypatch):
    """``preimport(names, warm)``: imports all, calls ``warm()`` of the ``warm`` ones; a failing warm-up is skipped."""
    import types

    from riskmodels.backtest import pool_start

    called = []
    mods = {"m_plain": types.SimpleNamespace(warm=lambda: called.append("plain")),
            "m_warm": types.SimpleNamespace(warm=lambda: called.append("warm")),
            "m_bad": types.SimpleNamespace(warm=lambda: 1 / 0)}
    monkeypatch.setattr("importlib.import_module", lambda name: mods[name])
    pool_start.preimport(("m_plain",), ("m_bad", "m_warm"))
    assert called == ["warm"]
    assert pool_start.TAIL_WARM == ("riskmodels.backtest._verdict_kernel",)


def test_verdict_warm_up_compiles_only_on_a_cold_cache(monkeypatch):
    from riskmodels.backtest import _verdict_kernel as vk

    calls = []
    monkeypatch.setattr(vk, "group_counts", lambda *a: calls.append("group"))
    monkeypatch.setattr(vk, "boot_tail_counts", lambda *a: calls.append("boot"))
    monkeypatch.setattr("riskmodels._numba_cache.is_cached", lambda *k: True)
    vk.warm()
    assert calls == []
    monkeypatch.setattr("riskmodels._numba_cache.is_cached", lambda *k: False)
    vk.warm()
    assert calls == ["boot", "group"]


def test_verdict_warm_up_builds_the_signature_the_verdict_calls(monkeypatch):
    """warm() must compile what exceedance_z calls (read-only starts): else the run's tail compiles it again."""
    from riskmodels.backtest import _verdict_kernel as vk
    from riskmodels.backtest.verdict import exceedance_z

    rng = np.random.default_rng(3)
    monkeypatch.setattr("riskmodels._numba_cache.is_cached", lambda *k: False)  # warm() builds (or loads) here
    vk.warm()
    before = list(vk.boot_tail_counts.signatures)
    assert before
    n = np.full(300, 50.0)
    exceedance_z(rng.binomial(50, 0.02, 300).astype(float), n, 0.02, 2, n_boot=20)
    assert vk.boot_tail_counts.signatures == before


@pytest.mark.parametrize(("text", "expected"), [
    (None, True),  # the default comparison has GARCH-t and EWMA rows
    ('[[models]]\nname = "fixed_haircut"\n[[models]]\nname = "scenario_grid"\n', False),
    ('[[models]]\nname = "fixed_haircut"\n[[models]]\nname = "apc_buffer"\n'
     'params = { inner = { name = "garch" }, buffer = 0.25 }\n', True),  # a wrapper's inner model counts
    ('[[models]]\nname = "ewma"\n', True),
    ("not toml [", False),
])
def test_the_server_preloads_arch_only_for_models_that_fit_with_it(tmp_path, text, expected):
    assert pool_start.uses_arch(_args(tmp_path, text) if text is not None else _args()) is expected


def test_started_import_thread_is_the_one_the_first_call_uses():
    from riskmodels.backtest.pool_start import ImportOnFirstCall

    calls = []
    cb = ImportOnFirstCall(lambda *a: calls.append(a), modules=("json",))
    cb.start()
    first = cb.thread
    assert first is not None
    cb.start()
    cb("a: done", 1, 2)
    assert cb.thread is first and calls == [("a: done", 1, 2)]
    first.join(10)


def test_the_start_up_imports_leave_scipy_stats_and_arch_to_the_tail_and_the_fits():
    """The CLI's path to the models imports neither (~0.3 s and ~0.6 s): the tail's thread and the GARCH fit do."""
    import subprocess
    import sys

    code = ("import sys, riskmodels.cli, riskmodels.backtest.engine, riskmodels.backtest.report_tables, "
            "riskmodels.data.loaders, riskmodels.margin; print(sorted(m for m in ('scipy.stats', 'scipy.integrate', "
            "'arch', 'matplotlib') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
    assert "scipy.stats" in pool_start.TAIL_MODULES
