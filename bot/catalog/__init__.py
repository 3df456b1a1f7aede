"""Model catalog as data: ids and aliases, did-you-mean, prices and energy estimates."""

from .catalog import Catalog, CatalogError, EnergyModel, ModelInfo, Price, UnknownModelError
from .energy import describe, estimate_wh
from .pricing import TokenUsage, cost_usd, format_usd, worst_case_cost_usd

__all__ = [
    "Catalog",
    "CatalogError",
    "EnergyModel",
    "ModelInfo",
    "Price",
    "TokenUsage",
    "UnknownModelError",
    "cost_usd",
    "describe",
    "estimate_wh",
    "format_usd",
    "worst_case_cost_usd",
]
