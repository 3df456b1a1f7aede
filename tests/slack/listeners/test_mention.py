"""@Frugal mentions end to end: signed events in, the model called, answers in the thread."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.infra.db.tables import LedgerRow
from bot.slack.grammar import HELP, HELP_POINTER
from bot.slack.listeners.mention import MENTION_CLASSIFY_USAGE, MENTION_REWRITE_USAGE, MENTION_USAGE, parse_mention
from tests.bolt_tasks import settle_listeners
from tests.fakes.openai_server import DEFAULT_MODELS, Fail, Reply
from tests.fakes.slack_signing import app_mention_event, event_callback


async def _mention(frugal, text: str, *, event_id: str | None = None, **event_fields) -> dict:
    event = app_mention_event(text, **event_fields)
    body, content_type = event_callback(event, event_id=event_id)
    response = await frugal.post(body, content_type)
    assert response.status == 200
    return event


async def _only_reply(fake_slack) -> dict:
    [reply] = await fake_slack.await_calls("chat.postMessage")
    return reply.params


async def test_rewrite_answers_in_a_thread_under_the_mention(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply("Could you send the report, please?"))

    event = await _mention(frugal, "<@UBOT> rewrite formal: can u send the report pls", channel="C5")

    reply = await _only_reply(fake_slack)
    assert (reply["channel"], reply["thread_ts"]) == ("C5", event["ts"])
    assert reply["text"] == "Could you send the report, please?"
    assert "style: formal" in str(reply["blocks"]) and "<@U0001>" in str(reply["blocks"])
    [call] = fake_openai.requests
    assert "formal" in call.json["messages"][0]["content"]
    assert call.json["messages"][1]["content"] == "can u send the report pls"


async def test_the_ledger_row_is_keyed_by_the_event_id(frugal, fake_slack):
    await _mention(frugal, "<@UBOT> rewrite hello", event_id="EvMENTION1", channel="C9", user="U9")
    await _only_reply(fake_slack)

    async with frugal.container.engine.connect() as conn:
        [row] = (await conn.execute(select(LedgerRow))).all()
    assert (row.team_id, row.channel_id, row.user_id, row.task) == ("T0001", "C9", "U9", "rewrite")
    assert row.request_key == "event:EvMENTION1"


async def test_in_a_thread_with_no_text_the_first_message_is_rewritten(frugal, fake_openai, fake_slack):
    fake_slack.threads[("C1", "1700000000.000100")] = [{"ts": "1700000000.000100", "text": "teh parent mesage"}]

    await _mention(frugal, "<@UBOT> rewrite grammar:", channel="C1", thread_ts="1700000000.000100")

    reply = await _only_reply(fake_slack)
    [lookup] = fake_slack.calls_to("conversations.replies")
    assert (lookup.params["channel"], lookup.params["ts"], str(lookup.params["limit"])) == (
        "C1",
        "1700000000.000100",
        "1",
    )
    assert fake_openai.requests[0].json["messages"][1]["content"] == "teh parent mesage"
    assert "spelling" in fake_openai.requests[0].json["messages"][0]["content"]
    assert reply["thread_ts"] == "1700000000.000100"
    assert reply["text"] == "[gpt-4.1-nano] teh parent mesage"


async def test_in_a_thread_given_text_wins_over_the_first_message(frugal, fake_openai, fake_slack):
    fake_slack.threads[("C1", "1700000000.000100")] = [{"ts": "1700000000.000100", "text": "parent"}]

    await _mention(frugal, "<@UBOT> rewrite the given text", channel="C1", thread_ts="1700000000.000100")

    reply = await _only_reply(fake_slack)
    assert fake_slack.calls_to("conversations.replies") == []
    assert fake_openai.requests[0].json["messages"][1]["content"] == "the given text"
    assert reply["thread_ts"] == "1700000000.000100"


async def test_no_text_outside_a_thread_gets_the_usage_and_no_model_call(frugal, fake_openai, fake_slack):
    await _mention(frugal, "<@UBOT> rewrite")

    reply = await _only_reply(fake_slack)
    assert MENTION_REWRITE_USAGE in reply["text"] and HELP_POINTER in reply["text"]
    assert fake_openai.requests == []


async def test_oversized_text_is_refused_with_the_usage_and_no_model_call(frugal, fake_openai, fake_slack):
    await _mention(frugal, "<@UBOT> rewrite " + "x" * 2001)

    reply = await _only_reply(fake_slack)
    assert "2,001 characters" in reply["text"] and HELP_POINTER in reply["text"]
    assert fake_openai.requests == []


async def test_an_empty_thread_parent_gets_the_usage(frugal, fake_openai, fake_slack):
    fake_slack.threads[("C1", "1700000000.000200")] = [{"ts": "1700000000.000200", "text": ""}]

    await _mention(frugal, "<@UBOT> rewrite", channel="C1", thread_ts="1700000000.000200")

    reply = await _only_reply(fake_slack)
    assert MENTION_REWRITE_USAGE in reply["text"]
    assert fake_openai.requests == []


async def test_an_unreadable_thread_is_explained_with_no_model_call(frugal, fake_openai, fake_slack):
    fake_slack.fail("conversations.replies", status=200, headers={}, body={"ok": False, "error": "missing_scope"})

    await _mention(frugal, "<@UBOT> rewrite", channel="C1", thread_ts="1700000000.000300")

    reply = await _only_reply(fake_slack)
    assert "`missing_scope`" in reply["text"] and HELP_POINTER in reply["text"]
    assert reply["thread_ts"] == "1700000000.000300"
    assert fake_openai.requests == []


async def test_help_answers_with_the_full_grammar_in_the_thread(frugal, fake_openai, fake_slack):
    event = await _mention(frugal, "<@UBOT> help")

    reply = await _only_reply(fake_slack)
    assert reply["text"] == HELP and reply["thread_ts"] == event["ts"]
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("text", "opening"),
    [("<@UBOT> dance please", "I don't know `dance`. "), ("<@UBOT>", ""), ("<@UBOT> <!channel> now", "")],
)
async def test_unknown_requests_get_a_short_help(frugal, fake_openai, fake_slack, text, opening):
    await _mention(frugal, text)

    reply = await _only_reply(fake_slack)
    assert reply["text"] == opening + MENTION_USAGE
    assert "<!channel>" not in reply["text"]
    assert fake_openai.requests == []


async def test_a_model_failure_is_told_in_the_thread(frugal, fake_openai, fake_slack):
    for model in DEFAULT_MODELS:
        fake_openai.set_behaviour(model, Fail.insufficient_quota())

    await _mention(frugal, "<@UBOT> rewrite hello")

    reply = await _only_reply(fake_slack)
    assert "nothing was charged" in reply["text"].lower()


async def test_the_bots_own_messages_are_ignored(frugal, fake_openai, fake_slack):
    event = app_mention_event("<@UBOT> rewrite myself", user="UBOT") | {"bot_id": "BBOT"}
    body, content_type = event_callback(event)

    response = await frugal.post(body, content_type)

    assert response.status == 200
    await settle_listeners()
    assert fake_slack.calls_to("chat.postMessage") == []
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("text", "bot", "expected"),
    [
        ("<@UBOT> rewrite formal: hi there", "UBOT", ("rewrite", "formal: hi there")),
        ("<@UBOT|frugal> Rewrite: hi", "UBOT", ("rewrite", "hi")),
        ("please <@UBOT> help", "UBOT", ("please", "help")),
        ("rewrite line one\nline two <@UBOT>", "UBOT", ("rewrite", "line one\nline two")),
        ("<@UBOT> rewrite ask <@U123>", "UBOT", ("rewrite", "ask <@U123>")),
        ("<@UOTHER> rewrite hi", None, ("rewrite", "hi")),
        ("", "UBOT", ("", "")),
    ],
)
def test_parse_mention(text, bot, expected):
    assert parse_mention(text, bot) == expected


async def test_classify_answers_with_the_label_in_the_thread(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply('{"label": "bug"}'))

    event = await _mention(frugal, "<@UBOT> classify [bug, question] the export button does nothing", event_id="EvC1")

    reply = await _only_reply(fake_slack)
    assert reply["thread_ts"] == event["ts"]
    assert reply["text"].startswith("*bug* · ")
    [call] = fake_openai.requests
    assert '["bug", "question"]' in call.json["messages"][0]["content"]
    assert call.json["messages"][1]["content"] == "the export button does nothing"
    async with frugal.container.engine.connect() as conn:
        [row] = (await conn.execute(select(LedgerRow))).all()
    assert (row.task, row.request_key) == ("classify", "event:EvC1")


async def test_classify_in_a_thread_with_no_text_uses_the_first_message(frugal, fake_openai, fake_slack):
    fake_slack.threads[("C1", "1700000000.000400")] = [{"ts": "1700000000.000400", "text": "where is the report?"}]

    await _mention(frugal, "<@UBOT> classify [question, request]", channel="C1", thread_ts="1700000000.000400")

    reply = await _only_reply(fake_slack)
    assert fake_openai.requests[0].json["messages"][1]["content"] == "where is the report?"
    assert reply["text"].startswith("*question* · ") and reply["thread_ts"] == "1700000000.000400"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<@UBOT> classify [bug, question the export", "no closing `]`"),
        ("<@UBOT> classify [bug] the export", "at least 2 labels"),
        ("<@UBOT> classify", "no text"),
    ],
)
async def test_classify_usage_errors_get_the_usage_and_no_model_call(frugal, fake_openai, fake_slack, text, problem):
    await _mention(frugal, text)

    reply = await _only_reply(fake_slack)
    assert problem in reply["text"] and MENTION_CLASSIFY_USAGE in reply["text"]
    assert fake_openai.requests == []


async def test_a_label_is_escaped_so_it_cannot_ping_the_channel(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply('{"label": "<!channel>"}'))

    await _mention(frugal, "<@UBOT> classify [<!channel>, calm] hello")

    reply = await _only_reply(fake_slack)
    assert "<!channel>" not in reply["text"] and "<!channel>" not in str(reply["blocks"])
    assert reply["text"].startswith("*&lt;!channel&gt;*")


def test_every_usage_line_points_to_the_help():
    from bot.slack import grammar
    from bot.slack.listeners import shortcuts

    usages = {name: value for name, value in vars(grammar).items() if name.endswith("_USAGE")}
    usages |= {"MENTION_USAGE": MENTION_USAGE, "MENTION_REWRITE_USAGE": MENTION_REWRITE_USAGE}
    usages |= {"MENTION_CLASSIFY_USAGE": MENTION_CLASSIFY_USAGE}
    usages |= {name: value for name, value in vars(shortcuts).items() if name.endswith("_USAGE")}
    assert {name for name, value in usages.items() if HELP_POINTER not in value} == set()


async def test_a_mention_posted_by_a_bot_is_not_answered(frugal, fake_openai, fake_slack, caplog):
    event = app_mention_event("<@UBOT> rewrite hello")
    del event["user"]
    event["bot_id"] = "BOTHER"
    body, content_type = event_callback(event)

    response = await frugal.post(body, content_type)
    await settle_listeners()

    assert response.status == 200
    assert fake_slack.calls_to("chat.postMessage") == [] and fake_openai.requests == []
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []  # ignored on purpose, not crashed


async def test_a_model_answer_posted_in_a_thread_cannot_ping_or_link(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply("<!channel> <!everyone> read <https://evil.example|this>"))

    await _mention(frugal, "<@UBOT> rewrite tell everyone")

    reply = await _only_reply(fake_slack)
    assert reply["text"] == "&lt;!channel&gt; &lt;!everyone&gt; read &lt;https://evil.example|this&gt;"
    assert "<!channel>" not in str(reply["blocks"]) and "<https://evil" not in str(reply["blocks"])
    assert reply["unfurl_links"] is False


async def test_a_broadcast_the_asker_typed_is_posted_as_a_plain_word(frugal, fake_openai, fake_slack):
    await _mention(frugal, "<@UBOT> rewrite <!here> lunch is ready")

    reply = await _only_reply(fake_slack)
    assert reply["text"] == "[gpt-4.1-nano] @here lunch is ready"


async def test_a_mistyped_style_in_a_mention_gets_a_did_you_mean(frugal, fake_openai, fake_slack):
    await _mention(frugal, "<@UBOT> rewrite frendly: hi all")

    reply = await _only_reply(fake_slack)
    assert (
        "`frendly` is not a style; did you mean `friendly`?" in reply["text"] and MENTION_REWRITE_USAGE in reply["text"]
    )
    assert fake_openai.requests == []


async def test_an_invisible_thread_parent_is_no_text(frugal, fake_openai, fake_slack):
    fake_slack.threads[("C0001", "1700000000.000100")] = [{"ts": "1700000000.000100", "text": "\u200b\u2060"}]

    await _mention(frugal, "<@UBOT> rewrite", thread_ts="1700000000.000100")

    reply = await _only_reply(fake_slack)
    assert "There is no text to work on." in reply["text"] and fake_openai.requests == []
