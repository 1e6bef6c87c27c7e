"""The fitted historical-simulation margin: scenarios of a panel, requirements and margin paths.

:class:`FittedHistorical` is what :meth:`HistoricalVaR.fit
<riskmodels.margin.historical.HistoricalVaR.fit>` returns: the scenario
returns (overlapping h-day or ``sqrt(h)``-scaled 1-day, FHS volatility
rescaling, BRW weights, stressed extras) of the panel with no look-ahead, the
one-date requirement (cross-margined, isolated, carried by the account
simulation) and the constant-notional margin path. The formulas are in
:mod:`riskmodels.margin.historical`.

Speed
-----
:meth:`FittedHistorical.path` for ``method="hs"``:
a constant-notional book's scenario P&L does not depend on t, so each
account's loss series is ONE matrix product ``X (P, A) @ expm1(R).T (A, T)``
and the margin is a sliding-window order statistic of that series
(:func:`~riskmodels.margin._quantile.rolling_tail`, numba, BLAS kept to one
thread around it; with ``stress_weight`` the two-class kernel
:func:`~riskmodels.margin._stress_tail.rolling_stress_tail`, which also
prices one date's columns for the account simulation). FHS rescales every scenario by ``sigma_t / sigma_s``, which
changes with t, and BRW weights change with t, so those use one ``(W, A) @
(A, P)`` product per date, vectorised over accounts, with the tail kernel over
columns (the base-class date loop).

:meth:`FittedHistorical.requirement` (one date, the account simulation's
call) with equal weights prices each account's losses and tail together
without the ``(N, rows)`` loss matrix, reading again only the strided row
blocks whose largest loss can reach the kept tail
(:mod:`riskmodels.margin._hs_fused`; the same
numbers, bitwise on the default workload); the matrix path stays as
:meth:`FittedHistorical.requirement_reference`. The unit requirements of the
isolated accounts are priced once per date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from riskmodels.data.panel import PricePanel
from riskmodels.margin import _hs_above, _hs_fused
from riskmodels.margin._ewma_vol import ewma_volatility
from riskmodels.margin._quantile import rolling_tail, tail_columns
from riskmodels.margin._stress_tail import rolling_stress_tail, stress_tail_columns
from riskmodels.margin.base import (
    FittedMargin,
    MarginPath,
    Requirement,
    combine_units,
)
from riskmodels.portfolio import Book

if TYPE_CHECKING:
    from riskmodels.margin.historical import HistoricalVaR


class FittedHistorical(FittedMargin):
    """Scenario returns, volatilities and stress flags of a panel (no look-ahead)."""

    homogeneous = True
    supports_options: ClassVar[bool] = True

    def option_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray, options: Any) -> Requirement:
        """Spot, perps and options under joint historical price / implied-vol moves (:mod:`.options_hs`)."""
        from riskmodels.margin import options_hs

        return options_hs.hs_requirement(self, t, collateral, positions, options)

    def __init__(self, model: HistoricalVaR, panel: PricePanel) -> None:
        super().__init__(model, panel)
        m = model
        h = m.horizon
        r1 = panel.returns(1)
        if m.scaling == "overlapping":
            self.R = panel.returns(h)
            lag = h
        else:
            self.R = np.sqrt(h) * r1
            lag = 1
        T, A = self.R.shape
        if m.method == "fhs":
            if m.volatility == "ewma":
                sigma = ewma_volatility(r1, m.ewma_lambda)
            else:
                sigma = np.asarray(m.volatility(panel), dtype=np.float64)  # type: ignore[operator]
                if sigma.shape != (T, A):
                    raise ValueError(f"volatility source returned shape {sigma.shape}, expected {(T, A)}")
            with np.errstate(invalid="ignore"):
                sigma = np.where(sigma >= 0 if m.max_vol_ratio is not None else sigma > 0, sigma, np.nan)
            self.sigma = sigma
            self.sigma_then = np.full((T, A), np.nan)
            self.sigma_then[lag:] = sigma[:-lag]
            self.G = None
        else:
            self.G = np.expm1(self.R)
        dates = panel.dates
        stress = np.zeros(T, dtype=bool)
        for a, b in m.stress_windows:
            stress |= (dates >= pd.Timestamp(a)) & (dates <= pd.Timestamp(b))
        self.stress = stress
        self.asset_ok = panel.eligible(m.min_history)

    # --------------------------------------------------------- scenarios
    def scenarios(self, t: int) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray]:
        """Scenario simple returns at t: ``(rows, A)``, number of window rows, weights, stressed flags.

        Rows ``0..n_window-1`` are dates ``t-W+1..t``; then stressed dates
        that have left the window (raw returns).

        The last two dates' scenario sets are kept (callers must not write to
        them; none does): the account
        simulation asks for date t up to three times (the intraday bound and
        requirement of day t + 1, the close of day t), and FHS rebuilds its
        ``(W, A)`` rescaled returns each time otherwise.
        """
        t = int(t)
        cache = self.__dict__.setdefault("_scenario_cache", {})
        hit = cache.get(t)
        if hit is not None:
            return hit
        out = self._scenarios(t)
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[t] = out
        return out

    def _scenarios(self, t: int) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray]:
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        lo = max(0, t - m.window + 1)
        if m.method == "fhs":
            gw = np.expm1(self.R[lo : t + 1] * self.vol_ratio(t, lo))
        else:
            gw = self.G[lo : t + 1]  # type: ignore[index]
        n_window = t + 1 - lo
        weights = None
        if m.method == "brw":
            weights = m.brw_decay ** np.arange(n_window - 1, -1, -1, dtype=np.float64)
        flags = self.stress[lo : t + 1]
        if self.stress[:lo].any():
            ext = np.flatnonzero(self.stress[:lo])
            graw = np.expm1(self.R[ext])
            gw = np.vstack([gw, graw])
            flags = np.concatenate([flags, np.ones(ext.size, dtype=bool)])
        return gw, n_window, weights, flags

    def vol_ratio(self, t: int, lo: int) -> np.ndarray:
        """FHS ``(t + 1 - lo, A)`` rescaling ``sigma_t / sigma_then`` of scenarios ``lo..t``, clipped to ``[1/c, c]``.

        With a cap ``c`` a zero volatility is handled at the bound (0/0 -> 1,
        x/0 -> c, 0/x -> 1/c); NaN (no forecast yet) stays NaN.
        """
        c = self.model.max_vol_ratio  # type: ignore[attr-defined]
        now, then = self.sigma[t][None, :], self.sigma_then[lo : t + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = now / then
            if c is None:
                return ratio
            ratio = np.where((now == 0) & (then == 0), 1.0, ratio)
            return np.clip(ratio, 1.0 / c, c)  # x/0 = inf -> c; NaN stays NaN

    def _losses(self, g: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``(rows, N)`` losses of exposures ``X`` (N, A); NaN where a held asset has no return.

        Returned as the transpose of a C-ordered ``(N, rows)`` array, the layout
        the column kernels read without a copy.
        """
        nan = ~np.isfinite(g)
        cols = np.flatnonzero(nan.any(axis=0))
        if cols.size:
            g = np.where(nan, 0.0, g)
        # (A, rows) C-contiguous: BLAS is ~3x faster on it than on the transposed view
        loss = X @ np.ascontiguousarray(g.T)  # (N, rows)
        np.negative(loss, out=loss)
        for j in cols:  # only the accounts holding an asset lose the rows where it has no return
            held = np.flatnonzero(X[:, j] != 0)
            if held.size:
                rows = np.flatnonzero(nan[:, j])
                if rows[-1] - rows[0] + 1 == rows.size:  # one block (before a listing): a slice
                    loss[held, rows[0] : rows[-1] + 1] = np.nan
                else:
                    loss[np.ix_(held, rows)] = np.nan
        return loss.T

    def _measure(self, var: np.ndarray, es: np.ndarray) -> np.ndarray:
        out = var if self.model.measure == "var" else es  # type: ignore[attr-defined]
        with np.errstate(invalid="ignore"):
            out[out < 0.0] = 0.0  # floor at 0; NaN stays NaN
        return out

    # ------------------------------------------------------- requirement
    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """VaR / ES requirement of the accounts at date t (module docstring).

        Equal weights (plain HS and FHS, with or without a stressed share):
        the fused per-account kernels of :mod:`riskmodels.margin._hs_fused`
        (no loss matrix; same numbers); BRW weights and non-finite exposures:
        :meth:`requirement_reference`, the loss matrix and the column kernels.
        """
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        X = np.atleast_2d(np.asarray(collateral, dtype=np.float64)) + np.atleast_2d(
            np.asarray(positions, dtype=np.float64)
        )
        t = int(t)
        _g, n_window, weights, flags = self.scenarios(t)
        if weights is not None or not np.isfinite(X).all():
            return self._requirement_matrix(t, X)
        prep = self._prepared(t)
        ok = self.asset_ok[t]
        if m.stress_weight is not None:
            var, es = _hs_fused.stress_tail(X, prep, n_window, m.confidence, m.min_window, flags, m.stress_weight, ok)
        else:
            var, es = _hs_fused.unit_tail(X, prep, n_window, m.confidence, m.min_window, flags, ok)
        mm = self._measure(var, es)  # NaN already where a held asset is not eligible
        return Requirement(m.im_multiplier * mm, mm)

    def _prepared(self, t: int) -> _hs_fused.Prepared:
        """The fused kernel's layout of ``scenarios(t)`` (transposed, NaN-zeroed); last two dates kept."""
        cache = self.__dict__.setdefault("_prepared_cache", {})
        hit = cache.get(t)
        if hit is not None:
            return hit
        g, _n, _w, flags = self.scenarios(t)
        # a stressed share reads the class-ordered layout (calm rows, then stressed: _hs_fused.by_class)
        out = _hs_fused.prepare(g, flags if self.model.stress_weight is not None else None)  # type: ignore[attr-defined]
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[t] = out
        return out

    def maintenance_above(self, t: int, collateral: np.ndarray, positions: np.ndarray,
                          threshold: np.ndarray) -> np.ndarray | None:
        """Maintenance where it exceeds ``threshold`` ``(N,)``, NaN where it does not (or is NaN); None if not supported.

        For a floor ``max(b, f)`` only ``f > b`` matters: plain HS VaR with
        unit masses and no stressed extras prices only the blocks of rows
        whose bound can exceed ``b`` (:mod:`riskmodels.margin._hs_above`; the
        same losses as :meth:`requirement`, so where it returns a value it is
        :meth:`requirement`'s maintenance bit for bit). None for other
        configurations (ES, BRW, FHS, stressed share or extras, non-finite
        exposures, overridden requirements) and for thresholds below 0 (the
        maintenance is ``max(VaR, 0)``, so such a floor binds at 0 without
        its VaR exceeding the threshold): the caller prices them in full.
        """
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        if (type(self).requirement is not FittedHistorical.requirement or m.method != "hs" or m.measure != "var"
                or m.stress_weight is not None):
            return None
        X = np.atleast_2d(np.asarray(collateral, dtype=np.float64)) + np.atleast_2d(
            np.asarray(positions, dtype=np.float64)
        )
        t = int(t)
        g, n_window, weights, flags = self.scenarios(t)
        if weights is not None or g.shape[0] != n_window or flags.any() or not np.isfinite(X).all():
            return None
        prep = self._prepared(t)
        th = np.ascontiguousarray(np.broadcast_to(np.asarray(threshold, dtype=np.float64), (X.shape[0],)))
        if (th < 0.0).any():  # the maintenance is floored at 0, which a negative threshold would need priced
            return None
        out = np.empty(X.shape[0])
        _hs_above.var_above(np.ascontiguousarray(X), prep.gT, prep.bad, prep.bad_any, int(n_window), int(m.min_window),
                            1.0 - float(m.confidence), np.ascontiguousarray(self.asset_ok[t], dtype=np.bool_),
                            th, out)
        return out  # above a finite threshold, so above 0: the measure's floor at 0 does not apply

    def _finish(self, t: int, X: np.ndarray, var: np.ndarray, es: np.ndarray) -> Requirement:
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        mm = self._measure(var, es)
        ineligible = ((X != 0) & ~self.asset_ok[t]).any(axis=1)
        mm = np.where(ineligible, np.nan, mm)
        return Requirement(m.im_multiplier * mm, mm)

    def requirement_reference(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """The loss-matrix requirement (one GEMM, then the column tail kernels): the reference of the fused path."""
        X = np.atleast_2d(np.asarray(collateral, dtype=np.float64)) + np.atleast_2d(
            np.asarray(positions, dtype=np.float64)
        )
        return self._requirement_matrix(int(t), X)

    def _requirement_matrix(self, t: int, X: np.ndarray) -> Requirement:
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        g, n_window, weights, flags = self.scenarios(int(t))
        losses = self._losses(g, X)
        if m.stress_weight is not None and weights is None:  # two masses: the two-class kernel (same numbers)
            var, es = stress_tail_columns(losses, n_window, m.confidence, m.min_window, flags, m.stress_weight)
        else:
            var, es = tail_columns(losses, n_window, m.confidence, m.min_window, weights, flags, m.stress_weight)
        return self._finish(t, X, var, es)

    def maintenance_lipschitz(self, t: int) -> np.ndarray | None:
        """Per-asset bound ``L_a`` on how fast the maintenance margin at t can change.

        For any two holdings ``(c, p)`` and ``(c', p')`` of the same assets,
        cross-margined or isolated::

            |MM(t, c', p') - MM(t, c, p)| <= sum_a L_a (|c'_a - c_a| + |p'_a - p_a|),
            L_a = max_s |g_{s,a}|

        over the scenario simple returns ``g`` of date t (window and stressed
        extras). Proof: every scenario loss ``-sum_a x_a g_{s,a}`` moves by at
        most ``sum_a |x'_a - x_a| L_a``, and an order statistic, a tail mean
        (any fixed masses) and the floor at 0 move by at most the largest
        pointwise move; isolated margins are sums of unit requirements (each
        ``<= L_a``) times amounts whose changes total ``|dc_a| + |dp_a|``.
        The account simulation uses it to skip the intraday requirement of
        accounts whose equity is provably above it (exact). NaN where an
        asset has no scenario return; ``None`` for subclasses that override
        the requirement (the bound would not be theirs).
        """
        cls = type(self)
        if (
            cls.requirement is not FittedHistorical.requirement
            or cls.isolated_requirement is not FittedHistorical.isolated_requirement
            or cls.account_requirement is not FittedHistorical.account_requirement
        ):
            return None
        g = self.scenarios(int(t))[0]
        return _hs_above.abs_nanmax_columns(np.ascontiguousarray(g, dtype=np.float64))

    def requirement_history(self, t0: int, t1: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """``requirement(s, collateral, positions)`` for every ``s`` in ``t0..t1``, as ``(L, N)`` arrays.

        For plain HS one rolling-kernel pass over dates ``t0 - W + 1 .. t1``
        only (the rows the windows of ``t0..t1`` read; from date 0 when a
        stressed date before that span stays in the scenario set), so a
        replay of ``L`` dates costs about ``(L + W) / W`` requirements (used
        by the path-dependent APC wrappers); otherwise a loop over the dates.
        """
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        if m.method != "hs":
            reqs = [self.requirement(s, collateral, positions) for s in range(t0, t1 + 1)]
            return Requirement(np.array([r.initial for r in reqs]), np.array([r.maintenance for r in reqs]))
        X = np.atleast_2d(np.asarray(collateral, dtype=np.float64)) + np.atleast_2d(
            np.asarray(positions, dtype=np.float64)
        )
        lo = max(0, int(t0) - m.window + 1)
        if self.stress[:lo].any():  # stressed rows before the span stay in the set: read from 0
            lo = 0
        losses = np.ascontiguousarray(self._losses(self.G[lo : t1 + 1], X).T)  # type: ignore[index]
        stress = self.stress[lo : t1 + 1]
        if m.stress_weight is not None:
            var, es = rolling_stress_tail(losses, m.window, m.confidence, m.min_window, stress, m.stress_weight)
        else:
            var, es = rolling_tail(losses, m.window, m.confidence, m.min_window, stress if stress.any() else None)
        mm = self._measure(var, es).T[t0 - lo :]
        bad = ((X != 0)[None, :, :] & ~self.asset_ok[t0 : t1 + 1, None, :]).any(axis=2)
        mm = np.where(bad, np.nan, mm)
        return Requirement(m.im_multiplier * mm, mm)

    def _rolling(self, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rolling VaR / ES of ``(P, T)`` plain-HS loss series (stressed share: two-class kernel)."""
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        if m.stress_weight is not None:
            return rolling_stress_tail(losses, m.window, m.confidence, m.min_window, self.stress, m.stress_weight)
        return rolling_tail(losses, m.window, m.confidence, m.min_window, self.stress if self.stress.any() else None)

    def isolated_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """Sum of stand-alone requirements; NaN only if a *held* asset cannot be priced.

        ``sum_a (c_a + p_a^+) U+_a + p_a^- U-_a`` with the unit requirements
        ``U+_a`` (+1 USD of asset a) and ``U-_a`` (-1 USD) of date t
        (positive homogeneity), priced once per date (:meth:`unit_requirements`).
        """
        collateral = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
        positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        up, un = self.unit_requirements(int(t), collateral.shape[1])
        mm = combine_units(collateral, positions, up[None, :], un[None, :])[0]
        return Requirement(self.model.im_multiplier * mm, mm)  # type: ignore[attr-defined]

    def unit_requirements(self, t: int, n_assets: int) -> tuple[np.ndarray, np.ndarray]:
        """Maintenance ``(U+, U-)`` ``(A,)`` of the unit portfolios +-1 USD per asset at t; last two dates kept.

        The account simulation asks for them two or three times per date (the
        intraday check of t + 1 uses date t's model state); ``requirement`` is a
        function of ``(t, holdings)`` only, so the cached values are the ones it
        would return.
        """
        cache = self.__dict__.setdefault("_units_cache", {})
        key = (int(t), int(n_assets))
        hit = cache.get(key)
        if hit is not None:
            return hit
        A = int(n_assets)
        units = self.requirement(t, np.vstack([np.eye(A), np.zeros((A, A))]), np.vstack([np.zeros((A, A)), -np.eye(A)]))
        out = (units.maintenance[:A], units.maintenance[A:])
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[key] = out
        return out

    def account_requirement(
        self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray | None = None
    ) -> Requirement:
        """Cross requirement of the cross-margined accounts, isolated of the others.

        Each account's requirement depends on its own holdings only, so the
        cross requirement is priced for the cross-margined rows alone (the base
        class prices it for every row and overwrites the isolated ones: same
        numbers).
        """
        if isolated is None or not np.any(isolated) or np.all(isolated):
            return super().account_requirement(t, collateral, positions, isolated)
        iso = np.asarray(isolated, dtype=bool)
        collateral = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
        positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        cross = self.requirement(t, collateral[~iso], positions[~iso])
        ireq = self.isolated_requirement(t, collateral[iso], positions[iso])
        n = collateral.shape[0]
        im = np.empty(n)
        mm = np.empty(n)
        im[~iso], mm[~iso] = cross.initial, cross.maintenance
        im[iso], mm[iso] = ireq.initial, ireq.maintenance
        return Requirement(im, mm)

    # ------------------------------------------------------------- path
    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        """Margin path of a constant-notional book.

        ``method="hs"``: one loss series per account (``X @ expm1(R).T``) and
        the numba sliding-window tail kernel (two-class with ``stress_weight``); the
        isolated accounts use the unit portfolios ``+-1 USD`` per asset
        (positive homogeneity). Otherwise the per-date loop of the base class.
        """
        m: HistoricalVaR = self.model  # type: ignore[assignment]
        book = book.align(self.panel.assets)
        held = book.held().astype(np.float64)
        with threadpool_limits(1):
            asset_bad = (~self.asset_ok).astype(np.float64) @ held.T  # (T, P) held assets not priceable
        if eligible is None:
            eligible = asset_bad == 0
        iso = np.asarray(book.isolated, dtype=bool)
        every_iso = bool(iso.size) and bool(iso.all())  # the engine's netting path: units only
        if m.method != "hs" and every_iso:
            ok = eligible & (asset_bad == 0)
            A = book.n_assets
            up = np.full((ok.shape[0], A), np.nan)
            un = np.full((ok.shape[0], A), np.nan)
            with threadpool_limits(1):
                for t in np.flatnonzero(ok.any(axis=1)):
                    up[t], un[t] = self.unit_requirements(int(t), A)
                mm = combine_units(book.collateral, book.positions, up, un)
            ok &= np.isfinite(mm)
            mm = np.where(ok, mm, np.nan)
            return MarginPath(m.label, self.panel.dates, book.account_ids, m.im_multiplier * mm, mm, ok)
        if m.method != "hs":
            with threadpool_limits(1):  # small BLAS products in a loop: threads only cost
                base = super().path(book, eligible & (asset_bad == 0))
            ok = eligible & np.isfinite(base.maintenance)
            return MarginPath(base.model, base.dates, base.account_ids, base.initial, base.maintenance, ok)
        A = book.n_assets
        X = book.exposure[:0] if every_iso else book.exposure  # all isolated: no account loss series
        units = np.vstack([np.eye(A), -np.eye(A)]) if iso.any() else np.zeros((0, A))
        Xall = np.vstack([X, units])
        losses = np.ascontiguousarray(self._losses(self.G, Xall).T)  # type: ignore[arg-type]
        with threadpool_limits(1):
            var, es = self._rolling(losses)
        val = self._measure(var, es).T  # (T, P + 2A)
        P = X.shape[0]
        if every_iso:
            mm = combine_units(book.collateral, book.positions, val[:, :A], val[:, A:])
        else:
            mm = val[:, :P].copy()
            if iso.any():
                up, un = val[:, P : P + A], val[:, P + A :]
                mm[:, iso] = combine_units(book.collateral[iso], book.positions[iso], up, un)
        ok = eligible & (asset_bad == 0) & np.isfinite(mm)
        mm = np.where(ok, mm, np.nan)
        return MarginPath(m.label, self.panel.dates, book.account_ids, m.im_multiplier * mm, mm, ok)

