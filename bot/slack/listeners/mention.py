"""@Frugal in channels and threads: rewrite, classify or help, answered in the thread."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports.completion import CallContext, CompletionFailed
from bot.services.errors import InvalidInput
from bot.services.rewrite import DEFAULT_STYLE, STYLES
from bot.slack import blocks, classify_blocks
from bot.slack.deps import SlackDeps, deps_of
from bot.slack.failures import failure_text
from bot.slack.grammar import HELP, HELP_POINTER, meaningful, parse_classify, parse_rewrite
from bot.slack.markup import defuse, escape
from bot.slack.thread_input import ThreadInputUnavailable, thread_parent_text

MENTION_USAGE = (
    "Mention me with `rewrite`, `classify` or `help`, e.g. `@Frugal rewrite formal: can u send the report pls`. "
    + HELP_POINTER
)
MENTION_REWRITE_USAGE = (
    "Usage: `@Frugal rewrite [style:] text` — styles: "
    + ", ".join(f"`{s}`" + (" (default)" if s == DEFAULT_STYLE else "") for s in STYLES)
    + ". In a thread, `@Frugal rewrite [style:]` alone rewrites the thread's first message. "
    + HELP_POINTER
)
MENTION_CLASSIFY_USAGE = (
    "Usage: `@Frugal classify [label, label, ...] text` — picks exactly one label; without the bracket, "
    "this channel's labels or the default set. In a thread, `@Frugal classify [labels]` alone classifies "
    "the thread's first message. " + HELP_POINTER
)

_ANY_USER_MENTION = r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>"
# "rewrite formal: text", "rewrite: text", "help": the word, an optional colon, the rest.
_REQUEST = re.compile(r"\s*([^\s:]*):?(.*)", re.DOTALL)
_ECHOABLE = re.compile(r"[a-z0-9_-]{1,30}")


@dataclass(frozen=True)
class Mention:
    """One @Frugal message: where it was written, by whom, and the rest of its text."""

    team_id: str
    channel_id: str
    user_id: str
    ts: str
    thread_ts: str | None
    event_id: str
    verb: str
    rest: str
    client: AsyncWebClient
    deps: SlackDeps

    def call_context(self, task: str) -> CallContext:
        """The model call's context; Slack's event_id makes retried deliveries one request."""
        return CallContext(
            team_id=self.team_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            request_key=f"event:{self.event_id}",
            task=task,
        )

    async def reply(self, text: str, reply_blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer in the mention's thread (starting one under the mention when it was not in a thread)."""
        await self.client.chat_postMessage(
            channel=self.channel_id,
            thread_ts=self.thread_ts or self.ts,
            text=text,
            blocks=reply_blocks or blocks.notice(text),
            unfurl_links=False,
            unfurl_media=False,
        )

    async def input_text(self, given: str) -> str:
        """The given text, or in a thread with none given, the thread's first message."""
        if given.strip() or not self.thread_ts:
            return given
        return meaningful(await thread_parent_text(self.client, self.channel_id, self.thread_ts))


def parse_mention(text: str, bot_user_id: str | None) -> tuple[str, str]:
    """The request word (lower case) and the rest, once the bot's own mention is removed."""
    if bot_user_id:
        text = re.sub(re.escape(f"<@{bot_user_id}") + r"(?:\|[^>]*)?>", " ", text or "")
    else:
        # Without our own ID, only a leading mention can be assumed to be us.
        text = re.sub(r"^\s*" + _ANY_USER_MENTION, " ", text or "", count=1)
    match = _REQUEST.match(text)
    return match.group(1).lower(), match.group(2).strip()


async def on_mention(
    event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """app_mention: dispatch on the first word; unknown requests get a short help."""
    if not event.get("user"):
        # Posted by a bot or a workflow (bot_id only): answering it could start a loop between bots.
        return
    verb, rest = parse_mention(event.get("text", ""), context.bot_user_id)
    mention = Mention(
        team_id=context.team_id or body["team_id"],
        channel_id=event["channel"],
        user_id=event["user"],
        ts=event["ts"],
        thread_ts=event.get("thread_ts"),
        event_id=body["event_id"],
        verb=verb,
        rest=rest,
        client=client,
        deps=deps_of(context),
    )
    handler = VERBS.get(verb)
    if handler is None:
        # Echo only a plain word: anything else could be markup such as <!channel>.
        opening = f"I don't know `{verb}`. " if _ECHOABLE.fullmatch(verb) else ""
        await mention.reply(opening + MENTION_USAGE)
        return
    await handler(mention)


async def _help(mention: Mention) -> None:
    await mention.reply(HELP)


async def _rewrite(mention: Mention) -> None:
    service = mention.deps.rewrite
    try:
        args = parse_rewrite(mention.rest)
        text = service.validate(await mention.input_text(args.text), args.style)
    except ThreadInputUnavailable as err:
        await mention.reply(f"{err} {HELP_POINTER}")
        return
    except InvalidInput as err:
        await mention.reply(f"{defuse(str(err))} {MENTION_REWRITE_USAGE}")
        return
    try:
        rewrite = await service.rewrite(mention.call_context("rewrite"), text, args.style)
    except (InvalidInput, CompletionFailed) as err:
        await mention.reply(failure_text(err))
        return
    await mention.reply(
        rewrite.text, blocks.thread_answer(rewrite.text, rewrite.completion, f"style: {rewrite.style}", mention.user_id)
    )


async def _classify(mention: Mention) -> None:
    service = mention.deps.classify
    try:
        args = parse_classify(mention.rest)
        text, labels = service.validate(await mention.input_text(args.text), args.labels)
    except ThreadInputUnavailable as err:
        await mention.reply(f"{err} {HELP_POINTER}")
        return
    except InvalidInput as err:
        await mention.reply(f"{escape(str(err))} {MENTION_CLASSIFY_USAGE}")
        return
    try:
        result = await service.classify(mention.call_context("classify"), text, labels)
    except (InvalidInput, CompletionFailed) as err:
        await mention.reply(failure_text(err))
        return
    line = blocks.classification_line(result.label, classify_blocks.confidence_text(result))
    await mention.reply(line, blocks.thread_answer(line, result.completion, "classify", mention.user_id))


# The first word after the mention picks the handler.
VERBS: dict[str, Callable[[Mention], Awaitable[None]]] = {
    "help": _help,
    "rewrite": _rewrite,
    "classify": _classify,
}
