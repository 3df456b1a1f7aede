"""The App Home tab, rebuilt each time a user opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import home_blocks
from bot.slack.deps import deps_of

# users.conversations pages of 999 channels; beyond this many the list is cut (and the user told).
MAX_PAGES = 10


async def on_home_opened(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
    """app_home_opened (Home tab): publish this month's usage, model health and, for admins, every channel."""
    if event.get("tab") != "home":
        return
    deps = deps_of(context)
    user_id, team_id = event["user"], context.team_id
    member_of, note = await channels_of(client, user_id)
    is_admin = await deps.admins.is_admin(client, team_id, user_id)
    view = await deps.home.view(team_id, user_id, member_of, is_admin=is_admin)
    await client.views_publish(
        user_id=user_id, view=home_blocks.home_view(view, deps.home.timezone, channels_note=note)
    )


async def channels_of(client: AsyncWebClient, user_id: str) -> tuple[set[str], str | None]:
    """The public channels the user is in and the private ones shared with Frugal, and a note when incomplete."""
    channels: set[str] = set()
    cursor: str | None = None
    try:
        for _ in range(MAX_PAGES):
            page = await client.users_conversations(
                user=user_id, types="public_channel,private_channel", exclude_archived=True, limit=999, cursor=cursor
            )
            channels |= {c["id"] for c in page.get("channels") or []}
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return channels, None
    except SlackApiError as err:
        code = err.response.get("error", "unknown_error")
        return (
            channels,
            f"I couldn't list your channels (Slack said `{code}`), so only channels where you used Frugal are shown.",
        )
    return channels, f"You are in more channels than I can list here; only the first {len(channels):,} are counted."
