"""Cost digests: periods in FRUGAL_TIMEZONE, the digest's data, and posting each one exactly once."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.catalog import Catalog
from bot.ports.quota import QuotaReader, QuotaUse

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
DEFAULT_SEND_TIME = time(9, 0)
CHART_DAYS = 7
TOP_USERS = 5
MAX_ATTEMPTS = 3
RETRY_DELAY = timedelta(minutes=5)


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


class Frequency(enum.Enum):
    """How often a channel gets its digest."""

    DAILY = "daily"
    WEEKLY = "weekly"

    @property
    def days(self) -> int:
        """Length of one period in local days."""
        return 1 if self is Frequency.DAILY else 7

    @property
    def grace(self) -> timedelta:
        """How late a missed digest is still posted after downtime.

        A day and a half for daily digests: an outage through a night and the next day still
        delivers yesterday's digest. Eight days for weekly ones: even a week-long freeze still
        delivers last week's. Either way at most two digests of a channel are due at once, and
        anything older is skipped: by then a newer digest covers the channel.
        """
        return timedelta(hours=36) if self is Frequency.DAILY else timedelta(days=8)


# --- periods -----------------------------------------------------------------


def _at(day: date, clock_time: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock_time, tzinfo=tz).astimezone(timezone.utc)


def _shift_wall_clock(instant: datetime, days: int, tz: ZoneInfo) -> datetime:
    local = instant.astimezone(tz).replace(tzinfo=None) - timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(timezone.utc)


@dataclass(frozen=True)
class DigestPeriod:
    """The local days a digest covers, with their bounds in UTC (end exclusive)."""

    frequency: Frequency
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    complete: bool

    @classmethod
    def ending_before(cls, frequency: Frequency, send_day: date, tz: ZoneInfo) -> DigestPeriod:
        """The complete period that a digest sent on `send_day` covers: the days just before it."""
        first = send_day - frequency.days * DAY
        return cls(frequency, _at(first, time(0), tz), _at(send_day, time(0), tz), first, send_day - DAY, True)

    @classmethod
    def to_date(cls, frequency: Frequency, now: datetime, tz: ZoneInfo) -> DigestPeriod:
        """The current period so far: today, or this week since Monday."""
        today = now.astimezone(tz).date()
        first = today if frequency is Frequency.DAILY else today - today.weekday() * DAY
        return cls(frequency, _at(first, time(0), tz), now, first, today, False)

    @property
    def days(self) -> int:
        """Local days between the starts of this period and the one before."""
        return (self.last_day - self.first_day).days + 1 if self.complete else self.frequency.days

    def previous(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The period before, as long as this one (the same elapsed part of it for a period to date)."""
        return _at(self.first_day - self.days * DAY, time(0), tz), _shift_wall_clock(self.end, self.days, tz)


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
class DueDigest:
    """One scheduled digest: when it was due, and the period it covers."""

    due_at: datetime
    period: DigestPeriod


def due_digests(sub: Subscription, now: datetime, tz: ZoneInfo) -> list[DueDigest]:
    """Sends of `sub` that are due: scheduled since it began, at most `grace` ago; oldest first."""
    today = now.astimezone(tz).date()
    due = []
    for back in range(sub.frequency.grace.days + 2, -1, -1):
        day = today - back * DAY
        if sub.frequency is Frequency.WEEKLY and day.weekday() != 0:
            continue
        at = _at(day, sub.send_time, tz)
        if sub.since <= at <= now and now - at <= sub.frequency.grace:
            due.append(DueDigest(at, DigestPeriod.ending_before(sub.frequency, day, tz)))
    return due


def next_send(frequency: Frequency, send_time: time, after: datetime, tz: ZoneInfo) -> datetime:
    """The first scheduled send strictly after `after`."""
    day = after.astimezone(tz).date()
    while True:
        at = _at(day, send_time, tz)
        if at > after and (frequency is Frequency.DAILY or day.weekday() == 0):
            return at
        day += DAY


# --- the digest's data ---------------------------------------------------------


@dataclass(frozen=True)
class UsageGroup:
    """One group of ledger rows: a time bucket × model × outcome × error code, summed in SQL."""

    bucket: int
    model: str
    ok: bool
    error_code: str | None
    rows: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    unpriced: int
    compared: int  # rows priced on both their model and the baseline
    compared_cost_usd: Decimal
    compared_baseline_usd: Decimal
    energy_wh: float
    energy_missing: int


