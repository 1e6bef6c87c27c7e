"""Plain reference implementations of the standard benchmark's computations.

Two of them, both written from riskmodels' documented conventions (not its
code), so the tests can check that they agree with riskmodels:

* the **reasonable reference** (:mod:`.vectorised`, :mod:`.vsim`): what a
  competent quant writes with numpy, pandas and arch, vectorised over
  accounts, GARCH on riskmodels' 20-day warm refit schedule, no numba. The
  headline yardstick of ``benchmarks/standard.py`` (``reasonable_s``),
  parity-tested at full scale in ``tests/test_benchmark_reasonable.py``;
* the **loop reference** (:mod:`.backtest`, :mod:`.margins`): one account at
  a time, a Python loop over dates and accounts for the liquidation
  simulation, a pandas rolling quantile per account, ``arch_model(...).fit()``
  per asset and refit date (issue 7's reference; ``standard.py --loop``, a
  second column, never the headline).
"""

from .backtest import run_model, simulate
from .margins import GarchRef, HaircutRef, HistoricalRef, SpanRef, time_daily_refits

__all__ = ["GarchRef", "HaircutRef", "HistoricalRef", "SpanRef", "run_model", "simulate", "time_daily_refits"]
