"""DeFi lending markets: Aave v3.3 / Morpho Blue accounts, liquidations, risk metrics, parameter recommendations.

Modules: :mod:`~riskmodels.lending.market` (validated reserve parameters),
:mod:`~riskmodels.lending.health` (health factor, toxic frontier),
:mod:`~riskmodels.lending.liquidation` (the protocol's liquidation step),
:mod:`~riskmodels.lending.simulate` (the daily simulation),
:mod:`~riskmodels.lending.generate` (borrower positions),
:mod:`~riskmodels.lending.metrics` (bad debt, VaR, LaR, liquidator profit),
:mod:`~riskmodels.lending.recommend` (the parameter recommender and cap solver).
"""

from riskmodels.lending.market import PROTOCOLS, AssetParams, LendingMarket, morpho_lif

__all__ = ["PROTOCOLS", "AssetParams", "LendingMarket", "morpho_lif"]
