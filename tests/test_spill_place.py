"""Where the model pool's spill folder goes (``riskmodels.workers.spill_base``) and that its estimate holds.

The engine asks for ``/dev/shm`` with an estimate of the bytes its workers
will spill (``SPILL_BYTES_PER_CELL`` per date and account of every task);
the folder goes there only when the estimate is at most ``SHM_SHARE`` of
the free space there and of ``MemAvailable``, else to the temp directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from riskmodels import workers
from riskmodels.backtest import engine
from riskmodels.backtest.engine_transfer import _LARGE, SPILL_BYTES_PER_CELL, _spill
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.margin.haircut import FixedHaircut
from riskmodels.portfolio import generate_book
from riskmodels.workers import SPILL_PREFIX, remove_stale_spills, spill_base, spill_folder
from tests.conftest import random_walk_panel


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_no_estimate_keeps_the_temp_directory(tmp_path: Path) -> None:
    assert spill_base(None, shm=str(tmp_path)) == tempfile.gettempdir()


def test_a_small_estimate_goes_to_shm_a_large_one_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_mem_available", lambda: 10**15)  # memory no limit: the free space decides
    free = _free(tmp_path)
    assert spill_base(1, shm=str(tmp_path)) == str(tmp_path)
    assert spill_base(int(workers.SHM_SHARE * free) - 2**20, shm=str(tmp_path)) == str(tmp_path)
    assert spill_base(int(workers.SHM_SHARE * free) + 2**30, shm=str(tmp_path)) == tempfile.gettempdir()


def test_memavailable_caps_the_shm_spill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_mem_available", lambda: 4 * 2**20)  # 4 MiB available: 1 MiB may go to shm
    assert spill_base(2**20, shm=str(tmp_path)) == str(tmp_path)
    assert spill_base(2**20 + 1, shm=str(tmp_path)) == tempfile.gettempdir()
    monkeypatch.setattr(workers, "_mem_available", lambda: None)  # no /proc/meminfo: never shm
    assert spill_base(1, shm=str(tmp_path)) == tempfile.gettempdir()


def test_a_missing_or_read_only_shm_falls_back(tmp_path: Path) -> None:
    assert spill_base(1, shm=str(tmp_path / "absent")) == tempfile.gettempdir()
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert spill_base(1, shm=str(ro)) == tempfile.gettempdir()


def test_mem_available_reads_proc_meminfo() -> None:
    if not Path("/proc/meminfo").exists():
        pytest.skip("no /proc/meminfo")
    line = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemAvailable:"))
    kib = int(line.split()[1])
    got = workers._mem_available()
    assert got is not None and abs(got - kib * 1024) < 64 * 2**20  # read a moment apart


@pytest.mark.skipif(not os.path.isdir(workers.SHM_DIR), reason="no /dev/shm")
def test_stale_spills_in_shm_are_removed_too() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = Path(workers.SHM_DIR) / f"{SPILL_PREFIX}{dead.pid}-test"
    stale.mkdir()
    try:
        assert stale in remove_stale_spills()
        assert not stale.exists()
    finally:
        if stale.exists():
            stale.rmdir()


@pytest.mark.skipif(not os.path.isdir(workers.SHM_DIR), reason="no /dev/shm")
def test_spill_folder_with_a_small_estimate_is_in_shm_and_removed() -> None:
    with spill_folder(1) as d:
        assert Path(d).parent == Path(workers.SHM_DIR) and Path(d).name.startswith(f"{SPILL_PREFIX}{os.getpid()}-")
    assert not Path(d).exists()


def test_the_per_cell_estimate_bounds_a_real_spill(tmp_path: Path) -> None:
    """The files ``_spill`` writes for one result are at most SPILL_BYTES_PER_CELL per cell (plus .npy headers)."""
    panel = random_walk_panel(200, 3, seed=2, vol=0.05)
    book = generate_book(panel.assets, 40, seed=1)
    res = engine.run_models(panel, book, [FixedHaircut(imf=0.05, mmf=0.03, label="h")], start=20, min_history=10,
                            policy=LiquidationPolicy(), netting=True)
    r = res.results["h"]
    cells = (res.end - res.start + 1) * book.n_accounts
    shapes = [getattr(getattr(r, o), a).shape for o, a in _LARGE]
    assert all(s == shapes[0] for s in shapes) and shapes[0][0] * shapes[0][1] == cells
    _spill(r, str(tmp_path))
    files = list(tmp_path.iterdir())
    assert len(files) == len(_LARGE)
    header = 128  # an .npy header of a 2-d array is 128 bytes (format 1.0)
    total = sum(f.stat().st_size for f in files)
    assert total <= SPILL_BYTES_PER_CELL * cells + header * len(files)
    assert total >= SPILL_BYTES_PER_CELL * cells  # exact: the estimate is not a loose bound either
