"""Every Slack client Frugal builds: Web API clients and respond(), with bounded retries on 429 and dropped connections."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.internal_utils import get_user_agent
from slack_sdk.webhook import WebhookResponse

log = logging.getLogger(__name__)

# Two waits cover Slack's usual one-second throttles; a longer Retry-After means the answer would be stale,
# so the call fails (SlackApiError "ratelimited") and the caller reports it once.
RATE_LIMIT_RETRIES = 2
MAX_RETRY_AFTER_S = 30
# A reset or refused connection is retried with slack_sdk's short backoff (0.5 s, then 1 s).
CONNECTION_RETRIES = 2
CONNECTION_BACKOFF_S = 0.5


class BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (sleeps Retry-After, then retries), refusing waits longer than max_wait_s."""

    def __init__(self, max_retry_count: int = RATE_LIMIT_RETRIES, max_wait_s: int = MAX_RETRY_AFTER_S) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        return retry_after_seconds(response.headers) <= self.max_wait_s

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        # As slack_sdk's, but a fractional Retry-After ("1.5") does not crash its int() parse.
        state.next_attempt_requested = True
        await asyncio.sleep(retry_after_seconds(response.headers) + random.random() if response else 1.0)
        state.increment_current_attempt()


def retry_after_seconds(headers: Mapping[str, Any]) -> float:
    """Retry-After in seconds from response headers (1 when absent or unreadable, as slack_sdk assumes)."""
    for name, value in headers.items():
        if name.lower() == "retry-after" and value:
            try:
                seconds = float(value[0] if isinstance(value, list) else value)
            except ValueError:
                return 1.0
            return 1.0 if math.isnan(seconds) else max(seconds, 0.0)
    return 1.0


def retry_handlers() -> list[AsyncRetryHandler]:
    """The retry handlers every Frugal Slack client carries."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        BoundedRateLimitRetryHandler(),
    ]


def web_client(token: str | None, base_url: str, **options: Any) -> AsyncWebClient:
    """An AsyncWebClient on `base_url` that honours Slack's Retry-After and retries dropped connections, boundedly."""
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=retry_handlers(), **options)


# slack_sdk's own default for a webhook post; a shared session carries it, as slack_sdk sets it per session.
RESPONSE_URL_TIMEOUT_S = 30


# What AsyncWebhookClient sends with every post.
_WEBHOOK_HEADERS = {"Content-Type": "application/json;charset=utf-8", "User-Agent": get_user_agent()}


class ResponseUrlSession:
    """One aiohttp session for every reply posted to a response_url: opened on first use, closed with the app."""

    def __init__(self, timeout_s: float = RESPONSE_URL_TIMEOUT_S) -> None:
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def get(self) -> aiohttp.ClientSession | None:
        """The shared session (opened now if need be), or None once closed: a late reply then opens its own."""
        if self._closed:
            return None
        if self._session is None:
            # Opened lazily, inside the running event loop, which aiohttp requires.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout_s))
        return self._session

    async def aclose(self) -> None:
        """Close the shared session; later replies fall back to a session of their own."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None


class RetryingRespond(AsyncRespond):
    """Bolt's respond(), waiting out a 429 from the response_url as web_client does, instead of dropping the reply."""

    def __init__(self, *, sessions: ResponseUrlSession | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._sessions = sessions

    async def __call__(self, text: str | dict = "", **fields: Any) -> WebhookResponse:
        """Post to the response_url; on 429, wait Retry-After (bounded) and post again."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = await self._post(text, fields)
            wait = retry_after_seconds(response.headers or {})
            if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES or wait > MAX_RETRY_AFTER_S:
                break
            await asyncio.sleep(wait + random.random())
        if response.status_code >= 400:
            # slack_sdk returns, not raises, on an HTTP error here; the operator should know a reply was lost.
            log.warning("a reply to Slack's response_url was refused (HTTP %d)", response.status_code)
        return response

    async def _post(self, text: str | dict, fields: dict[str, Any]) -> WebhookResponse:
        session = self._sessions.get() if self._sessions is not None else None
        if session is None:
            return await super().__call__(text, **fields)  # Bolt's way: a session opened for this one post
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        # Bolt's AsyncRespond opens (and tears down) an aiohttp session per reply; the shared one reuses
        # connections. The POST is AsyncWebhookClient.send_dict's, without building a client per reply
        # (it re-reads the proxy environment and the user agent each time: 5% of a reply's CPU, bench/load.py).
        message = _build_message(**text) if isinstance(text, dict) else _build_message(text=text, **fields)
        for attempt in range(CONNECTION_RETRIES + 1):
            try:
                async with session.post(
                    self.response_url, data=json.dumps(message), headers=_WEBHOOK_HEADERS, proxy=self.proxy,
                    ssl=self.ssl,
                ) as response:
                    body = (await response.read()).decode("utf-8", errors="replace")
                    return WebhookResponse(
                        url=self.response_url, status_code=response.status, body=body, headers=dict(response.headers)
                    )
            # A kept-alive connection Slack closed meanwhile: retried as slack_sdk's connection handler does.
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt == CONNECTION_RETRIES:
                    raise
                await asyncio.sleep(CONNECTION_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")


def respond_middleware(sessions: ResponseUrlSession) -> Callable[..., Awaitable[None]]:
    """Bolt middleware: listeners and the error handler get RetryingRespond, posting through `sessions`."""

    async def retrying_respond(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:  # noqa: A002
        if context.response_url:
            context["respond"] = RetryingRespond(
                response_url=context.response_url, proxy=context.client.proxy, ssl=context.client.ssl,
                sessions=sessions,
            )
        await next()

    return retrying_respond
