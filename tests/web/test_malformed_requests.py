"""Signed but malformed requests: 400 and one log line; payloads missing a field Frugal needs get a plain answer."""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from bot.slack.app import INCOMPLETE
from tests.bolt_tasks import settle_listeners
from tests.conftest import SIGNING_SECRET
from tests.fakes.slack_signing import (
    FORM,
    JSON,
    app_mention_event,
    block_actions,
    event_callback,
    message_shortcut,
    slash_command,
)

_MENTION = app_mention_event("<@UBOT> help")

# Bodies Slack never sends, each signed with the real secret: the signature is right, the content is not.
MALFORMED: dict[str, tuple[bytes, str]] = {
    "broken JSON": (b'{"type": "event_callback", "event": {', JSON),
    "broken payload=": (b"payload=%7Bx", FORM),
    "not UTF-8": (b"command=/rewrite&text=\xff\xfe&channel_id=C1", FORM),
    "UTF-8 cut mid-character": (b'{"type": "\xe2\x82"}', JSON),
    "a JSON array": (b'[{"type": "event_callback"}]', JSON),
    "a JSON string": (b'"event_callback"', JSON),
    "JSON null": (b"null", JSON),
    "a JSON number": (b"5", JSON),
    "payload= holding an array": (urlencode({"payload": "[1, 2]"}).encode(), FORM),
    "payload= holding actions that are not objects": (
        urlencode({"payload": json.dumps({"type": "block_actions", "actions": ["x"]})}).encode(),
        FORM,
    ),
    "event that is a string": (json.dumps({"type": "event_callback", "event_id": "Ev1", "event": "x"}).encode(), JSON),
    "event_callback without an event": (json.dumps({"type": "event_callback", "event_id": "Ev2"}).encode(), JSON),
    "team that is a list": (json.dumps({"type": "block_actions", "team": ["x"], "actions": [{}]}).encode(), JSON),
    "block_actions without actions": (json.dumps({"type": "block_actions", "actions": []}).encode(), JSON),
    "authorizations that is a string": (
        json.dumps({"type": "event_callback", "event": _MENTION, "authorizations": "x"}).encode(),
        JSON,
    ),
    "team_id that is a number": (
        json.dumps({"type": "event_callback", "event": _MENTION, "team_id": 5}).encode(),
        JSON,
    ),
    "event_id that is a list": (
        json.dumps({"type": "event_callback", "event": _MENTION, "event_id": ["x"]}).encode(),
        JSON,
    ),
}


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    # "Task exception was never retrieved" is logged by asyncio when the task is collected: collect first.
    gc.collect()
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def _post(frugal, body: bytes, content_type: str) -> tuple[int, bytes]:
    headers = {"Content-Type": content_type, **_sign_bytes(body)}
    async with frugal.http.post(f"{frugal.url}/slack/events", data=body, headers=headers) as resp:
        return resp.status, await resp.read()


def _sign_bytes(body: bytes) -> dict[str, str]:
    # As Slack signs: over the raw bytes (a body that is not UTF-8 has no text to sign).
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


async def test_malformed_bodies_get_400_one_log_line_and_no_call(frugal, fake_slack, fake_openai, caplog):
    caplog.set_level(logging.INFO)
    answers, lines = {}, {}
    for name, (body, content_type) in MALFORMED.items():
        caplog.clear()
        answers[name], _ = await _post(frugal, body, content_type)
        lines[name] = [r.getMessage() for r in caplog.records if r.name == "bot.web.server"]
        assert _errors(caplog) == [], name
    await settle_listeners()

    assert answers == {name: 400 for name in MALFORMED}
    assert {name: len(found) for name, found in lines.items()} == {name: 1 for name in MALFORMED}
    assert (fake_slack.calls, fake_openai.requests) == ([], [])


def _without(body: str, *path: Any) -> str:
    """A form body (a command's fields, or payload=<json>) with the field at `path` removed."""
    fields = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" not in fields:
        fields.pop(path[0])
        return urlencode(fields)
    payload = json.loads(fields["payload"])
    holder = payload
    for part in path[:-1]:
        holder = holder[part]
    holder.pop(path[-1])
    return urlencode({"payload": json.dumps(payload)})


def _command(command: str, text: str, missing: str, name: str, fake_slack) -> str:
    body, _ = slash_command(command, text, response_url=fake_slack.response_url(name))
    return _without(body, missing)


