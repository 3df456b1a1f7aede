"""Posting digests to Slack: the message with chat.postMessage, the chart with files_upload_v2."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.digest import Digest, PublishFailed
from bot.slack.clients import web_client
from bot.slack.deps import WorkspaceOrgs
from bot.slack.digest_blocks import digest_message, period_label

# The bot token of a workspace (None: no workspace named); None when Frugal is not installed there.
TokenFor = Callable[[str | None], Awaitable[str | None]]

RETRYABLE = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "network_error"}
)
EXPLAIN = {
    "not_in_channel": "Frugal is not a member of this channel: invite it with `/invite @Frugal`, then try again.",
    "channel_not_found": "Frugal cannot see this channel: invite it with `/invite @Frugal` (private channels need it).",
    "is_archived": "The channel is archived.",
    "not_installed": "Frugal is not installed in this workspace.",
    "invalid_auth": "Slack refused Frugal's token: check SLACK_BOT_TOKEN, or reinstall the app.",
    "token_revoked": "Slack refused Frugal's token: check SLACK_BOT_TOKEN, or reinstall the app.",
    "account_inactive": "Slack refused Frugal's token: check SLACK_BOT_TOKEN, or reinstall the app.",
    "missing_scope": "Frugal's Slack app lacks a permission for digests (chat:write, files:write): reinstall it.",
    "ratelimited": "Slack is rate-limiting Frugal just now; try again in a minute.",
    "network_error": "Frugal could not reach Slack; try again in a minute.",
}


def static_token(token: str | None) -> TokenFor:
    """Single-workspace mode: the same bot token for every team."""

    async def token_for(_team_id: str | None) -> str | None:
        return token

    return token_for


def installation_tokens(installations: AsyncInstallationStore, workspaces: WorkspaceOrgs | None = None) -> TokenFor:
    """OAuth mode: each workspace's bot token from the installation store, found through its Grid org if it has one."""

    async def token_for(team_id: str | None) -> str | None:
        if team_id is None:
            return None
        org = await workspaces.org_of(team_id) if workspaces is not None else None
        enterprise_id, org_wide = org if org is not None else (None, False)
        bot = await installations.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=org_wide
        )
        return bot.bot_token if bot is not None else None

    return token_for


class SlackDigestPublisher:
    """DigestPublisher on the Slack Web API, with each workspace's own token."""

    def __init__(self, api_url: str, token_for: TokenFor) -> None:
        self._api_url = api_url
        self._token_for = token_for

    async def post_digest(self, digest: Digest, *, chart: bool) -> str:
        """Post the digest message to its channel; returns its ts."""
        client = await self._client(digest.team_id)
        names = await _display_names(client, [u.user_id for u in digest.top_users])
        text, blocks = digest_message(digest, names, chart=chart)
        response = await _call(client.chat_postMessage(channel=digest.channel_id, text=text, blocks=blocks))
        return response["ts"]

    async def post_chart(self, digest: Digest, png: bytes, thread_ts: str) -> None:
        """Upload the chart into the digest's thread (getUploadURLExternal, upload, completeUploadExternal)."""
        client = await self._client(digest.team_id)
        days = f"{digest.days[0].day:%Y-%m-%d}_{digest.days[-1].day:%Y-%m-%d}" if digest.days else "chart"
        await _call(
            client.files_upload_v2(
                channel=digest.channel_id,
                thread_ts=thread_ts,
                file=png,
                filename=f"frugal-cost-{days}.png",
                title="Daily cost by model",
                alt_txt=f"Bar chart of the daily cost by model, last {len(digest.days)} days up to {period_label(digest.period, ZoneInfo(digest.timezone))}",
            )
        )

    async def _client(self, team_id: str) -> AsyncWebClient:
        token = await self._token_for(team_id)
        if not token:
            raise PublishFailed("not_installed", retryable=False, message=EXPLAIN["not_installed"])
        return web_client(token, self._api_url)


async def _call(request: Awaitable[Any]) -> Any:
    """Await a Web API call, turning every way it can fail into PublishFailed."""
    try:
        return await request
    except SlackApiError as err:
        code = str(err.response.get("error") or "slack_error")
    except (TimeoutError, SlackClientError, aiohttp.ClientError):
        code = "network_error"
    raise PublishFailed(
        code, retryable=code in RETRYABLE, message=EXPLAIN.get(code, f"Slack refused the digest ({code}).")
    )


async def _display_names(client: AsyncWebClient, user_ids: list[str]) -> dict[str, str]:
    # Names, not <@mentions>: a weekly digest must not ping its top users.
    names = {}
    for user_id in user_ids:
        try:
            user = (await client.users_info(user=user_id))["user"]
        except (TimeoutError, SlackClientError, aiohttp.ClientError):
            continue  # the digest shows the user ID instead
        profile = user.get("profile") or {}
        names[user_id] = (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or user_id
        )
    return names
