"""The fitted SPAN-like scenario grid: risk arrays of a panel, requirements and margin paths.

:class:`FittedScenarioGrid` is what :meth:`ScenarioGrid.fit
<riskmodels.margin.span.ScenarioGrid.fit>` returns: the calibrated (or
given) price scan ranges, the per-date risk arrays and scan summaries
(:mod:`riskmodels.margin.span_arrays`), the compiled WPR and scanning-based
spreads, and the per-asset / joint scan of the requirement and the margin
path, whose formulas are in :mod:`riskmodels.margin.span`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.instruments.options import OptionState
from riskmodels.margin.base import (
    FittedMargin,
    MarginPath,
    Requirement,
    account_eligibility,
    combine_units,
    per_asset,
)
from riskmodels.margin.span_arrays import (
    calibrate_psr,
    correlation_credit,
    hold_last,
    recalibration_mask,
    risk_arrays,
    rolling_correlation,
    scan_summaries,
)
from riskmodels.portfolio import Book

if TYPE_CHECKING:
    from riskmodels.margin.span import ScenarioGrid

_CHUNK_BYTES = 32_000_000



class FittedScenarioGrid(FittedMargin):
    """A ScenarioGrid on a panel: per-date risk arrays and spread tables."""

    homogeneous: ClassVar[bool] = True
    supports_options: ClassVar[bool] = True

    def option_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray,
                           options: OptionState) -> Requirement:
        """Spot, perps and options revalued on the grid (:mod:`riskmodels.margin.options_span`,
        :mod:`riskmodels.margin.options_deribit` for ``deribit_pm``)."""
        from riskmodels.margin import options_deribit, options_span

        if self.model.option_scan == "deribit":
            return options_deribit.requirement(self, t, collateral, positions, options)
        return options_span.requirement(self, t, collateral, positions, options)

    def __init__(self, model: ScenarioGrid, panel: PricePanel) -> None:
        super().__init__(model, panel)
        assets = panel.assets
        A = panel.n_assets
        self.table = model.table()
        live = panel.live
        if model.psr is None:
            ranges = calibrate_psr(
                panel.close,
                panel.dates,
                quantile=model.psr_quantile,
                horizon=model.psr_horizon,
                lookback=model.psr_lookback,
                floor=model.psr_floor,
                min_obs=model.psr_min_obs,
                schedule=model.recalibration,
            )
        else:
            const = per_asset("psr", model.psr, assets, 0.0, 1.0)
            if np.any(const <= 0):
                j = int(np.argmax(const <= 0))
                raise ValueError(f"psr[{assets[j]}]={const[j]} is outside its valid range (0, 1]")
            ranges = np.where(live, const[None, :], np.nan)
        #: (T, A) price scan ranges (simple-return fractions)
        self.ranges = ranges
        ra = risk_arrays(ranges, self.table, "perp")
        self.ra_spot = risk_arrays(ranges, self.table, "spot")
        ext_cols = []
        for a, vals in (model.risk_arrays or {}).items():
            if a not in assets:
                continue
            j = assets.index(a)
            arr = vals if model.risk_arrays_weighted else vals * self.table.weight
            ra[:, j] = np.where(live[:, j, None], arr, np.nan)
            self.ra_spot[:, j] = ra[:, j]
            ext_cols.append(j)
        if not np.array_equal(ra, self.ra_spot, equal_nan=True):
            raise NotImplementedError("spot and perp revalue differently: the non-linear scan is not implemented")
        self.ra_spot = ra  # the same values: one array, so a pickled fitted state carries it once
        #: (T, A, S) weighted loss per USD of exposure
        self.ra = ra
        self.asset_ok = live & np.isfinite(ra).all(axis=-1)
        self._ra0 = np.where(self.asset_ok[..., None], ra, 0.0)
        summ = scan_summaries(self._ra0, self.table)
        self._hi, self._lo = summ["hi"], summ["lo"]
        self._wl, self._ws = summ["wpr_long"], summ["wpr_short"]
        self.haircut = per_asset("collateral_haircut", model.collateral_haircut, assets, 0.0, 1.0)
        self.contingency = float(getattr(model, "futures_contingency", 0.0))
        self._spreads = [self._compile_spread(sp) for sp in model.spreads]
        self._groups = [
            (panel.asset_index(list(g["legs"])), g["credit"])
            for g in model.scan_spreads
            if all(a in assets for a in g["legs"])
        ]
        self._in_group = np.zeros(A, dtype=bool)
        for idx, _ in self._groups:
            self._in_group[idx] = True

    def _compile_spread(self, sp: dict[str, Any]) -> dict[str, Any] | None:
        m: ScenarioGrid = self.model  # type: ignore[assignment]
        panel = self.panel
        if not all(a in panel.assets for a in sp["legs"]):
            return None  # a leg not in this panel: the spread cannot form
        idx = panel.asset_index(list(sp["legs"]))
        T = panel.n_dates
        if sp["ratios"] == "psr":
            with np.errstate(divide="ignore"):
                ratios = 1.0 / self.ranges[:, idx]
        else:
            ratios = np.broadcast_to(np.asarray(sp["ratios"]), (T, len(idx)))
        if sp["rate"] == "correlation":
            rho = rolling_correlation(panel.close, int(idx[0]), int(idx[1]), m.corr_lookback, m.corr_min_obs)
            fin = np.isfinite(rho)
            first = fin & ~np.concatenate([[False], fin[:-1]])
            upd = (recalibration_mask(panel.dates, m.recalibration) & fin) | first
            rate = correlation_credit(hold_last(rho, upd), m.corr_min_rho, m.corr_max_rate)
            rate = np.nan_to_num(rate, nan=0.0)  # no correlation history yet: no credit
        else:
            rate = np.full(T, float(sp["rate"]))
        return {"idx": idx, "ratios": ratios, "rate": rate, "sides": np.asarray(sp["sides"], dtype=np.float64)}

    # ----------------------------------------------------------- kernel
    def _maintenance(self, ts: np.ndarray, coll: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """``(B, N)`` maintenance for dates ``ts`` and ``(N, A)`` holdings (no NaN logic)."""
        e = coll + pos
        m: ScenarioGrid = self.model  # type: ignore[assignment]
        if m.scan == "joint":
            if len(ts) == 1:  # one date (the simulation's call): the GEMM without einsum's path search, in
                # the transposed form einsum's batched matmul evaluates (bitwise its numbers; tested)
                loss = (self._ra0[ts[0]].T @ e.T).T[None]
            else:
                loss = np.einsum("na,bas->bns", e, self._ra0[ts], optimize=True)
            mm = np.maximum(loss.max(axis=-1), 0.0)
            if self.contingency > 0:
                gross = np.abs(coll).sum(axis=1) + np.abs(pos).sum(axis=1)
                offset = 0.5 * (gross - np.abs(e.sum(axis=1)))
                mm = mm + self.contingency * offset[None, :]
        else:
            hi = self._hi[ts][:, None, :]
            lo = self._lo[ts][:, None, :]
            scan = np.maximum(np.maximum(e * hi, e * lo), 0.0)  # (B, N, A)
            if self._spreads:
                scan = scan - self._credits(ts, e)
                np.maximum(scan, 0.0, out=scan)
            if self._groups:
                scan[..., self._in_group] = 0.0
            mm = scan.sum(axis=-1)
            for idx, credit in self._groups:
                leg = e[:, idx][None, :, :, None] * self._ra0[ts][:, None, idx, :]  # (B, N, K, S)
                loss = np.maximum(leg, 0.0).sum(axis=2) - credit * np.maximum(-leg, 0.0).sum(axis=2)
                mm = mm + np.maximum(loss.max(axis=-1), 0.0)
        return mm + (coll @ self.haircut)[None, :]

    def _credits(self, ts: np.ndarray, e: np.ndarray) -> np.ndarray:
        """``(B, N, A)`` WPR inter-commodity credits, spreads in priority order."""
        B, (N, A) = len(ts), e.shape
        wpr = np.where(e > 0, self._wl[ts][:, None, :], self._ws[ts][:, None, :])
        d = np.broadcast_to(e, (B, N, A)).copy()
        credit = np.zeros((B, N, A))
        for sp in self._spreads:
            if sp is None:
                continue
            idx, sides = sp["idx"], sp["sides"]
            r = sp["ratios"][ts][:, None, :]  # (B, 1, K)
            dk = d[..., idx]
            with np.errstate(invalid="ignore"):
                per = dk / r
                n_sp = np.maximum((sides * per).min(axis=-1), 0.0) + np.maximum((-sides * per).min(axis=-1), 0.0)
            n_sp = np.nan_to_num(n_sp, nan=0.0)[..., None]  # (B, N, 1)
            rate = sp["rate"][ts][:, None, None]
            credit[..., idx] += np.nan_to_num(rate * n_sp * r * wpr[..., idx], nan=0.0)
            d[..., idx] = dk - np.sign(dk) * np.nan_to_num(n_sp * r, nan=0.0)
        return credit

    def _chunk(self, n: int) -> int:
        width = self.table.n if self.model.scan == "joint" else self.panel.n_assets * 3  # type: ignore[attr-defined]
        for idx, _ in self._groups:
            width += len(idx) * self.table.n * 3
        return max(1, int(_CHUNK_BYTES // (8 * max(n, 1) * max(width, 1))))

    # ------------------------------------------------------------ public
    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        coll = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
        pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        mm = self._maintenance(np.array([int(t)]), coll, pos)[0]
        held = (coll != 0) | (pos != 0)
        bad = (held & ~self.asset_ok[int(t)]).any(axis=1)
        mm = np.where(bad, np.nan, mm)
        return Requirement(self.model.im_multiplier * mm, mm)  # type: ignore[attr-defined]

    def maintenance_lipschitz(self, t: int) -> np.ndarray | None:
        """Per-asset bound ``L_a = max_s |RA_{t,a,s}| + haircut_a (+ contingency, joint scan)``.

        ``|MM(c', p') - MM(c, p)| <= sum_a L_a (|dc_a| + |dp_a|)``: the per-asset
        scan ``max(e hi, e lo, 0)`` and the joint scan ``max(max_s sum_a e_a
        RA_s, 0)`` move by at most ``sum_a max_s |RA_{a,s}| |de_a|`` with
        ``e = c + p``; the collateral haircut ``h_a c_a`` by ``h_a |dc_a|``; the
        futures contingency ``k (gross - |sum e|) / 2`` by ``k sum_a (|dc_a| +
        |dp_a|)``. Isolated margins are sums of unit requirements (each
        ``<= L_a``). NaN where the asset has no risk array at t. ``None`` with
        spreads or scan groups (credits, not bounded here) or a subclass that
        overrides the requirement.
        """
        cls = type(self)
        if (
            self._groups or any(sp is not None for sp in self._spreads)
            or cls.requirement is not FittedScenarioGrid.requirement
            or cls._maintenance is not FittedScenarioGrid._maintenance
            or cls.isolated_requirement is not FittedMargin.isolated_requirement
            or cls.account_requirement is not FittedMargin.account_requirement
        ):
            return None
        t = int(t)
        L = np.abs(self._ra0[t]).max(axis=-1) + self.haircut
        if self.model.scan == "joint" and self.contingency > 0:  # type: ignore[attr-defined]
            L = L + self.contingency
        return np.where(self.asset_ok[t], L, np.nan)

    def risk_array_frame(self, t: int) -> pd.DataFrame:
        """The ``(A, S)`` risk arrays at date index t as a DataFrame (reports)."""
        return pd.DataFrame(self.ra[t], index=list(self.panel.assets), columns=list(self.table.labels))

    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        """All dates at once: ``(B, P, A)`` array blocks over date chunks.

        Cross accounts use the same kernel as :meth:`requirement`; isolated
        accounts sum the stand-alone requirements of unit holdings priced
        for every date in one call (the model is positive homogeneous).
        """
        book = book.align(self.panel.assets)
        if eligible is None:
            eligible = account_eligibility(self.asset_ok, book)
        T = self.panel.n_dates
        P, A = book.n_accounts, book.n_assets
        mm = np.empty((T, P))
        iso = np.asarray(book.isolated, dtype=bool)
        step = self._chunk(P)
        cross_steps = range(0, T, step) if not iso.all() else range(0)  # all isolated (netting path): units only
        for t0 in cross_steps:
            ts = np.arange(t0, min(T, t0 + step))
            mm[ts] = self._maintenance(ts, book.collateral, book.positions)
        if iso.any():
            eye, zero = np.eye(A), np.zeros((A, A))
            units = np.empty((T, 3, A))
            step_u = self._chunk(A)
            for t0 in range(0, T, step_u):
                ts = np.arange(t0, min(T, t0 + step_u))
                units[ts, 0] = self._maintenance(ts, eye, zero)
                units[ts, 1] = self._maintenance(ts, zero, eye)
                units[ts, 2] = self._maintenance(ts, zero, -eye)
            mm[:, iso] = combine_units(book.collateral[iso], book.positions[iso], units[:, 1], units[:, 2],
                                       uc=units[:, 0])
        mm = np.where(eligible, mm, np.nan)
        im = self.model.im_multiplier * mm  # type: ignore[attr-defined]
        return MarginPath(self.model.label, self.panel.dates, book.account_ids, im, mm, eligible)
