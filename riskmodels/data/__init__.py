"""Price data: loaders, validation, the PricePanel, a synthetic generator."""

from riskmodels.data.loaders import DEFAULT_UNIVERSE, load_files, load_panel, validate_directory
from riskmodels.data.panel import PricePanel
from riskmodels.data.synthetic import synthetic_panel, true_expected_shortfall, true_quantile
from riskmodels.data.validate import DataError, DataQualityWarning, Defect, QualityReport, validate

__all__ = [
    "DEFAULT_UNIVERSE",
    "DataError",
    "DataQualityWarning",
    "Defect",
    "PricePanel",
    "QualityReport",
    "load_files",
    "load_panel",
    "synthetic_panel",
    "true_expected_shortfall",
    "true_quantile",
    "validate",
    "validate_directory",
]
