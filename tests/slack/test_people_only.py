"""Only people are answered: a mention a bot made (another app's, a workflow's, Frugal's own) gets no answer, no charge."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.bolt_tasks import settle_listeners
from tests.fakes.slack_signing import app_mention_event, event_callback

# Fake Slack's auth.test answers with this bot user for the test token: Frugal itself.
FRUGAL_USER = "UBOT"


def _bot_event(**fields: Any) -> dict[str, Any]:
    event = app_mention_event("<@UBOT> rewrite formal: can u send the report pls", channel="CBOTS")
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


BOT_MADE = {
    # Modern bot messages carry both a user (the bot's user) and a bot_id.
    "another app's bot (user and bot_id)": _bot_event(user="U0OTHERBOT", bot_id="B0OTHER"),
    "a bot_id alone": _bot_event(user=None, bot_id="B0OTHER"),
    "a bot_message (workflow, legacy integration)": _bot_event(user=None, subtype="bot_message", bot_id="B0WF"),
    "a bot_message without bot_id": _bot_event(user="U0WF", subtype="bot_message"),
    "a bot profile": _bot_event(user="U0OTHERBOT", bot_profile={"id": "B0OTHER", "name": "otherbot"}),
    "Frugal itself": _bot_event(user=FRUGAL_USER),
}


async def _count(frugal, table: str) -> int:
    async with frugal.container.engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()


@pytest.mark.parametrize("event", BOT_MADE.values(), ids=BOT_MADE.keys())
async def test_a_mention_made_by_a_bot_gets_no_answer_and_no_charge(frugal, fake_slack, fake_openai, event):
    body, content_type = event_callback(event)

    response = await frugal.post(body, content_type)
    await settle_listeners()

    assert response.status == 200  # acknowledged, so Slack does not retry it
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []
    assert fake_openai.requests == []
    assert await _count(frugal, "usage_ledger") == 0
    assert await _count(frugal, "slack_deliveries") == 0  # not even claimed


async def test_a_persons_mention_in_the_same_shape_is_answered_and_charged(frugal, fake_slack, fake_openai):
    # The control: the same event from a person (no bot_id, not Frugal's user) gets its rewrite.
    body, content_type = event_callback(_bot_event(user="U0PERSON"))

    response = await frugal.post(body, content_type)
    [reply] = await fake_slack.await_calls("chat.postMessage", predicate=lambda c: c.params.get("channel") == "CBOTS")
    await settle_listeners()

    assert response.status == 200
    assert reply.params["thread_ts"]
    assert len(fake_openai.requests) == 1
    assert await _count(frugal, "usage_ledger") == 1
