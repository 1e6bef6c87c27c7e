"""Coverage backtest: the margin set at t against the realised loss over the MPOR.

For each (date t, account p) that is eligible, the account is held at its
book's constant USD amounts ``x_p = collateral_p + positions_p`` (cash has no
price risk) and its realised loss over the margin period of risk ``h`` is

    L[t, p] = - sum_a x[p, a] * (C[t+h, a] / C[t, a] - 1)

(loss positive, simple returns, USD). An **exception** (breach) is
``L[t, p] > M[t, p]`` where ``M`` is the margin collected at t (the initial
margin by default, the CCP convention: IM must cover the MPOR loss at the
target confidence; ``on="maintenance"`` tests the liquidation buffer instead).

Sides: an account whose net USD delta ``sum_a x[p, a]`` is positive loses when
prices fall ("long" side), negative when they rise ("short" side); delta-neutral
accounts count only in the combined figures. With constant notional the side
of an account never changes.

Windows overlap for h > 1 (consecutive exceptions are dependent): the
statistics module also reports tests on non-overlapping sub-samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from riskmodels.data.panel import PricePanel
from riskmodels.margin.base import MarginPath
from riskmodels.portfolio import Book


@dataclass(frozen=True, eq=False)
class CoverageResult:
    """Losses, margins and exceptions of one model on one book, ``(T, P)``.

    Row ``i`` is the panel's date index ``offset + i`` (the rows of the
    margin path, see :class:`~riskmodels.margin.base.MarginPath`).
    """

    model: str
    horizon: int
    on: str
    loss: np.ndarray
    margin: np.ndarray
    valid: np.ndarray
    side: np.ndarray  # (P,) +1 long, -1 short, 0 neutral
    #: ``(T, P)`` bool: realised loss above margin (False where not valid), decided in
    #: float64 when the backtest runs (before a result stores its margins in float32)
    exceptions: np.ndarray
    offset: int = 0

    def rows(self, start: int, end: int) -> slice:
        """The row slice of panel date indices ``start..end`` (inclusive)."""
        return slice(start - self.offset, end + 1 - self.offset)

    @property
    def n_obs(self) -> int:
        return int(self.valid.sum())

    @property
    def n_exceptions(self) -> int:
        return int(self.exceptions.sum())

    @property
    def breach_rate(self) -> float:
        return self.n_exceptions / self.n_obs if self.n_obs else float("nan")

    def side_mask(self, side: str) -> np.ndarray:
        """``(P,)`` bool for ``"combined"``, ``"long"`` or ``"short"``."""
        if side == "combined":
            return np.ones_like(self.side, dtype=bool)
        if side == "long":
            return self.side > 0
        if side == "short":
            return self.side < 0
        raise ValueError(f"side must be combined, long or short, got {side!r}")

    @cached_property
    def per_account(self) -> tuple[np.ndarray, np.ndarray]:
        """``(observations, exceptions)`` per account, ``(P,)`` each."""
        return self.valid.sum(axis=0), self.exceptions.sum(axis=0)

    def by_side(self) -> dict[str, tuple[int, int]]:
        """``{side: (observations, exceptions)}``."""
        n_acc, x_acc = self.per_account
        out = {}
        for s in ("combined", "long", "short"):
            m = self.side_mask(s)
            out[s] = (int(n_acc[m].sum()), int(x_acc[m].sum()))
        return out

    def shortfall(self) -> np.ndarray:
        """``(T, P)`` loss in excess of margin on exceptions, 0 elsewhere."""
        return np.where(self.exceptions, self.loss - self.margin, 0.0)


def realised_loss(panel: PricePanel, book: Book, h: int, rows: slice | None = None) -> np.ndarray:
    """``(T, P)`` loss of the constant-notional book from close t to close t+h.

    NaN where a held asset has no price at t or t+h (including the last h rows).
    ``rows`` (a slice of date indices) computes only those rows.
    """
    book = book.align(panel.assets)
    fwd = panel.forward_returns(h, kind="simple")  # (T, A)
    if rows is not None:
        fwd = fwd[rows]
    x = book.exposure  # (P, A)
    held = x != 0
    finite = np.isfinite(fwd)
    pnl = np.where(finite, fwd, 0.0) @ x.T  # (T, P)
    missing = (~finite).astype(np.float64) @ held.T.astype(np.float64)  # exact counts (BLAS; no integer matmul)
    pnl[missing > 0] = np.nan
    return -pnl


def coverage_backtest(
    panel: PricePanel,
    book: Book,
    path: MarginPath,
    h: int,
    *,
    on: str = "initial",
    loss: np.ndarray | None = None,
) -> CoverageResult:
    """Compare ``path`` (margin at t) with the realised h-day loss of ``book``.

    ``loss`` is :func:`realised_loss` of the book when the caller already
    has it (it does not depend on the model: the backtest computes it once
    for all models), over the whole panel (only the path's rows are kept) or
    over the path's rows.
    """
    if on not in ("initial", "maintenance"):
        raise ValueError(f"on must be 'initial' or 'maintenance', got {on!r}")
    if h < 1:
        raise ValueError(f"the margin period of risk h must be >= 1 day, got {h}")
    book = book.align(panel.assets)
    rows = slice(path.offset, path.offset + len(path.dates))
    n_rows = rows.stop - rows.start
    if loss is None:
        loss_rows = realised_loss(panel, book, h, rows)
    elif loss.shape == (panel.n_dates, book.n_accounts):
        loss_rows = loss[rows]
    elif loss.shape == (n_rows, book.n_accounts):
        loss_rows = loss
    else:
        raise ValueError(f"loss must be (dates, accounts) = {(panel.n_dates, book.n_accounts)} or the path's rows "
                         f"{(n_rows, book.n_accounts)}, got {loss.shape}")
    margin = getattr(path, on)
    valid = path.eligible & np.isfinite(loss_rows) & np.isfinite(margin)
    side = np.sign(book.net_notional).astype(np.int8)
    with np.errstate(invalid="ignore"):
        exceptions = valid & (loss_rows > margin)
    return CoverageResult(path.model, h, on, loss_rows, margin, valid, side, exceptions, path.offset)
