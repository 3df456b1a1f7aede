"""/classify end to end: signed slash command in, fake OpenAI called, the label on the fake Slack."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select

from bot.infra.db.tables import LedgerRow
from bot.services.classify import DEFAULT_LABELS
from bot.slack.grammar import CLASSIFY_USAGE
from tests.bolt_tasks import settle_listeners
from tests.fakes.openai_server import Fail, Reply

NANO = "gpt-4.1-nano"


def _tokens(label: str, probability: float) -> list[tuple[str, float]]:
    return [('{"', 0.0), ("label", 0.0), ('":"', 0.0), (label, math.log(probability)), ('"}', 0.0)]


async def test_classify_picks_a_label_from_the_enum_and_shows_the_confidence(frugal, fake_openai, fake_slack):
    fake_openai.script(NANO, Reply('{"label":"bug"}', logprobs=_tokens("bug", 0.93)))

    response, name = await frugal.command("/classify", "[bug, question, praise] the export button does nothing")

    assert response.status == 200
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["text"] == "Label: bug (confidence 93%)"
    blocks = json.dumps(answer.params["blocks"], ensure_ascii=False)
    assert "*bug* · confidence 93%" in blocks and "your labels: bug, question, praise" in blocks
    assert "model: gpt-4.1-nano" in blocks and "estimate;" in blocks
    [call] = fake_openai.requests
    schema = call.json["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == ["bug", "question", "praise"]
    assert call.json["logprobs"] is True
    assert call.json["messages"][1]["content"] == "the export button does nothing"


async def test_without_logprobs_the_confidence_is_said_to_be_unknown(frugal, fake_openai, fake_slack):
    _, name = await frugal.command("/classify", "[question, bug] where is the report?")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    # The fake answers the first value of the enum, without log-probabilities.
    assert answer.params["text"] == "Label: question (confidence unknown: the endpoint gave no log-probabilities)"


async def test_without_a_bracket_the_default_labels_are_used(frugal, fake_openai, fake_slack):
    _, name = await frugal.command("/classify", "can someone review my PR?")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["text"].startswith(f"Label: {DEFAULT_LABELS[0]} ")
    assert "the default labels: " + ", ".join(DEFAULT_LABELS) in json.dumps(answer.params["blocks"], ensure_ascii=False)
    enum = fake_openai.requests[0].json["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"]
    assert enum == list(DEFAULT_LABELS)


async def test_the_fallback_note_is_in_the_reply(frugal, fake_openai, fake_slack):
    fake_openai.set_behaviour(NANO, Fail.insufficient_quota())

    _, name = await frugal.command("/classify", "[a, b] text")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    blocks = json.dumps(answer.params["blocks"], ensure_ascii=False)
    assert "model: gpt-4o-mini" in blocks
    assert "gpt-4o-mini answered because gpt-4.1-nano is out of credit" in blocks


async def test_one_ledger_row_per_attempt_without_text(frugal, fake_openai, fake_slack):
    fake_openai.script(NANO, Fail.server_error())

    _, name = await frugal.command("/classify", "[secret-a, secret-b] confidential words", user_id="U42")
    await fake_slack.await_calls(f"response_url:{name}")

    async with frugal.container.engine.connect() as conn:
        rows = (await conn.execute(select(LedgerRow).order_by(LedgerRow.attempt))).all()
    assert [(r.task, r.requested_model, r.outcome, r.attempt) for r in rows] == [
        ("classify", NANO, "error", 1),
        ("classify", NANO, "ok", 2),
    ]
    assert "confidential" not in " ".join(str(v) for r in rows for v in r._mapping.values())


async def test_all_models_down_gives_a_plain_message(frugal, fake_openai, fake_slack):
    fake_openai.set_behaviour(NANO, Fail.server_error())
    fake_openai.set_behaviour("gpt-4o-mini", Fail.server_error())

    _, name = await frugal.command("/classify", "[a, b] text")

    [answer] = await fake_slack.await_calls(f"response_url:{name}", timeout=15)
    assert answer.params["text"].startswith("No model could answer just now")
    assert "Nothing was charged" in answer.params["text"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[only-one] some text", "Give at least 2 labels to choose from (got 1)."),
        ("[" + ", ".join(f"l{i}" for i in range(51)) + "] some text", "Give at most 50 labels (got 51)."),
        ("[ok, " + "x" * 101 + "] some text", "is 101 characters long; the limit is 100."),
        ("[a,, b] some text", "Label 2 is empty"),
        ("[a, b some text", "The label list has no closing `]`."),
        ("[a, b]", "There is no text to work on."),
        ("", "There is no text to work on."),
    ],
)
async def test_bad_label_lists_get_a_message_and_no_model_call(frugal, fake_openai, fake_slack, text, problem):
    response, name = await frugal.command("/classify", text)

    assert response.status == 200
    body = await response.json()
    assert body["response_type"] == "ephemeral"
    assert problem in body["text"] and CLASSIFY_USAGE in body["text"]
    await settle_listeners()
    assert fake_openai.requests == []
    assert fake_slack.calls_to(f"response_url:{name}") == []


async def test_the_channels_own_labels_are_used(start_frugal, migrated_url, fake_openai, fake_slack):
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN")
    response, _ = await frugal.command("/frugal", "labels set urgent, later", user_id="UADMIN", channel_id="C7")
    assert "urgent, later" in (await response.json())["text"]

    _, here = await frugal.command("/classify", "the server is down", channel_id="C7")
    _, elsewhere = await frugal.command("/classify", "the server is down", channel_id="C8")

    [answer] = await fake_slack.await_calls(f"response_url:{here}")
    assert answer.params["text"].startswith("Label: urgent ")
    assert "this channel's labels: urgent, later" in json.dumps(answer.params["blocks"], ensure_ascii=False)
    [other] = await fake_slack.await_calls(f"response_url:{elsewhere}")
    assert "the default labels" in json.dumps(other.params["blocks"], ensure_ascii=False)


async def test_slack_text_keeps_its_mentions_and_is_not_escaped_twice(frugal, fake_openai, fake_slack):
    _, name = await frugal.command("/classify", "[Q&amp;A, bug] <@W222> asks about Q&amp;A <!here>")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    blocks = json.dumps(answer.params["blocks"], ensure_ascii=False)
    assert "> <@W222> asks about Q&amp;A @here" in blocks
    assert "your labels: Q&amp;A, bug" in blocks and answer.params["text"].startswith("Label: Q&amp;A ")
    assert "&amp;amp;" not in blocks and "&lt;@W222&gt;" not in blocks and "<!here>" not in blocks
    # The labels are plain text to the model: "Q&A", as the person typed it.
    assert fake_openai.requests[0].json["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == [
        "Q&A",
        "bug",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("\u200b\u2060", "There is no text to work on."),
        ("[a, b] \u200b \ufeff", "There is no text to work on."),
        ("[bug, bu\u200bg] text", "The label 'bug' is listed twice."),
        ("[bug, \u2060Bug\u200d] text", "The label 'Bug' is listed twice."),
    ],
)
async def test_invisible_text_and_invisible_duplicates_get_a_message_and_no_model_call(
    frugal, fake_openai, fake_slack, text, problem
):
    response, name = await frugal.command("/classify", text)

    body = await response.json()
    assert problem in body["text"] and CLASSIFY_USAGE in body["text"]
    await settle_listeners()
    assert fake_openai.requests == [] and fake_slack.calls_to(f"response_url:{name}") == []
