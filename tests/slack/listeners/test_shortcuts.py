"""Message shortcuts end to end: signed payloads in, a private answer, then "Post in thread"."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode

import pytest
from sqlalchemy import select

from bot.infra.db.tables import LedgerRow
from bot.slack.buttons import NOT_A_MEMBER, NOT_YOURS
from bot.slack.grammar import HELP_POINTER
from bot.slack.listeners.shortcuts import CLASSIFY_SHORTCUT_USAGE, NOT_IN_CHANNEL, REWRITE_SHORTCUT_USAGE, STALE_BUTTON
from tests.fakes.openai_server import Reply
from tests.fakes.slack_signing import block_actions, message_shortcut
from tests.slack.button_values import channel_members, section_text, stored_button

MESSAGE = {"type": "message", "user": "U2", "ts": "1700000000.000500", "text": "can u send the report pls"}


async def _shortcut(frugal, callback_id: str, message: dict, *, response: str | None = "sc", **fields) -> None:
    url = frugal.fake_slack.response_url(response) if response else ""
    body, content_type = message_shortcut(callback_id, message, response_url=url, **fields)
    if response is None:
        payload = json.loads(parse_qs(body)["payload"][0])
        del payload["response_url"]
        body = urlencode({"payload": json.dumps(payload)})
    reply = await frugal.post(body, content_type)
    assert reply.status == 200


def _buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def _press(frugal, value: str, name: str, **fields) -> None:
    body, content_type = block_actions(
        "post_in_thread", value, response_url=frugal.fake_slack.response_url(name), **fields
    )
    assert (await frugal.post(body, content_type)).status == 200


async def test_rewrite_shortcut_answers_privately_with_a_post_in_thread_button(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply("Could you send the report, please?"))

    await _shortcut(frugal, "rewrite_message", MESSAGE, channel_id="C3")

    [answer] = await fake_slack.await_calls("response_url:sc")
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["text"] == "Could you send the report, please?"
    [button] = _buttons(answer.params["blocks"])
    assert button["action_id"] == "post_in_thread"
    assert "report" not in button["value"] and len(button["value"]) == 22  # an id; the text stays on Frugal's side
    assert fake_openai.requests[0].json["messages"][1]["content"] == MESSAGE["text"]


async def test_the_shortcut_is_billed_to_the_channel_under_its_trigger_id(frugal, fake_slack):
    await _shortcut(frugal, "rewrite_message", MESSAGE, channel_id="C3", user_id="U3", trigger_id="111.222.abc")
    await fake_slack.await_calls("response_url:sc")

    async with frugal.container.engine.connect() as conn:
        [row] = (await conn.execute(select(LedgerRow))).all()
    assert (row.team_id, row.channel_id, row.user_id, row.task) == ("T0001", "C3", "U3", "rewrite")
    assert row.request_key == "action:111.222.abc"


async def test_a_reply_in_a_thread_is_posted_back_into_that_thread(frugal, fake_slack):
    reply = MESSAGE | {"ts": "1700000000.000900", "thread_ts": "1700000000.000100"}

    await _shortcut(frugal, "rewrite_message", reply)

    [answer] = await fake_slack.await_calls("response_url:sc")
    [button] = _buttons(answer.params["blocks"])
    channel_members(fake_slack, "U0001")
    await _press(frugal, button["value"], "t1")
    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["thread_ts"] == "1700000000.000100"


async def test_a_message_without_text_gets_the_usage_and_no_model_call(frugal, fake_openai, fake_slack):
    await _shortcut(frugal, "rewrite_message", MESSAGE | {"text": ""})

    [answer] = await fake_slack.await_calls("response_url:sc")
    assert REWRITE_SHORTCUT_USAGE in answer.params["text"] and HELP_POINTER in answer.params["text"]
    assert answer.params["response_type"] == "ephemeral"
    assert fake_openai.requests == []


async def test_an_oversized_message_is_refused_with_the_usage(frugal, fake_openai, fake_slack):
    await _shortcut(frugal, "rewrite_message", MESSAGE | {"text": "y" * 2500})

    [answer] = await fake_slack.await_calls("response_url:sc")
    assert "2,500 characters" in answer.params["text"] and HELP_POINTER in answer.params["text"]
    assert fake_openai.requests == []


async def test_without_a_response_url_the_answer_is_an_ephemeral_message(frugal, fake_slack):
    await _shortcut(frugal, "rewrite_message", MESSAGE, response=None, channel_id="C4", user_id="U4")

    [answer] = await fake_slack.await_calls("chat.postEphemeral")
    assert (answer.params["channel"], answer.params["user"]) == ("C4", "U4")
    assert answer.params["text"] == f"[gpt-4.1-nano] {MESSAGE['text']}"
    assert [b["action_id"] for b in _buttons(answer.params["blocks"])] == ["post_in_thread"]


async def test_a_long_message_gets_a_post_in_thread_button_that_posts_all_of_it(frugal, fake_openai, fake_slack):
    channel_members(fake_slack, "U0001")

    await _shortcut(frugal, "rewrite_message", MESSAGE | {"text": "z " * 995})

    [answer] = await fake_slack.await_calls("response_url:sc")
    [button] = _buttons(answer.params["blocks"])
    await _press(frugal, button["value"], "p0")
    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["text"] == "[gpt-4.1-nano] " + ("z " * 995).strip()
    assert "copy it instead" not in str(answer.params["blocks"])


async def test_post_in_thread_posts_the_answer_in_the_thread_saying_who_asked(frugal, fake_slack):
    channel_members(fake_slack, "U7")
    value = await stored_button(
        frugal, "Polished.", channel_id="C7", user_id="U7", thread_ts="1700000000.000100", original=None
    )

    await _press(frugal, value, "p1", channel_id="C7", user_id="U7")

    [post] = await fake_slack.await_calls("chat.postMessage")
    assert (post.params["channel"], post.params["thread_ts"], post.params["text"]) == (
        "C7",
        "1700000000.000100",
        "Polished.",
    )
    assert "Rewritten with Frugal for <@U7>" in str(post.params["blocks"])
    [cleanup] = await fake_slack.await_calls("response_url:p1")
    assert cleanup.params["delete_original"] is True


async def test_post_in_thread_where_frugal_is_not_a_member_says_how_to_fix_it(frugal, fake_slack):
    fake_slack.fail("conversations.members", status=200, headers={}, body={"ok": False, "error": "not_in_channel"})
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "not_in_channel"})
    value = await stored_button(frugal, "Polished.", thread_ts="1700000000.000100", original=None)

    await _press(frugal, value, "p2")

    [told] = await fake_slack.await_calls("response_url:p2")
    assert told.params["text"] == NOT_IN_CHANNEL
    assert told.params.get("delete_original") is not True


async def test_post_in_thread_for_a_clicker_not_in_the_channel_posts_nothing(frugal, fake_slack):
    channel_members(fake_slack, "U2")
    value = await stored_button(frugal, "Polished.", thread_ts="1700000000.000100", original=None)

    await _press(frugal, value, "p5")

    [told] = await fake_slack.await_calls("response_url:p5")
    assert told.params["text"] == NOT_A_MEMBER
    assert fake_slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"k": "rewrite", "ts": "1700000000.000100", "t": "<!channel> anything at all"}),
        json.dumps({"k": "rewrite", "ts": "1700000000.000100", "t": {"an": "object"}}),
        "<!channel> " + "x" * 5000,
    ],
)
async def test_a_forged_post_in_thread_value_posts_nothing(frugal, fake_slack, value):
    channel_members(fake_slack, "U0001")

    await _press(frugal, value, "f1")

    [told] = await fake_slack.await_calls("response_url:f1")
    assert told.params["text"] == STALE_BUTTON
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_someone_elses_post_in_thread_button_posts_nothing(frugal, fake_slack):
    channel_members(fake_slack, "U7", "U8")
    value = await stored_button(
        frugal, "Polished.", channel_id="C7", user_id="U7", thread_ts="1700000000.000100", original=None
    )

    await _press(frugal, value, "o1", channel_id="C7", user_id="U8")

    [told] = await fake_slack.await_calls("response_url:o1")
    assert told.params["text"] == NOT_YOURS
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_rewrite_commands_button_id_does_not_post_in_a_thread(frugal, fake_slack):
    channel_members(fake_slack, "U0001")
    value = await stored_button(frugal, "Polished.", original="the original", thread_ts=None)

    await _press(frugal, value, "k1")

    [told] = await fake_slack.await_calls("response_url:k1")
    assert told.params["text"] == STALE_BUTTON
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_the_full_round_trip_from_shortcut_to_thread(frugal, fake_slack):
    channel_members(fake_slack, "U0001")
    await _shortcut(frugal, "rewrite_message", MESSAGE, channel_id="C8")
    [answer] = await fake_slack.await_calls("response_url:sc")
    [button] = _buttons(answer.params["blocks"])

    body, content_type = block_actions(
        "post_in_thread", button["value"], channel_id="C8", response_url=fake_slack.response_url("p3")
    )
    await frugal.post(body, content_type)

    [post] = await fake_slack.await_calls("chat.postMessage")
    assert (post.params["thread_ts"], post.params["text"]) == (MESSAGE["ts"], answer.params["text"])


async def test_classify_shortcut_answers_with_the_default_labels_and_a_post_button(frugal, fake_openai, fake_slack):
    await _shortcut(frugal, "classify_message", MESSAGE, trigger_id="333.444.def")

    [answer] = await fake_slack.await_calls("response_url:sc")
    # The fake answers the first label the schema allows: the default set starts with "question".
    assert answer.params["text"].startswith("*question* · ")
    assert "the default labels" in str(answer.params["blocks"])
    [button] = _buttons(answer.params["blocks"])
    assert fake_openai.requests[0].json["messages"][1]["content"] == MESSAGE["text"]
    channel_members(fake_slack, "U0001")
    await _press(frugal, button["value"], "c1")
    [post] = await fake_slack.await_calls("chat.postMessage")
    assert (post.params["thread_ts"], post.params["text"]) == (MESSAGE["ts"], answer.params["text"])
    assert "Classified with Frugal for <@U0001>" in str(post.params["blocks"])
    async with frugal.container.engine.connect() as conn:
        [row] = (await conn.execute(select(LedgerRow))).all()
    assert (row.task, row.request_key) == ("classify", "action:333.444.def")


async def test_classify_shortcut_uses_the_channels_labels(start_frugal, migrated_url, fake_openai, fake_slack):
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="U0001")
    response, _ = await frugal.command("/frugal", "labels set urgent, later", channel_id="C6")
    assert "urgent, later" in (await response.json())["text"]

    await _shortcut(frugal, "classify_message", MESSAGE, channel_id="C6")

    [answer] = await fake_slack.await_calls("response_url:sc")
    assert answer.params["text"].startswith("*urgent* · ")
    assert '["urgent", "later"]' in fake_openai.requests[0].json["messages"][0]["content"]


async def test_classify_shortcut_on_a_message_without_text_gets_the_usage(frugal, fake_openai, fake_slack):
    await _shortcut(frugal, "classify_message", MESSAGE | {"text": "  "})

    [answer] = await fake_slack.await_calls("response_url:sc")
    assert CLASSIFY_SHORTCUT_USAGE in answer.params["text"] and HELP_POINTER in answer.params["text"]
    assert fake_openai.requests == []


async def test_a_classification_keeps_the_messages_mentions_and_entities_as_slack_sent_them(frugal, fake_slack):
    await _shortcut(frugal, "classify_message", MESSAGE | {"text": "<@W222> asks about Q&amp;A <!channel>"})

    [answer] = await fake_slack.await_calls("response_url:sc")
    shown = json.dumps(answer.params["blocks"], ensure_ascii=False)
    assert "> <@W222> asks about Q&amp;A @channel" in shown
    assert "&amp;amp;" not in shown and "&lt;@W222&gt;" not in shown and "<!channel>" not in shown


async def test_a_shortcut_on_an_invisible_message_gets_the_usage_and_no_model_call(frugal, fake_openai, fake_slack):
    await _shortcut(frugal, "rewrite_message", MESSAGE | {"text": "\u200b\u2060 \ufeff"})

    [answer] = await fake_slack.await_calls("response_url:sc")
    assert REWRITE_SHORTCUT_USAGE in answer.params["text"] and fake_openai.requests == []


async def test_a_model_answer_posted_in_a_thread_cannot_ping(frugal, fake_openai, fake_slack):
    channel_members(fake_slack, "U0001")
    fake_openai.script("gpt-4.1-nano", Reply("<!channel> <!everyone> look"))
    await _shortcut(frugal, "rewrite_message", MESSAGE)
    [answer] = await fake_slack.await_calls("response_url:sc")

    await _press(frugal, _buttons(answer.params["blocks"])[0]["value"], "x1")

    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["text"] == "&lt;!channel&gt; &lt;!everyone&gt; look"
    assert section_text(post.params["blocks"]) == post.params["text"]


async def test_post_in_thread_from_an_older_button_says_to_run_the_shortcut_again(frugal, fake_slack):
    older = json.dumps({"k": "rewrite", "ts": "1700000000.000100", "t": "Polished."})
    body, content_type = block_actions("post_in_thread", older, response_url=fake_slack.response_url("p3"))

    await frugal.post(body, content_type)

    [told] = await fake_slack.await_calls("response_url:p3")
    assert told.params["text"] == STALE_BUTTON
    assert fake_slack.calls_to("chat.postMessage") == []
