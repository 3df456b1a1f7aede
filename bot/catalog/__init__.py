"""Model catalog as data: ids and aliases, did-you-mean, prices and energy estimates."""

from .catalog import CallShape, Catalog, CatalogError, EnergyModel, ModelInfo, Price, UnknownModelError, output_cap
from .energy import describe, estimate_wh
from .pricing import TokenUsage, call_cost, cost_usd, format_usd, price_sheet, price_source, worst_case_cost_usd

__all__ = [
    "CallShape",
    "output_cap",
    "call_cost",
    "price_sheet",
    "price_source",
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
