"""/frugal models end to end: the chain, each model's health, listing, shutdown date and price."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.catalog.pricing import LIBRARY
from bot.config import DEFAULT_MODELS
from bot.slack.listeners.models import RETRY_USAGE
from tests.fakes.openai_server import Fail

TODAY = date(2026, 12, 3)  # OpenAI as the fake serves it on this day: gpt-4.1-nano is shut down
CHAIN = DEFAULT_MODELS.split(",")
REFUSAL = "Only Frugal admins and workspace admins can do that."


@pytest.fixture
async def frugal(start_frugal, migrated_url):
    """Frugal on the default chain (FRUGAL_MODELS empty), which these tests show."""
    return await start_frugal(migrated_url, FRUGAL_MODELS="")


async def _models(frugal, fake_slack) -> tuple[str, str]:
    response, name = await frugal.command("/frugal", "models")
    assert response.status == 200
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["response_type"] == "ephemeral"
    return answer.params["text"], json.dumps(answer.params["blocks"], ensure_ascii=False)


async def test_the_chain_with_health_listing_shutdown_and_price(frugal, fake_openai, fake_slack):
    # A gateway that still serves gpt-4.1-nano, listed without a date, beside its successors.
    fake_openai.models = dict.fromkeys(CHAIN)

    text, blocks = await _models(frugal, fake_slack)

    assert text == "Model chain: gpt-4.1-nano → gpt-6-luna → gpt-5.6-luna → gpt-5.4-nano"
    assert "*1. gpt-4.1-nano* (primary)\\n:large_green_circle: healthy\\noffered by the endpoint" in blocks
    assert f"no shutdown date announced · $0.10 in / $0.025 cached / $0.40 out per 1M tokens ({LIBRARY})" in blocks
    assert "*2. gpt-6-luna* (fallback 1)" in blocks
    assert f"$0.10 in / $0.01 cached / $0.50 out per 1M tokens ({LIBRARY})" in blocks
    assert ":warning:" not in blocks and "retired" not in blocks
    # The full source of the energy estimate, and the models without one.
    assert 'Energy figures are estimates: Jegham et al. 2025, \\"How Hungry is AI?\\", arXiv 2505.09598' in blocks
    assert "No energy estimate for gpt-6-luna, gpt-5.6-luna, gpt-5.4-nano: no published coefficients." in blocks


async def test_prices_are_written_as_dollars_and_cents(frugal, fake_openai, fake_slack):
    fake_openai.models = dict.fromkeys(CHAIN)

    _, blocks = await _models(frugal, fake_slack)

    # As `frugal check` writes them (format_usd), and as this reply did while the catalog held prices.
    assert "$0.10 in / $0.025 cached / $0.40 out per 1M tokens" in blocks


async def test_a_retired_model_is_shown_with_its_replacement(frugal, fake_openai, fake_slack):
    fake_openai.serve_like_openai(TODAY)

    text, blocks = await _models(frugal, fake_slack)

    assert text == "Model chain: gpt-4.1-nano → gpt-6-luna → gpt-5.6-luna → gpt-5.4-nano"
    nano, luna = blocks.split("*1. gpt-4.1-nano* (primary)")[1].split("*2. gpt-6-luna*")[:2]
    assert (
        ":black_circle: retired: it was shut down on 2026-10-23; skipped without a call. OpenAI's replacement: *gpt-5.6-luna*"
    ) in nano
    assert "*not offered by the endpoint* · *shut down on 2026-10-23*" in nano
    assert "healthy" not in nano
    assert ":large_green_circle: healthy\\noffered by the endpoint · no shutdown date announced" in luna
    assert (
        ":warning: gpt-4.1-nano was shut down on 2026-10-23; Frugal skips it without calling it. "
        "OpenAI's replacement: gpt-5.6-luna. Fix: set FRUGAL_MODELS="
    ) in blocks


async def test_a_model_the_endpoint_does_not_list_is_shown_retired(start_frugal, migrated_url, fake_openai, fake_slack):
    fake_openai.serve_like_gateway("gpt-6-luna")  # gpt-4o is not listed here, and has no past date
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="gpt-6-luna,gpt-4o")

    _, blocks = await _models(frugal, fake_slack)

    assert (
        ":black_circle: retired: it is not offered by the endpoint (retired, or this API key has no access); "
        "skipped without a call. OpenAI's replacement: *gpt-6-luna*"
    ) in blocks
    assert "shuts down 2027-01-14" in blocks


async def test_a_model_found_missing_is_shown_unavailable_with_the_reason(frugal, fake_openai, fake_slack):
    # Listed, so not retired; the 404 it answers marks it unavailable.
    fake_openai.set_behaviour("gpt-4.1-nano", Fail.model_not_found("gpt-4.1-nano"))
    _, name = await frugal.command("/rewrite", "hello there")
    await fake_slack.await_calls(f"response_url:{name}")

    _, blocks = await _models(frugal, fake_slack)

    assert ":red_circle: unavailable until " in blocks
    assert ": it is unavailable (retired, or no access)" in blocks
    assert ":warning: gpt-4.1-nano is unavailable (retired, or no access); Frugal skips it until" in blocks


async def test_a_shutdown_within_30_days_is_warned(start_frugal, migrated_url, fake_openai, fake_slack):
    soon = (datetime.now(timezone.utc).date() + timedelta(days=5)).isoformat()
    fake_openai.serve_like_gateway("gpt-6-luna")
    fake_openai.models["gpt-4o-mini"] = soon  # earlier than OpenAI's 2027-01-14: the endpoint's date counts
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="gpt-6-luna,gpt-4o-mini")

    _, blocks = await _models(frugal, fake_slack)

    assert f"shuts down {soon} (5 days)" in blocks
    assert (
        f":warning: gpt-4o-mini shuts down on {soon} (in 5 days); replace it in FRUGAL_MODELS "
        "(OpenAI's replacement: gpt-6-luna) before then."
    ) in blocks
    assert "retired" not in blocks


async def test_an_endpoint_without_v1_models_is_noted(frugal, fake_openai, fake_slack):
    fake_openai.models_endpoint_enabled = False

    _, blocks = await _models(frugal, fake_slack)

    assert "listing unknown" in blocks
    assert (
        "Note: the endpoint has no usable /v1/models (HTTP 404); shutdown dates come from the model catalog only."
        in blocks
    )


async def test_a_model_without_a_price_says_price_unknown(start_frugal, migrated_url, fake_openai, fake_slack):
    fake_openai.models["local-llm"] = None
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="local-llm,gpt-4.1-nano")

    _, blocks = await _models(frugal, fake_slack)

    assert "*1. local-llm* (primary)" in blocks and "price unknown" in blocks
    assert "$0" not in blocks.split("*2. gpt-4.1-nano*")[0]


# --- /frugal models retry -----------------------------------------------------------------------


@pytest.fixture
async def today(start_frugal, migrated_url, fake_openai):
    """Frugal on today's OpenAI with a chain of current models, UADMIN an admin."""
    fake_openai.serve_like_openai(TODAY)
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN", FRUGAL_MODELS="gpt-6-luna,gpt-5.4-nano")
    await frugal.container.lifecycle.startup()
    return frugal


