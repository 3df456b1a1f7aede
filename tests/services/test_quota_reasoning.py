"""The worst case a quota holds counts a reasoning model's thinking, priced by genai-prices."""

from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.catalog import Catalog
from bot.ports.completion import CompletionRequest
from bot.services.quota import QuotaService, prompt_token_bound

REQUEST = CompletionRequest(messages=({"role": "user", "content": "hello"},), max_tokens=100)


def levels(*models: str):
    service = QuotaService(None, Catalog.load(), models, tz=ZoneInfo("UTC"))
    return service.levels(REQUEST, models)


def test_a_reasoning_model_s_allowance_is_part_of_the_worst_case():
    prompt = prompt_token_bound(REQUEST)
    [classic] = levels("gpt-4.1-nano")
    [reasoning] = levels("gpt-5-nano")
    assert classic.tokens == prompt + 100
    # gpt-5-nano thinks at "minimal" effort out of max_completion_tokens: 512 tokens are added for it.
    assert reasoning.tokens == prompt + 100 + 512
    # Priced by genai-prices at $0.05 in / $0.40 out per 1M, whole prompt possibly a cache write.
    assert reasoning.usd == (Decimal(prompt) * Decimal("0.05") + Decimal(612) * Decimal("0.40")) / 1_000_000


def test_a_model_nobody_prices_fits_no_usd_limit():
    [level] = levels("local-llm")
    assert level.usd is None
