"""Fixed-haircut margin: collateral haircuts plus IMF/MMF on perp notional.

The rule of most crypto venues' standard (non-portfolio) margin:

* collateral: each asset's USD value counts at ``(1 - haircut)``; the haircut
  is a margin charge ``haircut_a x collateral_a`` (Binance "collateral ratio"
  = 1 - haircut, Bybit "collateral value ratio", Aave ``1 - LT``);
* perps: initial margin ``IMF_a x |notional_a|`` and maintenance
  ``MMF_a x |notional_a|`` (dYdX v4: IMR = |S P IMF|, MMR = |S P MMF|, summed
  over markets; METHODOLOGY.md section 2.3);
* tiers (optional): rates applied **bracket-wise** on the USD amount, like the
  exchanges' collateral tiers: ``charge(x) = sum_k r_k * clip(x - b_k, 0,
  b_{k+1} - b_k)`` (Binance cross-margin haircut tiers, METHODOLOGY.md 2.2);
* cross netting (default): in a cross-margined account, spot collateral that
  offsets a short perp on the same asset is a delta hedge. The hedged amount
  ``H_a = min(collateral_a, max(-position_a, 0))`` is charged at
  ``hedge_rate`` (default 0) instead of haircut + IMF; the rest is charged as
  above. Isolated accounts (and ``netting=False``) get no offset.

Requirements are computed for all dates and accounts as array operations; the
rates are constant over time, so the model has no look-ahead by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from riskmodels._numba_cache import frozen
from riskmodels.data.panel import PricePanel
from riskmodels.instruments.options import OptionState
from riskmodels.margin._haircut_kernel import haircut_charges, pack_tiers
from riskmodels.margin.base import (
    FittedMargin,
    MarginModel,
    MarginPath,
    Requirement,
    account_eligibility,
    check_range,
    per_asset,
    register,
)
from riskmodels.portfolio import Book

Tiers = Mapping[str, Sequence[Sequence[float]]]


def bracket_charge(amount: np.ndarray, bounds: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Bracket-wise (marginal) charge on ``amount``.

    ``charge(x) = sum_k rates[k] * clip(x - bounds[k], 0, bounds[k+1] - bounds[k])``
    with ``bounds[0] = 0`` and the last bracket unbounded. This is how
    exchanges apply tiered collateral ratios: e.g. Binance BTC ratio 100% on
    0-100M USDT and 97.5% on 100-120M (METHODOLOGY.md 2.2), so a 110M holding
    is haircut 0 x 100M + 2.5% x 10M = 0.25M.
    """
    return _filled(amount, bounds) @ rates