async def _rewrite(frugal, fake_slack, text: str) -> str:
    _, name = await frugal.command("/rewrite", text)
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    return answer.params["text"]


async def _retry(frugal, fake_slack, model: str, user_id: str = "UADMIN") -> str:
    response, name = await frugal.command("/frugal", f"models retry {model}", user_id=user_id)
    assert response.status == 200
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["response_type"] == "ephemeral"
    return answer.params["text"]


async def test_an_admin_clears_a_mark_and_the_next_request_calls_the_model_again(today, fake_openai, fake_slack):
    fake_openai.script("gpt-6-luna", Fail.model_not_found("gpt-6-luna"))
    assert (await _rewrite(today, fake_slack, "first")).startswith("[gpt-5.4-nano]")
    assert (await _rewrite(today, fake_slack, "second")).startswith("[gpt-5.4-nano]")
    assert len(fake_openai.calls_for("gpt-6-luna")) == 1  # marked: skipped without a call

    reply = await _retry(today, fake_slack, "6-luna")

    assert reply == "gpt-6-luna's mark is cleared: the next request tries it again."
    assert (await _rewrite(today, fake_slack, "third")).startswith("[gpt-6-luna]")
    assert len(fake_openai.calls_for("gpt-6-luna")) == 2
    assert await _retry(today, fake_slack, "gpt-6-luna") == "gpt-6-luna was not marked unavailable; nothing to clear."


async def test_someone_who_is_not_an_admin_may_not_clear_a_mark(today, fake_openai, fake_slack):
    fake_openai.script("gpt-6-luna", Fail.model_not_found("gpt-6-luna"))
    await _rewrite(today, fake_slack, "first")

    response, name = await today.command("/frugal", "models retry gpt-6-luna", user_id="UPLAIN")

    assert (await response.json())["text"] == REFUSAL
    assert fake_slack.calls_to(f"response_url:{name}") == []
    # The mark stands: the next request still skips the model.
    assert (await _rewrite(today, fake_slack, "second")).startswith("[gpt-5.4-nano]")
    assert len(fake_openai.calls_for("gpt-6-luna")) == 1


async def test_retry_of_a_retired_model_says_there_is_no_mark_to_clear(
    start_frugal, migrated_url, fake_openai, fake_slack
):
    fake_openai.serve_like_openai(TODAY)
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN")  # the default chain

    reply = await _retry(frugal, fake_slack, "gpt-4.1-nano")

    assert reply == (
        "gpt-4.1-nano was shut down on 2026-10-23: Frugal skips it until the endpoint lists it again "
        "(checked daily); there is no mark to clear."
    )
    assert fake_openai.calls_for("gpt-4.1-nano") == []


async def test_retry_of_a_model_outside_the_chain_says_so(today, fake_slack):
    reply = await _retry(today, fake_slack, "gpt-4o")

    assert reply == "'gpt-4o' is not in the model chain (gpt-6-luna, gpt-5.4-nano)."


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        ("models foo", f"Unknown: `/frugal models foo`. {RETRY_USAGE}"),
        ("models retry", RETRY_USAGE),
        ("models retry gpt-6-luna gpt-5.4-nano", RETRY_USAGE),
    ],
)
async def test_a_wrong_models_subcommand_gets_the_usage_line(today, fake_slack, args, reply):
    response, name = await today.command("/frugal", args, user_id="UADMIN")

    assert (await response.json())["text"] == reply
    assert fake_slack.calls_to(f"response_url:{name}") == []
