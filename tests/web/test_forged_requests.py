"""Requests Slack did not sign get 401 and cause nothing: no reply to their response_url, no Slack or model call."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.bolt_tasks import settle_listeners
from tests.conftest import SIGNING_SECRET
from tests.fakes.slack_signing import (
    app_mention_event,
    block_actions,
    event_callback,
    message_shortcut,
    slash_command,
)
from tests.slack.conftest import OAUTH_ENV


@dataclass
class CatchAll:
    """A local HTTP server standing for whatever URL a forged body names: it records every request."""

    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
async def catch_all() -> AsyncIterator[CatchAll]:
    """Any method, any path: recorded and answered 200."""
    app = web.Application()
    server = CatchAll(url="")

    async def record(request: web.Request) -> web.Response:
        server.requests.append((request.method, request.path))
        return web.Response(text="ok")

    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield server
    await runner.cleanup()


def _hmac(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def _signed_with(timestamp: str, secret: str = SIGNING_SECRET) -> Callable[[bytes], dict[str, str]]:
    return lambda body: {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": _hmac(secret, timestamp, body)}


def _now() -> str:
    return str(int(time.time()))


# Each way a request can fail, or escape, signature verification; each signed with the real secret
# where a signature can be computed at all, so only the named flaw is wrong.
FORGERIES: dict[str, Callable[[bytes], dict[str, str]]] = {
    "timestamp abc": _signed_with("abc"),
    "empty timestamp": _signed_with(""),
    "timestamp 1.5": _signed_with("1.5"),
    "timestamp with a plus sign": lambda body: _signed_with("+" + _now())(body),
    "timestamp in Arabic-Indic digits": lambda body: _signed_with(
        _now().translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    )(body),
    "timestamp of 5000 digits": _signed_with("9" * 5000),
    "stale timestamp": lambda body: _signed_with(str(int(time.time()) - 600))(body),
    "timestamp from the future": lambda body: _signed_with(str(int(time.time()) + 600))(body),
    "non-ASCII signature": lambda body: {"X-Slack-Request-Timestamp": _now(), "X-Slack-Signature": "v0=é" + "0" * 63},
    "empty signature": lambda body: {"X-Slack-Request-Timestamp": _now(), "X-Slack-Signature": ""},
    "signature without v0=": lambda body: {
        "X-Slack-Request-Timestamp": _now(),
        "X-Slack-Signature": _hmac(SIGNING_SECRET, _now(), body)[3:],
    },
    "wrong secret": lambda body: _signed_with(_now(), secret="not-the-secret")(body),
    "signature of another body": lambda body: _signed_with(_now())(body + b"&x=1"),
    "no signature headers": lambda body: {},
    "timestamp only": lambda body: {"X-Slack-Request-Timestamp": _now()},
    "signature only": lambda body: {"X-Slack-Signature": _hmac(SIGNING_SECRET, _now(), body)},
}


def _bodies(response_url: str) -> dict[str, tuple[bytes, str]]:
    """Bodies whose every reply would go to `response_url`, if anything answered them."""
    message = {"type": "message", "user": "U0002", "ts": "1700000000.000200", "text": "hello"}
    forms = {
        "/rewrite": slash_command("/rewrite", "make this formal", response_url=response_url),
        "/frugal": slash_command("/frugal", "quota show", response_url=response_url),
        "button": block_actions("rewrite_post", "hello", response_url=response_url),
        "shortcut": message_shortcut("rewrite_message", message, response_url=response_url),
        "mention": event_callback(app_mention_event("<@UBOT> rewrite hello")),
        "broken payload": (f"payload=%7Bx&response_url={response_url}", "application/x-www-form-urlencoded"),
        "JSON array": (json.dumps([{"response_url": response_url}]), "application/json"),
    }
    bodies = {name: (body.encode(), content_type) for name, (body, content_type) in forms.items()}
    bodies["not UTF-8"] = (
        b"command=/rewrite&text=\xff\xfe&response_url=" + response_url.encode(),
        "application/x-www-form-urlencoded",
    )
    return bodies


async def _post(frugal, body: bytes, content_type: str, headers: dict[str, str]):
    async with frugal.http.post(
        f"{frugal.url}/slack/events", data=body, headers={"Content-Type": content_type, **headers}
    ) as resp:
        return resp.status, await resp.read()


async def _forge_everything(frugal, catch_all: CatchAll, caplog: pytest.LogCaptureFixture) -> None:
    bodies = _bodies(f"{catch_all.url}/hook")
    answers = {}
    for forgery, headers_for in FORGERIES.items():
        for body_name, (body, content_type) in bodies.items():
            caplog.clear()
            answers[forgery, body_name] = await _post(frugal, body, content_type, headers_for(body))
            lines = [r for r in caplog.records if r.name == "bot.web.server"]
            assert len(lines) == 1, (forgery, body_name, [r.getMessage() for r in caplog.records])
            assert "hello" not in lines[0].getMessage() and "formal" not in lines[0].getMessage()

    assert {key: status for key, (status, _) in answers.items()} == {key: 401 for key in answers}
    assert {body for _status, body in answers.values()} == {b'{"error": "invalid request"}'}


def _no_traceback(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_forged_requests_get_401_and_cause_no_call_of_any_kind(
    frugal, fake_slack, fake_openai, catch_all, caplog
):
    caplog.set_level(logging.INFO)

    await _forge_everything(frugal, catch_all, caplog)
    await settle_listeners()

    assert catch_all.requests == []
    assert fake_slack.calls == []
    assert fake_openai.requests == []
    assert _no_traceback(caplog) == []


async def test_forged_requests_cause_nothing_in_oauth_mode_either(
    start_frugal, migrated_url, fake_slack, fake_openai, catch_all, caplog
):
    frugal = await start_frugal(migrated_url, **OAUTH_ENV)
    caplog.set_level(logging.INFO)

    await _forge_everything(frugal, catch_all, caplog)
    await settle_listeners()

    assert (catch_all.requests, fake_slack.calls, fake_openai.requests) == ([], [], [])
    assert _no_traceback(caplog) == []


async def test_without_a_signing_secret_nothing_is_verified_and_nothing_answered(
    start_frugal, migrated_url, fake_slack, catch_all, caplog
):
    # Socket Mode needs no signing secret; its web app must then refuse every POST, signed with "" or not.
    frugal = await start_frugal(migrated_url, SLACK_SIGNING_SECRET="")
    body, content_type = slash_command("/rewrite", "hello", response_url=f"{catch_all.url}/hook")

    status, _ = await _post(frugal, body.encode(), content_type, _signed_with(_now(), secret="")(body.encode()))
    await settle_listeners()

    assert status == 401
    assert (catch_all.requests, fake_slack.calls) == ([], [])


async def test_a_signed_request_still_gets_through(frugal, fake_slack, catch_all):
    # The control: the same kind of body, signed as Slack signs it, is answered on its response_url.
    body, content_type = slash_command("/frugal", "help", response_url=f"{catch_all.url}/hook")

    status, answer = await _post(frugal, body.encode(), content_type, _signed_with(_now())(body.encode()))

    assert status == 200
    assert answer  # /frugal help is answered in the ack itself
