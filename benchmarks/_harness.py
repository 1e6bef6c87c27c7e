"""Shared plumbing of the benchmarks: peak memory, the load sampler, the machine block, subprocesses, the panel.

Every configuration of a benchmark runs in its own subprocess (a fresh
interpreter: no warm caches carried from one configuration to the next) that
writes its result as JSON; the parent samples the 1-minute load average
through the run, because a ratio measured under load is only comparable with
the load beside it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GIB = 1024**3


def rss_bytes() -> int:
    """Peak RSS of this process and its finished children (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) * 1024


class TreeRSS:
    """Peak of the summed RSS of this process and all its descendants, sampled every ``every`` s.

    ``ru_maxrss`` gives each process's own peak; while the model processes
    run, the parent and both workers hold memory at once, so the machine needs
    the sum. Pages shared between processes (libraries) count once per
    process: an upper bound. Linux ``/proc`` only (0 elsewhere).
    """

    def __init__(self, every: float = 0.1) -> None:
        import threading

        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                    parents[int(d)] = int(stat[stat.rindex(")") + 2 :].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, frontier = {os.getpid()}, [os.getpid()]
        while frontier:
            kids = [p for p, pp in parents.items() if pp in frontier and p not in tree]
            tree.update(kids)
            frontier = kids
        total = 0
        for pid in tree:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page
            except (OSError, ValueError, IndexError):
                continue
        return total

    def _run(self) -> None:
        if not Path("/proc/self/statm").exists():
            return
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self._every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children (a wall time under load is not the work)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def spawn(script: Path, args: list[str]) -> dict[str, Any]:
    """Run ``script --worker ... --worker-out F`` in a fresh interpreter and return its JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    cmd = [sys.executable, str(script), *args, "--worker-out", out]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    res = json.loads(Path(out).read_text())
    res["subprocess_wall"] = time.perf_counter() - t0
    os.unlink(out)
    return res


def machine() -> dict[str, Any]:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "")
    except OSError:
        model = ""
    import numpy as np

    try:  # the BLAS actually loaded (OpenBLAS/MKL, its kernel and threads): it moves every matrix product
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        blas = []
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas, "platform": platform.platform(), "date": time.strftime("%Y-%m-%d"),
            "load_average_at_start": os.getloadavg()}


class LoadSampler:
    """``[seconds since start, 1-minute load average]`` every ``every`` seconds, on a thread.

    Ratios measured under load are only comparable with the load beside them.
    """

    def __init__(self, every: float = 5.0) -> None:
        import threading

        self.samples: list[list[float]] = []
        self._t0 = time.perf_counter()
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.samples.append([round(time.perf_counter() - self._t0, 1), os.getloadavg()[0]])
            if self._stop.wait(self._every):
                return

    def stop(self) -> list[list[float]]:
        self._stop.set()
        self._thread.join()
        self.samples.append([round(time.perf_counter() - self._t0, 1), os.getloadavg()[0]])
        return self.samples


def default_panel(data: str, cfg: dict[str, Any]) -> Any:
    """The panel of ``cfg``'s ``[data]`` (universe, quality policy, interval, end), as ``riskmodels backtest`` loads it."""
    from riskmodels.data.loaders import load_panel
    from riskmodels.data.options import LoaderOptions

    d = cfg["data"]
    panel = load_panel(data, assets=d["universe"] or None, policy=d.get("policy", "error"), interval=d["interval"],
                       end=d.get("end") or None, **LoaderOptions.from_config(d).kwargs())
    return panel.select(tuple(d["universe"]) or panel.assets)
