"""Cross-margin liquidation cascades with price impact, replayed on real days.

* :mod:`~riskmodels.cascade.impact` -- price-impact plug-ins;
* :mod:`~riskmodels.cascade.engine` -- the one-window cascade engine;
* :mod:`~riskmodels.cascade.population` -- the account population seeder;
* :mod:`~riskmodels.cascade.replay` -- replay variants A/B/C, calibration,
  the crash-day suite, cross vs isolated, comparison across margin methods;
* :mod:`~riskmodels.cascade.observed` -- the crash days' observed figures as metrics;
* :mod:`~riskmodels.cascade.calibrate` -- leave-one-out calibration over the crash days;
* :mod:`~riskmodels.cascade.history` -- the price history a replay loads for its models.
"""

from riskmodels.cascade.engine import (
    CascadeParams,
    CascadeResult,
    Population,
    fixed_points,
    run_cascade,
)
from riskmodels.cascade.impact import (
    AssetState,
    DepthImpact,
    ImpactModel,
    LinearImpact,
    NoImpact,
    SquareRootImpact,
    build_impact,
)
from riskmodels.cascade.population import LeverageMixture, isolate, seed_population

__all__ = [
    "AssetState",
    "CascadeParams",
    "CascadeResult",
    "DepthImpact",
    "ImpactModel",
    "LeverageMixture",
    "LinearImpact",
    "NoImpact",
    "Population",
    "SquareRootImpact",
    "build_impact",
    "fixed_points",
    "isolate",
    "run_cascade",
    "seed_population",
]
