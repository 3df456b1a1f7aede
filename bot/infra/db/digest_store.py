"""Digest subscriptions and exactly-once claims in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time

from sqlalchemy import Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.infra.db.digest_tables import DigestRunRow, DigestSubscriptionRow
from bot.infra.db.engine import unavailable_as
from bot.ports.digest_store import DigestSlot, Frequency, PendingRun, Subscription

_LIVE = DigestSubscriptionRow.ended_at.is_(None)
# Every public method: the digest tick, /frugal digest and `frugal digest` tell an outage from a bug by it.
_UNAVAILABLE = unavailable_as("the digest subscriptions and claims cannot be reached now")


class SqlDigestStore:
    """DigestStore on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @_UNAVAILABLE
    async def subscribe(
        self, team_id: str, channel_id: str, frequency: Frequency, send_time: time, user_id: str, now: datetime
    ) -> tuple[Subscription, Subscription | None]:
        """Make this the channel's schedule; returns it and the schedule it replaced (or the same one)."""
        try:
            return await self._subscribe(team_id, channel_id, frequency, send_time, user_id, now)
        except IntegrityError:
            # Another admin subscribed the channel at the same moment; apply ours over theirs.
            return await self._subscribe(team_id, channel_id, frequency, send_time, user_id, now)

    async def _subscribe(
        self, team_id: str, channel_id: str, frequency: Frequency, send_time: time, user_id: str, now: datetime
    ) -> tuple[Subscription, Subscription | None]:
        async with self._sessions.begin() as session:
            current = await session.scalar(
                select(DigestSubscriptionRow)
                .where(DigestSubscriptionRow.team_id == team_id, DigestSubscriptionRow.channel_id == channel_id, _LIVE)
                .with_for_update()
            )
            if current is not None and current.frequency == frequency.value and current.send_time == send_time:
                return _subscription(current), _subscription(current)
            if current is not None:
                current.ended_at = now
                # The partial unique index must see the old row ended before the new one goes in.
                await session.flush()
            row = DigestSubscriptionRow(
                team_id=team_id,
                channel_id=channel_id,
                frequency=frequency.value,
                send_time=send_time,
                created_by=user_id,
                created_at=now,
                ended_at=None,
            )
            session.add(row)
            await session.flush()
            return _subscription(row), _subscription(current) if current is not None else None

    @_UNAVAILABLE
    async def unsubscribe(self, team_id: str, channel_id: str, now: datetime) -> Subscription | None:
        """End the channel's schedule; returns it, or None when there was none."""
        async with self._sessions.begin() as session:
            row = await session.scalar(
                update(DigestSubscriptionRow)
                .where(DigestSubscriptionRow.team_id == team_id, DigestSubscriptionRow.channel_id == channel_id, _LIVE)
                .values(ended_at=now)
                .returning(DigestSubscriptionRow)
            )
            return _subscription(row) if row is not None else None

    @_UNAVAILABLE
    async def subscription(self, team_id: str, channel_id: str) -> Subscription | None:
        """The channel's live schedule."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(DigestSubscriptionRow).where(
                    DigestSubscriptionRow.team_id == team_id, DigestSubscriptionRow.channel_id == channel_id, _LIVE
                )
            )
            return _subscription(row) if row is not None else None

    @_UNAVAILABLE
    async def subscriptions(self, channel_id: str | None = None) -> list[Subscription]:
        """Every live schedule (of one channel ID when given)."""
        query = select(DigestSubscriptionRow).where(_LIVE).order_by(DigestSubscriptionRow.id)
        if channel_id is not None:
            query = query.where(DigestSubscriptionRow.channel_id == channel_id)
        async with self._sessions() as session:
            return [_subscription(row) for row in await session.scalars(query)]

    @_UNAVAILABLE
    async def claimed(self, channel_ids: Sequence[str], since: datetime) -> set[tuple[str, str, datetime, datetime]]:
        """(team, channel, period start, period end) of the claims on these channels' periods starting at or after `since`."""
        query = select(
            DigestRunRow.team_id, DigestRunRow.channel_id, DigestRunRow.period_start, DigestRunRow.period_end
        ).where(DigestRunRow.channel_id.in_(channel_ids), DigestRunRow.period_start >= since)
        async with self._sessions() as session:
            return {(team, channel, start, end) for team, channel, start, end in await session.execute(query)}

    @_UNAVAILABLE
    async def claim(self, subscription: Subscription, slot: DigestSlot, owner: str, now: datetime) -> int | None:
        """Insert the claim; its id when this caller won, None when the channel's digest for the period was claimed."""
        async with self._sessions.begin() as session:
            statement = _insert_or_skip(session, DigestRunRow).values(
                subscription_id=subscription.id,
                team_id=subscription.team_id,
                channel_id=subscription.channel_id,
                period_start=slot.period_start,
                period_end=slot.period_end,
                due_at=slot.due_at,
                status="claimed",
                attempts=1,
                claimed_by=owner[:64],
                claimed_at=now,
            )
            return await session.scalar(statement.returning(DigestRunRow.id))

    @_UNAVAILABLE
    async def failed_runs(self, max_attempts: int, tried_before: datetime) -> list[PendingRun]:
        """Failed runs of live subscriptions with attempts left, last tried before `tried_before`."""
        query = (
            select(DigestRunRow, DigestSubscriptionRow)
            .join(DigestSubscriptionRow, DigestRunRow.subscription_id == DigestSubscriptionRow.id)
            .where(
                DigestRunRow.status == "failed",
                DigestRunRow.attempts < max_attempts,
                DigestRunRow.claimed_at < tried_before,
                _LIVE,
            )
            .order_by(DigestRunRow.due_at)
        )
        async with self._sessions() as session:
            return [
                PendingRun(
                    run_id=run.id,
                    attempts=run.attempts,
                    subscription=_subscription(sub),
                    due_at=run.due_at,
                    period_start=run.period_start,
                    period_end=run.period_end,
                    message_ts=run.message_ts,
                )
                for run, sub in await session.execute(query)
            ]

    @_UNAVAILABLE
    async def reclaim(self, run_id: int, attempts: int, owner: str, now: datetime) -> bool:
        """Take a failed run for another attempt; False when another replica took it first."""
        async with self._sessions.begin() as session:
            # Compare-and-set on (status, attempts): of two replicas, the second matches no row.
            result = await session.execute(
                update(DigestRunRow)
                .where(DigestRunRow.id == run_id, DigestRunRow.status == "failed", DigestRunRow.attempts == attempts)
                .values(status="claimed", attempts=attempts + 1, claimed_by=owner[:64], claimed_at=now)
            )
            return result.rowcount == 1

    @_UNAVAILABLE
    async def record_message(self, run_id: int, message_ts: str) -> None:
        """Remember that the message is out, so a retry only sends what is missing."""
        await self._set(run_id, message_ts=message_ts)

    @_UNAVAILABLE
    async def mark_posted(self, run_id: int, now: datetime) -> None:
        """The digest is fully posted."""
        await self._set(run_id, status="posted", posted_at=now, error_code=None)

    @_UNAVAILABLE
    async def mark_failed(self, run_id: int, error_code: str, *, final: bool) -> None:
        """Posting failed; `final` stops further attempts."""
        await self._set(run_id, status="abandoned" if final else "failed", error_code=error_code[:64])

    async def _set(self, run_id: int, **values: object) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(DigestRunRow).where(DigestRunRow.id == run_id).values(**values))


def _insert_or_skip(session: AsyncSession, table: type[DigestRunRow]) -> Insert:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(
        index_elements=["team_id", "channel_id", "period_start", "period_end"]
    )


def _subscription(row: DigestSubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        team_id=row.team_id,
        channel_id=row.channel_id,
        frequency=Frequency(row.frequency),
        send_time=row.send_time,
        created_by=row.created_by,
        since=row.created_at,
    )
