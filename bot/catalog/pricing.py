"""Exact request costs from a model's price and the token usage the API reports."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .catalog import Price

_PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one call; cached_tokens is the part of prompt_tokens served from the cache."""

    prompt_tokens: int
    cached_tokens: int = 0
    completion_tokens: int = 0

    def __post_init__(self) -> None:
        if min(self.prompt_tokens, self.cached_tokens, self.completion_tokens) < 0:
            raise ValueError(f"token counts must be >= 0: {self}")
        if self.cached_tokens > self.prompt_tokens:
            raise ValueError(f"cached_tokens exceeds prompt_tokens: {self}")

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens (cached tokens are part of the prompt)."""
        return self.prompt_tokens + self.completion_tokens


def cost_usd(price: Price | None, usage: TokenUsage) -> Decimal | None:
    """Exact USD cost of a call, or None when the price is unknown (never a silent $0)."""
    if price is None:
        return None
    uncached = usage.prompt_tokens - usage.cached_tokens
    total = (
        uncached * price.input
        + usage.cached_tokens * price.cached_input
        + usage.completion_tokens * price.output
    )
    return total / _PER_MILLION


def worst_case_cost_usd(price: Price | None, prompt_tokens: int, max_output_tokens: int) -> Decimal | None:
    """Upper bound of a call's cost: no input cached and every allowed output token used."""
    return cost_usd(price, TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=max_output_tokens))


def format_usd(amount: Decimal | None) -> str:
    """Dollars for people: "$1.25", "$0.0123", "$0.000042"; "price unknown" for None."""
    if amount is None:
        return "price unknown"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    # Cents suffice from a dollar up; below that keep three significant digits so tiny costs don't read as $0.00.
    places = 2 if amount == 0 or amount >= 1 else max(2, 2 - amount.adjusted())
    text = f"{amount.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction[:2] + fraction[2:].rstrip("0")
    return f"{sign}${whole}.{fraction}"