COMMANDS_MISSING = [
    ("/rewrite", "make this formal", "channel_id", "channel"),
    ("/classify", "is this a bug?", "channel_id", "channel"),
    ("/usage", "", "channel_id", "channel"),
    ("/frugal", "quota show", "channel_id", "channel"),
    ("/rewrite", "make this formal", "user_id", "user"),
    ("/rewrite", "make this formal", "team_id", "workspace"),
    ("/classify", "is this a bug?", "trigger_id", "trigger"),
]


@pytest.mark.parametrize(("command", "text", "missing", "plain"), COMMANDS_MISSING)
async def test_a_command_missing_a_field_is_told_so_in_its_ack(
    frugal, fake_slack, fake_openai, caplog, command, text, missing, plain
):
    caplog.set_level(logging.INFO)
    body = _command(command, text, missing, "cmd", fake_slack)

    status, ack = await _post(frugal, body.encode(), FORM)
    await settle_listeners()

    assert status == 200
    assert json.loads(ack) == {"response_type": "ephemeral", "text": INCOMPLETE.format(field=plain)}
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []
    assert fake_openai.requests == []
    assert _errors(caplog) == []


MESSAGE = {"type": "message", "user": "U0002", "ts": "1700000000.000200", "text": "hello there"}
INTERACTIONS_MISSING = {
    "Post button without channel": (
        lambda url: block_actions("rewrite_post", "hello", response_url=url),
        ("channel",),
        "channel",
    ),
    "Post button without value": (
        lambda url: block_actions("rewrite_post", "hello", response_url=url),
        ("actions", 0, "value"),
        "button value",
    ),
    "style button without value": (
        lambda url: block_actions("rewrite_style_formal", "hello", response_url=url),
        ("actions", 0, "value"),
        "button value",
    ),
    "style button without channel": (
        lambda url: block_actions("rewrite_style_formal", "hello", response_url=url),
        ("channel",),
        "channel",
    ),
    "Post in thread without value": (
        lambda url: block_actions("post_in_thread", "hello", response_url=url),
        ("actions", 0, "value"),
        "button value",
    ),
    "Post in thread without channel": (
        lambda url: block_actions("post_in_thread", "hello", response_url=url),
        ("channel",),
        "channel",
    ),
    "button without its user": (
        lambda url: block_actions("rewrite_post", "hello", response_url=url),
        ("user",),
        "user",
    ),
    "shortcut without channel": (
        lambda url: message_shortcut("rewrite_message", MESSAGE, response_url=url),
        ("channel",),
        "channel",
    ),
    "shortcut without message": (
        lambda url: message_shortcut("classify_message", MESSAGE, response_url=url),
        ("message",),
        "message",
    ),
}


@pytest.mark.parametrize(("build", "path", "plain"), INTERACTIONS_MISSING.values(), ids=INTERACTIONS_MISSING.keys())
async def test_an_interaction_missing_a_field_is_told_so_on_its_response_url(
    frugal, fake_slack, fake_openai, caplog, build, path, plain
):
    caplog.set_level(logging.INFO)
    body, _ = build(fake_slack.response_url("click"))

    status, _ = await _post(frugal, _without(body, *path).encode(), FORM)
    [reply] = await fake_slack.await_calls("response_url:click")
    await settle_listeners()

    assert status == 200
    assert reply.params["text"] == INCOMPLETE.format(field=plain)
    assert [c.method for c in fake_slack.calls if c.method not in ("auth.test", "response_url:click")] == []
    assert fake_openai.requests == []
    assert _errors(caplog) == []


@pytest.mark.parametrize("missing", ["channel", "ts", "user"])
async def test_a_mention_missing_a_field_is_dropped_with_one_log_line(frugal, fake_slack, fake_openai, caplog, missing):
    caplog.set_level(logging.INFO)
    event = app_mention_event("<@UBOT> rewrite formal: can u send the report pls")
    event.pop(missing)
    body, _ = event_callback(event)

    status, _ = await _post(frugal, body.encode(), JSON)
    await settle_listeners()

    assert status == 200  # Slack must not retry it: it would be just as incomplete
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []
    assert fake_openai.requests == []
    assert [r.getMessage() for r in caplog.records if r.name == "bot.slack.app"] == [
        "a Slack app_mention arrived without its "
        + {"channel": "channel", "ts": "message", "user": "user"}[missing]
        + "; nothing was done"
    ]
    assert _errors(caplog) == []
