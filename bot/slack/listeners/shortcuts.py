"""Message shortcuts: a private answer about any message, with a "Post in thread" button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports.button_texts import ButtonText
from bot.ports.completion import CallContext, CompletionFailed
from bot.services.errors import InvalidInput
from bot.services.rewrite import DEFAULT_STYLE
from bot.slack import blocks, classify_blocks
from bot.slack.buttons import NOT_A_MEMBER, ButtonRefused, keep, may_post, pressed
from bot.slack.deps import SlackDeps, deps_of
from bot.slack.failures import failure_text
from bot.slack.grammar import HELP_POINTER, meaningful

REWRITE_SHORTCUT = "rewrite_message"
CLASSIFY_SHORTCUT = "classify_message"

REWRITE_SHORTCUT_USAGE = (
    f"*Rewrite with Frugal* rewrites a message's text in the `{DEFAULT_STYLE}` style; "
    "for another style use `/rewrite [style:] text`. " + HELP_POINTER
)
CLASSIFY_SHORTCUT_USAGE = (
    "*Classify with Frugal* picks one of this channel's labels (or the default set) for a message's text; "
    "for labels of your own use `/classify [label, label, ...] text`. " + HELP_POINTER
)
STALE_BUTTON = (
    "This button has expired or is not one of Frugal's (older versions made other buttons). "
    "Please run the shortcut on the message again."
)
NOT_IN_CHANNEL = "I can't post in this channel yet: invite me with `/invite @Frugal`, then press the button again."
# Who asked, shown under an answer posted from a private one.
CREDITS = {"rewrite": "Rewritten with Frugal for <@{user}>", "classify": "Classified with Frugal for <@{user}>"}


@dataclass(frozen=True)
class ShortcutRequest:
    """One use of a message shortcut: the message, where it is, and who asked."""

    team_id: str
    channel_id: str
    user_id: str
    trigger_id: str
    text: str
    thread_ts: str
    client: AsyncWebClient
    respond: AsyncRespond | None
    deps: SlackDeps
    context: AsyncBoltContext

    @classmethod
    def from_payload(
        cls, shortcut: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond | None, context: AsyncBoltContext
    ) -> ShortcutRequest:
        """Read a message_action payload."""
        message = shortcut.get("message") or {}
        return cls(
            team_id=context.team_id or shortcut["team"]["id"],
            channel_id=shortcut["channel"]["id"],
            user_id=shortcut["user"]["id"],
            trigger_id=shortcut["trigger_id"],
            text=meaningful(message.get("text")),
            # A reply stays in its thread; a top-level message starts one.
            thread_ts=message.get("thread_ts") or message.get("ts") or shortcut["message_ts"],
            client=client,
            # Bolt always hands a respond(); it only works when the payload has a response_url.
            respond=respond if shortcut.get("response_url") else None,
            deps=deps_of(context),
            context=context,
        )

    def call_context(self, task: str) -> CallContext:
        """The model call's context; the trigger_id makes a retried delivery the same request."""
        return CallContext(
            team_id=self.team_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            request_key=f"action:{self.trigger_id}",
            task=task,
        )

    async def answer(self, text: str, answer_blocks: list[dict[str, Any]] | None = None) -> None:
        """Tell only the caller, through response_url when Slack gave one (it needs no channel membership)."""
        answer_blocks = answer_blocks or blocks.notice(text)
        if self.respond is not None:
            await self.respond(text=text, blocks=answer_blocks, response_type="ephemeral", replace_original=False)
            return
        await self.client.chat_postEphemeral(
            channel=self.channel_id, user=self.user_id, text=text, blocks=answer_blocks
        )

    async def post_button(self, kind: str, text: str) -> str | None:
        """Keep what "Post in thread" will post; returns the id its button carries (None: no button for now)."""
        entry = ButtonText(
            team_id=self.team_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            kind=kind,
            text=text,
            thread_ts=self.thread_ts,
        )
        return await keep(self.context, entry)


async def rewrite_message(
    ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Rewrite with Frugal: the message rewritten in the default style, for the caller only."""
    await ack()
    request = ShortcutRequest.from_payload(shortcut, client, respond, context)
    service = request.deps.rewrite
    try:
        text = service.validate(request.text, DEFAULT_STYLE)
    except InvalidInput as err:
        await request.answer(f"{err} {REWRITE_SHORTCUT_USAGE}")
        return
    try:
        rewrite = await service.rewrite(request.call_context("rewrite"), text, DEFAULT_STYLE)
    except (InvalidInput, CompletionFailed) as err:
        await request.answer(failure_text(err))
        return
    button_id = await request.post_button("rewrite", rewrite.text)
    await request.answer(
        rewrite.text, blocks.private_answer(rewrite.text, rewrite.completion, f"style: {rewrite.style}", button_id)
    )


async def classify_message(
    ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Classify with Frugal: the message's label from the channel's set, for the caller only."""
    await ack()
    request = ShortcutRequest.from_payload(shortcut, client, respond, context)
    service = request.deps.classify
    try:
        text, _ = service.validate(request.text, None)
    except InvalidInput as err:
        await request.answer(f"{err} {CLASSIFY_SHORTCUT_USAGE}")
        return
    try:
        result = await service.classify(request.call_context("classify"), text)
    except (InvalidInput, CompletionFailed) as err:
        await request.answer(failure_text(err))
        return
    line = blocks.classification_line(result.label, classify_blocks.confidence_text(result))
    answer_blocks = classify_blocks.classify_result(result, text) + blocks.post_in_thread_button(
        await request.post_button("classify", line)
    )
    await request.answer(line, answer_blocks)


async def post_in_thread(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    """Post in thread: post the private answer in the message's thread, saying who asked."""
    await ack()
    try:
        entry = await pressed(context, body, action, STALE_BUTTON)
        if entry.kind not in CREDITS or entry.thread_ts is None:
            raise ButtonRefused(STALE_BUTTON)
        member = await may_post(client, entry.channel_id, entry.user_id)
    except ButtonRefused as err:
        await respond(text=str(err), response_type="ephemeral", replace_original=False)
        return
    if member is False:
        await respond(text=NOT_A_MEMBER, response_type="ephemeral", replace_original=False)
        return
    try:
        await client.chat_postMessage(
            channel=entry.channel_id,
            thread_ts=entry.thread_ts,
            text=entry.text,
            blocks=blocks.posted_in_thread(entry.text, CREDITS[entry.kind].format(user=entry.user_id)),
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as err:
        if err.response.get("error") not in blocks.NOT_A_MEMBER_ERRORS:
            raise
        await respond(text=NOT_IN_CHANNEL, response_type="ephemeral", replace_original=False)
        return
    await respond(delete_original=True)
