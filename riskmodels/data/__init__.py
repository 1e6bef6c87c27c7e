"""Price data: loaders, validation, the PricePanel, a synthetic generator."""

from riskmodels.data.panel import PricePanel

__all__ = ["PricePanel"]
