"""One declared liquidation (maintenance) rule for the comparison.

A margin model answers two numbers, the initial margin (IM) collected when a
position opens and the maintenance margin (MM) below which the account is
liquidated. The liquidation frequency of a backtest depends on MM / IM as much
as on the model's risk estimate, so a comparison that lets every row keep its
own, undeclared ratio compares ratios, not models. The convention here:

* **Risk-model rows** (SPAN-like grid, historical / filtered HS, GARCH, EWMA,
  Deribit-style PM and the APC wrappers around them) estimate a loss quantile
  and have no maintenance rule of their own (their ``im_multiplier`` is a
  parameter choice). They all run under one declared rule::

      MM[t, p] = maintenance_ratio x IM[t, p]

  ``[liquidation] maintenance_ratio``, default ``1 / 1.1`` (CME's HRP
  convention, initial = 110% of maintenance; METHODOLOGY.md s.1.2). The IM,
  and so the capital and coverage columns, are the model's own.
* **Rule-defined rows** (``fixed_haircut``: dYdX / Binance style IMF/MMF per
  tier and collateral haircuts) define MM themselves: the protocol's
  parameters *are* the method. They keep it, and their row says which it is.

``maintenance_ratio = "model"`` (``None`` in Python) lets every row keep its
own MM, the pre-Issue-22 behaviour; the ``mm_rule`` column then says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numba
import numpy as np

from riskmodels._numba_cache import frozen
from riskmodels.instruments.options import OptionState
from riskmodels.margin.base import FittedMargin, MarginModel, MarginPath, Requirement
from riskmodels.portfolio import Book

#: the default declared MM / IM of risk-model rows (CME HRP: IM = 110% of MM)
DEFAULT_MAINTENANCE_RATIO = 1.0 / 1.1


def defines_own_maintenance(model: MarginModel) -> bool:
    """True for methods whose rules set MM themselves (haircut IMF/MMF), also inside APC wrappers."""
    inner = getattr(model, "inner", None)
    if isinstance(inner, MarginModel):
        return defines_own_maintenance(inner)
    return bool(getattr(model, "own_maintenance", False))


def _fmt_rate(v: Any) -> str:
    if isinstance(v, Mapping):
        return "per asset"
    return f"{float(v):.4g}"


def maintenance_rule(model: MarginModel, ratio: float | None) -> str:
    """The rule a comparison row runs under, in words (the ``mm_rule`` column).

    ``"MM = 0.909 x IM (declared)"`` for risk-model rows under a declared
    ratio; ``"own: MMF 0.03 / IMF 0.05"`` (``"own: tiered MMF/IMF"``) for
    haircut rows; ``"own: MM = VaR, IM = 1.1 x MM"`` style text for a risk
    model left on its own rule (``ratio`` None).
    """
    inner = getattr(model, "inner", None)
    base = inner if isinstance(inner, MarginModel) else model
    if defines_own_maintenance(model):
        if getattr(base, "position_tiers", None):
            return "own: tiered MMF/IMF"
        return f"own: MMF {_fmt_rate(getattr(base, 'mmf', float('nan')))} / IMF {_fmt_rate(getattr(base, 'imf', float('nan')))}"
    if ratio is not None:
        return f"MM = {ratio:.3f} x IM (declared)"
    k = getattr(base, "im_multiplier", None)
    return "own: MM = IM" if k in (None, 1.0) else f"own: MM = IM / {float(k):.3g}"


def max_loss(collateral: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``(N,)`` the most a book can lose: its net long value if it holds no net short, else inf.

    With ``x_a = collateral_a + position_a`` (USD, at the current prices), a
    price can fall at most 100%, so a book with every ``x_a >= 0`` loses at
    most ``sum_a x_a``; a net short can lose without bound.
    """
    c = np.atleast_2d(np.asarray(collateral, dtype=np.float64))
    p = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    if c.shape != p.shape:
        c, p = np.broadcast_arrays(c, p)
    return _max_loss(frozen(c), frozen(p))  # one signature for read-only and writable inputs


