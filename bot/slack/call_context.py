"""The model call's context from a Slack payload: who asked, where, and the delivery's idempotency key."""

from __future__ import annotations

from typing import Any

from bot.ports.completion import CallContext
from bot.slack.once import delivery_of


def command_call(command: dict[str, Any], task: str) -> CallContext:
    """The context of a slash command's model call, keyed as its delivery is (`command:{trigger_id}`)."""
    return CallContext(
        team_id=command["team_id"],
        channel_id=command["channel_id"],
        user_id=command["user_id"],
        request_key=_key(command),
        task=task,
    )


def action_call(body: dict[str, Any], task: str) -> CallContext:
    """The context of a button's model call, keyed as its delivery is (`action:{trigger_id}`)."""
    return CallContext(
        team_id=body["team"]["id"],
        channel_id=body["channel"]["id"],
        user_id=body["user"]["id"],
        request_key=_key(body),
        task=task,
    )


def _key(body: dict[str, Any]) -> str:
    delivery = delivery_of(body)
    # Every command and button Frugal serves has a delivery key; the trigger is the fallback's fallback.
    return delivery.key if delivery else f"action:{body.get('trigger_id')}"
