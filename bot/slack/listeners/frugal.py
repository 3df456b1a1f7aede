"""/frugal: help and admin subcommands, dispatched through one table."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import deps_of
from bot.slack.frugal_request import FrugalRequest, Subcommand
from bot.slack.grammar import HELP, HELP_POINTER, SLACK_ID_LIMIT
from bot.slack.listeners import digest, labels, models, quota, usage_export

ID_TOO_LONG = f"This request's workspace, channel or user ID is longer than Slack's {SLACK_ID_LIMIT} characters; nothing was done."


async def _help(request: FrugalRequest) -> None:
    await request.ack(response_type="ephemeral", text=HELP)


# The first word after /frugal picks the handler; each handler acks for itself.
SUBCOMMANDS: dict[str, Subcommand] = {
    "help": _help,
    "labels": labels.labels_subcommand,
    "models": models.models_subcommand,
    "digest": digest.digest,
    "quota": quota.quota_subcommand,
    "usage": usage_export.usage_subcommand,
}


async def frugal_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """/frugal <subcommand> ... — unknown subcommands get a pointer to the help."""
    if any(len(command.get(key) or "") > SLACK_ID_LIMIT for key in ("team_id", "channel_id", "user_id")):
        # Slack never sends such IDs, and Frugal's tables could not hold them.
        await ack(response_type="ephemeral", text=ID_TOO_LONG)
        return
    word, rest = ((command.get("text") or "").split(maxsplit=1) + ["", ""])[:2]
    handler = SUBCOMMANDS.get(word.lower() or "help")
    if handler is None:
        await ack(response_type="ephemeral", text=unknown_subcommand_text(word))
        return
    await handler(
        FrugalRequest(
            ack=ack, respond=respond, client=client, command=command, args=rest.strip(), deps=deps_of(context)
        )
    )


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_-]{1,30}")


def unknown_subcommand_text(word: str) -> str:
    """What an unknown /frugal subcommand gets: the known ones and the help pointer."""
    # Echo only a plain word: anything else could be markup such as <!channel> or a stray backtick.
    shown = f"`{word}`" if _PLAIN_WORD.fullmatch(word) else "that"
    known = ", ".join(f"`{name}`" for name in SUBCOMMANDS)
    return f"`/frugal` has no subcommand {shown}; it knows {known}. {HELP_POINTER}"
