"""`frugal run --socket` as a user runs it: a real process speaking WebSocket to the fake Slack."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from aiohttp import WSCloseCode
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.conftest import BOT_TOKEN
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_signing import slash_command
from tests.test_cli import _env, _free_port, _frugal

APP_TOKEN = "xapp-1-A0001-1-test"


# --- the fake's Socket Mode endpoint, with slack_sdk's own client ------------------


async def test_fake_socket_mode_round_trip_with_the_sdk_client(fake_slack):
    client = SocketModeClient(app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=fake_slack.api_url))
    received = []

    async def ack(client, request):
        received.append(request)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    client.socket_mode_request_listeners.append(ack)
    try:
        await client.connect()
        await fake_slack.await_calls("socket_connect")
        envelope_id = fake_slack.socket_send("events_api", {"type": "event_callback"})
        [acked] = await fake_slack.await_calls("socket_ack")
    finally:
        await client.close()
    assert acked.params == {"envelope_id": envelope_id}
    assert (received[0].type, received[0].payload) == ("events_api", {"type": "event_callback"})
    [opened] = fake_slack.calls_to("apps.connections.open")
    assert opened.token == APP_TOKEN
    await fake_slack.await_calls("socket_disconnect")


async def test_fake_stop_closes_a_connected_socket():
    with FakeSlack() as fake:
        web = AsyncWebClient(base_url=fake.api_url)
        client = SocketModeClient(app_token=APP_TOKEN, web_client=web, auto_reconnect_enabled=False)
        try:
            await client.connect()
            await fake.await_calls("socket_connect")
            session = client.current_session
            # stop() blocks until the server has closed; the client must keep running to answer the close.
            await asyncio.to_thread(fake.stop)
            # The client reads the close frame on its own task: give it a moment to record the code.
            for _ in range(100):
                if session is not None and session.close_code is not None:
                    break
                await asyncio.sleep(0.05)
            assert session is not None and session.close_code == WSCloseCode.GOING_AWAY
        finally:
            await client.close()


# --- the real `frugal run --socket` process -----------------------------------------


def test_frugal_run_socket_serves_rewrite_end_to_end(tmp_path, fake_openai, fake_slack):
    port = _free_port()
    process = _start_socket_mode(tmp_path, fake_openai, fake_slack, port)
    try:
        fake_slack.wait_socket_connected(timeout=30)
        # /healthz reports the socket too: a process with its socket down gets nothing from Slack.
        assert _healthz(port) == (200, {"status": "ok", "database": "up", "socket": "connected"})
        payload = _slash_payload("/rewrite", "formal: hi there", response_url=fake_slack.response_url("sock"))
        envelope_id = fake_slack.socket_send("slash_commands", payload)
        fake_slack.wait_for("socket_ack", predicate=lambda c: c.params.get("envelope_id") == envelope_id)
        [answer] = fake_slack.wait_for("response_url:sock", timeout=15)
        assert answer.params["text"] == "[gpt-4.1-nano] hi there"
        assert [r.json["model"] for r in fake_openai.requests] == ["gpt-4.1-nano"]
        # The token check at start, then Socket Mode's own connection.
        assert [c.token for c in fake_slack.calls_to("apps.connections.open")] == [APP_TOKEN, APP_TOKEN]
    finally:
        output = _stop(process)
    assert process.returncode == 0, output
    # Stopping closes the websocket rather than leaving Slack to time it out.
    fake_slack.wait_for("socket_disconnect")
    assert "hi there" not in output


def test_sigterm_stops_frugal_while_slack_cannot_open_the_socket(tmp_path, fake_openai, fake_slack):
    # Slack failing (not refusing the token) is retried by slack_sdk forever; SIGTERM must still end the process.
    fake_slack.fail(
        "apps.connections.open", status=500, headers={}, body={"ok": False, "error": "fatal_error"}, times=1000
    )
    port = _free_port()
    process = _start_socket_mode(tmp_path, fake_openai, fake_slack, port)
    try:
        # The check at start, then the SDK's own attempt: Frugal started and is retrying.
        fake_slack.wait_for("apps.connections.open", count=2, timeout=30)
        status, body = _healthz(port)
        assert (status, body.get("socket")) == (503, "disconnected"), body
    finally:
        output = _stop(process)
    assert process.returncode == 0, output
    assert "SLACK_APP_TOKEN not verified at start: apps.connections.open: fatal_error" in output


@pytest.mark.parametrize("error", ["invalid_auth", "not_authed"])
def test_a_rejected_app_token_stops_the_start_with_one_line(tmp_path, fake_openai, fake_slack, error):
    fake_slack.fail("apps.connections.open", status=200, headers={}, body={"ok": False, "error": error}, times=1000)
    process = _start_socket_mode(tmp_path, fake_openai, fake_slack)
    output = process.communicate(timeout=60)[0]

    assert process.returncode == 2, output
    assert output.strip().splitlines() == [
        (
            f"frugal: SLACK_APP_TOKEN: Slack rejected the app-level token (apps.connections.open: {error}); set "
            "SLACK_APP_TOKEN to an app-level token (xapp-…) with the connections:write scope, from the app's Basic "
            "Information → App-Level Tokens, and turn Socket Mode on (manifest.socket.yml does)"
        )
    ]
    # Asked once, then stopped: no retries, nothing served, no database made.
    [opened] = fake_slack.calls_to("apps.connections.open")
    assert opened.token == APP_TOKEN
    assert fake_slack.calls_to("socket_connect") == []
    assert not (tmp_path / "frugal.db").exists()


def test_a_rejected_bot_token_in_socket_mode_stops_the_start_too(tmp_path, fake_openai, fake_slack):
    fake_slack.responses["auth.test"] = {"ok": False, "error": "token_revoked"}
    process = _start_socket_mode(tmp_path, fake_openai, fake_slack)
    output = process.communicate(timeout=60)[0]

    assert process.returncode == 2, output
    [line] = output.strip().splitlines()
    assert line.startswith("frugal: SLACK_BOT_TOKEN: Slack rejected the bot token (auth.test: token_revoked)")


def test_frugal_run_socket_without_app_token_names_the_variable(tmp_path):
    env = _env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, OPENAI_API_KEY="sk-test")
    result = _frugal("run", "--socket", env=env, cwd=tmp_path)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("frugal: SLACK_APP_TOKEN:")


def _healthz(port: int, timeout: float = 20.0) -> tuple[int, dict]:
    """GET /healthz of a process that may still be starting: its status and JSON body."""
    import json
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _start_socket_mode(
    tmp_path: Path, fake_openai: FakeOpenAI, fake_slack: FakeSlack, port: int | None = None
) -> subprocess.Popen[str]:
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.api_url,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--socket", "--port", str(port or _free_port())],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
        raise AssertionError(f"frugal ignored SIGTERM:\n{output}") from None


def _slash_payload(command: str, text: str, **fields: str) -> dict[str, str]:
    # Socket Mode carries the fields Slack would form-post over HTTP as one JSON object.
    body, _ = slash_command(command, text, **fields)
    return dict(parse_qsl(body))
