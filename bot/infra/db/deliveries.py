"""Slack deliveries already seen, keyed so a retried or duplicated one is processed once: the table and its SQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import CheckConstraint, Index, String, bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import Insert

from bot.infra.db.base import Base
from bot.infra.db.engine import unavailable_as, unreachable
from bot.infra.db.group_commit import GroupCommit
from bot.infra.db.sqlite_writers import sqlite_writer

log = logging.getLogger(__name__)

CLAIMED = "claimed"
DONE = "done"
KEY_LENGTH = 255
# Longer than any one request takes (model calls with fail-over), shorter than Slack's last retry (~5 min
# after the first): a retry of a delivery whose process died is taken over; one still being worked on is not.
LEASE = timedelta(minutes=3)
# Slack stops retrying within minutes; a day of rows is plenty and keeps the table small.
RETENTION = timedelta(days=1)
# At shutdown, how long to wait for done marks kept through a database outage.
DRAIN_TIMEOUT_S = 10.0


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


# On PostgreSQL, the claims' own connections: a claim (before an event's ack, beside a command's) must not
# wait for a connection held by other work (quota, ledger, digests, finish). Each use is one autocommitted
# statement, so a few suffice; two replicas stay inside PostgreSQL's default 100 connections (2 x (30 + 10)).
CLAIM_POOL_SIZE = 5
CLAIM_POOL_OVERFLOW = 5


def claims_engine(url: URL) -> AsyncEngine:
    """A small engine of its own for claims, in autocommit at connect time (no per-use isolation switch)."""
    # Every statement commits by itself, so there is never anything to roll back when a connection returns.
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        pool_size=CLAIM_POOL_SIZE,
        max_overflow=CLAIM_POOL_OVERFLOW,
        pool_recycle=1800,
    )


def _claim_statement(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = bindparam("now", type_=DeliveryRow.__table__.c.claimed_at.type)
    statement = insert(DeliveryRow).values(
        key=bindparam("key"),
        team_id=bindparam("team_id"),
        kind=bindparam("kind"),
        state=CLAIMED,
        claims=1,
        first_seen_at=now,
        claimed_at=now,
        lease_expires_at=bindparam("lease_expires_at"),
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
    return statement.returning(DeliveryRow.claims)


class SqlDeliveries:
    """Once-only claims of Slack deliveries on the Frugal database, shared by every replica."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lease: timedelta = LEASE,
        retention: timedelta = RETENTION,
        clock: Callable[[], datetime] = utc_now,
        claim_engine: AsyncEngine | None = None,
    ) -> None:
        self._engine = engine
        self._lease = lease
        self._retention = retention
        self._clock = clock
        # From claims_engine(): claims only (finish and purge run after the ack, on `engine`); disposed by aclose().
        self._claim_engine = claim_engine
        # Built once: constructing the upsert (and its cache key) on every delivery cost more than running it.
        self._claim = _claim_statement(engine.dialect.name)
        self._finish = (
            update(DeliveryRow)
            .where(DeliveryRow.key == bindparam("delivery_key"))
            .values(state=DONE, done_at=bindparam("done_at", type_=DeliveryRow.__table__.c.done_at.type))
        )
        # Under load, the deliveries finishing together are marked done in one round trip; while the
        # database is unreachable, the marks wait in memory (a retry after the lease would run again).
        self._finished: GroupCommit[str] = GroupCommit(self._mark_done, keep=unreachable, what="delivery done marks")
        self._purge = delete(DeliveryRow).where(
            DeliveryRow.first_seen_at < bindparam("cutoff", type_=DeliveryRow.__table__.c.first_seen_at.type)
        )

    async def claim(self, key: str, *, team_id: str | None, kind: str) -> int | None:
        """Claim the delivery in one statement: its claim number (1, or more for a takeover), None if taken."""
        now = self._clock()
        params = {"key": key, "team_id": team_id, "kind": kind, "now": now, "lease_expires_at": now + self._lease}
        if (writer := sqlite_writer(self._engine)) is not None:
            # Urgent: an event's ack waits for its claim, so it goes before the queued writes.
            claims = await writer.run(lambda conn: conn.execute(self._claim, params).scalar(), urgent=True)
        elif self._claim_engine is not None:
            async with self._claim_engine.connect() as conn:  # autocommit since connected
                claims = (await conn.execute(self._claim, params)).scalar()
        else:
            async with self._autocommit() as conn:
                claims = (await conn.execute(self._claim, params)).scalar()
        if claims is not None and claims > 1:
            log.warning("%s delivery taken over after its lease expired (claim %d)", kind, claims)
        return claims

    async def finish(self, key: str) -> None:
        """Mark the delivery done: no retry of it runs again, whatever its lease."""
        await self._finished.submit(key)

    async def _mark_done(self, keys: list[str]) -> None:
        done_at = self._clock()
        params = [{"delivery_key": key, "done_at": done_at} for key in keys]
        if (writer := sqlite_writer(self._engine)) is not None:
            await writer.run(lambda conn: conn.execute(self._finish, params))  # one commit for the batch
        else:
            async with self._autocommit() as conn:  # asyncpg runs the batch atomically, in one round trip
                await conn.execute(self._finish, params)

    async def purge(self) -> int:
        """Delete deliveries first seen longer ago than the retention; returns how many.

        Raises StoreUnavailable while the database is away.
        """
        params = {"cutoff": self._clock() - self._retention}
        with unavailable_as("the Slack deliveries cannot be purged now"):
            if (writer := sqlite_writer(self._engine)) is not None:
                purged = await writer.run(lambda conn: conn.execute(self._purge, params).rowcount)
            else:
                async with self._autocommit() as conn:
                    purged = (await conn.execute(self._purge, params)).rowcount
        if purged:
            log.info("purged %d old Slack deliveries", purged)
        return purged

    @classmethod
    def beside(cls, engine: AsyncEngine, **options: Any) -> SqlDeliveries:
        """A store whose claims run on a claims_engine() of their own for `engine`'s database; close with aclose()."""
        if engine.url.get_backend_name() == "sqlite":
            # A file's claims are jobs of its writer (sqlite_writers); a second engine on an
            # in-memory database would open a second, empty database.
            return cls(engine, **options)
        return cls(engine, claim_engine=claims_engine(engine.url), **options)

    async def aclose(self) -> None:
        """Finish the pending done marks, close the claims' own connections (the shared engine is left to its owner)."""
        if left := await self._finished.drain(DRAIN_TIMEOUT_S):
            log.error("%d delivery done marks are still waiting for the database at shutdown", left)
        if self._claim_engine is not None:
            await self._claim_engine.dispose()

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        # Each statement here is atomic on its own: no BEGIN/COMMIT round trips around it.
        async with self._engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
