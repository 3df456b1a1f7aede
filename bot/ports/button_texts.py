"""What Frugal's buttons act on, kept server-side: a button carries only an opaque id, never the text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ButtonText:
    """What a button posts or works on, and who asked for it where (the only one who may press it)."""

    team_id: str
    channel_id: str
    user_id: str
    kind: str  # "rewrite" or "classify"
    text: str  # what Post posts, fit to post
    original: str | None = None  # a rewrite's input, for "Try another style"
    thread_ts: str | None = None  # where "Post in thread" posts


class ButtonTexts(Protocol):
    """Button texts, each kept for a limited time."""

    async def put(self, entry: ButtonText) -> str:
        """Keep `entry`; returns the opaque id its buttons carry."""
        ...

    async def get(self, button_id: str) -> ButtonText | None:
        """The entry of `button_id`, or None when there is none (never made, or expired)."""
        ...

    async def purge(self) -> int:
        """Delete the expired entries; returns how many."""
        ...
