"""The fused HS requirement kernel alone, per 1,000 accounts and date (issue 23; session 11-12 figures).

On the default config's universe, real data and 1,000-account book, the
scenario layouts of every 7th date from date 1,500 are prepared first; then
``_hs_fused.unit_tail`` (the plain HS row) and ``_hs_fused.stress_tail`` (the
25% stressed-weight row) price the whole book on each of them, best of
``--repeat`` passes, numba on one thread. Only the kernel call is timed (no
per-date Python of the requirement chain, no simulation). To compare two
source trees, run it once with each on ``PYTHONPATH``, alternating::

    RISKMODELS_DATA=../shared/data PYTHONPATH=/tmp/base python benchmarks/hs_kernel.py
    RISKMODELS_DATA=../shared/data PYTHONPATH=. python benchmarks/hs_kernel.py
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numba
import numpy as np
from _harness import default_panel  # the script folder is on sys.path (python benchmarks/...)

ROWS = ("HS VaR 99% 2d", "HS VaR 99% 2d + 25% stressed weight")


def run(kernels: Any, X: np.ndarray, m: Any, asset_ok: np.ndarray, laid: list[tuple[int, Any, Any]]) -> None:
    """One pass of the kernel over the prepared dates."""
    for t, prep, (_g, n, _w, flags) in laid:
        if m.stress_weight is not None:
            kernels.stress_tail(X, prep, n, m.confidence, m.min_window, flags, m.stress_weight, asset_ok[t])
        else:
            kernels.unit_tail(X, prep, n, m.confidence, m.min_window, flags, asset_ok[t])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", "../shared/data"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--every", type=int, default=7, help="date step from date 1,500")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    numba.set_num_threads(1)
    from riskmodels.backtest.engine import build_book, build_models
    from riskmodels.config import default_config
    from riskmodels.margin import _hs_fused

    cfg = default_config()
    panel = default_panel(a.data, cfg)
    book = build_book(cfg, panel.assets)
    X = np.ascontiguousarray(book.collateral + book.positions)
    models = {m.label: m for m in build_models(cfg)}
    dates = list(range(1500, panel.n_dates, a.every))
    print(f"{book.n_accounts:,} accounts, {len(dates)} dates, load average {os.getloadavg()[0]:.2f}")
    for label in ROWS:
        f = models[label].fit(panel)
        f = getattr(f, "effective", f)  # the stressed-weight wrapper returns its HS model
        m = f.model
        laid = [(t, f._prepared(t), f.scenarios(t)) for t in dates]

        run(_hs_fused, X, m, f.asset_ok, laid)  # compile or load from the cache
        best = np.inf
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            run(_hs_fused, X, m, f.asset_ok, laid)
            best = min(best, time.perf_counter() - t0)
        per = best / len(dates) * 1e3 * 1000 / book.n_accounts
        print(f"{label:40s} {per:.3f} ms per 1,000 accounts and date (best of {a.repeat})")


if __name__ == "__main__":
    main()
