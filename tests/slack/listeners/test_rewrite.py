"""/rewrite end to end: signed HTTP in, fake OpenAI called, answer on the fake Slack."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from bot.infra.db.button_texts import ButtonTextRow
from bot.infra.db.tables import LedgerRow
from bot.slack.app import UNEXPECTED_ERROR
from bot.slack.buttons import NOT_A_MEMBER, NOT_YOURS
from bot.slack.grammar import REWRITE_USAGE
from bot.slack.listeners.rewrite import STALE_BUTTON
from tests.bolt_tasks import settle_listeners
from tests.fakes.openai_server import Hang, Reply
from tests.fakes.slack_signing import block_actions
from tests.slack.button_values import buttons, channel_members, section_text


async def test_rewrite_calls_nano_and_answers_ephemerally(frugal, fake_openai, fake_slack):
    fake_openai.script(
        "gpt-4.1-nano", Reply("Could you send the report, please?", prompt_tokens=60, completion_tokens=9)
    )

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
    fake_openai.script(
        "gpt-4.1-nano", Reply("Hello there.", prompt_tokens=1000, completion_tokens=500, cached_tokens=200)
    )

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
    _, name = await frugal.command(
        "/rewrite", "ping <@U123> about <#C9|ops> see <https://x.io|docs> `make test` :tada:"
    )

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    sent = fake_openai.requests[0].json["messages"][1]["content"]
    assert "<@U123>" not in sent and "⟦1⟧" in sent
    # The fake echoes its input behind a "[model] " prefix, so every piece must come back intact.
    assert (
        answer.params["text"]
        == "[gpt-4.1-nano] ping <@U123> about <#C9|ops> see <https://x.io|docs> `make test` :tada:"
    )


async def test_empty_text_gets_usage_and_no_model_call(frugal, fake_openai, fake_slack):
    response, name = await frugal.command("/rewrite", "   ")

    assert response.status == 200
    assert REWRITE_USAGE in (await response.json())["text"]
    await settle_listeners()
    assert fake_openai.requests == []
    assert fake_slack.calls_to(f"response_url:{name}") == []


async def test_oversized_text_is_refused_without_model_call(frugal, fake_openai):
    response, _ = await frugal.command("/rewrite", "x" * 2001)

    text = (await response.json())["text"]
    assert "2,001 characters" in text and "limit is 2,000" in text
    await settle_listeners()
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
    await settle_listeners()
    assert fake_openai.requests == []


async def _answer_of(frugal, fake_slack, text: str, **fields) -> dict:
    _, name = await frugal.command("/rewrite", text, **fields)
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    return answer.params


def _button(answer: dict, action_id: str) -> dict:
    [button] = [b for b in buttons(answer["blocks"]) if b["action_id"] == action_id]
    return button


async def _press(frugal, fake_slack, action_id: str, value: str, name: str, **fields):
    body, content_type = block_actions(action_id, value, response_url=fake_slack.response_url(name), **fields)
    response = await frugal.post(body, content_type)
    assert response.status == 200


async def test_post_to_channel_posts_the_rewrite_saying_who_asked(frugal, fake_slack):
    channel_members(fake_slack, "U2", "U7")
    answer = await _answer_of(frugal, fake_slack, "formal: polish me", user_id="U7", channel_id="C7")
    value = _button(answer, "rewrite_post")["value"]
    assert "polish" not in value and len(value) == 22  # an opaque id: the text stays on Frugal's side

    await _press(frugal, fake_slack, "rewrite_post", value, "p1", user_id="U7", channel_id="C7")

    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["channel"] == "C7"
    assert post.params["text"] == answer["text"] == "[gpt-4.1-nano] polish me"
    assert "<@U7>" in str(post.params["blocks"])
    [cleanup] = await fake_slack.await_calls("response_url:p1")
    assert cleanup.params["delete_original"] is True
    [check] = fake_slack.calls_to("conversations.members")
    assert check.params["channel"] == "C7"


async def test_try_another_style_rewrites_the_original(frugal, fake_openai, fake_slack):
    answer = await _answer_of(frugal, fake_slack, "the original")

    await _press(frugal, fake_slack, "rewrite_style_friendly", _button(answer, "rewrite_style_friendly")["value"], "s1")

    [again] = await fake_slack.await_calls("response_url:s1")
    assert "warm, friendly" in fake_openai.requests[1].json["messages"][0]["content"]
    assert fake_openai.requests[1].json["messages"][1]["content"] == "the original"
    assert again.params["replace_original"] is True
    # The new answer's buttons are its own.
    assert _button(again.params, "rewrite_post")["value"] != _button(answer, "rewrite_post")["value"]


async def test_post_to_channel_where_frugal_is_not_a_member_posts_through_the_response_url(frugal, fake_slack):
    answer = await _answer_of(frugal, fake_slack, "polish me", user_id="U7", channel_id="D7")
    fake_slack.fail("conversations.members", status=200, headers={}, body={"ok": False, "error": "channel_not_found"})
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "channel_not_found"})

    await _press(
        frugal,
        fake_slack,
        "rewrite_post",
        _button(answer, "rewrite_post")["value"],
        "p3",
        user_id="U7",
        channel_id="D7",
    )

    posted, cleanup = await fake_slack.await_calls("response_url:p3", count=2)
    assert (posted.params["response_type"], posted.params["text"]) == ("in_channel", "[gpt-4.1-nano] polish me")
    assert posted.params["replace_original"] is False and "<@U7>" in str(posted.params["blocks"])
    assert cleanup.params["delete_original"] is True


async def test_post_to_channel_with_another_slack_error_is_told_as_unexpected(frugal, fake_slack):
    channel_members(fake_slack, "U0001")
    answer = await _answer_of(frugal, fake_slack, "polish me")
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "is_archived"})

    await _press(frugal, fake_slack, "rewrite_post", _button(answer, "rewrite_post")["value"], "p4")

    [told] = await fake_slack.await_calls("response_url:p4")
    assert told.params["text"] == UNEXPECTED_ERROR
    assert told.params.get("delete_original") is not True


async def test_a_style_button_for_a_style_no_longer_offered_gets_the_usage_and_no_model_call(
    frugal, fake_openai, fake_slack
):
    answer = await _answer_of(frugal, fake_slack, "the original")

    await _press(frugal, fake_slack, "rewrite_style_pirate", _button(answer, "rewrite_post")["value"], "s9")

    [told] = await fake_slack.await_calls("response_url:s9")
    assert told.params["text"] == f"That style is no longer offered. {REWRITE_USAGE}"
    assert len(fake_openai.requests) == 1


# --- buttons act only on what Frugal put there, for the one who asked, where they may post ---------------


@pytest.mark.parametrize("action_id", ["rewrite_post", "rewrite_style_formal"])
@pytest.mark.parametrize("value", ["<!channel> " + "x" * 5000, "Polished text.", '{"t": "forged"}', "A" * 22])
async def test_a_forged_button_value_posts_nothing_and_calls_no_model(
    frugal, fake_openai, fake_slack, action_id, value
):
    channel_members(fake_slack, "U0001")

    await _press(frugal, fake_slack, action_id, value, "f1")

    [told] = await fake_slack.await_calls("response_url:f1")
    assert told.params["text"] == STALE_BUTTON
    assert fake_slack.calls_to("chat.postMessage") == [] and fake_openai.requests == []


@pytest.mark.parametrize("clicker", [{"user_id": "U8", "channel_id": "C7"}, {"user_id": "U7", "channel_id": "C9"}])
async def test_someone_elses_button_or_another_channel_posts_nothing(frugal, fake_openai, fake_slack, clicker):
    channel_members(fake_slack, "U7", "U8")
    answer = await _answer_of(frugal, fake_slack, "polish me", user_id="U7", channel_id="C7")

    for action_id in ("rewrite_post", "rewrite_style_formal"):
        await _press(frugal, fake_slack, action_id, _button(answer, "rewrite_post")["value"], action_id, **clicker)
        [told] = await fake_slack.await_calls(f"response_url:{action_id}")
        assert told.params["text"] == NOT_YOURS

    assert fake_slack.calls_to("chat.postMessage") == [] and len(fake_openai.requests) == 1


async def test_a_clicker_who_left_the_channel_is_told_and_nothing_is_posted(frugal, fake_slack):
    answer = await _answer_of(frugal, fake_slack, "polish me", user_id="U7", channel_id="C7")
    channel_members(fake_slack, "U2", "U3")

    await _press(
        frugal,
        fake_slack,
        "rewrite_post",
        _button(answer, "rewrite_post")["value"],
        "m1",
        user_id="U7",
        channel_id="C7",
    )

    [told] = await fake_slack.await_calls("response_url:m1")
    assert told.params["text"] == NOT_A_MEMBER
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_membership_is_read_page_by_page(frugal, fake_slack):
    answer = await _answer_of(frugal, fake_slack, "polish me", user_id="U7", channel_id="C7")
    fake_slack.fail(
        "conversations.members",
        status=200,
        headers={},
        body={"ok": True, "members": ["U1", "U2"], "response_metadata": {"next_cursor": "page2"}},
    )
    channel_members(fake_slack, "U7")

    await _press(
        frugal,
        fake_slack,
        "rewrite_post",
        _button(answer, "rewrite_post")["value"],
        "m2",
        user_id="U7",
        channel_id="C7",
    )

    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["text"] == "[gpt-4.1-nano] polish me"
    first, second = fake_slack.calls_to("conversations.members")
    assert "cursor" not in first.params and second.params["cursor"] == "page2"


async def test_an_expired_button_posts_nothing(frugal, fake_slack):
    channel_members(fake_slack, "U0001")
    answer = await _answer_of(frugal, fake_slack, "polish me")
    async with frugal.container.engine.begin() as conn:
        await conn.execute(update(ButtonTextRow).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))

    await _press(frugal, fake_slack, "rewrite_post", _button(answer, "rewrite_post")["value"], "e1")

    [told] = await fake_slack.await_calls("response_url:e1")
    assert told.params["text"] == STALE_BUTTON
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_expired_button_texts_are_purged_by_the_daily_job(frugal, fake_slack):
    await _answer_of(frugal, fake_slack, "polish me")
    await _answer_of(frugal, fake_slack, "and me")
    async with frugal.container.engine.begin() as conn:
        await conn.execute(
            update(ButtonTextRow)
            .where(ButtonTextRow.original == "polish me")
            .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        )

    for job in frugal.container.daily_jobs:
        await job()

    async with frugal.container.engine.connect() as conn:
        assert (await conn.execute(select(ButtonTextRow.original))).scalars().all() == ["and me"]


# --- what is posted pings nobody and carries no link the asker did not give --------------------------------


async def test_a_broadcast_in_the_text_is_posted_as_a_plain_word(frugal, fake_openai, fake_slack):
    channel_members(fake_slack, "U0001")
    answer = await _answer_of(
        frugal, fake_slack, "<!here> standup moved, ask <@U2> or see <https://wiki.example|the wiki>"
    )
    assert "<!here>" not in fake_openai.requests[0].json["messages"][1]["content"]

    await _press(frugal, fake_slack, "rewrite_post", _button(answer, "rewrite_post")["value"], "b1")

    [post] = await fake_slack.await_calls("chat.postMessage")
    expected = "[gpt-4.1-nano] @here standup moved, ask <@U2> or see <https://wiki.example|the wiki>"
    assert answer["text"] == post.params["text"] == expected
    assert "<!here" not in json.dumps(answer) + json.dumps(post.params)
    assert post.params["unfurl_links"] in (False, "0", "false")


async def test_a_model_answer_cannot_ping_or_link(frugal, fake_openai, fake_slack):
    channel_members(fake_slack, "U0001")
    fake_openai.script("gpt-4.1-nano", Reply("<!channel> <!everyone> hi <@U999> <https://evil.example|click me>"))
    answer = await _answer_of(frugal, fake_slack, "hi team")

    await _press(frugal, fake_slack, "rewrite_post", _button(answer, "rewrite_post")["value"], "b2")

    [post] = await fake_slack.await_calls("chat.postMessage")
    shown = "&lt;!channel&gt; &lt;!everyone&gt; hi &lt;@U999&gt; &lt;https://evil.example|click me&gt;"
    assert answer["text"] == post.params["text"] == shown
    assert section_text(post.params["blocks"]) == shown
    # verbatim: Slack links only the markup written out, never a bare URL in the text.
    assert all(b["text"]["verbatim"] is True for b in post.params["blocks"] if b["type"] == "section")


async def test_slack_text_is_not_escaped_twice(frugal, fake_openai, fake_slack):
    answer = await _answer_of(frugal, fake_slack, "Q&amp;A at 5 &lt;3 with <@W222>")

    assert fake_openai.requests[0].json["messages"][1]["content"] == "Q&A at 5 <3 with ⟦1⟧"
    assert answer["text"] == "[gpt-4.1-nano] Q&amp;A at 5 &lt;3 with <@W222>"


async def test_a_repeated_placeholder_is_restored_once(frugal, fake_openai, fake_slack):
    code = "```" + "x" * 1500 + "```"
    fake_openai.script("gpt-4.1-nano", Reply("⟦1⟧" * 500 + " done"))

    answer = await _answer_of(frugal, fake_slack, f"{code} fix it")

    assert answer["text"] == code + " done"


async def test_a_mistyped_style_gets_a_did_you_mean_and_no_model_call(frugal, fake_openai, fake_slack):
    response, name = await frugal.command("/rewrite", "formall: hi")

    text = (await response.json())["text"]
    assert "`formall` is not a style; did you mean `formal`?" in text and REWRITE_USAGE in text
    await settle_listeners()
    assert fake_openai.requests == [] and fake_slack.calls_to(f"response_url:{name}") == []


async def test_a_word_that_is_no_style_stays_part_of_the_text(frugal, fake_openai, fake_slack):
    answer = await _answer_of(frugal, fake_slack, "Note: the build is red")

    assert fake_openai.requests[0].json["messages"][1]["content"] == "Note: the build is red"
    assert answer["text"] == "[gpt-4.1-nano] Note: the build is red"


@pytest.mark.parametrize("text", ["\u200b", " \u200b\u2060\ufeff ", "\u3164", "\u200d\n\t"])
async def test_invisible_text_is_empty_and_calls_no_model(frugal, fake_openai, fake_slack, text):
    response, name = await frugal.command("/rewrite", text)

    reply = (await response.json())["text"]
    assert "There is no text to work on." in reply and REWRITE_USAGE in reply
    await settle_listeners()
    assert fake_openai.requests == [] and fake_slack.calls_to(f"response_url:{name}") == []


# --- long rewrites: all of the text can be read and posted ----------------------------------------------


async def test_a_long_rewrite_is_split_across_sections_and_posted_whole(frugal, fake_openai, fake_slack):
    channel_members(fake_slack, "U0001")
    paragraphs = [f"Paragraph {i}: " + "word " * 180 for i in range(8)]
    long_text = "\n\n".join(p.strip() for p in paragraphs)
    fake_openai.script("gpt-4.1-nano", Reply(long_text))

    answer = await _answer_of(frugal, fake_slack, "make it long")

    sections = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    assert len(long_text) > 7000 and len(sections) >= 3 and all(len(t) <= 3000 for t in sections)
    assert " ".join(section_text(answer["blocks"]).split()) == " ".join(long_text.split())
    assert "copy it instead" not in json.dumps(answer)
    await _press(frugal, fake_slack, "rewrite_post", _button(answer, "rewrite_post")["value"], "l1")
    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["text"] == long_text
    assert " ".join(section_text(post.params["blocks"]).split()) == " ".join(long_text.split())


async def test_the_post_button_works_up_to_the_input_limit(frugal, fake_openai, fake_slack):
    channel_members(fake_slack, "U0001")
    text = ("abc " * 500)[:2000]

    answer = await _answer_of(frugal, fake_slack, text)

    await _press(frugal, fake_slack, "rewrite_post", _button(answer, "rewrite_post")["value"], "l2")
    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["text"] == "[gpt-4.1-nano] " + text.strip()
