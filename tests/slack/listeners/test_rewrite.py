"""/rewrite end to end: signed HTTP in, fake OpenAI called, answer on the fake Slack."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.infra.db.tables import LedgerRow
from bot.slack.app import UNEXPECTED_ERROR
from bot.slack.grammar import REWRITE_USAGE
from tests.fakes.openai_server import Hang, Reply
from tests.fakes.slack_signing import block_actions


async def test_rewrite_calls_nano_and_answers_ephemerally(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply("Could you send the report, please?", prompt_tokens=60, completion_tokens=9))

    response, name = await frugal.command("/rewrite", "formal: can u send the report pls")

    assert response.status == 200
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["text"] == "Could you send the report, please?"
    action_ids = [e["action_id"] for b in answer.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "rewrite_post" in action_ids and "rewrite_style_clear" in action_ids
    [call] = fake_openai.requests
    assert call.json["model"] == "gpt-4.1-nano"
    assert "formal" in call.json["messages"][0]["content"]
    assert call.json["messages"][1]["content"] == "can u send the report pls"


async def test_rewrite_writes_one_ledger_row_without_text(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply("Hello there.", prompt_tokens=1000, completion_tokens=500, cached_tokens=200))

    _, name = await frugal.command("/rewrite", "hello", user_id="U42", channel_id="C42")
    await fake_slack.await_calls(f"response_url:{name}")

    async with frugal.container.engine.connect() as conn:
        rows = (await conn.execute(select(LedgerRow))).all()
    [row] = rows
    assert (row.team_id, row.channel_id, row.user_id, row.task) == ("T0001", "C42", "U42", "rewrite")
    assert (row.requested_model, row.served_model, row.outcome) == ("gpt-4.1-nano", "gpt-4.1-nano", "ok")
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens) == (1000, 200, 500)
    # 800 × $0.10 + 200 × $0.025 + 500 × $0.40 per million tokens
    assert str(row.cost_usd.normalize()) == "0.000285"
    assert row.request_key.startswith("command:")
    assert "hello" not in " ".join(str(v) for v in row._mapping.values())


async def test_slack_markup_survives_the_rewrite(frugal, fake_openai, fake_slack):
    _, name = await frugal.command("/rewrite", "ping <@U123> about <#C9|ops> see <https://x.io|docs> `make test` :tada:")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    sent = fake_openai.requests[0].json["messages"][1]["content"]
    assert "<@U123>" not in sent and "⟦1⟧" in sent
    # The fake echoes its input behind a "[model] " prefix, so every piece must come back intact.
    assert answer.params["text"] == "[gpt-4.1-nano] ping <@U123> about <#C9|ops> see <https://x.io|docs> `make test` :tada:"


async def test_empty_text_gets_usage_and_no_model_call(frugal, fake_openai, fake_slack):
    response, name = await frugal.command("/rewrite", "   ")

    assert response.status == 200
    assert REWRITE_USAGE in (await response.json())["text"]
    await asyncio.sleep(0.2)
    assert fake_openai.requests == []
    assert fake_slack.calls_to(f"response_url:{name}") == []


async def test_oversized_text_is_refused_without_model_call(frugal, fake_openai):
    response, _ = await frugal.command("/rewrite", "x" * 2001)

    text = (await response.json())["text"]
    assert "2,001 characters" in text and "limit is 2,000" in text
    await asyncio.sleep(0.2)
    assert fake_openai.requests == []


async def test_slow_model_is_acked_at_once_and_answered_later(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Hang(3.5))

    started = time.monotonic()
    response, name = await frugal.command("/rewrite", "slow one")
    acked_after = time.monotonic() - started

    assert response.status == 200
    assert acked_after < 1.0
    [answer] = await fake_slack.await_calls(f"response_url:{name}", timeout=10)
    assert time.monotonic() - started >= 3.5
    assert answer.params["text"] == "[gpt-4.1-nano] slow one"


async def test_bad_and_stale_signatures_get_401_and_no_model_call(frugal, fake_openai):
    from tests.fakes.slack_signing import slash_command

    body, content_type = slash_command("/rewrite", "hello")
    bad = await frugal.post(body, content_type, secret="not-the-secret")
    stale = await frugal.post(body, content_type, timestamp=int(time.time()) - 600)

    assert (bad.status, stale.status) == (401, 401)
    await asyncio.sleep(0.2)
    assert fake_openai.requests == []


async def test_post_to_channel_posts_the_rewrite_saying_who_asked(frugal, fake_slack):
    body, content_type = block_actions(
        "rewrite_post", "Polished text.", user_id="U7", channel_id="C7", response_url=fake_slack.response_url("p1")
    )
    response = await frugal.post(body, content_type)

    assert response.status == 200
    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["channel"] == "C7"
    assert post.params["text"] == "Polished text."
    assert "<@U7>" in str(post.params["blocks"])
    [cleanup] = await fake_slack.await_calls("response_url:p1")
    assert cleanup.params["delete_original"] is True


async def test_try_another_style_rewrites_the_original(frugal, fake_openai, fake_slack):
    body, content_type = block_actions(
        "rewrite_style_friendly", "the original", response_url=fake_slack.response_url("s1")
    )
    await frugal.post(body, content_type)

    [answer] = await fake_slack.await_calls("response_url:s1")
    assert "warm, friendly" in fake_openai.requests[0].json["messages"][0]["content"]
    assert fake_openai.requests[0].json["messages"][1]["content"] == "the original"
    assert answer.params["replace_original"] is True


async def test_post_to_channel_where_frugal_is_not_a_member_posts_through_the_response_url(frugal, fake_slack):
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "channel_not_found"})
    body, content_type = block_actions(
        "rewrite_post", "Polished text.", user_id="U7", channel_id="D7", response_url=fake_slack.response_url("p3")
    )

    assert (await frugal.post(body, content_type)).status == 200

    posted, cleanup = await fake_slack.await_calls("response_url:p3", count=2)
    assert (posted.params["response_type"], posted.params["text"]) == ("in_channel", "Polished text.")
    assert posted.params["replace_original"] is False and "<@U7>" in str(posted.params["blocks"])
    assert cleanup.params["delete_original"] is True


async def test_post_to_channel_with_another_slack_error_is_told_as_unexpected(frugal, fake_slack):
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "is_archived"})
    body, content_type = block_actions("rewrite_post", "Polished.", response_url=fake_slack.response_url("p4"))

    await frugal.post(body, content_type)

    [told] = await fake_slack.await_calls("response_url:p4")
    assert told.params["text"] == UNEXPECTED_ERROR
    assert told.params.get("delete_original") is not True


async def test_a_style_button_for_a_style_no_longer_offered_gets_the_usage_and_no_model_call(frugal, fake_openai, fake_slack):
    body, content_type = block_actions("rewrite_style_pirate", "the original", response_url=fake_slack.response_url("s9"))

    await frugal.post(body, content_type)

    [told] = await fake_slack.await_calls("response_url:s9")
    assert told.params["text"] == f"That style is no longer offered. {REWRITE_USAGE}"
    assert fake_openai.requests == []
