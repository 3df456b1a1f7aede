"""/frugal models end to end: the chain, each model's health, listing, shutdown date and price."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.fakes.openai_server import Fail


async def _models(frugal, fake_slack) -> tuple[str, str]:
    response, name = await frugal.command("/frugal", "models")
    assert response.status == 200
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["response_type"] == "ephemeral"
    return answer.params["text"], json.dumps(answer.params["blocks"], ensure_ascii=False)


async def test_the_chain_with_health_listing_shutdown_and_price(frugal, fake_slack):
    text, blocks = await _models(frugal, fake_slack)

    assert text == "Model chain: gpt-4.1-nano → gpt-4o-mini"
    assert "*1. gpt-4.1-nano* (primary)\\n:large_green_circle: healthy\\noffered by the endpoint" in blocks
    assert "no shutdown date announced · $0.10 in / $0.025 cached / $0.40 out per 1M tokens" in blocks
    assert "*2. gpt-4o-mini* (fallback 1)" in blocks
    assert ":warning:" not in blocks


async def test_a_model_found_missing_is_shown_unavailable_with_the_reason(frugal, fake_openai, fake_slack):
    fake_openai.set_behaviour("gpt-4.1-nano", Fail.model_not_found("gpt-4.1-nano"))
    _, name = await frugal.command("/rewrite", "hello there")
    await fake_slack.await_calls(f"response_url:{name}")

    _, blocks = await _models(frugal, fake_slack)

    assert ":red_circle: unavailable until " in blocks
    assert ": it is unavailable (retired, or no access)" in blocks
    assert ":warning: gpt-4.1-nano is unavailable (retired, or no access); Frugal skips it until" in blocks


async def test_a_shutdown_within_30_days_is_warned(frugal, fake_openai, fake_slack):
    soon = (datetime.now(timezone.utc).date() + timedelta(days=5)).isoformat()
    fake_openai.models["gpt-4o-mini"] = soon

    _, blocks = await _models(frugal, fake_slack)

    assert f"shuts down {soon} (5 days)" in blocks
    assert f":warning: gpt-4o-mini shuts down on {soon} (in 5 days); replace it in FRUGAL_MODELS before then." in blocks


async def test_an_endpoint_without_v1_models_is_noted(frugal, fake_openai, fake_slack):
    fake_openai.models_endpoint_enabled = False

    _, blocks = await _models(frugal, fake_slack)

    assert "listing unknown" in blocks
    assert "Note: the endpoint has no usable /v1/models (HTTP 404); shutdown dates come from the model catalog only." in blocks


async def test_a_model_without_a_price_says_price_unknown(start_frugal, migrated_url, fake_openai, fake_slack):
    fake_openai.models["local-llm"] = None
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="local-llm,gpt-4.1-nano")

    _, blocks = await _models(frugal, fake_slack)

    assert "*1. local-llm* (primary)" in blocks and "price unknown" in blocks
    assert "$0" not in blocks.split("*2. gpt-4.1-nano*")[0]
