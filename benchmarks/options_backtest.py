"""Option books at scale (issue 19): 1,000 accounts with up to 10 options each, 18 months of daily history.

Runs the option backtest (margin path with full revaluation, coverage loss,
account simulation) for every listed model that prices options
(``supports_options``; the others are skipped with a note) on the embedded
BTC/ETH data, 2021-01-01..2022-06-30, and prints per model the CPU seconds
(``time.process_time``) and wall seconds of each stage, with the load
average before and after. The issue's target: the 16-scenario grid and HS
VaR (500 scenarios) in under 2 minutes on 2 cores::

    PYTHONPATH=. python benchmarks/options_backtest.py --accounts 1000 --strategies 5
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from riskmodels.backtest.options_market import OptionMarket
from riskmodels.backtest.options_path import option_path, simulate_option_accounts
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.data.embedded import EMBEDDED_DIR
from riskmodels.data.loaders import load_panel
from riskmodels.instruments.generate import generate_option_book
from riskmodels.instruments.vol import ProxyVol
from riskmodels.margin.base import account_eligibility, get
from riskmodels.portfolio import generate_book

MODELS = {
    "fixed_haircut": {},
    "scenario_grid": {"psr_quantile": 0.99, "psr_horizon": 2, "psr_lookback": 365},
    "historical_var": {"confidence": 0.99, "horizon": 2, "window": 500},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--strategies", type=int, default=5, help="strategies per account (up to 2 legs each)")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    import riskmodels.margin  # noqa: F401

    panel = load_panel(EMBEDDED_DIR, assets=["BTC", "ETH"], policy="truncate")
    start, end = panel.date_index("2021-01-01"), panel.date_index("2022-06-30")
    vol = ProxyVol(panel)
    c0 = time.process_time()
    book = generate_option_book(panel, generate_book(panel.assets, args.accounts, seed=7), vol, seed=11,
                                start=start, end=end, strategies_per_account=(1, args.strategies))
    per = np.bincount(book.options.account, minlength=book.n_accounts)
    live = max(int(OptionMarket(panel, book.options, vol).held(t).sum()) for t in range(start, end + 1, 30))
    print(f"book: {book.n_accounts} accounts, {len(book.options)} option rows over the window "
          f"(up to {live} held at once, {per.max()} rows in the largest account); "
          f"generated in {time.process_time() - c0:.1f} s CPU")
    mkt = OptionMarket(panel, book.options, vol)
    elig = account_eligibility(panel.eligible(365), book)
    held = sum(int(mkt.held(t).sum()) for t in range(start, end + 1))
    # bound of the coverage loss: 2 Black-76 prices per held position and date; one vectorised price cost
    # 60 ns of CPU (measured: 1e6 prices, numpy, load ~16)
    print(f"held position-days: {held:,}; coverage-loss bound ~{2 * held * 60e-9:.2f} s CPU (2 prices x 60 ns)")
    c0, w0 = time.process_time(), time.perf_counter()
    mkt.loss_parts(book.collateral, 2, start, end)
    print(f"coverage loss (full revaluation at t and t+2): {time.process_time() - c0:.1f} s CPU, "
          f"{time.perf_counter() - w0:.1f} s wall")
    for name in args.models.split(","):
        fitted = get(name, **MODELS.get(name, {})).fit(panel)
        if not getattr(fitted, "supports_options", False):
            print(f"{name}: skipped (does not price options in this tree)")
            continue
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        c0, w0 = time.process_time(), time.perf_counter()
        option_path(fitted, book, mkt, elig, start, end)
        c1, w1 = time.process_time(), time.perf_counter()
        simulate_option_accounts(fitted, book, mkt, LiquidationPolicy(), start=start, end=end)
        c2, w2 = time.process_time(), time.perf_counter()
        print(f"{name}: path {c1 - c0:.1f} s CPU ({w1 - w0:.1f} s wall), simulation {c2 - c1:.1f} s CPU "
              f"({w2 - w1:.1f} s wall); load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
