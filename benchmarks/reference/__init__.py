"""A plain reference implementation of the standard benchmark's computations.

Written the way a quant would write the comparison with pandas and arch and
no tricks: one account at a time, a Python loop over dates and accounts for
the liquidation simulation, a pandas rolling quantile per account for the HS
VaR path, ``arch_model(...).fit()`` per asset and refit date for GARCH. It
follows riskmodels' documented conventions (not its code), so
``tests/test_benchmark_reference.py`` can check that both agree, and
``benchmarks/standard.py`` times it against riskmodels.
"""

from .backtest import run_model, simulate
from .margins import GarchRef, HaircutRef, HistoricalRef, SpanRef, time_daily_refits

__all__ = ["GarchRef", "HaircutRef", "HistoricalRef", "SpanRef", "run_model", "simulate", "time_daily_refits"]
