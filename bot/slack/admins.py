"""Who may run admin commands: FRUGAL_ADMINS plus the workspace's admins and owners."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0


class AdminDirectory:
    """Answers "is this user an admin?", caching users.info for a few minutes."""

    def __init__(self, configured: frozenset[str], *, ttl: float = CACHE_SECONDS) -> None:
        self._configured = configured
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}

    async def is_admin(self, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
        """True for FRUGAL_ADMINS and for workspace admins, owners and primary owners."""
        if user_id in self._configured:
            return True
        key = (team_id, user_id)
        cached = self._cache.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        try:
            user = (await client.users_info(user=user_id))["user"]
        except SlackApiError as err:
            # Without an answer we cannot grant admin rights; the caller is refused and told.
            log.warning("users.info failed (%s); treating the user as a non-admin", err.response.get("error"))
            return False
        admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._cache[key] = (admin, time.monotonic() + self._ttl)
        return admin
