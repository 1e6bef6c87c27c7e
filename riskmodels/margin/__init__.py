"""Margin methods on one portfolio interface, and their registry.

``get(name, **params)`` builds a registered model; ``available()`` lists them.
"""

from riskmodels.margin.apc import Buffer25, LookbackFloor, SpeedLimit, StressWeight25
from riskmodels.margin.base import (
    FittedMargin,
    MarginModel,
    MarginPath,
    Requirement,
    available,
    get,
    register,
)
from riskmodels.margin.concentration import ConcentrationAddon
from riskmodels.margin.deribit import DeribitPM
from riskmodels.margin.garch import EwmaMargin, GarchEstimationWarning, GarchMargin
from riskmodels.margin.haircut import FixedHaircut
from riskmodels.margin.historical import AgeWeightedHS, FilteredHS, HistoricalVaR
from riskmodels.margin.options_deribit import DerivePM
from riskmodels.margin.span import ScenarioGrid

__all__ = [
    "AgeWeightedHS",
    "Buffer25",
    "ConcentrationAddon",
    "DeribitPM",
    "DerivePM",
    "EwmaMargin",
    "FilteredHS",
    "FittedMargin",
    "FixedHaircut",
    "GarchEstimationWarning",
    "GarchMargin",
    "HistoricalVaR",
    "LookbackFloor",
    "MarginModel",
    "MarginPath",
    "Requirement",
    "ScenarioGrid",
    "SpeedLimit",
    "StressWeight25",
    "available",
    "get",
    "register",
]
