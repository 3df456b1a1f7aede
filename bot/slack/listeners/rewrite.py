"""/rewrite and its buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports.completion import CallContext, CompletionFailed
from bot.services.errors import InvalidInput
from bot.services.rewrite import STYLES, RewriteService
from bot.slack import blocks
from bot.slack.call_context import action_call, command_call
from bot.slack.deps import deps_of
from bot.slack.failures import failure_text
from bot.slack.grammar import REWRITE_USAGE, parse_rewrite


async def rewrite_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    """/rewrite [style:] text — answered ephemerally after the ack."""
    service = deps_of(context).rewrite
    args = parse_rewrite(command.get("text", ""))
    try:
        service.validate(args.text, args.style)
    except InvalidInput as err:
        await ack(response_type="ephemeral", text=f"{err} {REWRITE_USAGE}")
        return
    await ack()
    ctx = command_call(command, "rewrite")
    await _answer(respond, ctx, service, args.text, args.style, replace=False)


async def post_rewrite(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
    """'Post to channel': post the rewrite for everyone, saying who asked."""
    await ack()
    text, posted = action["value"], blocks.posted_rewrite(action["value"], body["user"]["id"])
    try:
        await client.chat_postMessage(channel=body["channel"]["id"], text=text, blocks=posted)
    except SlackApiError as err:
        if err.response.get("error") not in blocks.NOT_A_MEMBER_ERRORS:
            raise
        # Frugal is not in this channel (or it is a DM): the response_url may still post for everyone.
        await respond(text=text, blocks=posted, response_type="in_channel", replace_original=False)
    await respond(delete_original=True)


async def try_style(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    """'Try another style': rewrite the original text again in the chosen style."""
    await ack()
    style = action["action_id"].removeprefix(blocks.STYLE_ACTION_PREFIX)
    if style not in STYLES:
        # A button on an older answer, for a style that has since been renamed or removed.
        await respond(text=f"That style is no longer offered. {REWRITE_USAGE}", response_type="ephemeral", replace_original=False)
        return
    ctx = action_call(body, "rewrite")
    await _answer(respond, ctx, deps_of(context).rewrite, action["value"], style, replace=True)


async def _answer(respond: AsyncRespond, ctx: CallContext, service: RewriteService, text: str, style: str, *, replace: bool) -> None:
    try:
        rewrite = await service.rewrite(ctx, text, style)
    except (InvalidInput, CompletionFailed) as err:
        await respond(text=failure_text(err), response_type="ephemeral", replace_original=False)
        return
    await respond(
        text=rewrite.text,
        blocks=blocks.rewrite_result(rewrite, original=text),
        response_type="ephemeral",
        replace_original=replace,
    )
