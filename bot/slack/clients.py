"""Every Slack client Frugal builds: Web API clients and respond(), with bounded retries on 429 and dropped connections."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
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
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger(__name__)

# Two waits cover Slack's usual one-second throttles; a longer Retry-After means the answer would be stale,
# so the call fails (SlackApiError "ratelimited") and the caller reports it once.
RATE_LIMIT_RETRIES = 2
MAX_RETRY_AFTER_S = 30
# A reset or refused connection is retried with slack_sdk's short backoff (0.5 s, then 1 s).
CONNECTION_RETRIES = 2
# No retry on a 500 or 503: Slack may have posted the message before failing, and a second post is a duplicate.


class BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (sleeps Retry-After, then retries), refusing waits longer than max_wait_s."""

    def __init__(self, max_retry_count: int = RATE_LIMIT_RETRIES, max_wait_s: int = MAX_RETRY_AFTER_S) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """slack_sdk's answer (a 429, retries left), and no if Slack asks for a longer wait than max_wait_s."""
        if not await super().can_retry_async(state=state, request=request, response=response, error=error):
            return False
        return response is not None and retry_after_seconds(response.headers) <= self.max_wait_s

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        """Sleep Retry-After plus up to a second of jitter, as slack_sdk does, reading a fractional value too."""
        # slack_sdk's own parse is int(), which raises on a Retry-After of "1.5".
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
    """The retry handlers every Frugal Slack client carries (Web API and response_url alike)."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        BoundedRateLimitRetryHandler(),
    ]


def web_client(token: str | None, base_url: str, **options: Any) -> AsyncWebClient:
    """An AsyncWebClient on `base_url` that honours Slack's Retry-After and retries dropped connections, boundedly."""
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=retry_handlers(), **options)


# slack_sdk's own default for a webhook post; a shared session carries it, as slack_sdk sets it per session.
RESPONSE_URL_TIMEOUT_S = 30


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
    """Bolt's respond(), posted by slack_sdk's AsyncWebhookClient with Frugal's retry handlers and a shared session."""

    def __init__(self, *, sessions: ResponseUrlSession | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._sessions = sessions

    async def __call__(  # noqa: PLR0913 (AsyncRespond's own parameters)
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[Any] | None = None,
        attachments: Sequence[Any] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        """Post to the response_url; a 429 is waited out (bounded), a dropped connection retried."""
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        if isinstance(text, dict):
            message = {"text": "", **text}
        else:
            # As Bolt's respond(): text always, the rest only when given (None values are dropped by slack_sdk).
            message = {
                "text": text,
                "blocks": blocks or None,
                "attachments": attachments or None,
                "response_type": response_type,
                "replace_original": replace_original,
                "delete_original": delete_original,
                "unfurl_links": unfurl_links,
                "unfurl_media": unfurl_media,
                "thread_ts": thread_ts,
                "metadata": metadata,
            }
        client = AsyncWebhookClient(
            url=self.response_url,
            timeout=RESPONSE_URL_TIMEOUT_S,
            proxy=self.proxy,
            ssl=self.ssl,
            session=self._sessions.get() if self._sessions is not None else None,
            retry_handlers=retry_handlers(),
        )
        response = await client.send_dict(message)
        if response.status_code >= 400:
            # slack_sdk returns, not raises, on an HTTP error here; the operator should know a reply was lost.
            log.warning("a reply to Slack's response_url was refused (HTTP %d)", response.status_code)
        return response


def respond_middleware(sessions: ResponseUrlSession) -> Callable[..., Awaitable[None]]:
    """Bolt middleware: listeners and the error handler get RetryingRespond, posting through `sessions`."""

    async def retrying_respond(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:  # noqa: A002
        if context.response_url:
            context["respond"] = RetryingRespond(
                response_url=context.response_url,
                proxy=context.client.proxy,
                ssl=context.client.ssl,
                sessions=sessions,
            )
        await next()

    return retrying_respond
