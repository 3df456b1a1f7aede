"""What one call cost, what it would have cost on the baseline model, and its estimated energy."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.catalog import Catalog, TokenUsage, cost_usd, estimate_wh


@dataclass(frozen=True)
class CallCost:
    """The price of one answered call; None wherever the catalog does not know."""

    cost_usd: Decimal | None
    baseline_cost_usd: Decimal | None
    energy_wh: float | None
    energy_source: str | None


def price_call(catalog: Catalog, model_id: str, baseline_model: str, usage: TokenUsage) -> CallCost:
    """Exact cost (cached input priced apart), baseline cost of the same tokens, and energy estimate."""
    info = catalog.get(model_id)
    baseline = catalog.get(baseline_model)
    energy = info.energy if info else None
    return CallCost(
        cost_usd=cost_usd(info.price if info else None, usage),
        baseline_cost_usd=cost_usd(baseline.price if baseline else None, usage),
        energy_wh=estimate_wh(energy, usage),
        energy_source=energy.source if energy else None,
    )
