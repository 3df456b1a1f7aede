"""The usage ledger's SQL."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.infra.db.group_commit import GroupCommit
from bot.infra.db.sqlite_writers import write_turn
from bot.infra.db.tables import LedgerRow
from bot.ports.ledger import LedgerEntry

# Built once: the compiled form is cached, and each call only binds its parameters.
_INSERT = insert(LedgerRow)


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
        # Under load, the rows of concurrent calls share one INSERT and one commit.
        self._rows: GroupCommit[LedgerEntry] = GroupCommit(self._insert)

    async def record(self, entry: LedgerEntry) -> None:
        """Append one entry; returns once it is committed."""
        await self._rows.submit(entry)

    async def drain(self) -> None:
        """Wait until every entry recorded so far is written (before the engine closes)."""
        await self._rows.drain()

    async def _insert(self, entries: list[LedgerEntry]) -> None:
        async with write_turn(self._engine), self._engine.begin() as conn:
            await conn.execute(_INSERT, [vars(entry) for entry in entries])
