"""Digest subscriptions and the exactly-once claims on digests: the store's interface and the data it carries.

The store is in bot/infra/db/digest_store.py; when digests are due is decided in bot/services/digest_schedule.py.
Every method raises StoreUnavailable (bot/ports/store.py) while the database cannot be reached.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Protocol


class Frequency(enum.Enum):
    """How often a channel gets its digest."""

    DAILY = "daily"
    WEEKLY = "weekly"

    @property
    def days(self) -> int:
        """Length of one period in local days."""
        return 1 if self is Frequency.DAILY else 7


@dataclass(frozen=True)
class Subscription:
    """A channel's digest schedule, live since `since` (UTC)."""

    id: int
    team_id: str
    channel_id: str
    frequency: Frequency
    send_time: time
    created_by: str
    since: datetime


@dataclass(frozen=True)
class DigestSlot:
    """One scheduled digest of a channel as it is claimed: when it was due, and its period's bounds (UTC, end exclusive).

    A channel's digest for a period is claimed at most once, whichever replica claims it.
    """

    due_at: datetime
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class PendingRun:
    """A claimed digest whose posting failed and may be tried again."""

    run_id: int
    attempts: int
    subscription: Subscription
    due_at: datetime
    period_start: datetime
    period_end: datetime
    message_ts: str | None


class DigestStore(Protocol):
    """Subscriptions and the exactly-once claims on digests."""

    async def subscribe(
        self, team_id: str, channel_id: str, frequency: Frequency, send_time: time, user_id: str, now: datetime
    ) -> tuple[Subscription, Subscription | None]:
        """Make this the channel's schedule; returns it and the schedule it replaced (or the same one)."""
        ...

    async def unsubscribe(self, team_id: str, channel_id: str, now: datetime) -> Subscription | None:
        """End the channel's schedule; returns it, or None when there was none."""
        ...

    async def subscription(self, team_id: str, channel_id: str) -> Subscription | None:
        """The channel's live schedule."""
        ...

    async def subscriptions(self, channel_id: str | None = None) -> list[Subscription]:
        """Every live schedule (of one channel ID when given)."""
        ...

    async def claimed(self, channel_ids: Sequence[str], since: datetime) -> set[tuple[str, str, datetime, datetime]]:
        """(team, channel, period start, period end) of the claims on these channels' periods starting at or after `since`."""
        ...

    async def claim(self, subscription: Subscription, slot: DigestSlot, owner: str, now: datetime) -> int | None:
        """Insert the claim; its id when this caller won, None when the channel's digest for the period was claimed."""
        ...

    async def failed_runs(self, max_attempts: int, tried_before: datetime) -> list[PendingRun]:
        """Failed runs of live subscriptions with attempts left, last tried before `tried_before`."""
        ...

    async def reclaim(self, run_id: int, attempts: int, owner: str, now: datetime) -> bool:
        """Take a failed run for another attempt; False when another replica took it first."""
        ...

    async def record_message(self, run_id: int, message_ts: str) -> None:
        """Remember that the message is out, so a retry only sends what is missing."""
        ...

    async def mark_posted(self, run_id: int, now: datetime) -> None:
        """The digest is fully posted."""
        ...

    async def mark_failed(self, run_id: int, error_code: str, *, final: bool) -> None:
        """Posting failed; `final` stops further attempts."""
        ...
