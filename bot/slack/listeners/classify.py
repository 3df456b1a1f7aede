"""/classify [label, ...] text."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.ports.completion import CompletionFailed
from bot.services.errors import InvalidInput
from bot.slack import classify_blocks
from bot.slack.call_context import command_call
from bot.slack.deps import deps_of
from bot.slack.failures import failure_text
from bot.slack.grammar import CLASSIFY_USAGE, parse_classify
from bot.slack.markup import escape


async def classify_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """/classify [labels] text — answered ephemerally after the ack."""
    service = deps_of(context).classify
    try:
        args = parse_classify(command.get("text", ""))
        text, labels = service.validate(args.text, args.labels)
    except InvalidInput as err:
        await ack(response_type="ephemeral", text=f"{escape(str(err))} {CLASSIFY_USAGE}")
        return
    await ack()
    ctx = command_call(command, "classify")
    try:
        result = await service.classify(ctx, text, labels)
    except (InvalidInput, CompletionFailed) as err:
        await respond(text=failure_text(err), response_type="ephemeral", replace_original=False)
        return
    await respond(
        text=classify_blocks.classification_text(result),
        blocks=classify_blocks.classify_result(result, text),
        response_type="ephemeral",
        replace_original=False,
    )
