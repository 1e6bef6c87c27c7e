"""The ``[options]`` config section: the implied-vol source and the generated option strategies.

========================  ==================================================================
key                       meaning (default)
========================  ==================================================================
``generate``              add generated strategies to a generated book (true); a book file
                          brings its own options and ignores the generator keys
``strategies``            mix ``{ covered_call = 0.25, ... }`` (:data:`~riskmodels.instruments.generate.DEFAULT_MIX`)
``underlyings``           ``["BTC", "ETH"]``
``share``                 share of accounts given a strategy (1.0)
``median_notional``       USD notional per strategy, log-normal median (50,000), ``notional_sigma`` (1.0)
``strike_by``             ``moneyness`` (OTM legs at ``S (1 +- otm)``, ``otm = 0.10``) or ``delta``
                          (``otm_delta = 0.25``)
``schedule``              ``monthly`` (last Fridays) or ``weekly``; ``tenor_days`` (30)
``roll``                  re-trade at expiry (true)
``keep_linear``           option accounts keep the generated perps (false)
``strategies_per_account`` ``[lo, hi]`` strategies per option account ([1, 1]; [5, 5] = up to 10 options)
``seed``                  generator seed (11)
``vol_file``              IV history CSV (:mod:`riskmodels.instruments.vol`); "" = none
``dvol``                  ``{ BTC = "btc_dvol.csv" }`` Deribit DVOL files (30-day ATM)
``vol_fallback``          ``error`` (an option without a quote stops the run) or ``proxy``
``max_age_days``          a quote older than this is not used (5)
``[options.proxy]``       ``ewma_lambda`` (0.94), ``premium`` (1.10), ``long_run_days`` (730),
                          ``half_life_days`` (30), ``skew`` (0), ``smile`` (0)
========================  ==================================================================

Without ``vol_file`` and ``dvol`` the proxy is the source, and every output
says so (its label starts with ``proxy:``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from riskmodels.data.panel import PricePanel
from riskmodels.errors import UserError
from riskmodels.instruments.options import VolSource
from riskmodels.portfolio import Book
from riskmodels.schema import Length, Range

__all__ = ["OptionsKeys", "ProxyKeys", "option_book"]


class ProxyKeys:
    """``[options.proxy]``: the EWMA proxy's settings (:class:`~riskmodels.instruments.vol.ProxyVol`)."""

    ewma_lambda: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)]
    premium: Annotated[float, Range(0.5, 3)]
    long_run_days: Annotated[int, Range(30)]
    half_life_days: Annotated[float, Range(0, 3650, lo_open=True)]
    skew: Annotated[float, Range(-5, 5)]
    smile: Annotated[float, Range(-5, 5)]


class OptionsKeys:
    """``[options]``: vol source and option-strategy generator (module docstring)."""

    generate: bool
    strategies: dict[str, float]
    underlyings: list[str]
    share: Annotated[float, Range(0, 1)]
    median_notional: Annotated[float, Range(0, lo_open=True)]
    notional_sigma: Annotated[float, Range(0, 5)]
    strike_by: Literal["moneyness", "delta"]
    otm: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)]
    otm_delta: Annotated[float, Range(0, 0.5, lo_open=True, hi_open=True)]
    schedule: Literal["monthly", "weekly"]
    tenor_days: Annotated[float, Range(1, 730)]
    roll: bool
    keep_linear: bool
    strategies_per_account: Annotated[list[Annotated[int, Range(1, 20)]], Length(2)]
    seed: Annotated[int, Range(0)]
    vol_file: str
    dvol: dict[str, str]
    vol_fallback: Literal["error", "proxy"]
    max_age_days: Annotated[int, Range(0, 365)]
    proxy: ProxyKeys


def option_book(cfg: dict[str, Any], panel: PricePanel, book: Book, start: int, end: int) -> tuple[Book, VolSource]:
    """The run's book with its generated strategies (a generated book) and the vol source."""
    from riskmodels.instruments.generate import generate_option_book
    from riskmodels.instruments.vol import vol_source

    spec = dict(cfg.get("options", {}) or {})
    try:
        vol = vol_source(panel, spec)
    except ValueError as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"[options] {exc}") from None
    generated = cfg["book"].get("source", "generate") == "generate"
    if generated and spec.get("generate", True) and "options" in cfg:
        try:
            book = generate_option_book(
                panel, book, vol, seed=int(spec.get("seed", 11)), start=start, end=end,
                mix=spec.get("strategies"), underlyings=tuple(spec.get("underlyings", ("BTC", "ETH"))),
                share=float(spec.get("share", 1.0)), median_notional=float(spec.get("median_notional", 50_000.0)),
                notional_sigma=float(spec.get("notional_sigma", 1.0)),
                strike_by=str(spec.get("strike_by", "moneyness")), otm=float(spec.get("otm", 0.10)),
                otm_delta=float(spec.get("otm_delta", 0.25)), schedule=str(spec.get("schedule", "monthly")),
                tenor_days=float(spec.get("tenor_days", 30.0)), roll=bool(spec.get("roll", True)),
                keep_linear=bool(spec.get("keep_linear", False)),
                strategies_per_account=tuple(spec.get("strategies_per_account", (1, 1))))
        except ValueError as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(f"[options] {exc}") from None
    return book, vol
