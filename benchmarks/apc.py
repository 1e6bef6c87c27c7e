"""APC wrapper cost against its inner model in the account simulation (issue 23, item 4).

Runs the simulation of the same book with the inner model and with each
wrapper, interleaved (A, B, A, B, ...) so that machine load hits both alike,
and prints the median ratio wrapper / inner with the load average sampled
before and after. Synthetic seeded panel (no data needed)::

    PYTHONPATH=. python benchmarks/apc.py --accounts 150 --dates 1500 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from riskmodels.backtest.simulation import LiquidationPolicy, simulate_accounts
from riskmodels.data.panel import PricePanel
from riskmodels.margin.apc import Buffer25, SpeedLimit, StressWeight25
from riskmodels.margin.historical import HistoricalVaR
from riskmodels.portfolio import Book


def synthetic(T: int, A: int, P: int, seed: int = 0) -> tuple[PricePanel, Book]:
    rng = np.random.default_rng(seed)
    r = 0.03 * rng.standard_normal((T, A)) * np.where(np.arange(T)[:, None] % 400 < 60, 2.5, 1.0)
    r[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    opn = np.vstack([close[:1], close[:-1]])
    dates = pd.date_range("2015-01-01", periods=T, freq="D")
    pan = PricePanel(dates, tuple(f"A{j}" for j in range(A)), opn, np.maximum(opn, close) * 1.02,
                     np.minimum(opn, close) * 0.98, close, np.ones_like(close))
    coll = np.abs(rng.normal(1e4, 5e3, (P, A))) * (rng.random((P, A)) < 0.5)
    pos = rng.normal(0.0, 2e4, (P, A)) * (rng.random((P, A)) < 0.5)
    return pan, Book(pan.assets, coll, pos)


def run(model, pan: PricePanel, book: Book, start: int) -> float:
    t0 = time.perf_counter()
    simulate_accounts(model.fit(pan), book, LiquidationPolicy(), start=start)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=150)
    ap.add_argument("--assets", type=int, default=6)
    ap.add_argument("--dates", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="wrapper names to run (default: all)")
    a = ap.parse_args()
    pan, book = synthetic(a.dates, a.assets, a.accounts)
    hs = HistoricalVaR(confidence=0.99, horizon=2, window=500)
    fhs = HistoricalVaR(confidence=0.99, horizon=2, window=500, method="fhs")
    ap_pairs = [
        ("HS", hs, Buffer25(hs)),
        ("HS", hs, SpeedLimit(hs)),
        ("HS", hs, StressWeight25(hs, stress_windows=[("2015-03-01", "2015-05-01")])),
        ("FHS", fhs, StressWeight25(fhs, stress_windows=[("2015-03-01", "2015-05-01")])),
    ]
    pairs = [p for p in ap_pairs if not a.only or p[2].name in a.only]
    start = 500
    run(hs, pan, book, start)  # compile the kernels
    print(f"accounts={a.accounts} assets={a.assets} dates={a.dates} load before={os.getloadavg()}")
    for inner_name, inner, wrap in pairs:
        ti, tw = [], []
        for _ in range(a.repeat):
            ti.append(run(inner, pan, book, start))
            tw.append(run(wrap, pan, book, start))
        r = np.median(np.array(tw) / np.array(ti))
        print(f"{wrap.name:>18s} around {inner_name:<4s} inner {np.median(ti):7.2f} s  wrapper {np.median(tw):7.2f} s  "
              f"ratio {r:5.2f}  load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
