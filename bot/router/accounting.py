"""What one call cost, what it would have cost on the baseline model, and its estimated energy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.catalog import Catalog, TokenUsage, call_cost, estimate_wh


@dataclass(frozen=True)
class CallCost:
    """The price of one answered call; None wherever the catalog does not know."""

    cost_usd: Decimal | None
    baseline_cost_usd: Decimal | None
    energy_wh: float | None
    energy_source: str | None  # the estimate's short citation


def price_call(
    catalog: Catalog,
    model_id: str,
    baseline_model: str,
    usage: TokenUsage,
    *,
    service_tier: str | None = None,
    at: datetime | None = None,
) -> CallCost:
    """Exact cost (cache reads and writes priced apart, at the tier that served), baseline cost of the same tokens, energy."""
    info = catalog.get(model_id)
    energy = info.energy if info else None
    return CallCost(
        cost_usd=call_cost(catalog, model_id, usage, service_tier=service_tier, at=at),
        # The baseline is what the same request would have cost on the standard tier.
        baseline_cost_usd=call_cost(catalog, baseline_model, usage, at=at),
        energy_wh=estimate_wh(energy, usage),
        energy_source=energy.cite if energy else None,
    )