def _filled(amount: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``(..., K)`` the part of ``amount`` in each bracket, ``clip(x - b_k, 0, b_{k+1} - b_k)``.

    Shared by the IM and MM charges of one amount (the same brackets, two rate columns).
    """
    x = np.asarray(amount, dtype=np.float64)
    upper = np.append(bounds[1:], np.inf)
    width = upper - bounds
    return np.clip(x[..., None] - bounds, 0.0, width)


@register
class FixedHaircut(MarginModel):
    """Per-asset collateral haircuts and perp IMF/MMF, flat or tiered.

    Parameters
    ----------
    haircut : float or mapping
        Collateral haircut per asset in [0, 1] (scalar, ``{asset: h,
        "default": h}`` or a sequence); charged in initial and maintenance.
    imf, mmf : float or mapping
        Initial and maintenance margin fractions of |perp notional|;
        0 <= mmf <= imf <= 1. Defaults are dYdX v4's large-cap tier
        (IMF 0.05, MMF 0.03).
    maintenance_haircut : float or mapping, optional
        A lower haircut for the maintenance test; default = ``haircut``.
    collateral_tiers : mapping, optional
        ``{asset: [[lower_bound_usd, haircut], ...]}`` (``"default"`` allowed);
        the first bound must be 0. Replaces the flat haircut for that asset.
    position_tiers : mapping, optional
        ``{asset: [[lower_bound_usd, imf, mmf], ...]}`` bracket-wise on |notional|.
    netting : bool
        Offset spot collateral against short perps on the same asset in
        cross-margined accounts (default True).
    hedge_rate : float
        Charge on the hedged amount when netting (default 0).
    option_rates : mapping, optional
        Options: Deribit's standard premium-plus-percentage rule
        (:mod:`riskmodels.margin.options_haircut`), ``{im, im_floor, mm}``;
        default ``{im = 0.15, im_floor = 0.10, mm = 0.075}``.
    """

    name: ClassVar[str] = "fixed_haircut"
    summary: ClassVar[str] = "collateral haircuts + IMF/MMF on perp notional (dYdX / Binance style)"
    own_maintenance: ClassVar[bool] = True

    def __init__(
        self,
        haircut: float | Mapping[str, float] = 0.10,
        imf: float | Mapping[str, float] = 0.05,
        mmf: float | Mapping[str, float] = 0.03,
        maintenance_haircut: float | Mapping[str, float] | None = None,
        collateral_tiers: Tiers | None = None,
        position_tiers: Tiers | None = None,
        netting: bool = True,
        hedge_rate: float = 0.0,
        option_rates: Mapping[str, float] | None = None,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        from riskmodels.margin.options_haircut import check_option_rates

        self._option_rates = check_option_rates(option_rates)
        self.option_rates = None if option_rates is None else dict(self._option_rates)
        for nm, v in (("haircut", haircut), ("imf", imf), ("mmf", mmf), ("maintenance_haircut", maintenance_haircut)):
            if v is not None and not isinstance(v, Mapping):
                check_range(nm, v, 0.0, 1.0)  # type: ignore[arg-type]
        if not isinstance(imf, Mapping) and not isinstance(mmf, Mapping) and mmf > imf:
            raise ValueError(f"mmf={mmf} must not exceed imf={imf}: maintenance is the lower requirement")
        self.haircut = haircut
        self.imf = imf
        self.mmf = mmf
        self.maintenance_haircut = maintenance_haircut
        self.collateral_tiers = _check_tiers("collateral_tiers", collateral_tiers, 2)
        self.position_tiers = _check_tiers("position_tiers", position_tiers, 3)
        self.netting = bool(netting)
        self.hedge_rate = check_range("hedge_rate", hedge_rate, 0.0, 1.0)

    def fit(self, panel: PricePanel) -> FittedHaircut:
        return FittedHaircut(self, panel)

    def params(self) -> dict[str, object]:
        out = super().params()
        if out.get("option_rates") is None:  # the default: reports of linear books keep their parameter list
            out.pop("option_rates", None)
        return out


def _check_tiers(name: str, tiers: Tiers | None, width: int) -> dict[str, np.ndarray] | None:
    if not tiers:
        return None
    out = {}
    for asset, rows in tiers.items():
        arr = np.asarray(rows, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != width or len(arr) == 0:
            raise ValueError(f"{name}[{asset}] must be rows of {width} numbers (lower bound, rate...), got {rows!r}")
        if arr[0, 0] != 0 or np.any(np.diff(arr[:, 0]) <= 0):
            raise ValueError(f"{name}[{asset}]: lower bounds must start at 0 and increase, got {arr[:, 0].tolist()}")
        if np.any(arr[:, 1:] < 0) or np.any(arr[:, 1:] > 1):
            raise ValueError(f"{name}[{asset}]: rates must be in [0, 1], got {arr[:, 1:].tolist()}")
        if width == 3 and np.any(arr[:, 2] > arr[:, 1]):
            raise ValueError(f"{name}[{asset}]: mmf must not exceed imf in any tier")
        out[str(asset)] = arr
    return out


class FittedHaircut(FittedMargin):
    """FixedHaircut on a panel's assets (rates constant over time)."""

    def __init__(self, model: FixedHaircut, panel: PricePanel) -> None:
        super().__init__(model, panel)
        assets = panel.assets
        self.h = per_asset("haircut", model.haircut, assets, 0.0, 1.0)
        self.h_mm = (
            self.h if model.maintenance_haircut is None else per_asset("maintenance_haircut", model.maintenance_haircut, assets, 0.0, 1.0)
        )
        self.imf = per_asset("imf", model.imf, assets, 0.0, 1.0)
        self.mmf = per_asset("mmf", model.mmf, assets, 0.0, 1.0)
        if np.any(self.mmf > self.imf):
            j = int(np.argmax(self.mmf > self.imf))
            raise ValueError(f"mmf[{assets[j]}]={self.mmf[j]} exceeds imf={self.imf[j]}")
        if np.any(self.h_mm > self.h):
            j = int(np.argmax(self.h_mm > self.h))
            raise ValueError(f"maintenance_haircut[{assets[j]}]={self.h_mm[j]} exceeds haircut={self.h[j]}")
        self.coll_tiers = _tier_table(model.collateral_tiers, assets)
        self.pos_tiers = _tier_table(model.position_tiers, assets)
        self.homogeneous = not (self.coll_tiers or self.pos_tiers)  # type: ignore[misc]
        A = len(assets)
        self._coll_tab, self._coll_of = pack_tiers(self.coll_tiers, A, 2)
        self._pos_tab, self._pos_of = pack_tiers(self.pos_tiers, A, 3)

    # -- charges on non-negative USD amounts, (N, A) -> (N, A)
    def _collateral_charge(self, amount: np.ndarray, maintenance: bool) -> np.ndarray:
        out = amount * (self.h_mm if maintenance else self.h)
        for cols, tab in self.coll_tiers:
            out[:, cols] = bracket_charge(amount[:, cols], tab[:, 0], tab[:, 1])
        return out

    def _position_charge(self, notional: np.ndarray, maintenance: bool) -> np.ndarray:
        out = notional * (self.mmf if maintenance else self.imf)
        for cols, tab in self.pos_tiers:
            out[:, cols] = bracket_charge(notional[:, cols], tab[:, 0], tab[:, 2 if maintenance else 1])
        return out

    def _position_charges(self, notional: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(IM, MM)`` charges of :meth:`_position_charge`, the brackets of a tier table filled once for both."""
        im = notional * self.imf
        mm = notional * self.mmf
        for cols, tab in self.pos_tiers:
            filled = _filled(notional[:, cols], tab[:, 0])
            im[:, cols] = filled @ tab[:, 1]
            mm[:, cols] = filled @ tab[:, 2]
        return im, mm

    def _charges(self, collateral: np.ndarray, positions: np.ndarray, netting: bool | np.ndarray) -> Requirement:
        """IM and MM of each account (one numba pass, :func:`haircut_charges`).

        ``netting`` is one flag for every account or an ``(n,)`` bool per account.
        Equal to :meth:`_charges_reference` bit for bit with flat rates (the
        per-asset terms are summed in numpy's pairwise order); with tiers to
        1e-12 relative (the reference's bracket sums are a BLAS product).
        """
        collateral = np.ascontiguousarray(np.atleast_2d(np.asarray(collateral, dtype=np.float64)))
        positions = np.ascontiguousarray(np.atleast_2d(np.asarray(positions, dtype=np.float64)))
        if isinstance(netting, np.ndarray):
            nets = np.ascontiguousarray(netting, dtype=np.bool_)
        else:
            nets = np.full(collateral.shape[0], bool(netting))
        im, mm = haircut_charges(frozen(collateral), frozen(positions), nets, self.h, self.h_mm,
                                 self.imf, self.mmf, float(self.model.hedge_rate),  # type: ignore[attr-defined]
                                 self._coll_tab, self._coll_of, self._pos_tab, self._pos_of)
        return Requirement(im, mm)

    def _charges_reference(self, collateral: np.ndarray, positions: np.ndarray, netting: bool) -> Requirement:
        """The array-operation charges (the reference :meth:`_charges` is tested against)."""
        collateral = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
        positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        if netting:
            hedged = np.minimum(collateral, np.maximum(-positions, 0.0))
        else:
            hedged = np.zeros_like(collateral)
        c = collateral - hedged
        n = np.abs(positions) - hedged
        hedge = self.model.hedge_rate * hedged  # type: ignore[attr-defined]
        pos_im, pos_mm = self._position_charges(n)
        im = (self._collateral_charge(c, False) + pos_im + hedge).sum(axis=1)
        mm = (self._collateral_charge(c, True) + pos_mm + hedge).sum(axis=1)
        return Requirement(im, mm)

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        return self._charges(collateral, positions, self.model.netting)  # type: ignore[attr-defined]

    def isolated_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        return self._charges(collateral, positions, netting=False)

    def account_requirement(
        self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray | None = None
    ) -> Requirement:
        """Cross requirement, or isolated (no netting) where ``isolated`` is True, in one pass."""
        nets = bool(self.model.netting)  # type: ignore[attr-defined]
        if isolated is None or not nets:
            return self._charges(collateral, positions, nets)
        return self._charges(collateral, positions, ~np.asarray(isolated, dtype=bool))

    def maintenance_lipschitz(self, t: int) -> np.ndarray:
        """Per-asset bound ``L_a`` on how fast the maintenance margin can change (constant over t).

        ``|MM(c', p') - MM(c, p)| <= sum_a L_a (|c'_a - c_a| + |p'_a - p_a|)`` with::

            L_a = max(max collateral MM rate of a, max perp MM rate of a, hedge_rate)

        Proof: each asset's MM term is continuous and piecewise linear in
        ``(c_a, p_a)`` (``H = min(c, max(-p, 0))`` is continuous); its partial
        derivatives on the pieces are a collateral rate ``r_c`` (unhedged),
        ``hedge_rate - r_p`` (``c < -p``, all collateral hedged) and ``r_p``,
        ``r_c - hedge_rate`` in ``p``; every rate is in [0, 1], so each is at most
        ``L_a`` in absolute value. Isolated accounts (no hedge) have the slopes
        ``r_c`` and ``r_p``. Used by the account simulation's exact intraday skip.
        """
        rc = self.h_mm.copy()  # largest collateral MM rate per asset
        for cols, tab in self.coll_tiers:
            rc[cols] = tab[:, 1].max()
        rp = self.mmf.copy()  # largest perp MM rate per asset
        for cols, tab in self.pos_tiers:
            rp[cols] = tab[:, 2].max()
        L = np.maximum(rc, rp)
        return np.maximum(L, float(self.model.hedge_rate))  # type: ignore[attr-defined]

    supports_options = True

    def option_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray,
                           options: OptionState) -> Requirement:
        """The linear charges plus the options' premium-plus-percentage charges (no offsets between them)."""
        from riskmodels.margin.options_haircut import option_charges

        lin = self._charges(collateral, positions, self.model.netting)  # type: ignore[attr-defined]
        im, mm = option_charges(lin.initial.shape[0], options, self.model._option_rates)  # type: ignore[attr-defined]
        return Requirement(lin.initial + im, lin.maintenance + mm)

    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        """Constant rates: one requirement per account, broadcast over dates."""
        book = book.align(self.panel.assets)
        if eligible is None:
            eligible = account_eligibility(self.panel.live, book)
        req = self.account_requirement(0, book.collateral, book.positions, book.isolated)
        im = np.where(eligible, req.initial[None, :], np.nan)
        mm = np.where(eligible, req.maintenance[None, :], np.nan)
        return MarginPath(self.model.label, self.panel.dates, book.account_ids, im, mm, eligible)


def _tier_table(tiers: dict[str, np.ndarray] | None, assets: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(asset columns, table)]``: assets sharing one tier table are charged in one call."""
    if not tiers:
        return []
    groups: dict[bytes, tuple[list[int], np.ndarray]] = {}
    for j, a in enumerate(assets):
        tab = tiers.get(a, tiers.get("default"))
        if tab is not None:
            groups.setdefault(tab.tobytes() + bytes(str(tab.shape), "ascii"), ([], tab))[0].append(j)
    return [(np.array(cols, dtype=np.intp), tab) for cols, tab in groups.values()]
