from decimal import Decimal

import pytest

from bot.catalog import Catalog, Price, TokenUsage, cost_usd, format_usd, worst_case_cost_usd

NANO = Catalog.load().get("gpt-4.1-nano").price


def test_cost_with_cached_tokens_is_exact():
    usage = TokenUsage(prompt_tokens=1_000_000, cached_tokens=200_000, completion_tokens=500_000)
    # 800k × 0.10 + 200k × 0.025 + 500k × 0.40, per million
    assert cost_usd(NANO, usage) == Decimal("0.285")


def test_cost_of_a_small_call_is_exact():
    usage = TokenUsage(prompt_tokens=1234, cached_tokens=1024, completion_tokens=56)
    # 210 × 0.10 + 1024 × 0.025 + 56 × 0.40 = 69 micro-dollars
    assert cost_usd(NANO, usage) == Decimal("0.000069")


def test_unknown_price_is_none_not_zero():
    assert cost_usd(None, TokenUsage(10, 0, 10)) is None
    assert worst_case_cost_usd(None, 10, 10) is None
    assert format_usd(None) == "price unknown"


def test_worst_case_treats_all_input_as_uncached():
    gpt4o = Price(Decimal("2.50"), Decimal("1.25"), Decimal("10.00"))
    assert worst_case_cost_usd(gpt4o, 10_000, 16_384) == Decimal("0.18884")


def test_total_tokens():
    assert TokenUsage(100, 40, 7).total_tokens == 107


@pytest.mark.parametrize("args", [(-1, 0, 0), (10, 11, 0), (10, 0, -5)])
def test_invalid_usage_rejected(args):
    with pytest.raises(ValueError):
        TokenUsage(*args)


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
