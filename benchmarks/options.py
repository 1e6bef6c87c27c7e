"""Options margin benchmark (issue 19): full revaluation on the SPAN grid and HS VaR, 1,000 accounts x 18 months.

Workload
--------
* Prices: BTC, ETH, SOL daily closes (the shared data, else the embedded
  set); the models fit on the whole history, the evaluation is the last
  ``--days`` dates (548 = 18 months).
* Implied vols: a flat-smile proxy, ``ATM = 1.1 x sqrt(365) x EWMA(0.94)``
  daily vol (written here; the project's proxy source plugs in the same way).
* Book: ``--accounts`` accounts (1,000), each with 1-10 option "templates"
  (asset, call/put, moneyness, tenor, signed quantity; seeded) and linear
  spot collateral and perps. Each evaluation date maps every template to a
  listed contract: the first Friday at least ``tenor`` days ahead and the
  strike rounded to the listing grid (2.5 x 10^(digits-2) USD: 2,500 for BTC
  at 60,000), the way a rolling book holds exchange-listed options.
  ``--unique`` skips the listing (exact strikes and expiries): every position
  is its own contract, the worst case.
* Per date: ``scenario_grid`` (16 scenarios, PSR calibrated) and
  ``historical_var`` (W = 500, h = 2, 99%) ``option_requirement`` for all
  accounts at once, every option revalued in full.

Usage::

    python benchmarks/options.py [--data ../shared/data] [--accounts 1000] [--days 548] [--unique] [--json out.json]

Prints wall and CPU seconds per stage, the load average, the number of unique
contracts and Black-76 evaluations, and the measured cost of one evaluation
(the physical bound: evaluations x cost).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ("BTC", "ETH", "SOL")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load(data: str):
    from riskmodels.data.loaders import load_panel

    try:
        return load_panel(data, assets=list(ASSETS), policy="truncate"), data
    except Exception:
        from riskmodels.data.embedded import EMBEDDED_DIR

        return load_panel(EMBEDDED_DIR, assets=list(ASSETS), policy="truncate"), "embedded"


def templates(n_accounts: int, seed: int = 19) -> dict[str, np.ndarray]:
    """Seeded option templates: 1-10 per account (no per-position Python loop)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 11, n_accounts)
    n = int(counts.sum())
    return {
        "account": np.repeat(np.arange(n_accounts), counts),
        "asset": rng.choice(len(ASSETS), n, p=[0.5, 0.35, 0.15]),
        "is_call": rng.random(n) < 0.5,
        "moneyness": np.exp(rng.normal(0.0, 0.12, n)),
        "tenor": rng.choice([3, 7, 14, 30, 60, 90, 180], n),
        "quantity": rng.choice([-1.0, 1.0], n, p=[0.6, 0.4]) * rng.uniform(0.5, 5.0, n),
    }


def option_state(tpl: dict[str, np.ndarray], panel, vol, t: int, listed: bool):
    from riskmodels.instruments.options import OptionState, OptionTable

    spot = panel.close[t]
    today = np.datetime64(panel.dates[t].date(), "D")
    s = spot[tpl["asset"]]
    if listed:
        step = 2.5 * 10.0 ** (np.floor(np.log10(s)) - 1)
        strike = np.maximum(np.round(tpl["moneyness"] * s / step), 1) * step
        target = today + tpl["tenor"].astype("timedelta64[D]")
        dow = (target.astype(np.int64) - 1) % 7  # 1970-01-02 was a Friday: 0 = Friday
        expiry = target + ((7 - dow) % 7).astype("timedelta64[D]")
    else:
        strike = tpl["moneyness"] * s
        expiry = today + tpl["tenor"].astype("timedelta64[D]")
    tab = OptionTable(panel.assets, tpl["account"], tpl["asset"], tpl["is_call"], strike, expiry, tpl["quantity"])
    tau = tab.tau(panel.dates[t])
    return OptionState(tab, tau, vol.iv(t, tab.asset, tau, tab.strike, spot), spot, vol)


def make_vol(panel):
    from riskmodels.instruments.options import VolSource
    from riskmodels.margin.historical import ewma_volatility

    class EwmaProxy(VolSource):
        label = "proxy: EWMA(0.94) x 1.10, flat smile (benchmark)"
        is_proxy = True

        def __init__(self) -> None:
            self._atm = 1.1 * np.sqrt(365.0) * ewma_volatility(panel.returns(1))

        def atm(self) -> np.ndarray:
            return self._atm

        def iv(self, t, asset, tau, strike, spot):
            return self._atm[t, asset]

    return EwmaProxy()


