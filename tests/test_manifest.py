"""manifest.yml declares exactly what the code serves; manifest.socket.yml is the same app in Socket Mode."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.slack.listeners import LISTENERS
from bot.slack.listeners.shortcuts import CLASSIFY_SHORTCUT, REWRITE_SHORTCUT
from bot.slack.oauth import BOT_SCOPES, REDIRECT_PATH

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
SOCKET_MANIFEST = yaml.safe_load((ROOT / "manifest.socket.yml").read_text())


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


# Every Slack Web API method the code calls, and the bot scopes it needs (Slack's method pages).
METHOD_SCOPES: dict[str, set[str]] = {
    "auth_test": set(),
    # Called with the app-level token, whose scope (connections:write) is not a bot scope.
    "apps_connections_open": set(),
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "users_info": {"users:read"},
    # A thread's first message may be in a public or private channel, a DM or a group DM.
    "conversations_replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "users_conversations": {"channels:read", "groups:read"},
    # Public and private channels; in a DM (no im:read) Slack refuses and the code does without.
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_members": {"channels:read", "groups:read"},
    "files_upload_v2": {"files:write"},
    "views_publish": set(),  # needs the Home tab instead (checked below)
}
EVENT_SCOPES: dict[str, set[str]] = {
    "app_mention": {"app_mentions:read"},
    "app_home_opened": set(),
    "app_uninstalled": set(),
    "tokens_revoked": set(),
}
_METHOD_CALL = re.compile(
    r"\.((?:admin|apps|auth|bookmarks|bots|chat|conversations|dnd|emoji|files|pins|reactions|reminders|search"
    r"|team|usergroups|users|views)_[A-Za-z0-9_]+)\("
)
SOURCE = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "bot").rglob("*.py"))


def _called_methods() -> set[str]:
    return set(_METHOD_CALL.findall(SOURCE))


def _needed_scopes() -> set[str]:
    needed = (
        {"commands"} if _registered("command") | _registered("message_shortcut") | _registered("shortcut") else set()
    )
    for method in _called_methods():
        needed |= METHOD_SCOPES[method]
    for event in _registered("event"):
        needed |= EVENT_SCOPES[event]
    return needed


def test_every_slack_method_the_code_calls_has_known_scopes():
    assert _called_methods(), "the scan found no Slack calls at all"
    unknown = _called_methods() - set(METHOD_SCOPES)
    assert not unknown, f"add the scopes of {sorted(unknown)} to METHOD_SCOPES (and manifest.yml)"
    assert set(_registered("event")) <= set(EVENT_SCOPES)


def test_scopes_are_exactly_what_the_code_needs():
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert scopes == _needed_scopes()
    assert "user" not in MANIFEST["oauth_config"]["scopes"], "Frugal acts only as its bot"


def test_the_oauth_install_asks_for_the_manifests_scopes():
    assert set(BOT_SCOPES) == set(MANIFEST["oauth_config"]["scopes"]["bot"])


def test_the_redirect_url_is_the_one_frugal_serves():
    assert MANIFEST["oauth_config"]["redirect_urls"] == [f"https://YOUR-HOST{REDIRECT_PATH}"]


def test_the_home_tab_is_on_when_the_code_publishes_it():
    assert "views_publish" in _called_methods() and "app_home_opened" in _registered("event")
    app_home = MANIFEST["features"]["app_home"]
    assert app_home["home_tab_enabled"] is True
    # Frugal answers nothing in its Messages tab, so users are not invited to write there.
    assert app_home["messages_tab_enabled"] is False


def test_mentions_need_a_bot_user():
    assert "app_mention" in _registered("event")
    assert MANIFEST["features"]["bot_user"]["display_name"]


def test_shortcuts_are_message_shortcuts_with_their_contract_names():
    names = {s["callback_id"]: (s["type"], s["name"]) for s in MANIFEST["features"]["shortcuts"]}
    assert names == {
        REWRITE_SHORTCUT: ("message", "Rewrite with Frugal"),
        CLASSIFY_SHORTCUT: ("message", "Classify with Frugal"),
    }
    for shortcut in MANIFEST["features"]["shortcuts"]:
        assert shortcut["description"]


# --- manifest.socket.yml: the same app, Socket Mode, no URL ---------------------------------------

URL_KEYS = {"url", "request_url", "redirect_urls"}


def _without_urls(node):
    if isinstance(node, dict):
        return {k: _without_urls(v) for k, v in node.items() if k not in URL_KEYS}
    if isinstance(node, list):
        return [_without_urls(v) for v in node]
    return node


def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def test_the_socket_manifest_has_socket_mode_on_and_no_url():
    assert SOCKET_MANIFEST["settings"]["socket_mode_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is False
    assert not URL_KEYS & set(_strings(SOCKET_MANIFEST))
    assert not [s for s in _strings(SOCKET_MANIFEST) if "://" in s or "YOUR-HOST" in s]


def test_the_socket_manifest_is_the_http_manifest_without_its_urls():
    http, socket = _without_urls(MANIFEST), _without_urls(SOCKET_MANIFEST)
    http["settings"].pop("socket_mode_enabled")
    socket["settings"].pop("socket_mode_enabled")
    # Same commands, shortcuts, events, scopes, Home tab and bot user: only the transport differs.
    assert socket == http
    assert socket["features"]["slash_commands"] and socket["settings"]["event_subscriptions"]["bot_events"]
