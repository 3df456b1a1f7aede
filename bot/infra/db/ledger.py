"""The usage ledger's SQL."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.infra.db.tables import LedgerRow
from bot.ports.ledger import LedgerEntry


class SqlLedger:
    """LedgerRepository on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, entry: LedgerEntry) -> None:
        """Append one entry."""
        async with self._sessions.begin() as session:
            await session.execute(insert(LedgerRow).values(**asdict(entry)))
