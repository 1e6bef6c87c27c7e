"""The machine's measured rates and the physical bound of every benchmark stage.

A stage's bound is the time the hardware needs for the *minimum* work of the
algorithm riskmodels uses, at the rates measured on this machine, with no
interpreter overhead::

    bound = gemm_flops / F  +  elementwise_ops / E  +  streamed_bytes / B
            + dependent_steps x L  +  transcendentals / X

* ``F`` -- double-precision matrix-product rate of ONE core (square
  ``1024 x 1024`` DGEMM, BLAS on 1 thread, as the engine runs each model);
* ``E`` -- elementwise rate on an L2-resident array the size of the
  simulation's account state (``1,000 x 18`` float64): a fused multiply-add
  ``a = b + s c`` counted as 2 operations;
* ``B`` -- memory bandwidth of one core, a STREAM-like triad (``a = b + s c``
  on arrays of 2 x 10^7 float64 = 160 MB each, far above the 32 MiB L3);
  numpy runs it in two passes (``a = 3 c``, then ``a += b``) that move 40
  bytes per element (STREAM's one pass moves 24), and is charged the 40;
* ``L`` -- latency of one step of a dependent scalar recursion
  ``s = w + a e_i + b s`` (the GARCH variance filter; a compiled loop, so
  the chain of two dependent floating-point operations is all that is left);
* ``X`` -- throughput of ``log`` (numpy's SIMD ``np.log`` on 10^6 float64).

Every term is a lower bound of its part: a stage's real time is at least the
largest term and, since the parts run one after another, close to their sum
for a good implementation. ``benchmarks/README.md`` derives the counts and
compares each stage with its bound (target: within 3x). The counts are
functions of the workload (:class:`Workload`), so the bound follows the
account count.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def _best(fn, repeat: int) -> float:
    """Fastest of ``repeat`` timed calls (the machine's rate, not its load)."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_rates(repeat: int = 5) -> dict[str, float]:
    """Measure ``F`` (flop/s), ``E`` (op/s), ``B`` (byte/s), ``L`` (s/step), ``X`` (log/s) on one core.

    The fastest of ``repeat`` runs is kept: under load a slower run measures
    the other processes, not the machine. Takes about 2 s.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    with threadpool_limits(1, user_api="blas"):
        n = 1024
        a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        a @ b
        square = 2.0 * n**3 / _best(lambda: a @ b, 2 * repeat)
        # the HS VaR product as the simulation runs it: (1,000 x 18) @ (18 x 500)
        x, g = rng.standard_normal((1000, 18)), rng.standard_normal((18, 500))
        out["F_skinny_flops"] = 2.0 * 1000 * 18 * 500 / _best(lambda: x @ g, repeat * 20)
        # the core's rate is the faster of the two (a slow square run measured the load)
        out["F_square_flops"] = square
        out["F_flops"] = max(square, out["F_skinny_flops"])
    m = 20_000_000
    bb, cc, aa = rng.standard_normal(m), rng.standard_normal(m), np.empty(m)

    def triad(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    # numpy's two passes move 40 bytes per element; STREAM's triad moves 24: time the two
    # passes and charge them the 40 they really move, so B is the hardware's bandwidth
    big = (aa, bb, cc)
    out["B_bytes"] = 40.0 * m / _best(lambda: triad(*big), repeat)
    big = aa = bb = cc = None  # free the 480 MB before the small tests
    k = 18_000
    bs, cs, as_ = rng.standard_normal(k), rng.standard_normal(k), np.empty(k)
    reps = 200

    def cached() -> None:
        for _ in range(reps):
            triad(as_, bs, cs)

    out["E_ops"] = 2.0 * k * reps / _best(cached, repeat)
    lg = np.abs(rng.standard_normal(1_000_000)) + 0.1
    out["X_logs"] = lg.size / _best(lambda: np.log(lg), repeat)
    out["L_step_s"] = _recursion_latency(repeat)
    return out


def _recursion_latency(repeat: int) -> float:
    """Seconds per step of ``s = w + a e_i + b s`` compiled by numba (no interpreter in the chain)."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return math.nan

    @numba.njit(cache=False)
    def filt(e: np.ndarray, w: float, a: float, b: float) -> float:
        s = 1.0
        for i in range(e.size):
            s = w + a * e[i] + b * s
        return s

    e = np.random.default_rng(1).standard_normal(2_000_000) ** 2
    filt(e[:10], 0.1, 0.1, 0.8)
    return _best(lambda: filt(e, 0.1, 0.1, 0.8), repeat) / e.size


@dataclass(frozen=True)
class Workload:
    """The counts the bounds are made of (the standard benchmark's defaults).

    ``T`` panel dates (the fit sees all), ``Te`` evaluation dates (path,
    coverage, simulation, statistics), ``A`` assets, ``P`` accounts, ``S``
    SPAN scenarios, ``W`` HS window, ``k`` HS tail rank, ``h`` MPOR,
    ``n_fits`` GARCH refits (20-day schedule, every asset), ``n_obs`` returns
    per GARCH fit (``window_length``), ``n_evals`` likelihood + gradient
    evaluations per fit (SLSQP with the analytic gradient, measured ~16),
    ``models`` models the statistics cover, ``intraday_share`` the share of
    open accounts whose HS VaR intraday requirement is computed (1 = every
    account, the algorithm without riskmodels' exact Lipschitz screen; a run that
    counts the screened accounts may pass its own share). HS VaR only, the one
    model whose intraday requirement matters (and the one with the screen):
    measured 0.024 on the standard workload (38,461 of 1,609,951 open
    account-dates at 1,000 accounts, 2026-12-01).
    """

    T: int = 3810
    Te: int = 2608
    A: int = 18
    P: int = 1000
    S: int = 16
    W: int = 500
    k: int = 5
    h: int = 2
    n_fits: int = 2031
    n_obs: int = 1000
    n_evals: int = 16
    models: int = 4
    intraday_share: float = 0.024


def stage_bounds(r: dict[str, float], w: Workload) -> dict[str, dict[str, Any]]:
    """Per stage and model: the work counted and its bound in seconds at the rates ``r``.

    Returns ``{stage: {"bound_s": float, "models": {model: {"bound_s", "terms"}}}}``;
    a stage's bound is the sum over its models (they run one after another in
    the *stages* configuration). The counts are derived in benchmarks/README.md.
    """
    F, E, B, L, X = r["F_flops"], r["E_ops"], r["B_bytes"], r["L_step_s"], r["X_logs"]
    f32, f64 = 4, 8
    TeP, PA = w.Te * w.P, w.P * w.A
    out_path = 2 * TeP * f32 / B  # IM and MM written once, float32 (a result's storage)

    def term(**t: float) -> dict[str, Any]:
        return {"bound_s": float(sum(t.values())), "terms": {k: float(v) for k, v in t.items()}}

    # account state the simulation touches per date per requirement: quantities (coll, perp),
    # entry prices, the adverse prices, the values; ~24 elementwise operations per
    # (account, asset) per date: adverse-price select (4), intraday equity (5), close
    # equity (5), opening/closing updates on the masked rows (6), notional and slippage (4)
    book = 24 * w.Te * PA / E
    fit = {
        "haircut": term(),
        "span": term(returns=3 * w.T * w.A / E, logs=w.T * w.A / X),
        "hs": term(returns=3 * w.T * w.A / E, logs=w.T * w.A / X),
        # per evaluation and return: the variance recursion (2 dependent ops) and, beside it,
        # two logs of the t likelihood and ~30 flops of likelihood and analytic gradient
        "garch": term(recursion=w.n_fits * w.n_evals * w.n_obs * L,
                      likelihood=w.n_fits * w.n_evals * w.n_obs * (2 / X + 30 / E),
                      correlation=2 * w.T * w.A**2 / F + w.T * 10 * w.A**3 / F),
    }
    path = {
        # constant per account: one (P, A) pass, then the (Te, P) outputs
        "haircut": term(compute=8 * PA / E, write=out_path),
        # scan = X+ @ up_t + X- @ dn_t: two (Te x A) @ (A x P) products
        "span": term(gemm=2 * 2 * w.Te * w.A * w.P / F, write=out_path),
        # loss matrix G @ X over all T rows, then a sliding k-th largest of W: one
        # insertion into a sorted window (log2 W compares) per (date, account)
        "hs": term(gemm=2 * w.T * w.A * w.P / F, loss_rw=2 * w.T * w.P * f64 / B,
                   select=w.Te * w.P * math.log2(w.W) / E, write=out_path),
        # v = x sigma q per date, quadratic form (v R) . v: 2 A^2 P flops per date
        "garch": term(gemm=2 * w.Te * w.A**2 * w.P / F, scale=2 * w.Te * PA / E, write=out_path),
    }
    # realised h-day loss once for all models (a GEMM), then per model compare and count
    loss = term(gemm=2 * w.Te * w.A * w.P / F, write=w.Te * w.P * f64 / B)
    cov_model = term(read=(w.Te * w.P * (f32 + f64)) / B)
    coverage = {m: cov_model for m in ("haircut", "span", "hs", "garch")}
    two = 2 * w.Te  # the close (t state) and intraday (t-1 state) requirement per date
    hs_two = (1.0 + w.intraday_share) * w.Te  # HS VaR: the screen clears most intraday requirements
    sim = {
        "haircut": term(book=book, requirement=two * 8 * PA / E),
        "span": term(book=book, requirement=two * 2 * 2 * PA / F + two * 2 * PA / E),
        # per requirement: losses (P x W) = X @ G_window (GEMM), then the k-th largest of
        # W per account: one pass over the P x W losses
        "hs": term(book=book, gemm=hs_two * 2 * w.P * w.A * w.W / F, select=hs_two * w.P * w.W / E),
        "garch": term(book=book, gemm=two * 2 * w.A**2 * w.P / F, scale=two * 3 * PA / E),
    }
    # statistics: every model's (Te, P) IM, MM and simulated maintenance / equity read a few
    # times (coverage per side, procyclicality totals, metrics): ~6 float32 passes per model
    stats = {m: term(read=6 * w.Te * w.P * f32 / B + 2 * w.Te * w.P / E) for m in ("haircut", "span", "hs", "garch")}
    stages = {"fit": fit, "path": path, "coverage": coverage, "simulation": sim, "statistics": stats}
    res: dict[str, dict[str, Any]] = {}
    for name, per in stages.items():
        total = sum(v["bound_s"] for v in per.values())
        if name == "coverage":
            total += loss["bound_s"]
        res[name] = {"bound_s": total, "models": per}
    res["coverage"]["shared_loss"] = loss
    return res


def bounds_report(repeat: int = 5, workload: Workload | None = None) -> dict[str, Any]:
    """``{"rates": ..., "workload": ..., "stages": ...}`` measured now (JSON-ready)."""
    w = workload or Workload()
    r = measure_rates(repeat)
    return {"rates": r, "workload": asdict(w), "stages": stage_bounds(r, w)}


if __name__ == "__main__":
    import json
    import os

    rep = bounds_report()
    r = rep["rates"]
    print(f"load {os.getloadavg()}")
    print(f"F = {r['F_flops'] / 1e9:.1f} GFLOP/s (square DGEMM, 1 thread); skinny "
          f"{r['F_skinny_flops'] / 1e9:.1f}; E = {r['E_ops'] / 1e9:.2f} Gop/s in L2; "
          f"B = {r['B_bytes'] / 1e9:.1f} GB/s; L = {r['L_step_s'] * 1e9:.2f} ns/step; "
          f"X = {r['X_logs'] / 1e9:.2f} Glog/s")
    for s, v in rep["stages"].items():
        per = ", ".join(f"{m} {d['bound_s']:.3f}" for m, d in v["models"].items())
        print(f"{s:<11} {v['bound_s']:.3f} s  ({per})")
    print(json.dumps(rep["stages"]["simulation"]["models"]["hs"], indent=1))
