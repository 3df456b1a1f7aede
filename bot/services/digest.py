"""Cost digests: subscriptions, and posting each (channel, period) digest exactly once across replicas."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.ports.digest_store import DigestStore, Frequency, Subscription
from bot.services.digest_content import (
    CHART_DAYS,
    TOP_USERS,
    DayCost,
    Digest,
    DigestBuilder,
    DigestQueries,
    Energy,
    LifecycleWarnings,
    ModelUsage,
    Savings,
    UsageGroup,
    UserCost,
)
from bot.services.digest_schedule import (
    DAY,
    DEFAULT_SEND_TIME,
    DigestPeriod,
    DueDigest,
    due_digests,
    grace,
    next_send,
    utcnow,
)

# The digest's names from its modules and its store's port, so the Slack adapter imports them from here.
__all__ = [
    "CHART_DAYS",
    "DAY",
    "DEFAULT_SEND_TIME",
    "MAX_ATTEMPTS",
    "RETRY_DELAY",
    "TOP_USERS",
    "ChartRenderer",
    "DayCost",
    "Digest",
    "DigestBuilder",
    "DigestPeriod",
    "DigestPublisher",
    "DigestQueries",
    "DigestService",
    "DigestStore",
    "DueDigest",
    "Energy",
    "Frequency",
    "LifecycleWarnings",
    "ModelUsage",
    "PublishFailed",
    "Savings",
    "Subscription",
    "UsageGroup",
    "UserCost",
    "due_digests",
    "grace",
    "next_send",
    "utcnow",
]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_DELAY = timedelta(minutes=5)


class PublishFailed(Exception):
    """Slack did not take the digest; `code` is Slack's error code, never message text."""

    def __init__(self, code: str, *, retryable: bool, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class DigestPublisher(Protocol):
    """Where digests go (Slack); raises PublishFailed."""

    async def post_digest(self, digest: Digest, *, chart: bool) -> str:
        """Post the digest message (saying whether a chart follows); returns its ts."""
        ...

    async def post_chart(self, digest: Digest, png: bytes, thread_ts: str) -> None:
        """Attach the chart under the digest message."""
        ...


ChartRenderer = Callable[[Digest], bytes | None]


def _default_owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DigestService:
    """Subscriptions, scheduled digests posted exactly once, and digests on demand."""

    def __init__(
        self,
        store: DigestStore,
        builder: DigestBuilder,
        publisher: DigestPublisher,
        chart: ChartRenderer,
        *,
        tz: ZoneInfo,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._builder = builder
        self._publisher = publisher
        self._chart = chart
        self.tz = tz
        self._clock = clock
        self._owner = owner or _default_owner()
        self._ticking = asyncio.Lock()
        self._closing = False

    # subscriptions

    async def subscribe(
        self, team_id: str, channel_id: str, user_id: str, frequency: Frequency, send_time: time
    ) -> tuple[Subscription, Subscription | None]:
        """Set the channel's schedule; returns it and the one it replaced (the same one if unchanged)."""
        return await self._store.subscribe(team_id, channel_id, frequency, send_time, user_id, self._clock())

    async def unsubscribe(self, team_id: str, channel_id: str) -> Subscription | None:
        """Stop the channel's digests; returns the ended schedule, or None if there was none."""
        return await self._store.unsubscribe(team_id, channel_id, self._clock())

    async def subscription(self, team_id: str, channel_id: str) -> Subscription | None:
        """The channel's schedule, if any."""
        return await self._store.subscription(team_id, channel_id)

    async def subscriptions(self, channel_id: str | None = None) -> list[Subscription]:
        """Every live schedule, or those of one channel."""
        return await self._store.subscriptions(channel_id)

    def next_send(self, sub: Subscription) -> datetime:
        """When the subscription's next digest is scheduled."""
        return next_send(sub.frequency, sub.send_time, max(sub.since, self._clock()), self.tz)

    # posting

    async def post_now(self, team_id: str, channel_id: str, frequency: Frequency) -> Digest:
        """Post the current period so far, claiming nothing; raises PublishFailed."""
        now = self._clock()
        digest = await self._builder.build(team_id, channel_id, DigestPeriod.to_date(frequency, now, self.tz), now)
        png = await asyncio.to_thread(self._chart, digest)
        ts = await self._publisher.post_digest(digest, chart=png is not None)
        if png is not None:
            await self._publisher.post_chart(digest, png, ts)
        return digest

    async def tick(self) -> int:
        """Post every due, unclaimed digest and retry failed ones; returns how many were posted."""
        async with self._ticking:
            if self._closing:
                return 0
            return await self._post_due() + await self._retry_failed()

    async def aclose(self) -> None:
        """Let a running tick finish, and start no new one."""
        self._closing = True
        async with self._ticking:
            pass

    async def _post_due(self) -> int:
        now = self._clock()
        due = [(sub, d) for sub in await self._store.subscriptions() for d in due_digests(sub, now, self.tz)]
        if not due:
            return 0
        taken = await self._store.claimed(
            sorted({sub.channel_id for sub, _ in due}), min(d.period.start for _, d in due)
        )
        posted = 0
        for sub, d in sorted(due, key=lambda item: item[1].due_at):
            if self._closing:
                break
            if (sub.team_id, sub.channel_id, d.period.start, d.period.end) in taken:
                continue
            # Build before claiming: a claim is only ever taken by a replica ready to post.
            digest, png = await self._prepare(sub, d.period)
            run_id = await self._store.claim(sub, d.slot, self._owner, self._clock())
            if run_id is not None:
                posted += await self._publish(run_id, digest, png, None, attempt=1)
        return posted

    async def _retry_failed(self) -> int:
        now = self._clock()
        posted = 0
        for run in await self._store.failed_runs(MAX_ATTEMPTS, now - RETRY_DELAY):
            if self._closing:
                break
            sub = run.subscription
            if now - run.due_at > grace(sub.frequency):
                await self._store.mark_failed(run.run_id, "expired", final=True)
                continue
            start_day = run.period_start.astimezone(self.tz).date()
            period = DigestPeriod.ending_before(sub.frequency, start_day + sub.frequency.days * DAY, self.tz)
            digest, png = await self._prepare(sub, period)
            if await self._store.reclaim(run.run_id, run.attempts, self._owner, self._clock()):
                posted += await self._publish(run.run_id, digest, png, run.message_ts, attempt=run.attempts + 1)
        return posted

    async def _prepare(self, sub: Subscription, period: DigestPeriod) -> tuple[Digest, bytes | None]:
        digest = await self._builder.build(sub.team_id, sub.channel_id, period, self._clock())
        return digest, await asyncio.to_thread(self._chart, digest)

    async def _publish(
        self, run_id: int, digest: Digest, png: bytes | None, message_ts: str | None, *, attempt: int
    ) -> int:
        try:
            if message_ts is None:
                message_ts = await self._publisher.post_digest(digest, chart=png is not None)
                await self._store.record_message(run_id, message_ts)
            if png is not None:
                await self._publisher.post_chart(digest, png, message_ts)
        except PublishFailed as err:
            final = not err.retryable or attempt >= MAX_ATTEMPTS
            await self._store.mark_failed(run_id, err.code, final=final)
            log.warning(
                "digest run %d for channel %s failed on attempt %d (%s)%s",
                run_id,
                digest.channel_id,
                attempt,
                err.code,
                "; giving up" if final else "; will retry",
            )
            return 0
        await self._store.mark_posted(run_id, self._clock())
        log.info("digest run %d posted to channel %s", run_id, digest.channel_id)
        return 1
