"""What a sweep worker runs: the price panel (read once per process) and one grid point.

:class:`PanelSpec` says where the panel comes from (picklable, so it travels to
worker processes instead of the panel); :func:`cached_panel` loads it once per
process; :func:`evaluate_point` runs the full backtest of one :class:`Point` and
returns its row of metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskmodels.data.panel import PricePanel
from riskmodels.sweep_grid import Point


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