@numba.njit(cache=True, fastmath=False)
def _max_loss(c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`max_loss` in one pass (the calls come once or twice per simulated date and model)."""
    n, a = c.shape
    out = np.empty(n)
    for i in range(n):
        s = 0.0
        for j in range(a):
            x = c[i, j] + p[i, j]
            if x < 0:
                s = np.inf
                break
            s += x  # x > 0 or 0 (NaN: the sum is NaN, as max(NaN, 0) was)
        out[i] = s
    return out


class _ScaledLipschitz:
    """``t -> max(scale x lip(t), 1)`` per asset (a class, not a closure: fitted states are pickled to workers)."""

    def __init__(self, lip: Any, scale: float) -> None:
        self.lip, self.scale = lip, scale

    def __call__(self, t: int) -> np.ndarray | None:
        v = self.lip(t)
        return None if v is None else np.maximum(self.scale * v, 1.0)


class DeclaredMaintenance(FittedMargin):
    """A risk model as the comparison runs it: bounded IM and the declared MM rule.

    ``IM' = min(IM, max_loss)`` (a margin never asks more than the book can
    lose: a long-only book at most its value, :func:`max_loss`), and
    ``MM' = ratio x IM'`` under a declared ratio, else ``min(MM, max_loss)``.
    Everything else (eligibility, homogeneity, panel) is the inner model's.
    ``maintenance_lipschitz`` (the simulation's exact intraday skip) is the
    inner bound scaled by ``ratio x im_multiplier`` when the inner IM is
    ``im_multiplier x`` its MM (historical simulation), raised to at least 1
    per asset for the cap (``max_loss`` moves by at most ``|dx_a|``, and
    ``min`` of two Lipschitz functions has the larger constant); else absent.
    A path-dependent APC inner (``carried_requirement``) is forwarded with
    the cap and the ratio applied after the rule's step, so the carried state
    stays the rule's own (uncapped) margins; ``carried_lipschitz`` is scaled
    the same way.
    """

    def __init__(self, inner: FittedMargin, ratio: float | None) -> None:
        super().__init__(inner.model, inner.panel)
        self.inner = inner
        self.ratio = None if ratio is None else float(ratio)
        self.homogeneous = inner.homogeneous  # type: ignore[misc]
        self.supports_options = inner.supports_options  # type: ignore[misc]
        lip = getattr(inner, "maintenance_lipschitz", None)
        k = getattr(inner.model, "im_multiplier", None)
        scale = None if (k is None and self.ratio is not None) else (
            1.0 if self.ratio is None else self.ratio * float(k))  # type: ignore[arg-type]
        if lip is not None and scale is not None:
            self.maintenance_lipschitz = _ScaledLipschitz(lip, scale)
        if getattr(inner, "carried_requirement", None) is not None:
            # path-dependent APC rules: the cap and the ratio act after the rule's step (a bound
            # method, not a closure: fitted states are pickled to stream workers)
            self.carry_width = int(inner.carry_width)  # type: ignore[attr-defined]
            self.carried_requirement = self._carried_requirement
            clip = getattr(inner, "carried_lipschitz", None)
            if clip is not None and scale is not None:
                self.carried_lipschitz = _ScaledLipschitz(clip, scale)

    def _carried_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray,
                             isolated: np.ndarray | None, state: np.ndarray) -> tuple[Requirement, np.ndarray]:
        req, new = self.inner.carried_requirement(t, collateral, positions, isolated, state)  # type: ignore[attr-defined]
        return self._declared(req, max_loss(collateral, positions)), new

    def option_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray,
                           options: OptionState) -> Requirement:
        """The inner model's requirement with options, on the declared MM rule.

        No ``max_loss`` cap: a book with short options can lose without bound
        (and a long option's premium is not a linear holding's value).
        """
        req = self.inner.option_requirement(t, collateral, positions, options)
        mm = req.maintenance if self.ratio is None else self.ratio * req.initial
        return Requirement(req.initial, mm)

    def _declared(self, req: Requirement, bound: np.ndarray) -> Requirement:
        im = np.minimum(req.initial, bound)
        mm = np.minimum(req.maintenance, bound) if self.ratio is None else self.ratio * im
        return Requirement(im, mm)

    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        return self._declared(self.inner.requirement(t, collateral, positions), max_loss(collateral, positions))

    def isolated_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        return self._declared(self.inner.isolated_requirement(t, collateral, positions), max_loss(collateral, positions))

    def account_requirement(
        self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray | None = None
    ) -> Requirement:
        return self._declared(self.inner.account_requirement(t, collateral, positions, isolated),
                              max_loss(collateral, positions))

    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        p = self.inner.path(book, eligible)
        b = book.align(self.panel.assets)
        bound = max_loss(b.collateral, b.positions)[None, :]
        im = np.minimum(p.initial, bound)
        mm = np.minimum(p.maintenance, bound) if self.ratio is None else self.ratio * im
        return MarginPath(p.model, p.dates, p.account_ids, im, mm, p.eligible, p.offset)


def apply_rule(fitted: FittedMargin, ratio: float | None) -> FittedMargin:
    """``fitted`` as the comparison runs it: rule-defined methods unchanged, risk models bounded and on the rule."""
    if defines_own_maintenance(fitted.model):
        return fitted
    return DeclaredMaintenance(fitted, ratio)
