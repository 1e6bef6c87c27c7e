"""Margin methods on one portfolio interface, and their registry.

``get(name, **params)`` builds a registered model; ``available()`` lists them.
"""

from riskmodels.margin.base import (
    FittedMargin,
    MarginModel,
    MarginPath,
    Requirement,
    available,
    get,
    register,
)
from riskmodels.margin.haircut import FixedHaircut

__all__ = [
    "FittedMargin",
    "FixedHaircut",
    "MarginModel",
    "MarginPath",
    "Requirement",
    "available",
    "get",
    "register",
]
