"""Slack request signing and builders for the payloads Slack sends to the bot."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
DEFAULT_RESPONSE_URL = "https://hooks.slack.com/commands/T0001/0001/fake"
_ids = itertools.count(1)


def sign_request(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Return the X-Slack-Request-Timestamp and X-Slack-Signature headers Slack would send for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command(
    command: str,
    text: str,
    *,
    team_id: str = "T0001",
    channel_id: str = "C0001",
    user_id: str = "U0001",
    trigger_id: str | None = None,
    response_url: str = DEFAULT_RESPONSE_URL,
    api_app_id: str = "A0001",
) -> tuple[str, str]:
    """Form-encoded slash command body, as Slack posts it."""
    fields = {
        "token": "verification-token",
        "team_id": team_id,
        "team_domain": "frugal-test",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }
    return urlencode(fields), FORM


def event_callback(
    event: dict[str, Any], *, event_id: str | None = None, team_id: str = "T0001", api_app_id: str = "A0001"
) -> tuple[str, str]:
    """JSON Events API envelope around ``event``."""
    seq = next(_ids)
    envelope = {
        "token": "verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{seq:08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "UBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope), JSON


def app_mention_event(
    text: str,
    *,
    channel: str = "C0001",
    user: str = "U0001",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """Inner ``app_mention`` event (``ts`` auto-generated when omitted)."""
    ts = ts or _ts()
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts}
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def block_actions(
    action_id: str,
    value: str,
    *,
    team_id: str = "T0001",
    channel_id: str = "C0001",
    user_id: str = "U0001",
    response_url: str = DEFAULT_RESPONSE_URL,
    trigger_id: str | None = None,
    message: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Form-encoded ``payload=<json>`` for a button click, as Slack sends interactivity."""
    action = {"type": "button", "action_id": action_id, "block_id": "b1", "value": value, "action_ts": _ts()}
    container: dict[str, Any] = {"type": "message", "channel_id": channel_id}
    payload = {"type": "block_actions", "actions": [action], "container": container} | _interaction_context(
        team_id, channel_id, user_id, response_url, trigger_id
    )
    if message:
        container["message_ts"] = message["ts"]
        payload["message"] = message
    return urlencode({"payload": json.dumps(payload)}), FORM


def message_shortcut(
    callback_id: str,
    message: dict[str, Any],
    *,
    team_id: str = "T0001",
    channel_id: str = "C0001",
    user_id: str = "U0001",
    trigger_id: str | None = None,
    response_url: str = DEFAULT_RESPONSE_URL,
) -> tuple[str, str]:
    """Form-encoded ``payload=<json>`` for a message shortcut (``message_action``)."""
    payload = {
        "type": "message_action",
        "callback_id": callback_id,
        "message_ts": message["ts"],
        "message": message,
        "action_ts": _ts(),
    } | _interaction_context(team_id, channel_id, user_id, response_url, trigger_id)
    return urlencode({"payload": json.dumps(payload)}), FORM


def url_verification(challenge: str) -> tuple[str, str]:
    """JSON body of the Events API URL verification handshake."""
    body = {"token": "verification-token", "challenge": challenge, "type": "url_verification"}
    return json.dumps(body), JSON


def _interaction_context(
    team_id: str, channel_id: str, user_id: str, response_url: str, trigger_id: str | None
) -> dict[str, Any]:
    return {
        "token": "verification-token",
        "api_app_id": "A0001",
        "team": {"id": team_id, "domain": "frugal-test"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "channel": {"id": channel_id, "name": "general"},
        "is_enterprise_install": False,
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }


def _trigger_id() -> str:
    return f"{next(_ids)}.1337.{int(time.time())}"


def _ts() -> str:
    return f"{int(time.time())}.{next(_ids):06d}"
