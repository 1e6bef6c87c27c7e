"""A kernel's floating-point rules must not depend on which kernel compiled first.

numba lets a jitted function that does not set ``fastmath`` inherit its
caller's flags (``Flags.inherit_if_not_set("fastmath")`` in
``numba/core/cpu.py``), and keeps one compiled overload per signature. So a
shared helper such as ``_quantile_rule._tail_unit`` (``acc + (n_tail - (k -
1)) * var``) was compiled with fused multiply-adds when its first caller was
the ``fastmath={"contract"}`` HS kernel, and without them when its first
caller was the rolling kernel; the first build went to the disk cache and
every later process linked it. The rolling kernel's ES then differed from its
reference in the last bit (33 of 4,500 values here, 1.8e-15): the 1-ulp
failure of ``test_rolling_kernel_equals_partition_reference`` seen only after
a full local suite had written the cache. Every riskmodels kernel now states
its flags (``fastmath=False`` unless it asks for more); the inline ones are
compiled into their caller under the caller's flags, by design.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

from numba.core.registry import CPUDispatcher

import riskmodels

_FIRST_THE_FUSED_KERNEL = """
import numpy as np
from riskmodels.margin import _hs_fused
from riskmodels.margin._quantile import rolling_tail, rolling_tail_reference

rng = np.random.default_rng(11)
g = rng.standard_normal((600, 3))
_hs_fused.unit_tail(rng.standard_normal((50, 3)), _hs_fused.prepare(g), 500, 0.99, 400, np.zeros(600, bool))
L = rng.standard_t(3, size=(9, 500))
bad = 0
for window, conf in [(100, 0.99), (100, 0.95), (73, 0.9), (250, 0.975)]:
    ref = rolling_tail_reference(L, window, conf)
    got = rolling_tail(L, window, conf)
    for a, b in zip(got, ref):
        bad += int((~((a == b) | (np.isnan(a) & np.isnan(b)))).sum())
print(bad)
"""


def test_rolling_tail_is_exact_when_the_contracting_hs_kernel_compiles_first(tmp_path: Path) -> None:
    """Empty cache, the ``contract`` HS kernel first: the rolling kernel still equals ``np.partition``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    for _ in range(2):  # the fresh compile, then the cache it wrote, in a new process
        out = subprocess.run([sys.executable, "-c", _FIRST_THE_FUSED_KERNEL], env=env, capture_output=True,
                             text=True, timeout=600, check=True)
        assert out.stdout.split()[-1] == "0", out.stdout + out.stderr


def _dispatchers() -> list[tuple[str, CPUDispatcher]]:
    found = []
    for info in pkgutil.walk_packages(riskmodels.__path__, "riskmodels."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == info.name:
                found.append((f"{info.name}.{name}", obj))
    return found


def test_every_kernel_states_its_floating_point_flags() -> None:
    """No riskmodels kernel inherits ``fastmath`` from whichever caller compiled it first."""
    kernels = _dispatchers()
    assert len(kernels) > 40  # the walk found the kernels
    unstated = [name for name, d in kernels
                if "fastmath" not in d.targetoptions and d.targetoptions.get("inline", "never") != "always"]
    assert not unstated, f"set fastmath explicitly (fastmath=False unless intended) on: {unstated}"


_LITERAL_BUILDS = """
import numpy as np
from numba import types
from riskmodels.margin import _hs_fused
from riskmodels.margin._quantile import rolling_tail, tail_columns
from riskmodels.margin._stress_tail import rolling_stress_tail, stress_tail_columns
from test_kernel_flags import _dispatchers

rng = np.random.default_rng(3)
x = rng.standard_t(4, (5, 300))
stressed = np.zeros(300, bool)
stressed[40:90] = True
for conf in (0.99, 0.5):  # 0.5: the full-sort fallbacks run too
    rolling_stress_tail(x, 100, conf, 50, stressed, 0.25)
    stress_tail_columns(x.T, 100, conf, 50, stressed, 0.25)
    rolling_tail(x, 100, conf)
    tail_columns(x.T, 100, conf, 50, None, None, -1.0)
g = rng.standard_normal((600, 3))
_hs_fused.unit_tail(rng.standard_normal((50, 3)), _hs_fused.prepare(g), 500, 0.99, 400, np.zeros(600, bool))
lit = [f"{name}{sig}" for name, d in _dispatchers() for sig in d.signatures
       if any(isinstance(a, types.Literal) for a in sig)]
print(len(lit))
print(lit)
"""


def test_no_kernel_is_built_for_literal_arguments(tmp_path: Path) -> None:
    """A helper called with a constant (a counter starting at ``0``, a buffer size, ``False``) gets no build of its own.

    numba types a constant argument as ``Literal[int](0)`` while it infers the
    caller, so a helper called with ``n = 0`` before a loop, or with a module
    constant, was compiled twice or more (before: ``_insert_desc`` six times,
    ``_merge_two`` three, ``_full_sorted`` twice; ~0.9 s of a cold run's
    compiling, numba's ``numba:compile`` events). The callers pass
    ``np.int64(...)`` / ``np.bool_(...)``; an empty cache, so every build is
    seen.
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _LITERAL_BUILDS], env=env, capture_output=True, text=True,
                         timeout=600, check=True)
    assert out.stdout.split("\n")[0] == "0", out.stdout + out.stderr
