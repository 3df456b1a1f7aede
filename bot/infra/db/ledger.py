"""The usage ledger's SQL."""

from __future__ import annotations

import logging
import weakref

from sqlalchemy import bindparam, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.infra.db.engine import unreachable
from bot.infra.db.group_commit import GroupCommit
from bot.infra.db.sqlite_writers import sqlite_writer
from bot.infra.db.tables import LedgerRow
from bot.ports.ledger import LedgerEntry

log = logging.getLogger(__name__)

# Built once: the compiled form is cached, and each call only binds its parameters.
_INSERT = insert(LedgerRow)


def _insert_unless_there() -> object:
    """The INSERT for rows that may already be in: a write cut off mid-way may have committed before it failed."""
    columns = [column for column in LedgerRow.__table__.columns if column.name != "id"]
    # One attempt of one request at one instant: the router writes each of those once.
    there = (
        select(literal(1))
        .where(
            LedgerRow.request_key == bindparam("request_key"),
            LedgerRow.attempt == bindparam("attempt"),
            LedgerRow.created_at == bindparam("created_at"),
        )
        .exists()
    )
    values = select(*(bindparam(column.name, type_=column.type) for column in columns)).where(~there)
    return insert(LedgerRow).from_select([column.name for column in columns], values)


_INSERT_UNLESS_THERE = _insert_unless_there()
# At shutdown, how long to wait for rows kept through a database outage.
DRAIN_TIMEOUT_S = 10.0


class SqlLedger:
    """LedgerRepository on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        # One row per model call attempt sits on the answer's path, so it skips the ORM session
        # and goes straight to a pooled connection (bench/router.py measures the difference).
        engine: AsyncEngine = sessions.kw["bind"]
        # On PostgreSQL the one INSERT is atomic on its own: autocommit saves the BEGIN and COMMIT
        # round trips. Not on SQLite, where switching aiosqlite's isolation level costs thread hops.
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._engine = engine
        # Under load, the rows of concurrent calls share one INSERT and one commit. A model call that
        # was made is always recorded: while the database is unreachable, its row waits in memory.
        self._rows: GroupCommit[LedgerEntry] = GroupCommit(self._insert, keep=unreachable, what="ledger rows")
        # Entries whose write failed once: written again only if not already there.
        self._uncertain: weakref.WeakSet[LedgerEntry] = weakref.WeakSet()

    async def record(self, entry: LedgerEntry) -> None:
        """Append one entry; returns once it is committed, or kept in memory while the database is unreachable."""
        await self._rows.submit(entry)

    @property
    def kept(self) -> int:
        """Entries waiting in memory for the database to be reachable again."""
        return self._rows.kept

    async def drain(self, timeout: float | None = DRAIN_TIMEOUT_S) -> None:
        """Wait until every entry recorded so far is written (before the engine closes), at most ``timeout`` s."""
        if left := await self._rows.drain(timeout):
            log.error("%d ledger rows are still waiting for the database at shutdown", left)

    async def _insert(self, entries: list[LedgerEntry]) -> None:
        rows = [vars(entry) for entry in entries]
        statement = _INSERT_UNLESS_THERE if any(entry in self._uncertain for entry in entries) else _INSERT
        try:
            if (writer := sqlite_writer(self._engine)) is not None:
                await writer.run(lambda conn: conn.execute(statement, rows))
                return
            async with self._engine.begin() as conn:
                await conn.execute(statement, rows)
        except Exception:
            self._uncertain.update(entries)
            raise
