"""/rewrite's listener called directly, beside the end-to-end tests in test_rewrite.py: no HTTP, no database.

The service is the real RewriteService; the model behind it and the button store are small doubles of
their ports, so each case runs in milliseconds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bot.catalog import TokenUsage
from bot.ports.button_texts import ButtonText
from bot.ports.completion import CallContext, Completion, CompletionFailed, CompletionRequest
from bot.services.rewrite import RewriteService
from bot.slack import markup
from bot.slack.buttons import attach_buttons
from bot.slack.deps import SlackDeps, attach
from bot.slack.grammar import REWRITE_USAGE
from bot.slack.listeners.rewrite import rewrite_command

COMMAND = {"team_id": "T1", "channel_id": "C1", "user_id": "U1", "trigger_id": "13345.1", "command": "/rewrite"}


class Model:
    """The Completer port: answers with the prompt's user text in brackets, or raises what it is told to."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[CallContext, CompletionRequest]] = []
        self.fail = fail

    async def complete(self, ctx: CallContext, request: CompletionRequest) -> Completion:
        self.calls.append((ctx, request))
        if self.fail is not None:
            raise self.fail
        return Completion(
            text=f"[{request.messages[-1]['content']}]",
            requested_model="gpt-6-luna",
            served_model="gpt-6-luna",
            usage=TokenUsage(20, completion_tokens=5),
            cost_usd=Decimal("0.0000045"),
        )


class Buttons:
    """The ButtonTexts port in memory."""

    def __init__(self) -> None:
        self.kept: dict[str, ButtonText] = {}

    async def put(self, entry: ButtonText) -> str:
        button_id = f"{len(self.kept):022d}"
        self.kept[button_id] = entry
        return button_id

    async def get(self, button_id: str) -> ButtonText | None:
        return self.kept.get(button_id)


class Recorder:
    """Stands for Bolt's ack or respond: keeps what each call was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, text: str = "", **kwargs: Any) -> None:
        self.calls.append({"text": text, **kwargs})


async def _run(text: str, model: Model) -> tuple[Recorder, Recorder, Buttons]:
    context: dict[str, Any] = {}
    service = RewriteService(model, max_input_chars=2000, masking=markup.mask)
    attach(
        context,
        SlackDeps(rewrite=service, admins=None, classify=None, models=None, digests=None, home=None, usage=None),
    )
    buttons = Buttons()

    async def nothing() -> None:
        return None

    await attach_buttons(buttons)(context, nothing)
    ack, respond = Recorder(), Recorder()
    await rewrite_command(ack=ack, command={**COMMAND, "text": text}, respond=respond, context=context)
    return ack, respond, buttons


async def test_a_rewrite_is_acked_empty_then_answered_privately_with_buttons_carrying_an_id():
    model = Model()
    ack, respond, buttons = await _run("formal: can u send it", model)
    assert ack.calls == [{"text": ""}]
    [answer] = respond.calls
    assert answer["text"] == "[can u send it]" and answer["response_type"] == "ephemeral"
    [(button_id, kept)] = buttons.kept.items()
    assert kept.original == "can u send it" and kept.text == "[can u send it]"
    values = {e["value"] for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert values == {button_id}, "the buttons carry the id, never the text"
    [(ctx, request)] = model.calls
    assert ctx.request_key.endswith("13345.1") and "formal" in request.messages[0]["content"].lower()


@pytest.mark.parametrize(("text", "said"), [("", REWRITE_USAGE), ("   \u200b ", REWRITE_USAGE), ("x" * 2001, "2,001")])
async def test_bad_input_is_told_in_the_ack_and_calls_nothing(text, said):
    model = Model()
    ack, respond, buttons = await _run(text, model)
    [refusal] = ack.calls
    assert said in refusal["text"] and refusal["response_type"] == "ephemeral"
    assert (model.calls, respond.calls, buttons.kept) == ([], [], {})


async def test_a_mistyped_style_gets_a_did_you_mean_and_no_model_call():
    model = Model()
    ack, respond, _ = await _run("formall: hi", model)
    [refusal] = ack.calls
    assert "formal" in refusal["text"] and model.calls == [] and respond.calls == []


async def test_a_failed_completion_is_told_to_the_asker_and_keeps_no_buttons():
    model = Model(fail=CompletionFailed("Every model is unavailable right now; nothing was charged."))
    ack, respond, buttons = await _run("hello", model)
    assert ack.calls == [{"text": ""}]
    [told] = respond.calls
    assert "nothing was charged" in told["text"] and told["response_type"] == "ephemeral"
    assert buttons.kept == {}
