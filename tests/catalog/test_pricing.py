"""Costs from genai-prices and the catalog, pinned against numbers worked out by hand from the published prices."""

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from bot.catalog import (
    Catalog,
    Price,
    TokenUsage,
    call_cost,
    cost_usd,
    format_usd,
    price_sheet,
    price_source,
    worst_case_cost_usd,
)

CATALOG = Catalog.load()


@pytest.mark.parametrize(
    ("model", "usage", "expected"),
    [
        # gpt-6-luna: $0.10 in, $0.01 cached, $0.125 cache write, $0.50 out per 1M.
        # 700 × 0.10 + 200 × 0.01 + 100 × 0.125 + 500 × 0.50 = 334.5 micro-dollars; the 100 reasoning
        # tokens are part of the 500 output tokens and billed as output.
        (
            "gpt-6-luna",
            TokenUsage(1000, cached_tokens=200, cache_write_tokens=100, completion_tokens=500, reasoning_tokens=100),
            "0.0003345",
        ),
        # Above 272K prompt tokens gpt-6-luna costs 2× input and 1.5× output, for the whole call:
        # 300,000 × 0.20 + 1,000 × 0.75 = 60,750 micro-dollars.
        ("gpt-6-luna", TokenUsage(300_000, completion_tokens=1000), "0.06075"),
        # gpt-5.6-luna: $0.20 in, $1.20 out: 1,000 × 0.20 + 200 × 1.20 = 440 micro-dollars.
        ("gpt-5.6-luna", TokenUsage(1000, completion_tokens=200), "0.00044"),
        # gpt-5.4-nano: $0.20 in, $0.02 cached, $1.25 out: 976 × 0.20 + 1,024 × 0.02 + 300 × 1.25 = 590.68.
        ("gpt-5.4-nano", TokenUsage(2000, cached_tokens=1024, completion_tokens=300), "0.00059068"),
        # gpt-4.1-nano, retired but still priced: 800k × 0.10 + 200k × 0.025 + 500k × 0.40 per million.
        ("gpt-4.1-nano", TokenUsage(1_000_000, cached_tokens=200_000, completion_tokens=500_000), "0.285"),
        # An alias and a dated snapshot are priced as their model.
        ("nano", TokenUsage(1234, cached_tokens=1024, completion_tokens=56), "0.000069"),
    ],
)
def test_costs_match_the_published_prices(model, usage, expected):
    assert call_cost(CATALOG, model, usage) == Decimal(expected)


def test_flex_costs_half():
    usage = TokenUsage(1000, completion_tokens=500)
    # (1,000 × 0.10 + 500 × 0.50) / 2 = 175 micro-dollars.
    assert call_cost(CATALOG, "gpt-6-luna", usage, service_tier="flex") == Decimal("0.000175")
    assert call_cost(CATALOG, "gpt-6-luna", usage, service_tier="default") == Decimal("0.00035")


def test_prices_by_date_follow_the_call_s_time():
    # genai-prices keeps price history: the same call is priced as of when it was made.
    usage = TokenUsage(1000, completion_tokens=200)
    before, after = (datetime(2026, m, 1, tzinfo=timezone.utc) for m in (6, 8))
    assert call_cost(CATALOG, "gpt-5.6-luna", usage, at=after) == Decimal("0.00044")
    assert call_cost(CATALOG, "gpt-5.6-luna", usage, at=before) != call_cost(CATALOG, "gpt-5.6-luna", usage, at=after)


def test_a_model_nobody_prices_costs_unknown_never_zero():
    assert call_cost(CATALOG, "local-llm", TokenUsage(10, completion_tokens=10)) is None
    assert worst_case_cost_usd(CATALOG, "local-llm", 10, 10) is None
    assert price_sheet(CATALOG, "local-llm") is None and price_source(CATALOG, "local-llm") is None
    assert format_usd(None) == "price unknown"


