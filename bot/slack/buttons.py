"""Frugal's buttons: each carries only the id of what it acts on (kept server-side), and only the person
who asked may press it, in the conversation where they asked, and only to post where they are a member."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports.button_texts import ButtonText, ButtonTexts
from bot.ports.store import StoreUnavailable

log = logging.getLogger(__name__)

_KEY = "frugal_buttons"
# What conversations.members answers where Frugal cannot list the members (a DM; a channel it is not in).
UNLISTABLE = frozenset(
    {"channel_not_found", "not_in_channel", "missing_scope", "method_not_supported_for_channel_type"}
)
# conversations.members pages of 1,000; a channel with more members than this is not searched further.
MEMBER_PAGES = 20

NOT_YOURS = "Only the person who asked for this answer can use its buttons."
NOT_A_MEMBER = "You are not a member of this channel, so I won't post there for you. Nothing was posted."
UNVERIFIED = (
    "I couldn't check that you are a member of this channel (it has too many members to list), "
    "so nothing was posted. Copy the text instead."
)


class ButtonRefused(Exception):
    """The button cannot act: expired, not Frugal's, or not the clicker's; the message is fit to show them."""


def attach_buttons(store: ButtonTexts) -> Callable[..., Awaitable[None]]:
    """Bolt middleware making `store` available to the listeners of every request."""

    async def attach(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:  # noqa: A002 (Bolt's name)
        context[_KEY] = store
        await next()

    return attach


def buttons_of(context: AsyncBoltContext) -> ButtonTexts:
    """Where this request's button texts are kept."""
    return context[_KEY]


async def keep(context: AsyncBoltContext, entry: ButtonText) -> str | None:
    """Keep what an answer's buttons act on; returns the id the buttons carry, or None while the database is away.

    The answer was paid for by then: it is shown without buttons rather than lost.
    """
    try:
        return await buttons_of(context).put(entry)
    except StoreUnavailable:
        log.warning("answer shown without buttons: the database is unreachable")
        return None


async def pressed(context: AsyncBoltContext, body: dict[str, Any], action: dict[str, Any], stale: str) -> ButtonText:
    """What the pressed button acts on; raises ButtonRefused (with `stale` for a value Frugal does not know)."""
    entry = await buttons_of(context).get(action.get("value") or "")
    if entry is None:
        raise ButtonRefused(stale)
    clicker = (body.get("user") or {}).get("id")
    channel = (body.get("channel") or {}).get("id")
    if (entry.user_id, entry.channel_id) != (clicker, channel):
        raise ButtonRefused(NOT_YOURS)
    return entry


async def may_post(client: AsyncWebClient, channel_id: str, user_id: str) -> bool | None:
    """True when `user_id` is a member of `channel_id`, False when not, None when Frugal cannot see its members
    (a DM, or a channel Frugal is not in: then posting goes through Slack's own checks)."""
    cursor: str | None = None
    try:
        for _ in range(MEMBER_PAGES):
            page = await client.conversations_members(channel=channel_id, limit=1000, cursor=cursor)
            if user_id in (page.get("members") or []):
                return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return False
    except SlackApiError as err:
        if err.response.get("error") in UNLISTABLE:
            return None
        raise
    raise ButtonRefused(UNVERIFIED)
