"""Exact request costs: genai-prices for the models it knows, the catalog's own prices where given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import genai_prices

from .catalog import Catalog, Price

_PER_MILLION = Decimal(1_000_000)
PROVIDER = "openai"
# genai-prices' own name and version, shown where a price is explained (`frugal check`, `/frugal models`).
LIBRARY = f"genai-prices {genai_prices.__version__}"


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one call.

    cached_tokens and cache_write_tokens are parts of prompt_tokens (read from, and written to, the
    prompt cache); reasoning_tokens is the part of completion_tokens the model spent thinking.
    """

    prompt_tokens: int
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        counts = (
            self.prompt_tokens,
            self.cached_tokens,
            self.completion_tokens,
            self.reasoning_tokens,
            self.cache_write_tokens,
        )
        if min(counts) < 0:
            raise ValueError(f"token counts must be >= 0: {self}")
        if self.cached_tokens + self.cache_write_tokens > self.prompt_tokens:
            raise ValueError(f"cached and cache-write tokens exceed prompt_tokens: {self}")
        if self.reasoning_tokens > self.completion_tokens:
            raise ValueError(f"reasoning_tokens exceeds completion_tokens: {self}")

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens (cached tokens are part of the prompt, reasoning part of the completion)."""
        return self.prompt_tokens + self.completion_tokens


def cost_usd(price: Price | None, usage: TokenUsage) -> Decimal | None:
    """Exact USD cost of a call at a fixed price, or None when the price is unknown (never a silent $0)."""
    if price is None:
        return None
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    write = price.cache_write if price.cache_write is not None else price.input
    total = (
        uncached * price.input
        + usage.cached_tokens * price.cached_input
        + usage.cache_write_tokens * write
        + usage.completion_tokens * price.output
    )
    return total / _PER_MILLION


def call_cost(
    catalog: Catalog, model: str, usage: TokenUsage, *, service_tier: str | None = None, at: datetime | None = None
) -> Decimal | None:
    """What a call cost: the catalog's price where it gives one, else genai-prices'; None when neither knows."""
    info = catalog.get(model)
    if info is not None and info.price is not None:
        return cost_usd(info.price, usage)
    names = (info.id, *info.aliases) if info is not None else (model,)
    for name in names:
        if _known(name):
            return _library_cost(name, usage, service_tier, at)
    return None


def worst_case_cost_usd(catalog: Catalog, model: str, prompt_tokens: int, max_output_tokens: int) -> Decimal | None:
    """Upper bound of a call's cost: no input read from the cache, all of it possibly written to it, every output token used."""
    plain = call_cost(catalog, model, TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=max_output_tokens))
    if plain is None:
        return None
    # From GPT-5.6 on, writing the prompt to the cache costs more than reading it plainly.
    written = call_cost(
        catalog,
        model,
        TokenUsage(prompt_tokens=prompt_tokens, cache_write_tokens=prompt_tokens, completion_tokens=max_output_tokens),
    )
    return max(plain, written or plain)


def price_sheet(catalog: Catalog, model: str) -> Price | None:
    """The model's standard-tier price per 1M tokens for people to read (below any long-prompt tier)."""
    info = catalog.get(model)
    if info is not None and info.price is not None:
        return info.price
    # Priced on a thousand tokens, well below the tiers that start at hundreds of thousands.
    one = 1000

    def per_million(usage: TokenUsage) -> Decimal | None:
        cost = call_cost(catalog, model, usage)
        return None if cost is None else _plain(cost * 1000)

    input_ = per_million(TokenUsage(prompt_tokens=one))
    if input_ is None:
        return None
    return Price(
        input=input_,
        cached_input=per_million(TokenUsage(prompt_tokens=one, cached_tokens=one)) or input_,
        output=per_million(TokenUsage(prompt_tokens=0, completion_tokens=one)) or Decimal(0),
        cache_write=per_million(TokenUsage(prompt_tokens=one, cache_write_tokens=one)),
    )


def price_source(catalog: Catalog, model: str) -> str | None:
    """Where the model's price comes from: the catalog file, genai-prices, or None (unknown)."""
    info = catalog.get(model)
    if info is not None and info.price is not None:
        return "the model catalog"
    names = (info.id, *info.aliases) if info is not None else (model,)
    return LIBRARY if any(_known(name) for name in names) else None


def _plain(amount: Decimal) -> Decimal:
    """The amount without trailing zeros and never in exponent form ("10", not "1E+1")."""
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount.normalize()


@lru_cache(maxsize=512)
def _known(name: str) -> bool:
    try:
        genai_prices.calc_price(
            genai_prices.Usage(input_tokens=0, output_tokens=0), model_ref=name, provider_id=PROVIDER
        )
    except LookupError:
        return False
    return True


def _library_cost(name: str, usage: TokenUsage, service_tier: str | None, at: datetime | None) -> Decimal:
    # genai-prices' price constraints are dates and times of day, never seconds: a price computed for
    # the minute holds for all of it, and a request's worst case is priced the same way many times
    # (once per model of the chain, on every request), so the minute's answers are kept.
    minute = (at or datetime.now(UTC)).replace(second=0, microsecond=0)
    return _library_cost_at(name, usage, service_tier, minute)


@lru_cache(maxsize=4096)
def _library_cost_at(name: str, usage: TokenUsage, service_tier: str | None, at: datetime) -> Decimal:
    priced = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.prompt_tokens,
            cache_read_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.completion_tokens,
        ),
        model_ref=name,
        provider_id=PROVIDER,
        genai_request_timestamp=at,
        price_context={"service_tier": service_tier} if service_tier else None,
    )
    return priced.total_price


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