def test_an_operator_price_overrides_the_library(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "id": "gpt-6-luna",
                        "price": {"input": "1", "cached_input": "0.5", "output": "2", "cache_write": "1.5"},
                    },
                    {"id": "local-llm", "price": {"input": "0", "cached_input": "0", "output": "0.01"}},
                ]
            }
        )
    )
    catalog = Catalog.load(path)

    # 700 × 1 + 200 × 0.5 + 100 × 1.5 + 500 × 2 = 1,950 micro-dollars.
    usage = TokenUsage(1000, cached_tokens=200, cache_write_tokens=100, completion_tokens=500)
    assert call_cost(catalog, "gpt-6-luna", usage) == Decimal("0.00195")
    assert call_cost(catalog, "local-llm", TokenUsage(10, completion_tokens=100)) == Decimal("0.000001")
    assert price_source(catalog, "gpt-6-luna") == "the model catalog"


def test_the_worst_case_assumes_nothing_cached_and_every_output_token_used():
    # gpt-6-luna: writing the whole prompt to the cache ($0.125) costs more than plain input ($0.10):
    # 10,000 × 0.125 + 2,000 × 0.50 = 2,250 micro-dollars.
    assert worst_case_cost_usd(CATALOG, "gpt-6-luna", 10_000, 2_000) == Decimal("0.00225")
    # gpt-4o: 10,000 × 2.50 + 16,384 × 10.00 = 188,840 micro-dollars.
    assert worst_case_cost_usd(CATALOG, "gpt-4o", 10_000, 16_384) == Decimal("0.18884")


def test_the_price_sheet_reads_per_million():
    assert price_sheet(CATALOG, "gpt-6-luna") == Price(
        Decimal("0.1"), Decimal("0.01"), Decimal("0.5"), cache_write=Decimal("0.125")
    )
    assert price_source(CATALOG, "gpt-6-luna").startswith("genai-prices ")


def test_cost_at_a_fixed_price_is_exact():
    gpt4o = Price(Decimal("2.50"), Decimal("1.25"), Decimal("10.00"))
    assert cost_usd(gpt4o, TokenUsage(1_000_000, cached_tokens=400_000, completion_tokens=250_000)) == Decimal("4.5")
    assert cost_usd(None, TokenUsage(10, 0, 10)) is None


def test_total_tokens():
    assert TokenUsage(100, 40, 7).total_tokens == 107


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt_tokens": -1},
        {"prompt_tokens": 10, "cached_tokens": 11},
        {"prompt_tokens": 10, "completion_tokens": -5},
        {"prompt_tokens": 10, "cached_tokens": 6, "cache_write_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": 3, "reasoning_tokens": 4},
    ],
)
def test_invalid_usage_rejected(kwargs):
    with pytest.raises(ValueError):
        TokenUsage(**kwargs)


@pytest.mark.parametrize(
    "amount, text",
    [
        ("0", "$0.00"),
        ("0.285", "$0.285"),
        ("0.0123", "$0.0123"),
        ("0.000042", "$0.000042"),
        ("0.0000690", "$0.000069"),
        ("0.1", "$0.10"),
        ("0.123456", "$0.123"),
        ("1.5", "$1.50"),
        ("12.345", "$12.35"),
        ("2000", "$2000.00"),
        ("-0.25", "-$0.25"),
    ],
)
def test_format_usd(amount, text):
    assert format_usd(Decimal(amount)) == text


def _constraints():
    import genai_prices.data

    for provider in genai_prices.data.providers:
        for model in provider.models:
            prices = model.prices if isinstance(model.prices, list) else [model.prices]
            for price in prices:
                if (constraint := getattr(price, "constraint", None)) is not None:
                    yield provider.id, model.id, constraint


def test_library_prices_never_change_within_a_minute():
    """bot/catalog/pricing.py keeps a minute's prices: that holds while every price constraint is a date or a time of day in whole minutes."""
    import typing

    from genai_prices import types

    hints = typing.get_type_hints(types.ConditionalPrice)["constraint"]
    assert set(typing.get_args(hints)) == {types.StartDateConstraint, types.TimeOfDateConstraint, type(None)}
    seen = 0
    for provider, model, constraint in _constraints():
        seen += 1
        if isinstance(constraint, types.TimeOfDateConstraint):
            for moment in (constraint.start_time, constraint.end_time):
                assert (moment.second, moment.microsecond) == (0, 0), (provider, model, constraint)
        else:
            assert isinstance(constraint, types.StartDateConstraint), (provider, model, constraint)
            assert type(constraint.start_date).__name__ == "date", (provider, model, constraint)
    assert seen, "the snapshot has dated prices (the date-following test above relies on them)"
