"""Why a backtest window has nothing to evaluate (the message of that error)."""

from __future__ import annotations

import numpy as np

from riskmodels.data.panel import PricePanel
from riskmodels.errors import UserError
from riskmodels.portfolio import Book


def nothing_to_evaluate(panel: PricePanel, book: Book, asset_ok: np.ndarray, need: int, start: int,
                        end: int) -> UserError:
    """The error for a run where no (date, account) cell is eligible, saying why and what to change.

    ``asset_ok`` is the ``(T, A)`` mask of assets with ``need`` returns of history.
    """
    d0, d1 = panel.dates[start].date(), panel.dates[end].date()
    first = {}
    for j, a in enumerate(panel.assets):
        idx = np.flatnonzero(asset_ok[:, j])
        first[a] = str(panel.dates[idx[0]].date()) if len(idx) else "never"
    held = book.align(panel.assets).held().any(axis=0)
    ready = ", ".join(f"{a} from {first[a]}" for a, h in zip(panel.assets, held, strict=True) if h)
    return UserError(
        f"nothing to evaluate: no account has all its assets eligible (min_history = {need} daily returns) "
        f"inside the window {d0}..{d1}; assets become eligible: {ready}. Move [data] start/end later, lower "
        "[backtest] min_history (a model's own history need also counts), or choose other assets"
    )
