"""riskmodels drops its numba cache when a kernel source changes (``riskmodels._cache_stamp``).

numba keys a cached kernel by its own file's stamp only, so a kernel that
inlines one from another module kept stale machine code after an edit of that
module alone (seen 2026-12-03). Checked on a scratch package: the cache files
go when any numba-using source changes, stay otherwise, and both cache layouts
are where numba really writes (a kernel compiled in a fresh process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from riskmodels import _cache_stamp


def _package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "kern.py").write_text("import numba\n")
    (root / "sub" / "callee.py").write_text("from numba import njit\n")
    (root / "plain.py").write_text("x = 1\n")
    return root


def _cache_files(folders: list[Path]) -> list[Path]:
    made = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("kern.f-1.py311.nbi", "kern.f-1.py311.1.nbc"):
            (folder / name).write_text("x")
            made.append(folder / name)
        (folder / "other.pyc").write_text("x")  # not numba's: kept
    return made


def _bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("user_dir", [False, True])
def test_cache_goes_when_a_kernel_source_changes_and_stays_otherwise(tmp_path: Path, user_dir: bool) -> None:
    root = _package(tmp_path)
    where = str(tmp_path / "numba-cache") if user_dir else ""
    folders = [_cache_stamp.cache_dir(root, where), _cache_stamp.cache_dir(root / "sub", where)]
    if user_dir:  # numba's user-provided locator: <folder name>_<sha1 of its absolute path> (checked below for real)
        assert folders[1].parent == Path(where) and folders[1].name.startswith("sub_")
    made = _cache_files(folders)
    assert _cache_stamp.refresh(root, where)  # no digest recorded yet: not known to be fresh
    assert not any(p.exists() for p in made)
    assert all((f / "other.pyc").exists() for f in folders)
    made = _cache_files(folders)
    assert not _cache_stamp.refresh(root, where)  # nothing changed
    assert all(p.exists() for p in made)
    _bump(root / "plain.py")  # no numba there: cannot leave a kernel stale
    assert not _cache_stamp.refresh(root, where)
    _bump(root / "sub" / "callee.py")  # a callee's module alone
    assert _cache_stamp.refresh(root, where)
    assert not any(p.exists() for p in made)
    assert not _cache_stamp.refresh(root, where)


def test_a_tree_it_cannot_write_is_left_alone(tmp_path: Path) -> None:
    root = _package(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _cache_stamp.refresh(root, str(blocker)) is False


@pytest.mark.parametrize("user_dir", [False, True])
def test_cache_dir_is_where_numba_writes(tmp_path: Path, user_dir: bool) -> None:
    """A real ``cache=True`` kernel compiled in a fresh process lands where ``cache_dir`` looks; refresh removes it."""
    pytest.importorskip("numba")
    root = tmp_path / "scratchpkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "kern.py").write_text("import numba\n\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n")
    where = str(tmp_path / "numba-cache") if user_dir else ""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    if user_dir:
        env["NUMBA_CACHE_DIR"] = where
    code = "import sys; sys.path.insert(0, sys.argv[1]); import scratchpkg.sub.kern as k; assert k.f(1) == 2"
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env, timeout=120)
    folder = _cache_stamp.cache_dir(root / "sub", where)
    written = sorted(p.suffix for p in folder.iterdir() if p.suffix in (".nbi", ".nbc"))
    assert written == [".nbc", ".nbi"], list(folder.iterdir())
    assert _cache_stamp.refresh(root, where)  # no digest yet
    assert not any(p.suffix in (".nbi", ".nbc") for p in folder.iterdir())
