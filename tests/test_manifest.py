"""manifest.yml declares exactly what the code serves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.slack.listeners import LISTENERS

MANIFEST = yaml.safe_load((Path(__file__).resolve().parents[1] / "manifest.yml").read_text())


def _registered(method: str) -> set[str]:
    return {matcher for kind, matcher, _ in LISTENERS if kind == method and isinstance(matcher, str)}


def test_slash_commands_match_the_listeners():
    declared = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert declared == _registered("command")


def test_every_command_is_escaped_and_points_at_the_events_url():
    for command in MANIFEST["features"]["slash_commands"]:
        assert command["url"].endswith("/slack/events"), command
        # Escaping makes Slack send <#C…|name> and <@U…>, which the quota and rewrite grammars expect.
        assert command["should_escape"] is True, command


def test_shortcuts_match_the_listeners():
    declared = {s["callback_id"] for s in MANIFEST["features"].get("shortcuts", [])}
    assert declared == _registered("shortcut") | _registered("message_shortcut")


def test_bot_events_match_the_listeners():
    declared = set(MANIFEST["settings"].get("event_subscriptions", {}).get("bot_events", []))
    assert declared == _registered("event")


def test_interactivity_is_on_when_there_are_actions():
    actions = [m for kind, m, _ in LISTENERS if kind == "action"]
    assert actions
    interactivity = MANIFEST["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["request_url"].endswith("/slack/events")


def test_scopes_cover_what_the_code_calls():
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    calls = {
        "commands": True,
        "chat:write": True,  # chat.postMessage, chat.postEphemeral
        "users:read": True,  # users.info for the admin check
    }
    assert {scope for scope, needed in calls.items() if needed} <= scopes
    source = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "bot").rglob("*.py"))
    if re.search(r"files_upload_v2", source):
        assert "files:write" in scopes
    if re.search(r"conversations_replies", source):
        assert {"channels:history", "groups:history"} <= scopes
    if re.search(r"\"app_mention\"", source):
        assert "app_mentions:read" in scopes
