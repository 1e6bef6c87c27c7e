"""Population seeder: a market of cross-margined accounts at a day's open.

Assumptions (each a stated choice)
----------------------------------
* **Open interest scales with traded volume**: ``OI_a = oi_to_volume x``
  the trailing ``lookback``-day mean USD volume of asset ``a`` (days before
  the window only: no look-ahead). Default ``oi_to_volume = 0.5``: BTC perp
  open interest was ~$25B before 19 May 2021 (it "more than halved to
  $12.34B", CRASH_DAYS.md) against a trailing aggregated spot volume of
  ~$50-70B/day in the shared data.
* Perps are zero-sum: long and short open interest are both ``OI_a``.
* Account types: directional longs (kind 0) and shorts (kind 1) with 1-3
  perps (assets drawn in proportion to OI), and basis hedgers (kind 2: spot
  collateral of an asset and an equal short perp on it, fully funded). A
  share of directional accounts holds its equity as BTC/ETH collateral
  instead of USD (cross-collateral: a collateral crash hits their perps).
* **Leverage** is a log-normal mixture (low / mid / high components, medians
  ``medians``, log-sd ``sigma``); ``high_long`` and ``high_short`` are the
  weights of the high component on each side, the two parameters calibrated
  (once, globally, on ordinary days; :func:`riskmodels.cascade.replay.calibrate_mixture`)
  so that ordinary-day liquidations match the base rate of Cheng et al.
  (3.51% of long, 1.89% of short open interest per day; CRASH_DAYS.md).
  Equity is ``gross perp notional / leverage`` floored at the margin model's
  initial margin (nobody can open below IM), so the same draws give
  different populations under different margin methods.
* Each account stands for many traders: totals are what matters, the number
  of accounts only sets the resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from riskmodels.cascade.engine import Population
from riskmodels.margin.base import FittedMargin, check_range

__all__ = ["LeverageMixture", "isolate", "market_assets", "seed_population"]

LONG, SHORT, HEDGER = 0, 1, 2


@dataclass(frozen=True)
class LeverageMixture:
    """Log-normal leverage mixture; ``high_long``/``high_short`` are calibrated.

    Parameters
    ----------
    medians : tuple of 3 floats
        Median leverage of the low, mid and high components (>= 1).
    sigma : float
        Log-sd of each component, [0, 3].
    high_long, high_short : float
        Weight of the high component for long / short accounts, [0, 1].
    low_weight : float
        Share of the low component in the rest, [0, 1].
    """

    medians: tuple[float, float, float] = (2.0, 6.0, 30.0)
    sigma: float = 0.35
    high_long: float = 0.1
    high_short: float = 0.1
    low_weight: float = 0.5

    def __post_init__(self) -> None:
        if len(self.medians) != 3 or min(self.medians) < 1:
            raise ValueError(f"medians={self.medians} must be 3 leverages >= 1")
        check_range("sigma", self.sigma, 0.0, 3.0)
        check_range("high_long", self.high_long, 0.0, 1.0)
        check_range("high_short", self.high_short, 0.0, 1.0)
        check_range("low_weight", self.low_weight, 0.0, 1.0)

    def with_high(self, high_long: float, high_short: float) -> LeverageMixture:
        return replace(self, high_long=float(high_long), high_short=float(high_short))

    def scaled(self, multiplier: float) -> LeverageMixture:
        """The high-leverage weights times ``multiplier`` (>= 0), capped at 1 (the regime term)."""
        m = float(multiplier)
        if not np.isfinite(m) or m < 0:
            raise ValueError(f"leverage multiplier {multiplier} must be a finite number >= 0")
        return self.with_high(min(1.0, self.high_long * m), min(1.0, self.high_short * m))

    def draw(self, u: np.ndarray, z: np.ndarray, long: np.ndarray) -> np.ndarray:
        """Leverage from uniforms ``u`` and normals ``z`` (monotone in the high weight)."""
        h = np.where(long, self.high_long, self.high_short)
        med = np.asarray(self.medians)
        comp = np.where(u < h, 2, np.where(u < h + (1.0 - h) * self.low_weight, 0, 1))
        return med[comp] * np.exp(self.sigma * z)


def market_assets(fitted: FittedMargin, t: int, lookback: int = 30) -> np.ndarray:
    """``(A,)`` bool: assets tradable on day ``t`` (OHLC finite, priced by the model at t-1, volume)."""
    p = fitted.panel
    if not lookback <= t < p.n_dates:
        raise ValueError(f"day index t={t} needs {lookback} days of history and t < {p.n_dates}")
    ok = np.isfinite(p.open[t]) & np.isfinite(p.high[t]) & np.isfinite(p.low[t]) & np.isfinite(p.close[t])
    ok &= p.eligible(fitted.model.min_history)[t - 1]
    vol = p.volume[t - lookback : t]
    ok &= np.isfinite(vol).all(0) & (np.nan_to_num(vol).mean(0) > 0)
    return ok


def seed_population(
    fitted: FittedMargin,
    t: int,
    *,
    n_accounts: int = 5000,
    mixture: LeverageMixture | None = None,
    oi_to_volume: float = 0.5,
    lookback: int = 30,
    hedger_share: float = 0.15,
    crypto_collateral_share: float = 0.3,
    collateral_assets: Sequence[str] = ("BTC", "ETH"),
    positions_per_account: tuple[int, int] = (1, 3),
    notional_sigma: float = 1.0,
    seed: int = 0,
    asset_ok: np.ndarray | None = None,
) -> Population:
    """Seed the accounts of day index ``t`` at its open (margin state of t-1).

    Parameters
    ----------
    fitted : FittedMargin
        Its panel gives prices and volumes; its initial margin at t-1 floors equity.
    t : int
        Day index (the population opens at ``panel.open[t]``).
    n_accounts : int
        >= 10.
    mixture : LeverageMixture
    oi_to_volume : float
        ``k`` in ``OI = k x trailing mean daily volume``, (0, 100].
    lookback : int
        Days of trailing volume, >= 1.
    hedger_share, crypto_collateral_share : float
        Shares of basis hedgers and of directional accounts holding their
        equity as crypto collateral, [0, 1].
    seed : int
    asset_ok : numpy.ndarray, optional
        ``(A,)`` bool of assets to use (default :func:`market_assets`).
    """
    if int(n_accounts) < 10:
        raise ValueError(f"n_accounts={n_accounts} must be >= 10")
    check_range("oi_to_volume", oi_to_volume, 0.0, 100.0, lo_open=True)
    check_range("hedger_share", hedger_share, 0.0, 1.0)
    check_range("crypto_collateral_share", crypto_collateral_share, 0.0, 1.0)
    if int(lookback) < 1:
        raise ValueError(f"lookback={lookback} must be >= 1 day")
    mixture = mixture or LeverageMixture()
    panel = fitted.panel
    A = panel.n_assets
    ok = market_assets(fitted, t, lookback) if asset_ok is None else np.asarray(asset_ok, bool)
    cols = np.flatnonzero(ok)
    if not len(cols):
        raise ValueError(f"no tradable asset on {panel.dates[t].date()}")
    p0 = np.where(ok, panel.open[t], 1.0)
    oi = np.zeros(A)
    oi[cols] = oi_to_volume * np.nanmean(panel.volume[t - lookback : t, cols], axis=0)
    w = oi[cols] / oi[cols].sum()

    rng = np.random.default_rng(seed)
    N = int(n_accounts)
    kind = np.where(rng.random(N) < hedger_share, HEDGER, np.where(rng.random(N) < 0.5, LONG, SHORT)).astype(np.int8)
    lo, hi = positions_per_account
    hi = min(hi, len(cols))
    lo = min(lo, hi)
    k = np.where(kind == HEDGER, 1, rng.integers(lo, hi + 1, size=N))
    size = np.exp(notional_sigma * rng.standard_normal(N))
    # distinct assets per account, drawn in proportion to OI: Gumbel top-k (vectorised)
    keys = np.log(w)[None, :] - np.log(-np.log(rng.random((N, len(cols)))))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    chosen = rank < k[:, None]
    split = rng.dirichlet(np.ones(len(cols)), size=N) * chosen
    split /= split.sum(1, keepdims=True)
    sign = np.where(kind == LONG, 1.0, -1.0)
    pos = np.zeros((N, A))
    pos[:, cols] = sign[:, None] * size[:, None] * split
    # scale each asset's long and short sides to its open interest
    longs = np.maximum(pos, 0.0).sum(0)
    shorts = np.maximum(-pos, 0.0).sum(0)
    fl = np.divide(oi, longs, out=np.zeros(A), where=longs > 0)
    fs = np.divide(oi, shorts, out=np.zeros(A), where=shorts > 0)
    pos = np.where(pos > 0, pos * fl, pos * fs)

    coll = np.zeros((N, A))
    hed = kind == HEDGER
    coll[hed] = np.maximum(-pos[hed], 0.0)  # spot leg of the basis trade
    u = rng.random(N)
    z = rng.standard_normal(N)
    lev = mixture.draw(u, z, kind == LONG)
    gross = np.abs(pos).sum(1)
    target = np.where(hed, coll.sum(1), gross / lev)
    # directional accounts holding equity as crypto collateral
    cidx = [panel.assets.index(a) for a in collateral_assets if a in panel.assets and ok[panel.assets.index(a)]]
    phi = np.zeros(N)
    csplit = np.zeros((N, A))
    if cidx:
        crypto = (~hed) & (rng.random(N) < crypto_collateral_share)
        phi = np.where(crypto, rng.uniform(0.5, 1.0, N), 0.0)
        csplit[:, cidx] = rng.dirichlet(np.ones(len(cidx)), size=N)
    E = target.copy()
    iso = np.zeros(N, bool)
    for _ in range(60):  # E = max(target, IM(collateral(E), positions)): increasing, converges for haircut < 1
        c = np.where(hed[:, None], coll, phi[:, None] * E[:, None] * csplit)
        im = fitted.account_requirement(t - 1, c, pos, iso).initial
        im = np.where(np.isfinite(im), im, np.inf)
        new = np.maximum(target, im)
        done = bool(np.all(new <= E * (1 + 1e-12)))
        E = new
        if done:
            break
    if not np.isfinite(E).all():
        raise ValueError("the margin model cannot price some seeded account (NaN requirement)")
    coll = np.where(hed[:, None], coll, phi[:, None] * E[:, None] * csplit)
    cash = E - coll.sum(1)
    return Population(
        panel.assets, coll / p0, pos / p0, np.broadcast_to(p0, (N, A)).copy(), cash, iso, None, kind
    )


def isolate(pop: Population, fitted: FittedMargin, t: int, prices: np.ndarray) -> Population:
    """The same traders with every held asset in its own isolated sub-account.

    Sub-account ``(i, a)`` holds account ``i``'s collateral and perp in asset
    ``a`` and the share ``IM_a / sum_b IM_b`` of its equity ``E_i`` (``IM_a``
    the stand-alone initial margin of the holding at ``prices``, margin state
    ``t``); cash is that equity minus the collateral value, so a sub-account
    holding only crypto collateral may carry a USD loan. Total equity and
    exposure per trader are unchanged; no transfer between sub-accounts.
    Sub-accounts are margined with ``isolated=True`` (no hedge netting).
    """
    px = np.asarray(prices, dtype=np.float64)
    held = (pop.q_coll != 0) | (pop.q_perp != 0)
    i, a = np.nonzero(held)
    M, A = len(i), len(pop.assets)
    qc = np.zeros((M, A))
    qp = np.zeros((M, A))
    qc[np.arange(M), a] = pop.q_coll[i, a]
    qp[np.arange(M), a] = pop.q_perp[i, a]
    im = fitted.account_requirement(t, qc * px, qp * px, np.ones(M, bool)).initial
    tot = np.bincount(i, weights=im, minlength=pop.n_accounts)
    E = pop.equity(px)
    share = np.divide(im, tot[i], out=np.full(M, np.nan), where=tot[i] > 0)
    nheld = held.sum(1)
    share = np.where(np.isfinite(share), share, 1.0 / nheld[i])
    cash = E[i] * share - (qc * px).sum(1)
    entry = pop.entry[i]
    return Population(pop.assets, qc, qp, entry, cash, np.ones(M, bool), pop.parent[i], pop.kind[i])  # type: ignore[index]
