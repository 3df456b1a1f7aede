"""Slack throttling (429 with Retry-After) and a slow Web API: replies still arrive, acks stay immediate."""

from __future__ import annotations

import logging
import time

from bot.slack.clients import MAX_RETRY_AFTER_S
from tests.bolt_tasks import settle_listeners
from tests.fakes.slack_signing import app_mention_event, block_actions, event_callback
from tests.slack.button_values import channel_members, stored_button
from tests.slack.conftest import OAUTH_ENV, Workspace, answer_oauth_as, finish_install, start_install

RATELIMITED = {"Retry-After": "1"}


async def mention(frugal, text: str, **event_fields) -> tuple[dict, float]:
    """Post a signed app_mention; the event and how long the ack took."""
    team_id = event_fields.pop("team_id", "T0001")
    event = app_mention_event(text, **event_fields)
    body, content_type = event_callback(event, team_id=team_id)
    started = time.monotonic()
    response = await frugal.post(body, content_type)
    assert response.status == 200
    return event, time.monotonic() - started


async def test_a_throttled_thread_reply_is_sent_after_retry_after(frugal, fake_slack):
    fake_slack.fail("chat.postMessage", 429, RATELIMITED)

    event, _ = await mention(frugal, "<@UBOT> rewrite can u send it pls", channel="C3")

    throttled, delivered = await fake_slack.await_calls("chat.postMessage", count=2, timeout=10)
    assert delivered.at - throttled.at >= 1.0
    assert (delivered.params["channel"], delivered.params["thread_ts"]) == ("C3", event["ts"])
    assert delivered.params["text"] == "[gpt-4.1-nano] can u send it pls"
    await settle_listeners()  # the listener has returned: no third post can come after this
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


async def test_post_to_channel_waits_out_two_throttles(frugal, fake_slack):
    fake_slack.fail("chat.postMessage", 429, RATELIMITED, times=2)
    channel_members(fake_slack, "U0001")
    value = await stored_button(frugal, "Polished text.", channel_id="C7")
    body, content_type = block_actions(
        "rewrite_post", value, channel_id="C7", response_url=fake_slack.response_url("p1")
    )

    response = await frugal.post(body, content_type)

    assert response.status == 200
    calls = await fake_slack.await_calls("chat.postMessage", count=3, timeout=15)
    assert [c.params["text"] for c in calls] == ["Polished text."] * 3
    assert calls[2].at - calls[0].at >= 2.0
    [cleanup] = await fake_slack.await_calls("response_url:p1", timeout=5)
    assert cleanup.params["delete_original"] is True


async def test_a_throttle_longer_than_the_bound_is_not_waited_for(frugal, fake_slack, caplog):
    fake_slack.fail("chat.postMessage", 429, {"Retry-After": str(MAX_RETRY_AFTER_S + 1)})
    channel_members(fake_slack, "U0001")
    value = await stored_button(frugal, "Polished text.")
    body, content_type = block_actions("rewrite_post", value, response_url=fake_slack.response_url("p2"))

    with caplog.at_level(logging.ERROR, logger="bot.slack.listeners.rewrite"):
        await frugal.post(body, content_type)
        # The button's user is told through the response URL that it did not work.
        [told] = await fake_slack.await_calls("response_url:p2", timeout=5)

    assert "something went wrong" in told.params["text"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert "chat.postMessage refused a rewrite post (ratelimited)" in caplog.text


async def test_a_throttled_response_url_is_posted_again(frugal, fake_slack):
    fake_slack.fail("response_url:rl", 429, RATELIMITED)

    response, _ = await frugal.command("/rewrite", "formal: hi", response_url=fake_slack.response_url("rl"))

    assert response.status == 200
    throttled, delivered = await fake_slack.await_calls("response_url:rl", count=2, timeout=10)
    assert delivered.at - throttled.at >= 1.0
    assert delivered.params == throttled.params
    assert delivered.params["text"] == "[gpt-4.1-nano] hi"


async def test_oauth_mode_per_request_clients_keep_the_retry_handlers(
    start_frugal, migrated_url, fake_slack, fake_openai
):
    frugal = await start_frugal(migrated_url, **OAUTH_ENV)
    workspace = Workspace(team_id="T5", token="xoxb-t5-token", bot_user_id="UBOTT5")
    answer_oauth_as(fake_slack, workspace)
    result = await finish_install(frugal, state=await start_install(frugal), code="code-T5")
    assert result.status == 200, result.body
    fake_slack.strict_tokens = True
    fake_slack.fail("chat.postMessage", 429, RATELIMITED)

    await mention(frugal, "<@UBOTT5> rewrite from the other workspace", team_id="T5")

    throttled, delivered = await fake_slack.await_calls("chat.postMessage", count=2, timeout=10)
    assert throttled.token == delivered.token == workspace.token
    assert delivered.params["text"] == "[gpt-4.1-nano] from the other workspace"


async def test_slow_slack_api_acks_at_once_and_still_answers(frugal, fake_slack):
    fake_slack.method_latency["chat.postMessage"] = 2.0

    event, acked_after = await mention(frugal, "<@UBOT> rewrite slow slack", channel="C8")
    channel_members(fake_slack, "U0001")
    value = await stored_button(frugal, "Posted slowly.")
    body, content_type = block_actions("rewrite_post", value, response_url=fake_slack.response_url("p3"))
    started = time.monotonic()
    button = await frugal.post(body, content_type)
    button_acked_after = time.monotonic() - started

    # Loose bounds on purpose (the machine is shared): well inside Slack's 3 seconds, not a benchmark.
    assert acked_after < 2.0 and button_acked_after < 2.0
    assert button.status == 200
    posts = await fake_slack.await_calls("chat.postMessage", count=2, timeout=10)
    by_text = {p.params["text"]: p for p in posts}
    assert by_text["[gpt-4.1-nano] slow slack"].params["thread_ts"] == event["ts"]
    assert "Posted slowly." in by_text
    await fake_slack.await_calls("response_url:p3", timeout=10)
