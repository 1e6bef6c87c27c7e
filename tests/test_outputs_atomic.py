"""Atomic output folders and worker pools that die with their parent (issue #15 items 3 and 4).

The kill tests start a real parent process, kill it (SIGKILL / SIGTERM), and
wait a bounded time for its workers and folders to go.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from riskmodels.errors import UserError
from riskmodels.outputs import MANIFEST, atomic_output, is_result, remove_stale, verify_result
from riskmodels.workers import SPILL_PREFIX, remove_stale_spills

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_lists_every_file_with_its_sha256(tmp_path: Path) -> None:
    out = tmp_path / "res"
    with atomic_output(out, command="test") as stage:
        (stage / "a.csv").write_text("x,y\n1,2\n")
        (stage / "figures").mkdir()
        (stage / "figures" / "f.png").write_bytes(b"\x89PNG")
        assert not out.exists()  # nothing visible until the end
    doc = json.loads((out / MANIFEST).read_text())
    assert set(doc["files"]) == {"a.csv", "figures/f.png"}
    assert doc["files"]["a.csv"]["sha256"] == hashlib.sha256(b"x,y\n1,2\n").hexdigest()  # independent hash
    assert doc["command"] == "test" and is_result(out)
    assert [p.name for p in tmp_path.iterdir()] == ["res"]  # no temporary folder left


def test_rerun_replaces_the_folder_whole(tmp_path: Path) -> None:
    out = tmp_path / "res"
    with atomic_output(out) as stage:
        (stage / "old.csv").write_text("1")
        (stage / "both.csv").write_text("old")
    with atomic_output(out) as stage:
        (stage / "both.csv").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["both.csv", MANIFEST]
    assert (out / "both.csv").read_text() == "new" and is_result(out)


def test_a_failed_run_leaves_the_old_result_untouched(tmp_path: Path) -> None:
    out = tmp_path / "res"
    with atomic_output(out) as stage:
        (stage / "a.csv").write_text("old")
    with pytest.raises(RuntimeError), atomic_output(out) as stage:
        (stage / "a.csv").write_text("half")
        raise RuntimeError("died mid-write")
    assert (out / "a.csv").read_text() == "old" and is_result(out)
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_a_folder_without_manifest_or_with_a_changed_file_is_not_a_result(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "summary.csv").write_text("1")
    assert not is_result(d)
    with pytest.raises(UserError, match=r"no manifest\.json"):
        verify_result(d)
    with atomic_output(d) as stage:
        (stage / "m.parquet").write_bytes(b"0123456789")
    (d / "m.parquet").write_bytes(b"01234")  # truncated after the fact
    with pytest.raises(UserError, match="does not match its SHA-256"):
        verify_result(d)


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(UserError, match="is an existing file"), atomic_output(f):
        pass


def _start(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True,
                            env=env)


def _wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    end = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < end:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.2)
    return alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of nobody we own counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_kill_9_during_the_write_leaves_no_result_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "res"
    with atomic_output(out) as stage:
        (stage / "summary.csv").write_text("old")
    p = _start(f"""
        import time
        from pathlib import Path
        from riskmodels.outputs import atomic_output
        with atomic_output({str(out)!r}) as stage:
            (stage / "summary.csv").write_text("new")
            (stage / "margin_paths.parquet").write_bytes(b"trunc")
            print("writing", flush=True)
            time.sleep(60)
        """)
    assert p.stdout.readline().strip() == "writing"
    p.kill()
    p.wait(10)
    assert (out / "summary.csv").read_text() == "old" and is_result(out)  # the old result, whole
    partial = [x for x in tmp_path.iterdir() if x.name.startswith(".res.partial-")]
    assert len(partial) == 1 and not (partial[0] / MANIFEST).exists()  # not a result
    assert remove_stale(tmp_path, "res") == partial  # its process is gone: the next run removes it
    assert [x.name for x in tmp_path.iterdir()] == ["res"]


POOL_PARENT = """
    import multiprocessing, os, sys, time
    from riskmodels.workers import process_pool, spill_folder
    if __name__ == "__main__":
        method = sys.argv[1] if len(sys.argv) > 1 else "spawn"
        ctx = multiprocessing.get_context({method!r})
        with spill_folder() as spill, process_pool(2, ctx, spill) as pool:
            futs = [pool.submit(time.sleep, 120) for _ in range(2)]
            while len(pool._processes) < 2:
                time.sleep(0.05)
            time.sleep(1.0)  # the initializers have run
            print(spill, *pool._processes, flush=True)
            for f in futs:
                f.result()
