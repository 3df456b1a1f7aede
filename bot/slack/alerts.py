"""Admin alerts as Slack DMs to each FRUGAL_ADMINS user, at most once an hour per problem."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.slack.clients import web_client
from bot.slack.digest_publisher import TokenFor

log = logging.getLogger(__name__)

DEDUPE_SECONDS = 3600.0


class SlackAdminAlerts:
    """AdminAlerts that logs each alert and DMs it to the configured admins in the background."""

    def __init__(
        self,
        admins: frozenset[str],
        *,
        api_url: str,
        token_for: TokenFor,
        clock: Callable[[], float] = time.monotonic,
        dedupe_seconds: float = DEDUPE_SECONDS,
    ) -> None:
        self._admins = sorted(admins)
        self._api_url = api_url
        self._token_for = token_for
        self._clock = clock
        self._dedupe_seconds = dedupe_seconds
        self._quiet_until: dict[str, float] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def alert(self, team_id: str | None, text: str, *, dedupe_key: str | None = None) -> None:
        """Log the alert and DM it to each admin, unless the same problem was reported within the hour."""
        key = dedupe_key or text
        now = self._clock()
        if self._quiet_until.get(key, now) > now:
            return
        self._quiet_until[key] = now + self._dedupe_seconds
        log.warning("admin alert: %s", text)
        if not self._admins:
            return
        # The user's answer must not wait on Slack; aclose() waits for what is still being sent.
        task = asyncio.create_task(self._send(team_id, text))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def aclose(self) -> None:
        """Wait for alerts still being sent."""
        if self._sending:
            await asyncio.gather(*self._sending)

    async def _send(self, team_id: str | None, text: str) -> None:
        token = await self._token_for(team_id)
        if token is None:
            log.warning("admin alert not sent to Slack: no bot token for workspace %s", team_id)
            return
        client = web_client(token, self._api_url)
        for admin in self._admins:
            try:
                await client.chat_postMessage(channel=admin, text=f":warning: *Frugal needs an admin:* {text}")
            except SlackApiError as err:
                log.warning("admin alert not delivered to %s (%s)", admin, err.response.get("error"))
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                log.warning("admin alert not delivered to %s (%s)", admin, type(err).__name__)
