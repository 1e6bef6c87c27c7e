"""Premium-plus-percentage option margin: the exchanges' standard (non-portfolio) rule.

Deribit's standard margin for options, per contract of one unit of the
underlying (Deribit "Margin requirements calculation", as reproduced by
TSLab's broker guide, https://doc.tslab.pro/tslab/eng/data-providers/connection-to-broker/deribit-cryptocurrency-exchange/deribit-margin-requirements-calculation;
Aevo's standard margin states the same rule with a 10% maintenance rate,
https://docs.aevo.xyz/aevo-exchange/options-specifications/standard-margin;
METHODOLOGY.md "Deribit standard")::

    short call  IM = max(0.15 - OTM / S, 0.10) S + mark          MM = 0.075 S + mark
    short put   IM = max(max(0.15 - OTM / S, 0.10) S + mark, MM)  MM = max(0.075 S, 0.075 mark) + mark
    long        IM = MM = mark (the premium is paid in full)

with ``S`` the underlying price, ``OTM`` the out-of-the-money amount
(``max(K - S, 0)`` for a call, ``max(S - K, 0)`` for a put) and ``mark`` the
option's price (riskmodels: Black-76 at the vol source's IV).

How riskmodels applies it
-------------------------
riskmodels' equity is marked to market: a short option counts ``-mark`` and
a long one ``+mark`` in the account's equity. The exchanges' ``+ mark``
terms are the same cash seen from a balance that does not mark the option
(a short must hold the buy-back cost, a long cannot borrow against its
premium), so against marked equity the requirement per position is::

    short call  IM = max(a - OTM / S, b) S             MM = m S
    short put   IM = max(max(a - OTM / S, b) S, MM)    MM = max(m S, m mark)
    long        IM = MM = mark                          (its value gives no margin credit)

times ``|q|``, with ``a = 0.15``, ``b = 0.10``, ``m = 0.075`` (Deribit;
``FixedHaircut(option_rates={...})`` changes them). Standard margin is per
position: the option charges add to the haircut/IMF charges of the
account's collateral and perps with no offset between them (a covered call
pays the collateral haircut and the short call's charge).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from riskmodels.instruments import black76
from riskmodels.instruments.options import OptionState

#: Deribit's standard option margin rates (module docstring)
DERIBIT_STANDARD: dict[str, float] = {"im": 0.15, "im_floor": 0.10, "mm": 0.075}

__all__ = ["DERIBIT_STANDARD", "check_option_rates", "option_charges"]


def check_option_rates(rates: Mapping[str, float] | None) -> dict[str, float]:
    """The rates with Deribit's defaults filled in; unknown keys or values outside [0, 1] raise."""
    out = dict(DERIBIT_STANDARD)
    for k, v in dict(rates or {}).items():
        if k not in out:
            raise ValueError(f"option_rates key {k!r} is unknown; valid: {', '.join(out)}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= float(v) <= 1:
            raise ValueError(f"option_rates.{k} = {v!r} must be a number in [0, 1]")
        out[k] = float(v)
    if out["im_floor"] > out["im"]:
        raise ValueError(f"option_rates.im_floor = {out['im_floor']} must not exceed im = {out['im']}")
    return out


def option_charges(n_accounts: int, options: OptionState, rates: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(IM, MM)``, ``(N,)`` USD each: the per-position rule summed per account (module docstring)."""
    tab = options.table
    if len(tab) == 0:
        z = np.zeros(n_accounts)
        return z, z.copy()
    S = options.spot[tab.asset]
    mark = black76.price(S, tab.strike, options.tau, options.iv, tab.is_call)
    otm = np.where(tab.is_call, np.maximum(tab.strike - S, 0.0), np.maximum(S - tab.strike, 0.0))
    a, b, m = rates["im"], rates["im_floor"], rates["mm"]
    pct = np.maximum(a - otm / S, b) * S
    mm_short = np.where(tab.is_call, m * S, np.maximum(m * S, m * mark))
    im_short = np.where(tab.is_call, pct, np.maximum(pct, mm_short))
    short = tab.quantity < 0
    qa = np.abs(tab.quantity)
    im = qa * np.where(short, im_short, mark)
    mm = qa * np.where(short, mm_short, mark)
    return tab.account_value(n_accounts, im), tab.account_value(n_accounts, mm)
