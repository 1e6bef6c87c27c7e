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

Modules: this one holds :func:`sweep` and the ``riskmodels sweep`` command line;
the grid is parsed in :mod:`riskmodels.sweep_grid`, one point is run by
:mod:`riskmodels.sweep_worker`, the backends are in :mod:`riskmodels.sweep_executors`
and the per-point files and :class:`SweepResult` in :mod:`riskmodels.sweep_result`.
Their public names are importable from here too.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import sys
import time
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from riskmodels.sweep_executors import BACKENDS as BACKENDS
from riskmodels.sweep_executors import SerialExecutor, make_executor
from riskmodels.sweep_grid import AXIS_NAMESPACES, Point, SweepSpec, parse_sweep
from riskmodels.sweep_grid import DATA_AXES as DATA_AXES
from riskmodels.sweep_grid import SWEEP_KEYS as SWEEP_KEYS
from riskmodels.sweep_grid import point_key as point_key
from riskmodels.sweep_result import X_METRIC as X_METRIC
from riskmodels.sweep_result import (
    Y_METRIC,
    SweepResult,
    _link_points,
    _points_dir,
    _read_points,
    _write_point,
)
from riskmodels.sweep_worker import PanelSpec, cached_panel, evaluate_point

# Re-exported (`x as x`) from the modules that now hold them, so every name
# defined here before the split is still importable from riskmodels.sweep.
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

#: the commented example shipped as riskmodels/configs/sweep.toml (``riskmodels config --example sweep``)
EXAMPLE_SWEEP_TOML = (files("riskmodels") / "configs" / "sweep.toml").read_text(encoding="utf-8")


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
