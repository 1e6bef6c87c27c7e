"""Size and power of the coverage verdict, by simulation where the true quantile is known.

Run: ``PYTHONPATH=. python benchmarks/verdict_size.py [--seeds 200] [--accounts 1000] [--dates 2608]``

Design (README "Coverage verdict"):

* returns from the synthetic generator (:func:`riskmodels.data.synthetic.simulate_returns`)
  in its i.i.d. multivariate-t case (``alpha = beta = 0``, no jumps): one
  chi-square mixing variable per date shared by all assets, so the assets
  are tail-dependent (crash days hit every coin at once), correlation 0.5,
  nu = 5, daily vol 3%, 18 assets;
* the default book (1,000 accounts from :func:`riskmodels.portfolio.generate_book`,
  seed varied), held at constant USD exposure ``x_p``; accounts enter at
  staggered dates as in the real default (half from the first date, half at
  a uniform date in the first 60% of the window);
* the h = 2 day loss is linear in log returns, ``L[t, p] = -x_p . (r_{t+1} + r_{t+2})``,
  so ``L[t, p] = s_p (T_1 + T_2)`` with ``s_p = sqrt(x_p' Sigma x_p)`` and
  ``T_1, T_2`` i.i.d. standardised t_nu: the true 99% quantile is
  ``s_p q2`` with ``q2`` the 99% quantile of ``T_1 + T_2`` (numerical
  convolution, checked against 10^7 draws); windows overlap (daily
  evaluation of 2-day losses);
* a correctly specified margin is ``s_p q2`` (size), an inadequate one
  ``0.8 s_p q2`` (power) and an over-margined one ``1.25 s_p q2`` (power
  against too few exceptions).

Because the true quantile is exact, the exception indicators do not depend
on the volatility level: the dependence that matters for the test's size
(cross-sectional tail dependence and the overlap) is all here.

Prints the rejection rates with their binomial 95% intervals, and the pooled
Kupiec test's rate for comparison (the old verdict).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import integrate, optimize, stats

from riskmodels.backtest.stats import kupiec_lr
from riskmodels.backtest.verdict import coverage_verdict
from riskmodels.data.synthetic import simulate_returns
from riskmodels.portfolio import generate_book

ASSETS = ("BTC", "ETH", "BNB", "XRP", "ADA", "DOGE", "SOL", "LINK", "LTC",
          "BCH", "ETC", "XLM", "XMR", "TRX", "DOT", "AVAX", "NEAR", "AAVE")
#: 2018-01-01 .. 2025-02-20, the default window (daily dates)
DEFAULT_DATES = 2608


def sum_t_quantile(q: float, nu: float) -> float:
    """``q``-quantile of ``T_1 + T_2``, i.i.d. standardised (unit-variance) Student t_nu.

    ``P(T_1 + T_2 <= x) = int f(u) F(x - u) du`` with ``f, F`` the density and
    CDF of ``t_nu sqrt((nu - 2) / nu)``; solved for x with Brent's method.
    """
    c = math.sqrt((nu - 2.0) / nu)
    dist = stats.t(nu, scale=c)

    def cdf(x: float) -> float:
        val, _ = integrate.quad(lambda u: dist.pdf(u) * dist.cdf(x - u), -np.inf, np.inf, limit=200)
        return val

    return float(optimize.brentq(lambda x: cdf(x) - q, 0.0, 20.0, xtol=1e-10))


def simulate_seed(seed: int, *, n_accounts: int, n_dates: int, scales: tuple[float, ...], nu: float = 5.0,
                  corr: float = 0.5, vol: float = 0.03, h: int = 2, p: float = 0.01, level: float = 0.05,
                  q2: float | None = None) -> dict[float, tuple[bool, bool]]:
    """For each margin scale: (verdict rejects, pooled Kupiec rejects) on one seeded world."""
    q2 = sum_t_quantile(1.0 - p, nu) if q2 is None else q2
    rng = np.random.default_rng(10_000 + seed)
    path = simulate_returns(n_dates + h, len(ASSETS), seed=seed, model="garch_t", vol=vol, alpha=0.0, beta=0.0,
                            nu=nu, corr=corr, burn_in=0)
    r = path.returns[1:]  # (n_dates + h - 1, A): r[i] is the return of day i + 1
    rh = sum(r[k : k + n_dates] for k in range(h))  # (n_dates, A): return over days t+1..t+h
    book = generate_book(ASSETS, n_accounts, seed=seed)
    x = book.exposure  # (P, A) USD
    loss = -(rh @ x.T)  # (T, P)
    cov = vol**2 * path.corr
    s = np.sqrt(np.einsum("pa,ab,pb->p", x, cov, x))
    first = np.where(rng.random(n_accounts) < 0.5, 0, rng.integers(0, int(0.6 * n_dates), n_accounts))
    valid = np.arange(n_dates)[:, None] >= first[None, :]
    side = np.sign(x.sum(axis=1)).astype(np.int8)
    out = {}
    for c in scales:
        exc = valid & (loss > c * q2 * s[None, :])
        v = coverage_verdict(exc, valid, side, p, h, level)
        n, k = int(valid.sum()), int(exc.sum())
        pooled = float(stats.chi2.sf(kupiec_lr(k, n, p), 1)) < level
        out[c] = (v.rejected, pooled)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--dates", type=int, default=DEFAULT_DATES)
    ap.add_argument("--nu", type=float, default=5.0)
    args = ap.parse_args(argv)
    scales = (1.0, 0.8, 1.25)
    q2 = sum_t_quantile(0.99, args.nu)
    t0 = time.perf_counter()
    rej = {c: [] for c in scales}
    pooled = {c: [] for c in scales}
    for seed in range(args.seeds):
        res = simulate_seed(seed, n_accounts=args.accounts, n_dates=args.dates, scales=scales, nu=args.nu, q2=q2)
        for c in scales:
            rej[c].append(res[c][0])
            pooled[c].append(res[c][1])
    el = time.perf_counter() - t0
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"verdict size/power: {args.seeds} seeds, {args.accounts} accounts, {args.dates} dates, h=2, p=1%, "
          f"nu={args.nu:g}, level 5%  (q2={q2:.4f}; {el:.0f} s, load {load})")
    print(f"{'margin':>22s} {'verdict rejects':>16s} {'95% interval':>16s} {'pooled Kupiec rejects':>22s}")
    for c in scales:
        k, n = int(np.sum(rej[c])), len(rej[c])
        lo, hi = stats.binomtest(k, n).proportion_ci(0.95)
        what = {1.0: "true quantile (size)", 0.8: "0.8 x true (power)", 1.25: "1.25 x true (power)"}[c]
        print(f"{what:>22s} {k / n:>16.1%} {f'[{lo:.1%}, {hi:.1%}]':>16s} {np.mean(pooled[c]):>22.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
