"""The Slack client factory against the fake Slack: 429s waited out (bounded), dropped connections retried."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from bot.slack.clients import (
    CONNECTION_RETRIES,
    MAX_RETRY_AFTER_S,
    RATE_LIMIT_RETRIES,
    ResponseUrlSession,
    RetryingRespond,
    retry_after_seconds,
    web_client,
)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": ["3"]}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"RETRY-AFTER": ["soon"]}, 1.0),
        ({"Retry-After": "nan"}, 1.0),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "inf"}, float("inf")),
        ({"Content-Type": ["application/json"]}, 1.0),
        ({}, 1.0),
    ],
)
def test_retry_after_is_read_from_list_or_plain_headers(headers, seconds):
    assert retry_after_seconds(headers) == seconds


async def test_a_fractional_retry_after_is_waited_out(fake_slack):
    fake_slack.fail("chat.postMessage", 429, {"Retry-After": "0.2"})

    response = await web_client("xoxb-test", fake_slack.api_url).chat_postMessage(channel="C1", text="hi")

    assert response["ok"] is True
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


async def test_retries_on_429_are_bounded(fake_slack):
    fake_slack.fail("chat.postMessage", 429, {"Retry-After": "0"}, times=RATE_LIMIT_RETRIES + 1)

    with pytest.raises(SlackApiError) as raised:
        await web_client("xoxb-test", fake_slack.api_url).chat_postMessage(channel="C1", text="hi")

    assert raised.value.response["error"] == "ratelimited"
    assert len(fake_slack.calls_to("chat.postMessage")) == RATE_LIMIT_RETRIES + 1


async def test_a_retry_after_over_the_bound_fails_at_once(fake_slack):
    fake_slack.fail("chat.postMessage", 429, {"Retry-After": str(MAX_RETRY_AFTER_S + 1)})
    started = time.monotonic()

    with pytest.raises(SlackApiError):
        await web_client("xoxb-test", fake_slack.api_url).chat_postMessage(channel="C1", text="hi")

    assert time.monotonic() - started < MAX_RETRY_AFTER_S
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


class _HangingUp:
    """A TCP server that accepts each connection and drops it at once; counts the connections."""

    def __init__(self) -> None:
        self.accepted = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._hang_up, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _hang_up(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.transport.abort()


async def test_dropped_connections_are_retried_a_bounded_number_of_times():
    server = _HangingUp()
    async with server as url:
        with pytest.raises(aiohttp.ClientError):
            await web_client("xoxb-test", f"{url}/api/").auth_test()

    assert server.accepted == 1 + CONNECTION_RETRIES


async def test_a_reply_on_the_shared_session_is_retried_when_the_connection_drops():
    server, sessions = _HangingUp(), ResponseUrlSession()
    async with server as url:
        try:
            with pytest.raises(aiohttp.ClientError):
                await RetryingRespond(response_url=f"{url}/hooks/r0", sessions=sessions)(text="x")
        finally:
            await sessions.aclose()

    assert server.accepted == 1 + CONNECTION_RETRIES


async def test_respond_posts_again_after_a_throttle(fake_slack):
    fake_slack.fail("response_url:r1", 429, {"Retry-After": "0"})

    response = await RetryingRespond(response_url=fake_slack.response_url("r1"))(text="the answer")

    assert response.status_code == 200
    assert [c.params["text"] for c in fake_slack.calls_to("response_url:r1")] == ["the answer"] * 2


async def test_respond_gives_up_after_bounded_throttles_and_says_so(fake_slack, caplog):
    fake_slack.fail("response_url:r2", 429, {"Retry-After": "0"}, times=RATE_LIMIT_RETRIES + 1)

    response = await RetryingRespond(response_url=fake_slack.response_url("r2"))(text="the answer")

    assert response.status_code == 429
    assert len(fake_slack.calls_to("response_url:r2")) == RATE_LIMIT_RETRIES + 1
    assert "refused (HTTP 429)" in caplog.text
    assert "the answer" not in caplog.text


async def test_replies_share_one_session_until_it_is_closed(fake_slack):
    sessions = ResponseUrlSession()
    fake_slack.fail("response_url:r3", 429, {"Retry-After": "0"})

    first = await RetryingRespond(response_url=fake_slack.response_url("r3"), sessions=sessions)(text="one")
    shared = sessions.get()
    second = await RetryingRespond(response_url=fake_slack.response_url("r4"), sessions=sessions)(
        {"text": "two", "response_type": "ephemeral"}
    )

    assert (first.status_code, second.status_code) == (200, 200)
    assert [c.params["text"] for c in fake_slack.calls_to("response_url:r3")] == ["one", "one"]
    [two] = fake_slack.calls_to("response_url:r4")
    assert (two.params["text"], two.params["response_type"]) == ("two", "ephemeral")
    assert sessions.get() is shared and not shared.closed

    await sessions.aclose()

    assert shared.closed and sessions.get() is None
    late = await RetryingRespond(response_url=fake_slack.response_url("r5"), sessions=sessions)(text="late")
    assert late.status_code == 200, "a reply after shutdown still goes out, on a session of its own"


async def test_respond_sends_bolts_fields_with_blocks_as_json_and_leaves_out_the_unset(fake_slack):
    from slack_sdk.models.blocks import SectionBlock

    respond = RetryingRespond(response_url=fake_slack.response_url("r6"))

    await respond(text="fallback", blocks=[SectionBlock(text="*hi*")], thread_ts="1700.1", response_type="ephemeral")
    await respond(delete_original=True)

    first, second = fake_slack.calls_to("response_url:r6")
    assert first.params["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    assert (first.params["text"], first.params["thread_ts"], first.params["response_type"]) == (
        "fallback",
        "1700.1",
        "ephemeral",
    )
    assert "replace_original" not in first.params and "delete_original" not in first.params
    assert second.params == {"text": "", "delete_original": True}


async def test_respond_without_a_response_url_says_so():
    with pytest.raises(ValueError, match="no response_url"):
        await RetryingRespond(response_url=None)(text="lost")
