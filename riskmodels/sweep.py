"""Parameter sweeps: a declared grid of backtests, resumable, local or on Dask.

A sweep runs one margin method over the **Cartesian product** of grid axes
stated in the config: model parameters x book settings x liquidation
settings (x backtest settings). Every grid point is a full backtest
(:func:`riskmodels.backtest.engine.run_backtest`: coverage and the account
simulation) and gives one row of a tidy table with all registered metrics.
:class:`SweepResult` adds the Pareto frontier of capital efficiency (mean
IM / notional) against liquidation frequency (liquidations per
account-year), both minimised (:func:`~riskmodels.backtest._testresult.pareto_front`),
and a greyscale heatmap of any metric over two axes.

Leverage: the account simulation opens every account with equity
``IM x (1 + cushion)``, so an account's opening leverage is
``notional / equity = 1 / ((IM / notional) (1 + cushion))``: the leverage
axis of a sweep is ``liquidation.cushion`` (with the model's margin rate).

Config (TOML)
-------------
The backtest sections (``[data]``, ``[book]``, ``[backtest]``,
``[liquidation]``) are merged over the default config as for
``riskmodels backtest`` (``[[models]]`` is ignored); ``[sweep]`` declares the
method and the grid::

    [sweep]
    model = "fixed_haircut"          # a registered margin model
    label = "haircut"                # optional
    params = { mmf = 0.03 }          # fixed model parameters

    [sweep.grid.model]               # axes: every key is a list of values
    haircut = [0.05, 0.10, 0.20]
    imf = [0.05, 0.10]

    [sweep.grid.liquidation]         # LiquidationPolicy fields
    cushion = [0.0, 0.5, 1.0]

    [sweep.grid.book]                # generate_book settings of [book]
    long_probability = [0.5, 0.7]

    [sweep.heatmap]                  # optional: the chart written by the CLI
    x = "model.haircut"
    y = "liquidation.cushion"
    metric = "liquidations_per_account_year"

Axis namespaces: ``model`` (constructor parameters), ``book``,
``liquidation``, ``backtest`` (``mpor``, ``min_history``, ``coverage_on``)
and ``data`` (``start``, ``end`` only: the window). Values may be scalars
or tables/lists (e.g. per-asset haircuts ``[0.1, {BTC = 0.05, default = 0.1}]``);
an axis holding any table/list (or mixing text and numbers) shows as JSON
text in the result table. Points are numbered in the order
of the product (the last axis varies fastest) and every point has a
``key``: the first 16 hex digits of the sha256 of its full resolved
configuration and the data fingerprint.

Execution
---------
One function, :func:`evaluate_point`, evaluates one point; it is submitted
to an executor (``submit`` + :func:`concurrent.futures.as_completed`):

* ``backend="processes"`` (default): a
  :class:`concurrent.futures.ProcessPoolExecutor` with ``workers``
  processes (default: all cores), started from a ``forkserver`` that has
  imported riskmodels once (``spawn`` on Windows). As with any
  multiprocessing code, a script that calls :func:`sweep` needs the
  ``if __name__ == "__main__":`` guard;
* ``backend="dask"``: ``dask.distributed.Client(scheduler)`` for an
  existing cluster, or a ``LocalCluster(n_workers=workers or 2,
  threads_per_worker=1, processes=True)`` when no address is given
  (``--local-cluster``); its ``get_executor()`` is the same interface. A
  remote cluster needs the data directory at the same path on the workers
  and riskmodels installed there;
* ``backend="serial"``: in this process (debugging, small grids).

Workers load the panel **once per process** (a cache keyed by the data
source and its fingerprint, checked against the driver's fingerprint) rather
than receiving it with every task, and BLAS is pinned to one thread inside
each evaluation, so results do not depend on the backend.

Resume: each finished point is written at once (atomically: temporary file
+ rename) to ``out/points/<key>.parquet``. A crash or interrupt loses only
points in flight; a rerun with the same config and data skips the points
whose file exists. The table is built from the point files and sorted by
point number, so the same config gives the same table however it was run.

Command line: ``riskmodels sweep --config FILE [--data DIR] [--out DIR]
[--workers N] [--scheduler ADDRESS | --local-cluster]`` writes
``sweep.parquet``, ``sweep.csv``, ``frontier.csv``, ``frontier.png`` and
``heatmap.png``, with progress on stderr.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import copy
import hashlib
import inspect
import itertools
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel

__all__ = [
    "AXIS_NAMESPACES",
    "EXAMPLE_SWEEP_TOML",
    "PanelSpec",
    "Point",
    "SerialExecutor",
    "SweepResult",
    "SweepSpec",
    "add_sweep_parser",
    "evaluate_point",
    "make_executor",
    "parse_sweep",
    "run_sweep",
    "sweep",
]

AXIS_NAMESPACES = ("model", "book", "liquidation", "backtest", "data")
DATA_AXES = ("start", "end")
SWEEP_KEYS = {"model", "label", "params", "grid", "heatmap"}
X_METRIC = "mean_im_per_notional"
Y_METRIC = "liquidations_per_account_year"

#: the commented example shipped as riskmodels/configs/sweep.toml (``riskmodels config --example sweep``)
EXAMPLE_SWEEP_TOML = (files("riskmodels") / "configs" / "sweep.toml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- panel source
@dataclass(frozen=True)
class PanelSpec:
    """Where a worker gets the panel: price files, or a seeded synthetic panel.

    ``kind="files"``: ``args`` are :func:`riskmodels.data.loaders.load_panel`
    arguments with ``dir`` the data directory. ``kind="synthetic"``: ``args``
    are :func:`riskmodels.data.synthetic.synthetic_panel` arguments (must
    include ``seed``). Hashable and small: this, not the panel, travels to
    the workers.
    """

    kind: str
    args_json: str

    @classmethod
    def files(cls, directory: str | Path, *, assets: Sequence[str] | None = None, policy: str = "error",
              interval: str | None = "1d") -> PanelSpec:
        args = {"dir": str(Path(directory).expanduser().resolve()), "assets": list(assets) if assets else None,
                "policy": policy, "interval": interval}
        return cls("files", json.dumps(args, sort_keys=True))

    @classmethod
    def synthetic(cls, n_dates: int, **kwargs: Any) -> PanelSpec:
        if "seed" not in kwargs:
            raise ValueError("PanelSpec.synthetic needs seed=<int> (every random draw takes a seed)")
        return cls("synthetic", json.dumps({"n_dates": int(n_dates), **kwargs}, sort_keys=True))

    @property
    def args(self) -> dict[str, Any]:
        return json.loads(self.args_json)

    def load(self) -> PricePanel:
        a = self.args
        if self.kind == "files":
            from riskmodels.data.loaders import load_panel

            d = a.pop("dir")
            return load_panel(d, **a)
        if self.kind == "synthetic":
            from riskmodels.data.synthetic import synthetic_panel

            return synthetic_panel(a.pop("n_dates"), **a)
        raise ValueError(f"PanelSpec kind={self.kind!r} must be 'files' or 'synthetic'")


_PANELS: dict[PanelSpec, tuple[PricePanel, str]] = {}


def cached_panel(spec: PanelSpec, fingerprint: str | None = None) -> tuple[PricePanel, str]:
    """The panel of ``spec`` and its fingerprint, loaded once per process.

    Raises when ``fingerprint`` is given and differs (the data changed
    between the driver's load and the worker's).
    """
    hit = _PANELS.get(spec)
    if hit is None:
        import warnings

        with warnings.catch_warnings():  # the driver already showed the data-quality warnings
            warnings.simplefilter("ignore")
            panel = spec.load()
        hit = (panel, panel.fingerprint())
        _PANELS[spec] = hit
    if fingerprint is not None and hit[1] != fingerprint:
        raise RuntimeError(
            f"the data of {spec.kind} source {spec.args_json} changed: fingerprint {hit[1][:12]} here, "
            f"{fingerprint[:12]} on the driver"
        )
    return hit


# --------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Point:
    """One grid point: its number, key, axis values and full backtest config."""

    index: int
    key: str
    values: dict[str, Any]
    config: dict[str, Any]
    display: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: base config, model, fixed parameters and axes."""

    base: dict[str, Any]
    model: str
    label: str
    params: dict[str, Any]
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    heatmap: dict[str, str] = field(default_factory=dict)

    @property
    def axis_names(self) -> list[str]:
        return [a for a, _ in self.axes]

    @property
    def size(self) -> int:
        return math.prod(len(v) for _, v in self.axes)

    def point_config(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The full backtest config of one point."""
        from riskmodels.config import merge

        over: dict[str, dict[str, Any]] = {}
        params = dict(self.params)
        for name, v in values.items():
            ns, key = name.split(".", 1)
            if ns == "model":
                params[key] = v
            else:
                over.setdefault(ns, {})[key] = v
        cfg = merge(self.base, over)
        cfg["models"] = [{"name": self.model, "label": self.label, "params": _single_threaded(self.model, params)}]
        return cfg

    def points(self, fingerprint: str) -> list[Point]:
        names = self.axis_names
        as_json = {a: _needs_json(v) for a, v in self.axes}
        out = []
        for i, combo in enumerate(itertools.product(*(v for _, v in self.axes))):
            values = dict(zip(names, combo, strict=True))
            cfg = self.point_config(values)
            display = {a: json.dumps(v, sort_keys=True) if as_json[a] else v for a, v in values.items()}
            out.append(Point(i, point_key(cfg, fingerprint), values, cfg, display))
        return out


def _needs_json(values: Sequence[Any]) -> bool:
    """An axis shows as JSON text when a value is a table/list or its values mix text and numbers."""
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int | float):
            kinds.add("number")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            return True
    return len(kinds) > 1


def _single_threaded(model: str, params: dict[str, Any]) -> dict[str, Any]:
    """Add ``n_jobs=1`` for models that parallelise internally (the sweep already does)."""
    import riskmodels.margin  # noqa: F401
    from riskmodels.margin import base

    base.available()
    cls = base._REGISTRY.get(model)
    if cls is not None and "n_jobs" in inspect.signature(cls.__init__).parameters and "n_jobs" not in params:
        return {**params, "n_jobs": 1}
    return params


def point_key(cfg: Mapping[str, Any], fingerprint: str) -> str:
    """16 hex digits of sha256 over the canonical JSON of the config (minus data.dir), the fingerprint
    and the package version (a point computed by another version of the code is not reused)."""
    from riskmodels import __version__

    c = copy.deepcopy(dict(cfg))
    c.get("data", {}).pop("dir", None)
    text = json.dumps({"config": c, "data": fingerprint, "riskmodels": __version__}, sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_sweep(doc: Mapping[str, Any], where: str = "config") -> SweepSpec:
    """Validate a sweep document (the TOML as a dict) into a :class:`SweepSpec`.

    Every point's model and liquidation policy are built here, so a bad grid
    value fails before any work starts, with the model's own error message.
    """
    from riskmodels.backtest.engine import build_models
    from riskmodels.calibrate import parse_doc
    from riskmodels.config import (
        SECTIONS,
        default_config,
        liquidation_policy,
        merge,
        validate_config,
    )

    base, sec = parse_doc(dict(doc), "sweep", SECTIONS, default_config, merge, validate_config, where)
    base.pop("models", None)
    unknown = set(sec) - SWEEP_KEYS
    if unknown:
        raise ValueError(f"[sweep] has unknown key(s) {sorted(unknown)}; valid: {sorted(SWEEP_KEYS)}")
    if "model" not in sec:
        raise ValueError("[sweep] needs `model` (a registered margin model; see `riskmodels models`)")
    grid = sec.get("grid") or {}
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("[sweep.grid] must declare at least one axis, e.g. [sweep.grid.model] haircut = [0.05, 0.1]")
    axes: list[tuple[str, tuple[Any, ...]]] = []
    for ns, table in grid.items():
        if ns not in AXIS_NAMESPACES:
            raise ValueError(f"[sweep.grid.{ns}]: unknown axis namespace; valid: {list(AXIS_NAMESPACES)}")
        if not isinstance(table, Mapping):
            raise ValueError(f"[sweep.grid.{ns}] must be a table of `name = [values]`")
        for key, vals in table.items():
            name = f"{ns}.{key}"
            if not isinstance(vals, list) or not vals:
                raise ValueError(f"grid axis {name} must be a non-empty list of values, got {vals!r}")
            if ns == "data" and key not in DATA_AXES:
                raise ValueError(f"grid axis {name}: only data.start and data.end can vary")
            if ns in ("book", "liquidation", "backtest") and key not in base[ns]:
                raise ValueError(f"grid axis {name}: unknown key; valid: {sorted(base[ns])}")
            if len({json.dumps(v, sort_keys=True) for v in vals}) != len(vals):
                raise ValueError(f"grid axis {name} repeats a value: {vals!r}")
            axes.append((name, tuple(vals)))
    spec = SweepSpec(base, str(sec["model"]), str(sec.get("label") or sec["model"]), dict(sec.get("params", {})),
                     tuple(axes), dict(sec.get("heatmap", {})))
    for combo in itertools.product(*(v for _, v in spec.axes)):  # validate every point up front
        cfg = spec.point_config(dict(zip(spec.axis_names, combo, strict=True)))
        validate_config(cfg)
        liquidation_policy(cfg)
        build_models(cfg)
    for k in ("x", "y"):
        if k in spec.heatmap and spec.heatmap[k] not in spec.axis_names:
            raise ValueError(f"[sweep.heatmap] {k}={spec.heatmap[k]!r} is not an axis; axes: {spec.axis_names}")
    return spec


# --------------------------------------------------------------------------- one point
def evaluate_point(spec: PanelSpec, fingerprint: str, point: Point) -> dict[str, Any]:
    """Run the backtest of one point; returns its table row (metrics + counts + seconds).

    Runs in a worker: the panel comes from the per-process cache.
    """
    from threadpoolctl import threadpool_limits

    from riskmodels.backtest.engine import run_backtest

    t0 = time.perf_counter()
    panel, _ = cached_panel(spec, fingerprint)
    # a point runs its models serially: the sweep is the parallel layer (no nested pools,
    # and Dask workers are daemonic processes, which may not start children)
    cfg = {**point.config, "backtest": {**point.config.get("backtest", {}), "n_jobs": 1}}
    with threadpool_limits(limits=1):
        res = run_backtest(cfg, panel)
    r = next(iter(res.results.values()))
    row: dict[str, Any] = {"point": point.index, "key": point.key}
    row.update(point.display)
    row.update({k: float(v) for k, v in r.metrics.items()})
    row["n_obs"] = int(r.coverage.n_obs)
    row["liquidations"] = len(r.simulation.liquidations)
    row["account_years"] = float(r.simulation.account_years)
    row["seconds"] = time.perf_counter() - t0
    return row


# --------------------------------------------------------------------------- executors
class SerialExecutor(cf.Executor):
    """A :class:`concurrent.futures.Executor` that runs each call at submit time, in this process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:  # type: ignore[override]
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


BACKENDS = ("processes", "dask", "serial")


@contextlib.contextmanager
def make_executor(backend: str = "processes", workers: int | None = None, scheduler: str | None = None,
                  note: Callable[[str], None] | None = None) -> Iterator[cf.Executor]:
    """An executor for ``backend`` (see module docstring); closes what it started.

    ``workers`` must be >= 1 (default: all cores for processes, 2 for a
    Dask local cluster). ``scheduler`` is a Dask scheduler address
    (``tcp://host:8786``); with ``backend="dask"`` and no address a
    LocalCluster is started and closed here.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} must be one of {BACKENDS}")
    if workers is not None and (int(workers) != workers or workers < 1):
        raise ValueError(f"workers={workers!r} is outside its valid range: integers >= 1")
    if scheduler and backend != "dask":
        raise ValueError("a scheduler address needs backend='dask'")
    say = note or (lambda _m: None)
    if backend == "serial":
        yield SerialExecutor()
        return
    if backend == "processes":
        import multiprocessing as mp

        n = workers or os.cpu_count() or 1
        say(f"local process pool: {n} worker(s)")
        if "forkserver" in mp.get_all_start_methods():
            # workers fork from a clean single-threaded server that has imported the code once
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["riskmodels.sweep", "riskmodels.backtest.engine", "riskmodels.margin"])
        else:  # Windows
            ctx = mp.get_context("spawn")
        from riskmodels.workers import process_pool

        # workers end with this process (any signal); on an error or SIGTERM they are terminated, not drained
        with process_pool(n, ctx) as ex:
            yield ex
        return
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler)
        say(f"dask scheduler {scheduler}: {len(client.scheduler_info().get('workers', {}))} worker(s)")
    else:
        n = workers or 2
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        say(f"dask LocalCluster: {n} worker process(es), 1 thread each")
    try:
        ex = client.get_executor(pure=False)
        try:
            yield ex
        finally:
            ex.shutdown(wait=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- results
def _points_dir(out: Path) -> Path:
    return out / "points"


def _write_point(out: Path, row: dict[str, Any]) -> Path:
    d = _points_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"{row['key']}.parquet"
    tmp = d / f".{row['key']}.{os.getpid()}.tmp"
    pd.DataFrame([row]).to_parquet(tmp, index=False)
    os.replace(tmp, final)
    return final


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The tidy table of a sweep (one row per point, sorted by point number) and its views."""

    table: pd.DataFrame
    axes: tuple[str, ...]
    timings: pd.Series
    out: Path | None = None
    computed: int = 0

    def frontier(self, x: str = X_METRIC, y: str = Y_METRIC) -> pd.DataFrame:
        """Rows on the Pareto front of ``x`` vs ``y`` (both minimised), sorted by ``x``."""
        from riskmodels.backtest._testresult import pareto_front

        idx = pareto_front(self.table[x].to_numpy(float), self.table[y].to_numpy(float))
        return self.table.iloc[idx].reset_index(drop=True)

    def frontier_chart(self, path: str | Path, x: str = X_METRIC, y: str = Y_METRIC) -> Path:
        """All points (hollow grey) and the front (filled black, joined, labelled by point), greyscale."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.8), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(self.table[x], self.table[y], "o", markerfacecolor="white", markeredgecolor="0.55",
                markersize=5, linestyle="none", label="grid points")
        fr = self.frontier(x, y)
        ax.plot(fr[x], fr[y], "s-", color="black", markersize=6, linewidth=1.2, label="Pareto front")
        for _, r in fr.iterrows():
            ax.annotate(str(int(r["point"])), (r[x], r[y]), textcoords="offset points", xytext=(5, 4), fontsize=7)
        ax.set_xlabel(f"{x} (capital, lower is better)")
        ax.set_ylabel(f"{y} (lower is better)")
        ax.set_title("Capital efficiency vs liquidation frequency")
        ax.grid(True, color="0.85", linewidth=0.5)
        ax.legend(loc="best", fontsize=8, frameon=False)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, bbox_inches="tight")
        return out

    def pivot(self, metric: str, x: str, y: str, agg: str = "mean") -> pd.DataFrame:
        """``metric`` over axes ``y`` (rows) x ``x`` (columns); other axes aggregated with ``agg``."""
        for c in (metric, x, y):
            if c not in self.table.columns:
                raise KeyError(f"{c!r}: unknown column; valid columns: {list(self.table.columns)}")
        return self.table.pivot_table(index=y, columns=x, values=metric, aggfunc=agg, sort=True)

    def heatmap(self, path: str | Path, metric: str = Y_METRIC, x: str | None = None, y: str | None = None,
                agg: str = "mean") -> Path:
        """Greyscale heatmap of ``metric`` (cells annotated, darker = larger) over two axes."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        multi = [a for a in self.axes if self.table[a].nunique() > 1] or list(self.axes)
        x = x or multi[0]
        y = y or (multi[1] if len(multi) > 1 else multi[0])
        if x == y:  # one axis: a single row
            for c in (metric, x):
                if c not in self.table.columns:
                    raise KeyError(f"{c!r}: unknown column; valid columns: {list(self.table.columns)}")
            pv = self.table.assign(_all="all").pivot_table(index="_all", columns=x, values=metric, aggfunc=agg)
            y = ""
        else:
            pv = self.pivot(metric, x, y, agg)
        z = pv.to_numpy(dtype=float)
        fig = Figure(figsize=(1.2 + 0.9 * max(z.shape[1], 2), 1.2 + 0.6 * max(z.shape[0], 2)), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        finite = z[np.isfinite(z)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        im = ax.imshow(z, cmap="Greys", aspect="auto", vmin=lo, vmax=hi if hi > lo else lo + 1)
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                v = z[i, j]
                shade = (v - lo) / (hi - lo) if hi > lo and np.isfinite(v) else 0.0
                ax.text(j, i, "-" if not np.isfinite(v) else f"{v:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if shade > 0.55 else "black")
        ax.set_xticks(range(z.shape[1]), [str(c) for c in pv.columns], fontsize=8, rotation=30)
        ax.set_yticks(range(z.shape[0]), [str(c) for c in pv.index], fontsize=8)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        others = [a for a in self.axes if a not in (x, y) and self.table[a].nunique() > 1]  # aggregated
        ax.set_title(metric + (f" ({agg} over {', '.join(others)})" if others else ""), fontsize=9)
        fig.colorbar(im, ax=ax)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, bbox_inches="tight")
        return out

    def __str__(self) -> str:
        from riskmodels.backtest._testresult import Table

        cols = ["point", *self.axes, X_METRIC, Y_METRIC, "breach_rate", "bad_debt_bp_per_year"]
        cols = [c for c in cols if c in self.table.columns]
        fr = self.frontier()[cols].copy()
        for a in self.axes:  # long JSON values (per-asset mappings) shortened for the terminal
            fr[a] = fr[a].map(lambda v: v if not isinstance(v, str) or len(v) <= 40 else v[:37] + "...")
        return str(Table(fr, f"Sweep: {len(self.table)} points, {len(fr)} on the Pareto front "
                                   f"({X_METRIC} vs {Y_METRIC})"))


def _link_points(out: Path, stage: Path, keys: Sequence[str]) -> None:
    """Hard-link (else copy) the points ``keys`` of ``out/points/`` into ``stage/points/``."""
    src, dst = _points_dir(out), _points_dir(stage)
    dst.mkdir(parents=True, exist_ok=True)
    for k in keys:
        a, b = src / f"{k}.parquet", dst / f"{k}.parquet"
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)


def _read_points(out: Path, points: Sequence[Point]) -> pd.DataFrame:
    d = _points_dir(out)
    frames = [pd.read_parquet(d / f"{p.key}.parquet") for p in points]
    return pd.concat(frames, ignore_index=True).sort_values("point", kind="mergesort").reset_index(drop=True)


def sweep(
    config: Mapping[str, Any] | str | Path,
    *,
    out: str | Path,
    data: str | Path | PanelSpec | None = None,
    backend: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    note: Callable[[str], None] | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run (or resume) the sweep a config declares; see the module docstring.

    Parameters
    ----------
    config : mapping or path
        The sweep document (a TOML file, or the parsed dict).
    out : path
        Output directory; finished points go to ``out/points/``.
    data : path or PanelSpec, optional
        Price data directory (else ``[data] dir``, ``$RISKMODELS_DATA`` or
        the fetch cache), or a :class:`PanelSpec`.
    backend, workers, scheduler
        See :func:`make_executor`.
    progress : callable, optional
        ``progress(message, done, total)`` after every finished point.
    on_point : callable, optional
        Called with each finished row after it is written (tests use it to
        interrupt a sweep).
    """
    if isinstance(config, str | Path):
        from riskmodels.config import read_toml

        spec = parse_sweep(read_toml(config), str(config))
    else:
        spec = parse_sweep(config)
    say = note or (lambda _m: None)
    if isinstance(data, PanelSpec):
        pspec = data
    else:
        from riskmodels.data.resolve import resolve_data_dir

        flag = data or spec.base["data"].get("dir") or None
        d = resolve_data_dir(flag, offline=False, fetch_if_missing=True, progress=say)
        dcfg = spec.base["data"]
        pspec = PanelSpec.files(d, assets=dcfg["universe"] or None, policy=dcfg.get("policy", "error"),
                                interval=dcfg.get("interval", "1d"))
    _, fingerprint = cached_panel(pspec)
    points = spec.points(fingerprint)
    outp = Path(out)
    _points_dir(outp).mkdir(parents=True, exist_ok=True)
    todo = [p for p in points if not (_points_dir(outp) / f"{p.key}.parquet").exists()]
    done = len(points) - len(todo)
    say(f"sweep: {len(points)} points, {done} already done in {outp}, {len(todo)} to run")
    if progress and done:
        progress("resumed", done, len(points))
    if todo:
        with make_executor(backend, workers, scheduler, say) as ex:
            futures = [ex.submit(evaluate_point, pspec, fingerprint, p) for p in todo]
            try:
                for fut in cf.as_completed(futures):
                    row = fut.result()
                    _write_point(outp, row)
                    done += 1
                    if progress:
                        progress(f"point {row['point']} ({row['seconds']:.1f} s)", done, len(points))
                    if on_point:
                        on_point(row)
            finally:
                for f in futures:
                    f.cancel()
    table = _read_points(outp, points)
    timings = table.pop("seconds").rename("seconds")
    timings.index = table["point"].to_numpy()
    return SweepResult(table, tuple(spec.axis_names), timings, outp, len(todo))


# --------------------------------------------------------------------------- CLI
def add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``riskmodels sweep`` to an argparse sub-parser collection."""
    s = subparsers.add_parser("sweep", help="run a declared grid of backtests (resumable; local processes or Dask)",
                              description=EXAMPLE_SWEEP_TOML, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--config", required=True, help="TOML file with a [sweep] section (see the example above)")
    s.add_argument("--data", help="price data directory (else $RISKMODELS_DATA, else the fetch cache)")
    s.add_argument("--out", default="riskmodels-sweep", help="output directory; reruns resume there")
    s.add_argument("--workers", type=int, help="worker processes (default: all cores; 2 for --local-cluster)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    g.add_argument("--local-cluster", action="store_true", help="start a Dask LocalCluster (processes)")
    s.add_argument("--serial", action="store_true", help="run in this process (debugging)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(func=run_sweep)
    return s


def run_sweep(args: argparse.Namespace) -> int:
    """``riskmodels sweep``: run/resume, print the frontier, write table, frontier and heatmap."""
    quiet = bool(getattr(args, "quiet", False))
    t0 = time.perf_counter()

    def note(msg: str) -> None:
        if not quiet:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def progress(msg: str, i: int, n: int) -> None:
        if not quiet:
            sys.stderr.write(f"[{i}/{n}] {msg}  ({time.perf_counter() - t0:.1f} s)\n")
            sys.stderr.flush()

    if getattr(args, "scheduler", None) or getattr(args, "local_cluster", False):
        backend = "dask"
    elif getattr(args, "serial", False):
        backend = "serial"
    else:
        backend = "processes"
    from riskmodels.outputs import atomic_output, check_target

    check_target(args.out)  # an existing file or a foreign folder fails before any work
    res = sweep(args.config, out=args.out, data=getattr(args, "data", None), backend=backend,
                workers=getattr(args, "workers", None), scheduler=getattr(args, "scheduler", None),
                progress=progress, note=note)
    out = Path(args.out)
    from riskmodels.config import read_toml

    doc = read_toml(args.config)
    hm = dict(doc.get("sweep", {}).get("heatmap", {}))
    # the finished folder holds this grid's points (hard links of the resume cache) and the tables, manifest last
    with atomic_output(out, command=f"riskmodels sweep --config {args.config}") as stage:
        _link_points(out, stage, [str(k) for k in res.table["key"]])
        res.table.to_parquet(stage / "sweep.parquet", index=False)
        res.table.to_csv(stage / "sweep.csv", index=False, float_format="%.10g")
        res.frontier().to_csv(stage / "frontier.csv", index=False, float_format="%.10g")
        res.frontier_chart(stage / "frontier.png")
        res.heatmap(stage / "heatmap.png", metric=hm.get("metric", Y_METRIC), x=hm.get("x"), y=hm.get("y"))
    print(res)
    note(f"wrote {out}/sweep.parquet, sweep.csv, frontier.csv, frontier.png, heatmap.png "
         f"({res.computed} computed now, {time.perf_counter() - t0:.1f} s)")
    return 0
