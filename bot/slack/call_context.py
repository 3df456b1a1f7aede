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


# What Frugal's listeners read from each kind of payload, as paths to non-empty strings. Slack always
# sends these; a payload without one is answered with a plain message instead of failing in a listener.
_COMMAND = ("team_id", "channel_id", "user_id", "trigger_id")
_INTERACTION = ("team.id", "user.id", "trigger_id")
_EVENTS = {
    "app_mention": ("event_id", "event.channel", "event.user", "event.ts"),
    "app_home_opened": ("event_id", "event.user"),
}
# Field names as a user reads them.
_PLAIN = {
    "team_id": "workspace",
    "team.id": "workspace",
    "channel_id": "channel",
    "channel.id": "channel",
    "user_id": "user",
    "user.id": "user",
    "trigger_id": "trigger",
    "message.ts": "message",
    "actions.0.action_id": "button",
    "actions.0.value": "button value",
    "event_id": "event ID",
    "event.channel": "channel",
    "event.user": "user",
    "event.ts": "message",
}


def missing_field(body: dict[str, Any]) -> str | None:
    """The first field Frugal needs that the payload lacks, in plain words ("channel"); None when it is complete."""
    for path in _required(body):
        value: Any = body
        for part in path.split("."):
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                value = None
        if not isinstance(value, str) or not value:
            return _PLAIN[path]
    return None


def _required(body: dict[str, Any]) -> tuple[str, ...]:
    if body.get("command"):
        return _COMMAND
    kind = body.get("type")
    if kind == "event_callback":
        event = body.get("event")
        return _EVENTS.get(event.get("type"), ()) if isinstance(event, dict) else ()
    if kind == "message_action":
        return (*_INTERACTION, "channel.id", "message.ts")
    if kind == "block_actions":
        container = body.get("container")
        # Buttons in the App Home or a modal have no channel; every other one acts in its channel.
        in_view = isinstance(container, dict) and container.get("type") == "view"
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        # Frugal's buttons all carry a value (what to post, which style); select menus carry selected options.
        button = first.get("type", "button") == "button"
        return (
            *_INTERACTION,
            *(() if in_view else ("channel.id",)),
            "actions.0.action_id",
            *(("actions.0.value",) if button else ()),
        )
    return ()