def eval_cost(n: int = 2_000_000) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) per Black-76 evaluation of the numba kernel, a (200, n/200) grid."""
    from riskmodels.margin.options_scan import Contracts, revalue

    rng = np.random.default_rng(0)
    U, S = n // 200, 200
    c = Contracts(np.zeros(U, np.int64), rng.random(U) < 0.5, rng.uniform(50, 150, U), rng.uniform(0.01, 0.5, U),
                  rng.uniform(0.3, 1.2, U), np.full(U, 100.0), None, None)  # type: ignore[arg-type]
    mult = np.exp(rng.normal(0, 0.1, (S, U)))
    sig = np.broadcast_to(c.iv, (S, U)).copy()
    revalue(c, mult[:2], sig[:2])
    t0, c0 = time.perf_counter(), _cpu()
    revalue(c, mult, sig)
    return (time.perf_counter() - t0) / (U * S), (_cpu() - c0) / (U * S)


def reference(tpl, panel, vol, hs, grid, days, listed, n_accounts):
    """The plain implementation a quant would write: every position revalued with vectorised numpy
    (:meth:`OptionTable.scenario_pnl`, no grouping into contracts) on the same 16 + 500 scenarios;
    only the option P&L (the linear part and the quantiles are the same code in both), against the
    same P&L from :mod:`riskmodels.margin.options_scan`. CPU seconds of each over ``days``."""
    from riskmodels.margin import options_hs, options_scan

    ref = ours = 0.0
    gap = 0.0
    for t in days:
        t = int(t)
        state = option_state(tpl, panel, vol, t, listed)
        g = hs.scenarios(t)[0]
        lo = max(0, t - 500 + 1)
        ratio = options_hs.iv_ratio(vol, np.arange(lo, t + 1), 2)
        rng = grid.ranges[t]
        tab = grid.table
        move = tab.scaled[:, None] * rng[None, :] + tab.absolute[:, None]
        c0 = _cpu()
        a = state.scenario_pnl(n_accounts, g, np.nan_to_num(ratio - 1.0), relative_vol=True, horizon_days=2.0)
        state.scenario_pnl(n_accounts, move, 0.25 * tab.vol[:, None] * np.ones_like(move), relative_vol=True,
                           horizon_days=1.0)
        c1 = _cpu()
        options_scan._CACHE.pop(state, None)  # a fresh state: grouping included in our time
        c = options_scan.contracts(state, n_accounts)
        b = -options_hs.option_losses(c, g, ratio, 2.0)
        sig = c.iv[None, :] * (1.0 + 0.25 * tab.vol[:, None])
        options_scan.account_pnl(c, options_scan.revalue(c, 1.0 + move[:, c.asset], sig, 1.0))
        c2 = _cpu()
        ref += c1 - c0
        ours += c2 - c1
        gap = max(gap, float(np.nanmax(np.abs(a - b))))
    return {"ref_cpu_s": ref, "ours_cpu_s": ours, "ref_max_abs_gap_usd": gap}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--accounts", type=int, default=1_000)
    ap.add_argument("--days", type=int, default=548)
    ap.add_argument("--unique", action="store_true", help="every position its own contract (worst case)")
    ap.add_argument("--ref-days", type=int, default=5,
                    help="days the plain-numpy reference revaluation runs (scaled to --days); 0 = skip")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from threadpoolctl import threadpool_limits

    from riskmodels.margin import get
    from riskmodels.margin.options_scan import contracts

    warnings.simplefilter("ignore")
    panel, source = load(args.data)
    vol = make_vol(panel)
    tpl = templates(args.accounts)
    rng = np.random.default_rng(5)
    A = panel.n_assets
    coll = np.abs(rng.normal(0, 20_000, (args.accounts, A))) * (rng.random((args.accounts, A)) < 0.4)
    pos = rng.normal(0, 30_000, (args.accounts, A)) * (rng.random((args.accounts, A)) < 0.5)
    T = panel.n_dates
    days = np.arange(T - args.days, T)
    out: dict[str, float] = {}
    with threadpool_limits(1, user_api="blas"):
        c0, f0 = _cpu(), time.perf_counter()
        grid = get("scenario_grid").fit(panel)
        hs = get("historical_var", window=500, horizon=2, confidence=0.99).fit(panel)
        out["fit_wall_s"], out["fit_cpu_s"] = time.perf_counter() - f0, _cpu() - c0
        warm = option_state(tpl, panel, vol, int(days[0]), not args.unique)  # compile / load the numba caches
        grid.option_requirement(int(days[0]), coll, pos, warm)
        hs.option_requirement(int(days[0]), coll, pos, warm)
        stages = {"state": 0.0, "grid": 0.0, "hs": 0.0}
        n_contracts = n_positions = 0
        c0, w0 = _cpu(), time.perf_counter()
        im_grid = np.empty((days.size, args.accounts))
        im_hs = np.empty((days.size, args.accounts))
        for i, t in enumerate(days):  # one date at a time, vectorised over accounts and positions
            s0 = time.perf_counter()
            state = option_state(tpl, panel, vol, int(t), not args.unique)
            n_contracts += contracts(state, args.accounts).n
            n_positions += len(state.table)
            s1 = time.perf_counter()
            im_grid[i] = grid.option_requirement(int(t), coll, pos, state).initial
            s2 = time.perf_counter()
            im_hs[i] = hs.option_requirement(int(t), coll, pos, state).initial
            s3 = time.perf_counter()
            stages["state"] += s1 - s0
            stages["grid"] += s2 - s1
            stages["hs"] += s3 - s2
        out["margin_wall_s"], out["margin_cpu_s"] = time.perf_counter() - w0, _cpu() - c0
    out.update({f"{k}_wall_s": v for k, v in stages.items()})
    if args.ref_days:
        out.update(reference(tpl, panel, vol, hs, grid, days[-args.ref_days:], not args.unique, args.accounts))
        out["ref_scaled_cpu_s"] = out["ref_cpu_s"] * days.size / args.ref_days
        out["ours_revalue_cpu_s"] = out["ours_cpu_s"] * days.size / args.ref_days
    n_hs_rows = 500
    evals = n_contracts * (16 + n_hs_rows)
    cost, cost_cpu = eval_cost()
    out.update({
        "accounts": args.accounts, "days": int(days.size), "positions_per_day": n_positions / days.size,
        "contracts_per_day": n_contracts / days.size, "black76_evaluations": float(evals),
        "ns_per_evaluation": cost * 1e9, "cpu_ns_per_evaluation": cost_cpu * 1e9, "bound_s": evals * cost,
        "bound_cpu_s": evals * cost_cpu, "load_1min": os.getloadavg()[0],
        "finite_grid": float(np.isfinite(im_grid).mean()), "finite_hs": float(np.isfinite(im_hs).mean()),
    })
    print(f"data: {source}; {args.accounts} accounts, {days.size} days, "
          f"{out['positions_per_day']:.0f} positions/day in {out['contracts_per_day']:.0f} contracts/day"
          f"{' (every position unique)' if args.unique else ' (listed strikes and Friday expiries)'}")
    print(f"fit: {out['fit_wall_s']:.1f} s wall, {out['fit_cpu_s']:.1f} s CPU")
    print(f"margins (grid + HS, all days): {out['margin_wall_s']:.1f} s wall, {out['margin_cpu_s']:.1f} s CPU "
          f"[state {stages['state']:.1f} s, grid {stages['grid']:.1f} s, HS {stages['hs']:.1f} s]")
    print(f"Black-76 evaluations: {evals:.3g} at {cost * 1e9:.1f} ns wall / {cost_cpu * 1e9:.1f} ns CPU each "
          f"(numba, all threads) = bound {evals * cost:.1f} s wall / {evals * cost_cpu:.1f} s CPU; "
          f"load average {out['load_1min']:.2f}")
    if args.ref_days:
        print(f"option revaluation alone, {args.ref_days} days scaled to {days.size}: plain numpy per position "
              f"(OptionTable.scenario_pnl) {out['ref_scaled_cpu_s']:.1f} s CPU vs contracts + numba "
              f"{out['ours_revalue_cpu_s']:.1f} s CPU (x{out['ref_scaled_cpu_s'] / out['ours_revalue_cpu_s']:.1f}); "
              f"largest P&L difference {out['ref_max_abs_gap_usd']:.1e} USD")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
