"""Citations of the report: every source is a public document or a note shipped with the package.

:data:`REFERENCES` maps a key (used in the assumptions' ``source`` column as
``[key]``) to its citation; the full text with summaries is
``riskmodels/docs/references.md`` (shipped). :func:`references_table` is the
report's appendix; :func:`cited_keys` finds the ``[key]`` marks in a text so
a test can check that every cited key is listed.
"""

from __future__ import annotations

import re

import pandas as pd

from riskmodels.backtest._testresult import Table

__all__ = ["REFERENCES", "cite", "cited_keys", "references_table"]

#: key -> (citation, public address or shipped file)
REFERENCES: dict[str, tuple[str, str]] = {
    "EMIR-RTS": ("Commission Delegated Regulation (EU) No 153/2013, arts. 24-26 and 28",
                 "https://eur-lex.europa.eu/eli/reg_del/2013/153/oj"),
    "PFMI": ("CPSS-IOSCO, Principles for financial market infrastructures (2012), Principle 6",
             "https://www.bis.org/cpmi/publ/d101a.pdf"),
    "Kupiec-1995": ("Kupiec, Techniques for verifying the accuracy of risk measurement models, "
                    "J. Derivatives 3(2), 1995", "journal article"),
    "Christoffersen-1998": ("Christoffersen, Evaluating interval forecasts, Int. Economic Review 39(4), 1998",
                            "journal article"),
    "Basel-TL": ("Basel Committee, Supervisory framework for the use of backtesting (1996)",
                 "https://www.bis.org/publ/bcbs22.htm"),
    "MVV-2014": ("Murphy, Vasios & Vause, An investigation into the procyclicality of risk-based initial margin "
                 "models, BoE Financial Stability Paper 29 (2014)",
                 "https://www.bankofengland.co.uk/financial-stability-paper/2014/"
                 "an-investigation-into-the-procyclicality-of-risk-based-initial-margin-models"),
    "ChaosLabs-Aave": ("Chaos Labs, risk parameter updates on the Aave governance forum (2023)",
                       "https://governance.aave.com/t/arfc-chaos-labs-risk-parameter-updates-crv-aave-v2-ethereum-"
                       "2023-06-15/13709"),
    "Gauntlet-LaR": ("Gauntlet, risk dashboard FAQ (VaR, liquidations at risk)", "https://risk.gauntlet.network/faq"),
    "LlamaRisk-shock": ("LlamaRisk, debt ceiling methodology", "https://llamarisk.com/research/debt-ceiling-methdology"),
    "dYdX-v4": ("dYdX Chain documentation, liquidations",
                "https://help.dydx.exchange/en/articles/8580691-liquidations-on-dydx-chain"),
    "Derive": ("Derive, standard margin parameters", "https://docs.derive.xyz/standard-margin-parameters.md"),
    "Deribit-PM": ("Deribit, portfolio margin",
                   "https://support.deribit.com/hc/en-us/articles/25944756247837-Portfolio-Margin"),
    "CME-SPAN": ("CME Group, SPAN overview", "https://www.cmegroup.com/clearing/risk-management/span-overview.html"),
    "crash_days": ("Crash days and their public sources", "riskmodels/docs/crash_days.md (shipped)"),
}

_CITE = re.compile(r"\[([A-Za-z][A-Za-z0-9_-]*)\]")


def cite(*keys: str) -> str:
    """``"[k1; k2]"``-style marks for ``keys`` (each must be in :data:`REFERENCES`)."""
    missing = [k for k in keys if k not in REFERENCES]
    if missing:
        raise KeyError(f"unknown reference(s) {missing}; add them to riskmodels.report.sources.REFERENCES")
    return " ".join(f"[{k}]" for k in keys)


def cited_keys(text: str) -> set[str]:
    """Every ``[key]`` mark in ``text``."""
    return set(_CITE.findall(text))


def references_table() -> Table:
    rows = [{"key": k, "reference": c, "where": w} for k, (c, w) in REFERENCES.items()]
    return Table(pd.DataFrame(rows, columns=["key", "reference", "where"]),
                 title="References (summaries in riskmodels/docs/references.md, shipped with the package)")
