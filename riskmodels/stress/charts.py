"""The Cover-2 / insurance-fund chart of the stress outputs (the report's style, deterministic PNG)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from riskmodels.report.charts import _draw, _empty, style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def cover_fund_png(cover: pd.DataFrame, fund: pd.DataFrame) -> bytes:
    """Left: Cover-2 per model over the backtest; right: the insurance-fund balance (USD millions).

    ``cover`` is :attr:`BacktestStress.cover`, ``fund`` :meth:`BacktestStress.fund_frame`.
    """

    def draw(fig: Figure, axes: list[Axes]) -> None:
        for ax, frame, col, title in ((axes[0], cover, "cover2", "Cover-2: two largest groups beyond margin"),
                                      (axes[1], fund, "balance_close", "Insurance fund balance")):
            if not len(frame):
                _empty(ax, "no dates")
                continue
            for i, (name, df) in enumerate(frame.groupby("model", sort=False)):
                st = style(i)
                ax.plot(pd.DatetimeIndex(df["date"]), df[col].to_numpy() / 1e6, color=st["color"],
                        linestyle=st["linestyle"], lw=1.1, label=str(name))
            ax.set_title(title)
            ax.set_ylabel("USD millions")
            ax.tick_params(axis="x", labelrotation=30)
        axes[0].legend(loc="upper left", frameon=False)
        fig.suptitle("Stress: Cover-2 and the insurance fund per margin model", fontsize=9)

    return _draw(9.0, 3.4, draw, ncols=2, margins={"left": 0.07, "bottom": 0.2, "top": 0.84})
