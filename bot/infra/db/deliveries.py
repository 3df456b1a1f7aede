"""Slack deliveries already seen, keyed so a retried or duplicated one is processed once: the table and its SQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

from sqlalchemy import CheckConstraint, Index, String, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base

log = logging.getLogger(__name__)

CLAIMED = "claimed"
DONE = "done"
KEY_LENGTH = 255
# Longer than any one request takes (model calls with fail-over), shorter than Slack's last retry (~5 min
# after the first): a retry of a delivery whose process died is taken over; one still being worked on is not.
LEASE = timedelta(minutes=3)
# Slack stops retrying within minutes; a day of rows is plenty and keeps the table small.
RETENTION = timedelta(days=1)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class DeliveryRow(Base):
    """One Slack delivery (event, command or interaction) by its idempotency key."""

    __tablename__ = "slack_deliveries"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    # 1 for the first claim; each takeover after an expired lease adds one.
    claims: Mapped[int]
    first_seen_at: Mapped[datetime]
    claimed_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime]
    done_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(f"state IN ('{CLAIMED}', '{DONE}')", name="state"),
        Index(None, "first_seen_at"),
    )


class SqlDeliveries:
    """Once-only claims of Slack deliveries on the Frugal database, shared by every replica."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lease: timedelta = LEASE,
        retention: timedelta = RETENTION,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._lease = lease
        self._retention = retention
        self._clock = clock

    async def claim(self, key: str, *, team_id: str | None, kind: str) -> int | None:
        """Claim the delivery in one statement: its claim number (1, or more for a takeover), None if taken."""
        now = self._clock()
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(DeliveryRow).values(
            key=key,
            team_id=team_id,
            kind=kind,
            state=CLAIMED,
            claims=1,
            first_seen_at=now,
            claimed_at=now,
            lease_expires_at=now + self._lease,
            done_at=None,
        )
        # A row already there is taken over only when its claimer never finished and its lease ran out;
        # the unique key makes concurrent claimers (any replica) queue on the row, so one wins.
        statement = statement.on_conflict_do_update(
            index_elements=[DeliveryRow.key],
            set_={
                "claims": DeliveryRow.claims + 1,
                "claimed_at": statement.excluded.claimed_at,
                "lease_expires_at": statement.excluded.lease_expires_at,
            },
            where=(DeliveryRow.state == CLAIMED) & (DeliveryRow.lease_expires_at < statement.excluded.claimed_at),
        )
        async with self._autocommit() as conn:
            claims = await conn.scalar(statement.returning(DeliveryRow.claims))
        if claims is not None and claims > 1:
            log.warning("%s delivery taken over after its lease expired (claim %d)", kind, claims)
        return claims

    async def finish(self, key: str) -> None:
        """Mark the delivery done: no retry of it runs again, whatever its lease."""
        async with self._autocommit() as conn:
            await conn.execute(
                update(DeliveryRow).where(DeliveryRow.key == key).values(state=DONE, done_at=self._clock())
            )

    async def purge(self) -> int:
        """Delete deliveries first seen longer ago than the retention; returns how many."""
        cutoff = self._clock() - self._retention
        async with self._autocommit() as conn:
            result = await conn.execute(delete(DeliveryRow).where(DeliveryRow.first_seen_at < cutoff))
        if result.rowcount:
            log.info("purged %d old Slack deliveries", result.rowcount)
        return result.rowcount

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        # Each statement here is atomic on its own: no BEGIN/COMMIT round trips around it.
        async with self._engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