@dataclass(frozen=True)
class UserCost:
    """A user's answered requests and their cost in the period."""

    user_id: str
    requests: int
    cost_usd: Decimal


class DigestQueries(Protocol):
    """The ledger aggregations a digest needs (GROUP BY in the database)."""

    async def usage_groups(self, team_id: str, channel_id: str, bounds: Sequence[datetime]) -> list[UsageGroup]:
        """Groups of the rows in [bounds[0], bounds[-1]); bucket i is [bounds[i], bounds[i+1])."""
        ...

    async def top_users(self, team_id: str, channel_id: str, start: datetime, end: datetime, limit: int) -> list[UserCost]:
        """The users with the highest cost in [start, end)."""
        ...


@dataclass(frozen=True)
class ModelUsage:
    """Answered requests and cost of one model."""

    model: str
    requests: int
    cost_usd: Decimal
    unpriced: int


@dataclass(frozen=True)
class Savings:
    """What the requests cost against what the baseline model would have cost."""

    baseline_model: str
    baseline_usd: Decimal
    saved_usd: Decimal
    compared: int


@dataclass(frozen=True)
class Energy:
    """Estimated energy, the estimates' sources, and requests without an estimate."""

    wh: float
    sources: tuple[str, ...]
    missing: int


@dataclass(frozen=True)
class DayCost:
    """One local day's cost per model, for the chart."""

    day: date
    by_model: dict[str, Decimal]


@dataclass(frozen=True)
class Digest:
    """Everything a channel's digest says; no Slack here."""

    team_id: str
    channel_id: str
    period: DigestPeriod
    timezone: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    unpriced: int
    models: tuple[ModelUsage, ...]
    savings: Savings | None
    primary_model: str
    fallbacks: int
    failures: tuple[tuple[str, int], ...]
    quotas: tuple[QuotaUse, ...] | None
    top_users: tuple[UserCost, ...]
    energy: Energy | None
    lifecycle_warnings: tuple[str, ...]
    previous_requests: int
    previous_cost_usd: Decimal
    days: tuple[DayCost, ...]

    @property
    def empty(self) -> bool:
        """True when nothing at all was asked of the models in the period."""
        return self.requests == 0 and not self.failures


LifecycleWarnings = Callable[[], Awaitable[list[str]]]