"""


@pytest.mark.parametrize(("method", "sig"), [("spawn", signal.SIGKILL), ("forkserver", signal.SIGKILL),
                                              ("spawn", signal.SIGTERM)])
def test_workers_and_spill_folder_die_with_the_parent(method: str, sig: signal.Signals, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(POOL_PARENT.format(method=method)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        spill, *workers = p.stdout.readline().split()
        pids = [int(w) for w in workers]
        assert len(pids) == 2 and all(_alive(w) for w in pids) and Path(spill).is_dir()
        os.kill(p.pid, sig)
        p.wait(30)
        assert _wait_gone(pids) == [], f"workers outlived a {sig.name} parent"
        end = time.monotonic() + 15
        while Path(spill).exists() and time.monotonic() < end:
            time.sleep(0.2)
        assert not Path(spill).exists(), "the spill folder outlived the run"
    finally:
        if p.poll() is None:
            p.kill()


def test_stale_spill_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{SPILL_PREFIX}{dead.pid}-abc"
    stale.mkdir()
    mine = tmp_path / f"{SPILL_PREFIX}{os.getpid()}-xyz"
    mine.mkdir()
    assert remove_stale_spills(str(tmp_path)) == [stale]
    assert mine.exists() and not stale.exists()
    assert tempfile.gettempdir()  # the default folder is the system temp directory


def _descendants(pid: int) -> list[int]:
    """Process ids whose parent chain leads to ``pid`` (from /proc)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().split(")")[-1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = [], [pid]
    while frontier:
        kids = [c for c, p in parent.items() if p in frontier]
        out += kids
        frontier = kids
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the workers")
def test_sigterm_during_a_parallel_backtest_leaves_no_workers_spill_or_output(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    data = tmp_path / "data" / "crypto-daily"
    data.mkdir(parents=True)
    rng = np.random.default_rng(1)
    dates = pd.date_range("2019-01-01", periods=700, freq="D")
    for a in ("BTC", "ETH", "SOL"):
        c = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(700)))
        o = np.r_[c[0], c[:-1]]
        pd.DataFrame({"datetime": dates.strftime("%Y-%m-%d"), "open": o, "high": np.maximum(o, c) * 1.01,
                      "low": np.minimum(o, c) * 0.99, "close": c, "volume": 1e6}).to_csv(data / f"{a}-USD_1d.csv",
                                                                                       index=False)
    cfg = tmp_path / "run.toml"
    cfg.write_text('[data]\nuniverse = ["BTC", "ETH", "SOL"]\nstart = "2020-01-01"\npolicy = "error"\n'
                   "[book]\naccounts = 3000\n[backtest]\nmin_history = 250\nn_jobs = 2\n"
                   '[[models]]\nname = "historical_var"\nparams = { window = 250 }\n'
                   '[[models]]\nname = "filtered_hs"\nparams = { window = 250 }\n'
                   '[[models]]\nname = "scenario_grid"\n')
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    p = subprocess.Popen([sys.executable, "-m", "riskmodels.cli", "backtest", "--config", str(cfg), "--data",
                          str(tmp_path / "data"), "--out", str(out), "--quiet"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < end and p.poll() is None:
            workers = [w for w in _descendants(p.pid) if _alive(w)]
            if len(workers) >= 2 and list(tmp.glob(f"{SPILL_PREFIX}*")):
                break
            time.sleep(0.2)
        assert p.poll() is None and len(workers) >= 2, "the run ended before its pool started"
        time.sleep(2.0)  # the workers are computing
        workers = [w for w in _descendants(p.pid) if _alive(w)]
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        assert rc == 128 + signal.SIGTERM, p.stderr.read() if p.stderr else rc
        assert _wait_gone(workers) == [], "workers outlived the backtest"
        assert not list(tmp.glob(f"{SPILL_PREFIX}*")), "the spill folder outlived the backtest"
        assert not out.exists() and not list(tmp_path.glob(".out.*")), "an interrupted run left output"
    finally:
        if p.poll() is None:
            p.kill()


_FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "1":
    from riskmodels.workers import tune_allocator
    assert tune_allocator()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
keep = []
for i in range(60):  # a model worker's pattern: per-date arrays of 0.2-2 MB among 20 MB blocks
    a = np.ones(25_000 * (1 + i % 7))
    b = np.ones(2_600_000 if i % 3 == 0 else 300_000)
    c = np.ones(40_000 * (1 + i % 5))
    del a, b
    keep.append(c)
    if len(keep) > 3:
        keep.pop(0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tune_allocator_keeps_freed_memory_for_reuse() -> None:
    """The same allocation pattern faults far fewer pages with the workers' allocator settings.

    Measured here: ~8,800 minor faults with glibc's defaults, ~1,500 tuned;
    without the settings (or with mallopt failing) the two counts are equal.
    """
    def faults(tuned: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FAULTS, tuned], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    assert faults("1") < 0.5 * faults("0")
