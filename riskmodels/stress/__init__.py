"""Stress testing and default resources.

* :mod:`~riskmodels.stress.scenarios` -- the scenario library as data (historical
  crash days and worst windows, BTC-beta, depeg, correlation breakdown, user TOML);
* :mod:`~riskmodels.stress.cover` -- stressed loss beyond margin per account and
  group, Cover-1 / Cover-2, reverse stress;
* :mod:`~riskmodels.stress.fund` -- the insurance-fund ledger and auto-deleveraging;
* :mod:`~riskmodels.stress.run` -- one date's stress, the backtest's stress outputs;
* :mod:`~riskmodels.stress.config` -- the ``[stress]`` config section.
"""

from riskmodels.stress.config import StressConfig
from riskmodels.stress.cover import (
    StressResult,
    reverse_stress,
    reverse_table,
    scenario_losses,
    stress_book,
)
from riskmodels.stress.fund import FundLedger, FundPolicy, fund_ledger
from riskmodels.stress.run import (
    BacktestStress,
    DateStress,
    backtest_stress,
    cover_path,
    stress_date,
)
from riskmodels.stress.scenarios import (
    LibrarySpec,
    Scenario,
    ScenarioHistory,
    ScenarioSet,
    user_scenarios,
)

__all__ = [
    "BacktestStress",
    "DateStress",
    "FundLedger",
    "FundPolicy",
    "LibrarySpec",
    "Scenario",
    "ScenarioHistory",
    "ScenarioSet",
    "StressConfig",
    "StressResult",
    "backtest_stress",
    "cover_path",
    "fund_ledger",
    "reverse_stress",
    "reverse_table",
    "scenario_losses",
    "stress_book",
    "stress_date",
    "user_scenarios",
]
