"""/rewrite and its buttons."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports.button_texts import ButtonText
from bot.ports.completion import CallContext, CompletionFailed
from bot.services.errors import InvalidInput
from bot.services.rewrite import STYLES
from bot.slack import blocks
from bot.slack.buttons import NOT_A_MEMBER, ButtonRefused, keep, may_post, pressed
from bot.slack.call_context import action_call, command_call
from bot.slack.deps import deps_of
from bot.slack.failures import failure_text
from bot.slack.grammar import REWRITE_USAGE, parse_rewrite
from bot.slack.markup import defuse

STALE_BUTTON = "This button has expired or is not one of Frugal's. Run `/rewrite` again for fresh buttons."

log = logging.getLogger(__name__)


async def rewrite_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """/rewrite [style:] text — answered ephemerally after the ack."""
    service = deps_of(context).rewrite
    try:
        args = parse_rewrite(command.get("text", ""))
        service.validate(args.text, args.style)
    except InvalidInput as err:
        await ack(response_type="ephemeral", text=f"{defuse(str(err))} {REWRITE_USAGE}")
        return
    await ack()
    ctx = command_call(command, "rewrite")
    await _answer(respond, context, ctx, args.text, args.style, replace=False)


async def post_rewrite(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    """'Post to channel': post the rewrite for everyone, saying who asked."""
    await ack()
    try:
        entry = await pressed(context, body, action, STALE_BUTTON)
        if entry.kind != "rewrite" or entry.original is None:
            raise ButtonRefused(STALE_BUTTON)
        member = await may_post(client, entry.channel_id, entry.user_id)
    except ButtonRefused as err:
        await respond(text=str(err), response_type="ephemeral", replace_original=False)
        return
    if member is False:
        await respond(text=NOT_A_MEMBER, response_type="ephemeral", replace_original=False)
        return
    posted = blocks.posted_rewrite(entry.text, entry.user_id)
    try:
        await client.chat_postMessage(
            channel=entry.channel_id, text=entry.text, blocks=posted, unfurl_links=False, unfurl_media=False
        )
    except SlackApiError as err:
        if err.response.get("error") not in blocks.NOT_A_MEMBER_ERRORS:
            # Handled here, not raised: Bolt would drop the ack already sent (and Slack see a 404).
            from bot.slack.app import UNEXPECTED_ERROR  # bot.slack.app imports the listeners

            log.error("chat.postMessage refused a rewrite post (%s)", err.response.get("error"))
            await respond(text=UNEXPECTED_ERROR, response_type="ephemeral", replace_original=False)
            return
        # Frugal is not in this channel (or it is a DM): the response_url may still post for everyone.
        await respond(text=entry.text, blocks=posted, response_type="in_channel", replace_original=False)
    await respond(delete_original=True)


async def try_style(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """'Try another style': rewrite the original text again in the chosen style."""
    await ack()
    style = action["action_id"].removeprefix(blocks.STYLE_ACTION_PREFIX)
    if style not in STYLES:
        # A button on an older answer, for a style that has since been renamed or removed.
        await respond(
            text=f"That style is no longer offered. {REWRITE_USAGE}", response_type="ephemeral", replace_original=False
        )
        return
    try:
        entry = await pressed(context, body, action, STALE_BUTTON)
        if entry.kind != "rewrite" or entry.original is None:
            raise ButtonRefused(STALE_BUTTON)
    except ButtonRefused as err:
        await respond(text=str(err), response_type="ephemeral", replace_original=False)
        return
    await _answer(respond, context, action_call(body, "rewrite"), entry.original, style, replace=True)


async def _answer(
    respond: AsyncRespond, context: AsyncBoltContext, ctx: CallContext, text: str, style: str, *, replace: bool
) -> None:
    try:
        rewrite = await deps_of(context).rewrite.rewrite(ctx, text, style)
    except (InvalidInput, CompletionFailed) as err:
        await respond(text=failure_text(err), response_type="ephemeral", replace_original=False)
        return
    button_id = await keep(
        context,
        ButtonText(
            team_id=ctx.team_id,
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            kind="rewrite",
            text=rewrite.text,
            original=text,
        ),
    )
    await respond(
        text=rewrite.text,
        blocks=blocks.rewrite_result(rewrite, button_id),
        response_type="ephemeral",
        replace_original=replace,
    )
