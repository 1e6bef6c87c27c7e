"""Deribit-style cross-collateral portfolio margin (X:PM) on the scenario grid.

The linear scan is :class:`~riskmodels.margin.span.ScenarioGrid`'s engine on
Deribit's table (joint price buckets over assets, extended moves, futures
contingency); options are revalued in :mod:`riskmodels.margin.options_deribit`.
Sources and parameter sets: README "Margin methods" and the class docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from riskmodels.margin.base import check_range, register
from riskmodels.margin.span import ScenarioGrid, _check_int
from riskmodels.margin.span_arrays import DERIBIT_EXTENDED_MOVES, ScenarioTable, deribit_table

__all__ = ["DeribitPM"]


@register
class DeribitPM(ScenarioGrid):
    """Deribit-style cross-collateral (X:PM) portfolio margin; options in :mod:`riskmodels.margin.options_deribit`.

    Parameters
    ----------
    price_range : float or mapping
        Largest price move per asset, in (0, 1]; default 0.16 (current doc;
        v-A 0.10, v-B 0.125).
    n_buckets : int
        Odd number of evenly spaced moves including 0, in [3, 101]; default 9.
    extended_fraction : float
        Fraction of the extended-table P&L counted, in [0, 1]; default 0 (off).
    extended_moves : sequence of float
        The extended moves (simple returns > -1); default Deribit's table.
    futures_contingency : float
        Charge on offsetting exposure, in [0, 0.2]; default 0.01 (v-A).
    collateral_haircut : float or mapping
        Extra charge on collateral value, in [0, 1]; default 0.
    im_multiplier : float
        Initial / maintenance, in [1, 2]; default 1.0 (Deribit's value not public).
    rule_set : {"current", "legacy"}
        Option scan rules (:mod:`riskmodels.margin.options_deribit`): vol
        shocks by days to expiry and the net-short-per-strike contingency;
        also the default ``price_range`` (0.16 current, 0.10 legacy).
    option_params : mapping, optional
        Overrides of the rule set's option parameters (``vol_range_up``,
        ``vol_range_down``, ``vega_power_short``, ``vega_power_long``,
        ``min_vol_up``, ``dte_floor``, ``option_contingency``).
    """

    #: Deribit X:PM scans all assets jointly; Derive scans each asset alone
    per_asset_scan: ClassVar[bool] = False
    perp_contingency: ClassVar[float] = 0.0

    name: ClassVar[str] = "deribit_pm"
    option_scan: ClassVar[str] = "deribit"
    summary: ClassVar[str] = "Deribit-style X:PM: joint 9-bucket +-16% grid, futures contingency"

    #: historic parameter sets (METHODOLOGY 2.1): price move, futures contingency
    PARAMETER_SETS: ClassVar[dict[str, dict[str, float]]] = {
        "current": {"price_range": 0.16, "futures_contingency": 0.01},
        "v-A": {"price_range": 0.10, "futures_contingency": 0.01},
        "v-B": {"price_range": 0.125, "futures_contingency": 0.02},
        "v-C": {"price_range": 0.10, "futures_contingency": 0.01},
    }

    def __init__(
        self,
        price_range: float | Mapping[str, float] | None = None,
        n_buckets: int = 9,
        extended_fraction: float = 0.0,
        extended_moves: Sequence[float] = DERIBIT_EXTENDED_MOVES,
        futures_contingency: float = 0.01,
        collateral_haircut: float | Mapping[str, float] = 0.0,
        im_multiplier: float = 1.0,
        rule_set: Literal["current", "legacy"] = "current",
        option_params: Mapping[str, float] | None = None,
        *,
        label: str | None = None,
    ) -> None:
        from riskmodels.margin.options_deribit import RULE_PRICE_RANGE, option_rules

        self.rule_set = rule_set
        self.option_params = dict(option_params) if option_params else None
        #: the option scan's vol-shock and contingency parameters (options_deribit)
        self.option_rules = option_rules(rule_set, self.option_params)
        if price_range is None:
            price_range = RULE_PRICE_RANGE[rule_set]
        self.n_buckets = _check_int("n_buckets", n_buckets, 3, 101)
        if self.n_buckets % 2 == 0:
            raise ValueError(f"n_buckets={n_buckets} must be odd (the buckets include 0)")
        self.extended_fraction = check_range("extended_fraction", extended_fraction, 0.0, 1.0)
        moves = tuple(float(m) for m in extended_moves)
        if any(not m > -1.0 for m in moves):
            raise ValueError(f"extended_moves must all be simple returns > -1, got {moves}")
        self.extended_moves = moves
        self.futures_contingency = check_range("futures_contingency", futures_contingency, 0.0, 0.2)
        if not isinstance(price_range, Mapping):
            check_range("price_range", price_range, 0.0, 1.0, lo_open=True)  # type: ignore[arg-type]
        self.price_range = price_range
        super().__init__(
            psr=price_range,
            collateral_haircut=collateral_haircut,
            im_multiplier=im_multiplier,
            scan="joint",
            label=label,
        )

    def table(self) -> ScenarioTable:
        return deribit_table(self.n_buckets, self.extended_moves, self.extended_fraction)

    @classmethod
    def parameter_set(cls, which: str, **overrides: Any) -> DeribitPM:
        """The preset with a documented historic parameter set ("v-A", ...)."""
        if which not in cls.PARAMETER_SETS:
            raise ValueError(f"parameter set {which!r} unknown; valid: {sorted(cls.PARAMETER_SETS)}")
        return cls(**{**cls.PARAMETER_SETS[which], **overrides})


# ====================================================================== fit
