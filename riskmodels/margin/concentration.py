"""Concentration (liquidity) add-on as a wrapper around any margin model.

A position that is large against what the market trades costs more to close
than the market-risk margin assumes. Every large venue has a size term; this
wrapper adds one to any model, like the APC wrappers of :mod:`.apc`::

    margin = inner margin + add-on,   add-on = sum_a f(r_a) m_a  (+ collateral tier charges)

with ``r_a = (|collateral_a| + |perp_a|) / capacity_a(t)`` the account's gross
USD holding of asset ``a`` over the **market capacity** ``capacity_a(t) =
capacity_fraction x ADV_a(t)``, ``ADV`` the mean of the positive daily USD
volumes of the ``window`` days ending at ``t`` (data up to ``t`` only), and
``m_a`` asset ``a``'s share of the account's market-risk margin ``M``: the
inner model's margin allocated pro rata to each holding's stand-alone
requirement ``s_a`` (``m_a = M s_a / sum_b s_b``; for an isolated account
``m_a = s_a`` exactly).

Laws (``law``)
--------------
* ``"linear"`` -- Eurex Clearing Prisma's liquidity add-on: "a linear
  Liquidity Factor function, which translates position sizes [relative to the
  Market Capacity] into a scaling factor of the market risk" (Eurex Clearing
  circulars 097/21 and 072/24): ``f(r) = slope x max(r - threshold, 0)``.
* ``"sqrt"`` -- the square-root size premium of Drift (protocol-v2
  ``calculate_size_premium_liability_weight``: liability weight
  ``max(w, 0.8 w + imf sqrt(size))``) and dYdX-style size-scaled margin, with the
  premium expressed relative to the base margin: the margin of a holding becomes
  ``max(m, (1 - discount) m + coef sqrt(r) m)``, i.e.
  ``f(r) = max(coef sqrt(r) - discount, 0)`` (Drift's ``discount`` = 1/5). Zero
  below ``r0 = (discount / coef)^2``; above it, 4x the size gives
  ``f + discount`` 2x.
* ``"tiers"`` -- size-dependent collateral haircuts (Binance / OKX / Bybit
  collateral value tiers): an extra haircut charged bracket-wise on each
  asset's **collateral**, ``charge = sum_k h_k clip(x - b_k, 0, b_{k+1} - b_k)``
  (:func:`~riskmodels.margin.haircut.bracket_charge`), with the bounds ``b_k``
  in units of market capacity (``basis = "capacity"``: ``x = r``, the charge is
  then multiplied by the capacity) or in USD (``basis = "usd"``). Added to both
  initial and maintenance margin.

The multiplicative laws scale initial and maintenance margin by the same factor
(``IM = k x MM`` survives). An asset without any positive volume in the window
(capacity unknown) has no add-on; the fitted model lists those cells in
``capacity_missing`` and warns once at fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.margin.apc import ModelSpec, resolve_model
from riskmodels.margin.base import (
    FittedMargin,
    MarginModel,
    MarginPath,
    Requirement,
    check_range,
    register,
)
from riskmodels.margin.haircut import bracket_charge
from riskmodels.portfolio import Book

__all__ = ["CONCENTRATION_LAWS", "ConcentrationAddon", "adv_capacity", "linear_factor", "sqrt_factor"]

CONCENTRATION_LAWS = ("linear", "sqrt", "tiers")
DEFAULT_TIERS = ((0.0, 0.0), (0.05, 0.05), (0.2, 0.15), (1.0, 0.30))


def linear_factor(r: np.ndarray, threshold: float, slope: float) -> np.ndarray:
    """Eurex-style liquidity factor ``slope x max(r - threshold, 0)``."""
    return slope * np.maximum(np.asarray(r, dtype=np.float64) - threshold, 0.0)


def sqrt_factor(r: np.ndarray, coef: float, discount: float) -> np.ndarray:
    """Drift-style square-root premium ``max(coef sqrt(r) - discount, 0)``."""
    return np.maximum(coef * np.sqrt(np.maximum(np.asarray(r, dtype=np.float64), 0.0)) - discount, 0.0)


def adv_capacity(panel: PricePanel, window: int, fraction: float = 1.0) -> np.ndarray:
    """``(T, A)`` market capacity: ``fraction x`` mean positive USD volume of days ``t-window+1..t``.

    NaN where the window holds no positive volume. Row ``t`` uses volumes up to ``t``.
    """
    v = np.where(np.isfinite(panel.volume) & (panel.volume > 0), panel.volume, np.nan)
    adv = pd.DataFrame(v).rolling(int(window), min_periods=1).mean().to_numpy()
    return fraction * adv


@register
class ConcentrationAddon(MarginModel):
    """Inner margin plus a concentration / liquidity add-on (module docstring).

    Parameters
    ----------
    inner : MarginModel, str or mapping
        The market-risk model.
    law : {"linear", "sqrt", "tiers"}
        The add-on law; default ``"linear"`` (Eurex Prisma).
    threshold, slope : float
        Linear law: ``f(r) = slope x max(r - threshold, 0)``; threshold in [0, 100],
        slope in [0, 100]. Defaults 0.1 (10% of capacity) and 1.
    coef, discount : float
        Square-root law: ``f(r) = max(coef sqrt(r) - discount, 0)``; coef in (0, 100],
        discount in [0, 1). Defaults 1 and 0.2 (Drift's 1/5).
    tiers : sequence of (bound, extra haircut)
        Tiers law: bracket lower bounds (first 0, increasing) and extra haircuts in
        [0, 1]. Default ``[[0, 0], [0.05, 0.05], [0.2, 0.15], [1, 0.3]]`` (capacity units).
    basis : {"capacity", "usd"}
        Units of the tier bounds; default ``"capacity"``.
    window : int
        Days of volume in the ADV, [1, 1000]; default 30.
    capacity_fraction : float
        Market capacity as a fraction of ADV, (0, 100]; default 1.
    """

    name: ClassVar[str] = "concentration"
    summary: ClassVar[str] = "inner margin + concentration add-on on position / market capacity (Eurex, Drift, tiers)"

    def __init__(
        self,
        inner: ModelSpec,
        law: str = "linear",
        threshold: float = 0.1,
        slope: float = 1.0,
        coef: float = 1.0,
        discount: float = 0.2,
        tiers: Sequence[Sequence[float]] = DEFAULT_TIERS,
        basis: str = "capacity",
        window: int = 30,
        capacity_fraction: float = 1.0,
        *,
        label: str | None = None,
    ) -> None:
        if law not in CONCENTRATION_LAWS:
            raise ValueError(f"law={law!r} must be one of {', '.join(CONCENTRATION_LAWS)}")
        if basis not in ("capacity", "usd"):
            raise ValueError(f"basis={basis!r} must be 'capacity' or 'usd'")
        self.inner = resolve_model(inner)
        self.law = law
        self.threshold = check_range("threshold", threshold, 0.0, 100.0)
        self.slope = check_range("slope", slope, 0.0, 100.0)
        self.coef = check_range("coef", coef, 0.0, 100.0, lo_open=True)
        self.discount = check_range("discount", discount, 0.0, 1.0, hi_open=True)
        tab = np.asarray(tiers, dtype=np.float64)
        if tab.ndim != 2 or tab.shape[1] != 2 or len(tab) == 0:
            raise ValueError(f"tiers must be rows of (lower bound, extra haircut), got {tiers!r}")
        if tab[0, 0] != 0 or np.any(np.diff(tab[:, 0]) <= 0):
            raise ValueError(f"tiers: lower bounds must start at 0 and increase, got {tab[:, 0].tolist()}")
        if np.any(tab[:, 1] < 0) or np.any(tab[:, 1] > 1):
            raise ValueError(f"tiers: extra haircuts must be in [0, 1], got {tab[:, 1].tolist()}")
        self.tiers = tab.tolist()
        self._tab = tab
        self.basis = basis
        w = check_range("window", window, 1, 1000)
        if w != int(w):
            raise ValueError(f"window={window!r} must be a whole number of days in [1, 1000]")
        self.window = int(w)
        self.capacity_fraction = check_range("capacity_fraction", capacity_fraction, 0.0, 100.0, lo_open=True)
        super().__init__(label=label or f"{self.inner.label}+conc-{law}")

    @property
    def min_history(self) -> int:
        return self.inner.min_history

    @property
    def relative_cost(self) -> float:  # type: ignore[override]
        return float(getattr(self.inner, "relative_cost", 1.0))

    @property
    def split_accounts(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "split_accounts", False))

    def factor(self, r: np.ndarray) -> np.ndarray:
        """Multiplicative add-on factor ``f(r)`` (0 for the tiers law)."""
        if self.law == "linear":
            return linear_factor(r, self.threshold, self.slope)
        if self.law == "sqrt":
            return sqrt_factor(r, self.coef, self.discount)
        return np.zeros_like(np.asarray(r, dtype=np.float64))

    def tier_charge(self, collateral: np.ndarray, capacity: np.ndarray) -> np.ndarray:
        """``(N,)`` USD extra haircut of the collateral (tiers law), capacity ``(A,)``."""
        c = np.abs(np.asarray(collateral, dtype=np.float64))
        if self.basis == "usd":
            ch = bracket_charge(c, self._tab[:, 0], self._tab[:, 1])
        else:
            cap = np.where(np.isfinite(capacity), capacity, np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                ch = bracket_charge(c / cap, self._tab[:, 0], self._tab[:, 1]) * cap
        return np.where(np.isfinite(ch), ch, 0.0).sum(axis=1)

    def fit(self, panel: PricePanel) -> FittedMargin:
        return FittedConcentration(self, panel, self.inner.fit(panel))

    def params(self) -> dict[str, Any]:
        out = super().params()
        out["inner"] = {"name": self.inner.name, **self.inner.params()}
        return out


class FittedConcentration(FittedMargin):
    """The add-on on a fitted inner model (module docstring)."""

    homogeneous: ClassVar[bool] = False  # the add-on grows faster than the position

    def __init__(self, model: ConcentrationAddon, panel: PricePanel, inner: FittedMargin) -> None:
        super().__init__(model, panel)
        self.inner = inner
        self.capacity = adv_capacity(panel, model.window, model.capacity_fraction)
        missing = panel.live & ~np.isfinite(self.capacity)
        self.capacity_missing = missing
        if missing.any():
            names = [f"{panel.assets[a]} ({int(missing[:, a].sum())} days)" for a in np.flatnonzero(missing.any(0))]
            warnings.warn(f"concentration add-on: no positive volume in the {model.window}-day window for "
                          f"{', '.join(names)}: no add-on there", stacklevel=2)
        self._units: dict[int, tuple[np.ndarray, ...]] = {}

    # --------------------------------------------------------------- pieces
    def _unit(self, t: int) -> tuple[np.ndarray, ...]:
        """Inner IM/MM of 1 USD of collateral, +1 and -1 USD of perp per asset at ``t`` (cached)."""
        u = self._units.get(t)
        if u is None:
            A = self.panel.n_assets
            eye, zero = np.eye(A), np.zeros((A, A))
            uc = self.inner.requirement(t, eye, zero)
            up = self.inner.requirement(t, zero, eye)
            un = self.inner.requirement(t, zero, -eye)
            u = (uc.initial, up.initial, un.initial, uc.maintenance, up.maintenance, un.maintenance)
            if len(self._units) > 8:
                self._units.clear()
            self._units[t] = u
        return u

    def standalone(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, A)`` stand-alone IM and MM of each holding (collateral + perp of one asset)."""
        c = np.atleast_2d(collateral)
        x = np.atleast_2d(positions)
        if self.inner.homogeneous:
            uci, upi, uni, ucm, upm, unm = self._unit(int(t))
            lo, sh = np.maximum(x, 0.0), np.maximum(-x, 0.0)

            def part(amt: np.ndarray, unit: np.ndarray) -> np.ndarray:
                return np.where(amt != 0, amt * unit, 0.0)

            return (part(c, uci) + part(lo, upi) + part(sh, uni), part(c, ucm) + part(lo, upm) + part(sh, unm))
        N, A = c.shape
        idx = np.arange(N * A)
        rc = np.zeros((N * A, A))
        rp = np.zeros((N * A, A))
        rc[idx, idx % A] = c.ravel()
        rp[idx, idx % A] = x.ravel()
        zero = np.zeros_like(rc)
        qc = self.inner.requirement(int(t), rc, zero)  # as isolated_requirement prices them
        qp = self.inner.requirement(int(t), zero, rp)
        return (qc.initial + qp.initial).reshape(N, A), (qc.maintenance + qp.maintenance).reshape(N, A)

    def ratio(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """``(N, A)`` gross holding / market capacity at ``t`` (0 where capacity is unknown)."""
        cap = self.capacity[int(t)]
        gross = np.abs(collateral) + np.abs(positions)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = gross / cap
        return np.where(np.isfinite(r), r, 0.0)

    def addon(self, t: int, collateral: np.ndarray, positions: np.ndarray, base: Requirement,
              isolated: bool = False) -> Requirement:
        """Add-on to ``base`` (the inner cross or isolated margin of the same holdings)."""
        model: ConcentrationAddon = self.model  # type: ignore[assignment]
        collateral = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
        positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        if model.law == "tiers":
            tiers = model.tier_charge(collateral, self.capacity[int(t)])
            return Requirement(tiers, tiers.copy())
        f = model.factor(self.ratio(t, collateral, positions))
        if not f.any():
            z = np.zeros(collateral.shape[0])
            return Requirement(z, z.copy())
        s_im, s_mm = self.standalone(t, collateral, positions)
        out = []
        for s, m in ((s_im, base.initial), (s_mm, base.maintenance)):
            tot = s.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                w = (f * s).sum(axis=1) / tot  # allocation-weighted factor
            w = np.where(tot > 0, w, 0.0)
            out.append(w * (tot if isolated else m))
        return Requirement(out[0], out[1])

    def intraday_lipschitz(self, t: int, q_coll: np.ndarray, q_perp: np.ndarray, px: np.ndarray,
                           px_prev: np.ndarray) -> np.ndarray | None:
        """``(n, A)`` per-account bounds for the simulation's intraday skip (exact, conservative).

        Where an account's add-on is zero for its holdings at every price between
        ``px_prev`` and ``px`` (each law is non-decreasing in the holding's size, so it
        is enough that it is zero at the larger of the two values of every holding), its
        maintenance is the inner model's and the inner per-asset bound ``L`` holds; every
        other account gets +inf (its requirement is computed).
        """
        inner = getattr(self.inner, "maintenance_lipschitz", None)
        lip = inner(t) if inner is not None else None
        if lip is None:
            return None
        model: ConcentrationAddon = self.model  # type: ignore[assignment]
        top = np.maximum(np.abs(px), np.abs(px_prev))
        c_top = np.abs(q_coll) * top
        p_top = np.abs(q_perp) * top
        if model.law == "tiers":
            zero = model.tier_charge(c_top, self.capacity[int(t)]) <= 0
        else:
            zero = ~(model.factor(self.ratio(t, c_top, p_top)) > 0).any(axis=1)
        return np.where(zero[:, None], np.asarray(lip, dtype=np.float64)[None, :], np.inf)

    # ------------------------------------------------------------ contract
    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        base = self.inner.requirement(t, collateral, positions)
        add = self.addon(t, collateral, positions, base)
        return Requirement(base.initial + add.initial, base.maintenance + add.maintenance)

    def isolated_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        base = self.inner.isolated_requirement(t, collateral, positions)
        add = self.addon(t, collateral, positions, base, isolated=True)
        return Requirement(base.initial + add.initial, base.maintenance + add.maintenance)

    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        """The inner path plus the add-on of each date (constant USD amounts)."""
        book = book.align(self.panel.assets)
        base = self.inner.path(book, eligible)
        im = np.array(base.initial, dtype=np.float64, copy=True)
        mm = np.array(base.maintenance, dtype=np.float64, copy=True)
        el = base.eligible
        off = base.offset
        iso = book.isolated
        for i in np.flatnonzero(el.any(axis=1)):
            t = off + int(i)
            rows = el[i]
            for mask, isolated in ((rows & ~iso, False), (rows & iso, True)):
                if not mask.any():
                    continue
                b = Requirement(im[i, mask], mm[i, mask])  # unused for isolated rows (stand-alone sum)
                add = self.addon(t, book.collateral[mask], book.positions[mask], b, isolated=isolated)
                im[i, mask] += add.initial
                mm[i, mask] += add.maintenance
        return MarginPath(self.model.label, base.dates, base.account_ids, im, mm, el, off)
