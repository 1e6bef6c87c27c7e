"""riskmodels: compare cross-margin methods on real crypto price history."""

from riskmodels.data.panel import PricePanel
from riskmodels.portfolio import Book, generate_book

__version__ = "0.1.0"

__all__ = ["Book", "PricePanel", "__version__", "generate_book"]
