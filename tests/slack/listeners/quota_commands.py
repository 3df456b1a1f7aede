"""Sending /frugal quota as an admin, and reading what it stored (tests/slack/listeners/test_quota*.py)."""

from __future__ import annotations

from bot.ports.quota_store import LimitRecord, Scope
from tests.slack.listeners.conftest import QUOTA_ADMIN

CHANNEL = "C0001"


async def quota(frugal, text: str, *, user: str = QUOTA_ADMIN, channel: str = CHANNEL) -> dict:
    """The ack of `/frugal quota <text>`."""
    response, _ = await frugal.command("/frugal", f"quota {text}", user_id=user, channel_id=channel)
    assert response.status == 200
    return await response.json()


async def limits(frugal, scope: Scope = Scope.CHANNEL, target: str = CHANNEL) -> list[LimitRecord]:
    """The limits stored for the scope and target."""
    return await frugal.container.quota.limits("T0001", scope, target)


def text_of(body: dict) -> str:
    """An ack's text and its blocks' texts together."""
    return body["text"] + "".join(b["text"]["text"] for b in body.get("blocks", []) if "text" in b)
