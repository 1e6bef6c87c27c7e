"""Books sized against the market: every account a stated fraction of average daily volume.

Calibration with size (``riskmodels calibrate`` with ``adv_fraction``) needs a
book whose accounts are as large, relative to what the market trades, as the
accounts the risk team worries about. :func:`scale_to_adv` rescales each
account of a book (all its holdings by one factor, so its composition is kept)
so that its **largest holding relative to ADV** is ``fraction``::

    k_p = fraction / max_a (|collateral_pa| + |perp_pa|) / ADV_a,   ADV_a = mean USD volume
                                                                      of the window before ``start``

The ADV is measured on the ``window`` days *before* the evaluation window
(positive volumes only), so the book's size uses no data of the dates it is
scored on.
"""

from __future__ import annotations

import numpy as np

from riskmodels.data.panel import PricePanel
from riskmodels.portfolio import Book

__all__ = ["adv_before", "scale_to_adv"]


def adv_before(panel: PricePanel, start: int, window: int = 30) -> np.ndarray:
    """``(A,)`` mean positive USD volume of dates ``start-window .. start-1`` (NaN if none)."""
    if int(window) != window or window < 1:
        raise ValueError(f"adv_window={window!r} must be a whole number of days >= 1")
    lo = max(0, int(start) - int(window))
    v = panel.volume[lo : int(start)]
    v = np.where(np.isfinite(v) & (v > 0), v, np.nan)
    out = np.full(panel.n_assets, np.nan)
    has = np.isfinite(v).any(axis=0)
    out[has] = np.nanmean(v[:, has], axis=0)
    return out


def scale_to_adv(book: Book, panel: PricePanel, start: int, fraction: float, window: int = 30) -> Book:
    """``book`` rescaled account by account so that its largest holding is ``fraction`` x ADV.

    Raises naming the asset when an account holds an asset without volume before ``start``.
    """
    if not (fraction > 0 and np.isfinite(fraction)):
        raise ValueError(f"adv_fraction={fraction!r} must be a positive number (e.g. 0.01 = 1% of ADV)")
    book = book.align(panel.assets)
    adv = adv_before(panel, start, window)
    gross = np.abs(book.collateral) + np.abs(book.positions)
    held = gross > 0
    missing = held & ~np.isfinite(adv)[None, :]
    if missing.any():
        p, a = np.argwhere(missing)[0]
        raise ValueError(
            f"adv_fraction: asset {panel.assets[a]} (held by account {book.account_ids[p]}) has no positive volume "
            f"in the {window} days before {panel.dates[start].date()}; move the window start or drop the asset"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(held, gross / adv[None, :], 0.0).max(axis=1)
    k = np.where(rel > 0, fraction / np.where(rel > 0, rel, 1.0), 1.0)
    return book.scaled(k)
