"""Buttons as Frugal makes them, for tests that press one: the value is an id in the button store."""

from __future__ import annotations

from typing import Any

from bot.infra.db.button_texts import SqlButtonTexts
from bot.infra.db.engine import make_sessionmaker
from bot.ports.button_texts import ButtonText


async def stored_button(
    frugal: Any,
    text: str,
    *,
    kind: str = "rewrite",
    team_id: str = "T0001",
    channel_id: str = "C0001",
    user_id: str = "U0001",
    original: str | None = "the original",
    thread_ts: str | None = None,
) -> str:
    """Keep `text` as a running Frugal keeps what a button posts; returns the value its button carries."""
    store = SqlButtonTexts(make_sessionmaker(frugal.container.engine))
    entry = ButtonText(
        team_id=team_id,
        channel_id=channel_id,
        user_id=user_id,
        kind=kind,
        text=text,
        original=original,
        thread_ts=thread_ts,
    )
    return await store.put(entry)


def channel_members(fake_slack: Any, *user_ids: str) -> None:
    """Make the fake Slack's conversations.members list these users (for every channel)."""
    fake_slack.responses["conversations.members"] = {
        "ok": True,
        "members": list(user_ids),
        "response_metadata": {"next_cursor": ""},
    }


def buttons(blocks: list[dict]) -> list[dict]:
    """Every button of a message's blocks."""
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def section_text(blocks: list[dict]) -> str:
    """The sections' texts, one after the other: what a reader reads of the message."""
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b)