class DigestBuilder:
    """Builds a channel's digest for a period from the ledger, the quotas and the model lifecycle."""

    def __init__(
        self,
        queries: DigestQueries,
        catalog: Catalog,
        *,
        primary_model: str,
        baseline_model: str,
        tz: ZoneInfo,
        quotas: QuotaReader | None = None,
        lifecycle_warnings: LifecycleWarnings | None = None,
    ) -> None:
        self._queries = queries
        self._catalog = catalog
        self._primary = primary_model
        self._baseline = baseline_model
        self._tz = tz
        self._quotas = quotas
        self._lifecycle = lifecycle_warnings

    async def build(self, team_id: str, channel_id: str, period: DigestPeriod, now: datetime) -> Digest:
        """The digest of one channel for one period; `now` is when quota use is read."""
        prev_start, prev_end = period.previous(self._tz)
        chart_first = min(period.first_day, period.last_day - (CHART_DAYS - 1) * DAY)
        bounds = self._bounds(period, min(prev_start, _at(chart_first, time(0), self._tz)), prev_end)
        groups = await self._queries.usage_groups(team_id, channel_id, bounds)
        top = await self._queries.top_users(team_id, channel_id, period.start, period.end, TOP_USERS)

        def within(g: UsageGroup, start: datetime, end: datetime) -> bool:
            return start <= bounds[g.bucket] and bounds[g.bucket + 1] <= end

        answered = [g for g in groups if g.ok and within(g, period.start, period.end)]
        failed = [g for g in groups if not g.ok and within(g, period.start, period.end)]
        before = [g for g in groups if g.ok and within(g, prev_start, prev_end)]
        return Digest(
            team_id=team_id,
            channel_id=channel_id,
            period=period,
            timezone=self._tz.key,
            requests=sum(g.rows for g in answered),
            prompt_tokens=sum(g.prompt_tokens for g in answered),
            cached_tokens=sum(g.cached_tokens for g in answered),
            completion_tokens=sum(g.completion_tokens for g in answered),
            cost_usd=sum((g.cost_usd for g in answered), Decimal(0)),
            unpriced=sum(g.unpriced for g in answered),
            models=_by_model(answered),
            savings=self._savings(answered),
            primary_model=self._primary,
            fallbacks=sum(g.rows for g in answered if g.model != self._primary),
            failures=_failures(failed),
            quotas=await self._read_quotas(team_id, channel_id, now),
            top_users=tuple(top),
            energy=self._energy(answered),
            lifecycle_warnings=tuple(await self._lifecycle()) if self._lifecycle else (),
            previous_requests=sum(g.rows for g in before),
            previous_cost_usd=sum((g.cost_usd for g in before), Decimal(0)),
            days=self._days(groups, bounds, chart_first, period.last_day),
        )

    def _bounds(self, period: DigestPeriod, first: datetime, prev_end: datetime) -> list[datetime]:
        # Local midnights (DST-correct, computed here) split the window into day buckets for SQL.
        points = {first, period.start, prev_end, period.end}
        day = first.astimezone(self._tz).date()
        while (midnight := _at(day, time(0), self._tz)) < period.end:
            points.add(midnight)
            day += DAY
        return sorted(p for p in points if first <= p <= period.end)

    def _savings(self, answered: list[UsageGroup]) -> Savings | None:
        compared = sum(g.compared for g in answered)
        if not compared:
            return None
        baseline = sum((g.compared_baseline_usd for g in answered), Decimal(0))
        cost = sum((g.compared_cost_usd for g in answered), Decimal(0))
        return Savings(self._baseline, baseline, baseline - cost, compared)

    def _energy(self, answered: list[UsageGroup]) -> Energy | None:
        if not answered:
            return None
        sources: list[str] = []
        for g in answered:
            info = self._catalog.get(g.model)
            if g.energy_missing < g.rows and info and info.energy and info.energy.source not in sources:
                sources.append(info.energy.source)
        return Energy(sum(g.energy_wh for g in answered), tuple(sources), sum(g.energy_missing for g in answered))

    def _days(self, groups: list[UsageGroup], bounds: list[datetime], first: date, last: date) -> tuple[DayCost, ...]:
        days = {first + i * DAY: defaultdict(Decimal) for i in range((last - first).days + 1)}
        for g in groups:
            day = bounds[g.bucket].astimezone(self._tz).date()
            if g.ok and day in days:
                days[day][g.model] += g.cost_usd
        return tuple(DayCost(day, dict(costs)) for day, costs in days.items())

    async def _read_quotas(self, team_id: str, channel_id: str, now: datetime) -> tuple[QuotaUse, ...] | None:
        if self._quotas is None:
            return None
        return tuple(await self._quotas.channel_quotas(team_id, channel_id, now))


def _by_model(answered: list[UsageGroup]) -> tuple[ModelUsage, ...]:
    totals: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0])
    for g in answered:
        t = totals[g.model]
        t[0] += g.rows
        t[1] += g.cost_usd
        t[2] += g.unpriced
    models = [ModelUsage(model, n, cost, unpriced) for model, (n, cost, unpriced) in totals.items()]
    return tuple(sorted(models, key=lambda m: (-m.cost_usd, -m.requests, m.model)))


def _failures(failed: list[UsageGroup]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = defaultdict(int)
    for g in failed:
        counts[g.error_code or "unknown"] += g.rows
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


# --- storage and posting ports ---------------------------------------------------


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

    async def claim(self, subscription: Subscription, due: DueDigest, owner: str, now: datetime) -> int | None:
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


# --- the service ----------------------------------------------------------------


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
            run_id = await self._store.claim(sub, d, self._owner, self._clock())
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
            if now - run.due_at > sub.frequency.grace:
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

    async def _publish(self, run_id: int, digest: Digest, png: bytes | None, message_ts: str | None, *, attempt: int) -> int:
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
                run_id, digest.channel_id, attempt, err.code, "; giving up" if final else "; will retry",
            )
            return 0
        await self._store.mark_posted(run_id, self._clock())
        log.info("digest run %d posted to channel %s", run_id, digest.channel_id)
        return 1
