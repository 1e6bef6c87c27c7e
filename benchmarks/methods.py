"""Per-method benchmarks asked for by the method issues, each against its plain reference in the same run.

* SPAN-like grid (issue 3): ``path()`` for 10,000 accounts x 18 assets x all
  dates, against the plain per-account loop of ``benchmarks/reference``
  (``SpanRef``: a loop over dates and accounts, 16 scenarios each) run on
  ``--ref-accounts`` accounts and scaled linearly to 10,000.
* Historical VaR (issue 4): ``path()`` for 1,000 accounts, W = 500, h = 2,
  against one pandas ``rolling(W).quantile`` per account (``HistoricalRef``),
  all 1,000 accounts run.
* GARCH (issue 5): the fit of 18 assets with refits every 20 days against
  arch refitting every day (``time_daily_refits``: the mean time of sampled
  arch fits times the number of daily fits; sampled, not run in full).

Usage::

    python benchmarks/methods.py --data ../shared/data [--json out.json]

Prints one table; timings are whole-stage wall seconds in this process with
BLAS on one thread (as the engine runs a model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RISKMODELS_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--span-accounts", type=int, default=10_000)
    ap.add_argument("--ref-accounts", type=int, default=20)
    ap.add_argument("--hs-accounts", type=int, default=1_000)
    ap.add_argument("--garch-sample", type=int, default=40)
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from benchmarks.reference.backtest import account_eligible, margin_path
    from benchmarks.reference.margins import HistoricalRef, SpanRef, time_daily_refits
    from riskmodels import generate_book
    from riskmodels.data.loaders import DEFAULT_UNIVERSE, load_panel
    from riskmodels.margin import get
    from riskmodels.margin.base import account_eligibility

    warnings.simplefilter("ignore")
    panel = load_panel(args.data, assets=list(DEFAULT_UNIVERSE), policy="truncate")
    rows = []
    with threadpool_limits(1, user_api="blas"):
        # -- SPAN grid, issue 3
        book = generate_book(panel.assets, args.span_accounts, seed=7)
        fitted = get("scenario_grid").fit(panel)
        ok = fitted.panel.eligible(fitted.model.min_history)
        elig = account_eligibility(ok, book)
        _, fast = _timed(lambda: fitted.path(book, elig))
        ref = SpanRef().fit(panel)
        sub = book.subset(np.arange(args.ref_accounts))
        e_sub = account_eligible(ref.ok, sub.collateral, sub.positions)
        _, slow = _timed(lambda: margin_path(ref, sub.collateral, sub.positions, sub.isolated, e_sub))
        slow_full = slow * args.span_accounts / args.ref_accounts
        rows.append((f"SPAN grid path, {args.span_accounts} accounts", fast, slow_full,
                     f"reference run on {args.ref_accounts} accounts, scaled x{args.span_accounts // args.ref_accounts}"))
        # -- historical VaR, issue 4
        book = generate_book(panel.assets, args.hs_accounts, seed=7)
        fitted = get("historical_var", window=500, horizon=2).fit(panel)
        elig = account_eligibility(panel.eligible(fitted.model.min_history), book)
        fitted.path(book, elig)  # numba compile / cache outside the timing
        _, fast = _timed(lambda: fitted.path(book, elig))
        ref = HistoricalRef().fit(panel)
        e_ref = account_eligible(ref.ok, book.collateral, book.positions)
        _, slow = _timed(lambda: margin_path(ref, book.collateral, book.positions, book.isolated, e_ref))
        rows.append((f"HS VaR path, {args.hs_accounts} accounts", fast, slow,
                     "pandas rolling(500).quantile per account, all accounts run"))
        # -- GARCH, issue 5
        model = get("garch", refit_every=20, n_jobs=1)
        _, fast = _timed(lambda: model.fit(panel))
        mean_fit, n_daily, _ = time_daily_refits(panel, n_sample=args.garch_sample)
        rows.append(("GARCH-t fit, 18 assets, refit every 20 d", fast, mean_fit * n_daily,
                     f"arch refit every day: {args.garch_sample} sampled fits x {n_daily:,} daily fits"))

    print(f"{'stage':44s} {'riskmodels s':>13s} {'reference s':>12s} {'ratio':>7s}  note")
    for name, fast, slow, note in rows:
        print(f"{name:44s} {fast:13.2f} {slow:12.1f} {slow / fast:7.1f}  {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"stage": n, "riskmodels_s": f, "reference_s": s, "ratio": s / f, "note": t} for n, f, s, t in rows],
            indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
