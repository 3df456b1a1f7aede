"""`downgrade P%` end to end: past that share of a limit, requests go to the cheapest model of the chain, and say so."""

from __future__ import annotations

import json

import pytest

from tests.bolt_tasks import settle_listeners

ADMIN, ANA, CHANNEL = "UADMIN1", "U0ANA1", "C0001"
CHAIN = "gpt-4.1-mini,gpt-4.1-nano"  # the first is dearer: a downgrade is visible in which model answered


@pytest.fixture
async def frugal(start_frugal, migrated_url, fake_slack):
    """Frugal whose chain starts with the dearer model."""
    fake_slack.users[ADMIN] = {"is_admin": True}
    return await start_frugal(migrated_url, FRUGAL_MODELS=CHAIN)


async def _quota(frugal, text: str) -> str:
    response, _ = await frugal.command("/frugal", f"quota {text}", user_id=ADMIN, channel_id=CHANNEL)
    body = await response.json()
    assert body["text"].startswith("Done:"), body["text"]
    return body["text"]


async def _rewrite(frugal, fake_slack) -> str:
    response, name = await frugal.command("/rewrite", "make this nicer", user_id=ANA, channel_id=CHANNEL)
    assert response.status == 200
    [reply] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
    await settle_listeners()
    return json.dumps(reply.params, ensure_ascii=False)


async def test_past_the_share_the_cheapest_model_answers_and_the_reply_says_so(frugal, fake_slack, fake_openai):
    await _quota(frugal, "set here 4 requests/day downgrade 50% alert off")

    before = [await _rewrite(frugal, fake_slack) for _ in range(2)]
    after = [await _rewrite(frugal, fake_slack) for _ in range(2)]
    refused = await _rewrite(frugal, fake_slack)

    assert [r.json["model"] for r in fake_openai.requests] == ["gpt-4.1-mini"] * 2 + ["gpt-4.1-nano"] * 2
    assert not any("cheapest model" in text for text in before)
    for text in after:
        assert (
            "· this channel's limit of 4 requests per day is past 50 %, so only the cheapest model (gpt-4.1-nano) was used"
            in text
        )
        assert "not allowed" not in text  # one line says it
    assert ":no_entry:" in refused  # at the limit it still refuses
