"""/usage: this channel's usage, cost and remaining quota for the current month and today, and the asker's own limits (ephemeral)."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.slack.deps import deps_of
from bot.slack.usage_blocks import summary_text, usage_report


async def usage_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """/usage — acked at once; the report is read from the ledger and the quotas after the ack."""
    await ack()
    report = await deps_of(context).usage.channel_report(
        command["team_id"], command["channel_id"], command.get("user_id")
    )
    await respond(
        text=summary_text(report), blocks=usage_report(report), response_type="ephemeral", replace_original=False
    )
