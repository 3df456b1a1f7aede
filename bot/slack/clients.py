"""Every Slack client Frugal builds: Web API clients and respond(), with bounded retries on 429 and dropped connections."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookResponse

log = logging.getLogger(__name__)

# Two waits cover Slack's usual one-second throttles; a longer Retry-After means the answer would be stale,
# so the call fails (SlackApiError "ratelimited") and the caller reports it once.
RATE_LIMIT_RETRIES = 2
MAX_RETRY_AFTER_S = 30
# A reset or refused connection is retried with slack_sdk's short backoff (0.5 s, then 1 s).
CONNECTION_RETRIES = 2


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


class RetryingRespond(AsyncRespond):
    """Bolt's respond(), waiting out a 429 from the response_url as web_client does, instead of dropping the reply."""

    async def __call__(self, *args: Any, **kwargs: Any) -> WebhookResponse:
        """Post to the response_url; on 429, wait Retry-After (bounded) and post again."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = await super().__call__(*args, **kwargs)
            wait = retry_after_seconds(response.headers or {})
            if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES or wait > MAX_RETRY_AFTER_S:
                break
            await asyncio.sleep(wait + random.random())
        if response.status_code >= 400:
            # slack_sdk returns, not raises, on an HTTP error here; the operator should know a reply was lost.
            log.warning("a reply to Slack's response_url was refused (HTTP %d)", response.status_code)
        return response


async def retrying_respond(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:  # noqa: A002
    """Bolt middleware: listeners and the error handler get RetryingRespond as their respond()."""
    if context.response_url:
        context["respond"] = RetryingRespond(
            response_url=context.response_url, proxy=context.client.proxy, ssl=context.client.ssl
        )
    await next()
