"""The classify cache: the table and its SQL (a hash, the label, the model; never the text)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, Index, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base
from bot.infra.db.engine import unavailable_as, unreachable
from bot.ports.classify_cache import CachedLabel
from bot.ports.store import StoreUnavailable


class ClassifyCacheRow(Base):
    """One recent classification, under the SHA-256 of its workspace, label set and text."""

    __tablename__ = "classify_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(256))
    confidence: Mapped[float | None] = mapped_column(Double)
    served_model: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]

    __table_args__ = (Index(None, "created_at"),)


class SqlClassifyCache:
    """ClassifyCache on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, key: str, since: datetime) -> CachedLabel | None:
        """The label stored under `key` at or after `since`, or None; raises StoreUnavailable while the database is away."""
        try:
            async with self._sessions() as session:
                row = await session.scalar(
                    select(ClassifyCacheRow).where(ClassifyCacheRow.key == key, ClassifyCacheRow.created_at >= since)
                )
        except Exception as err:
            if unreachable(err):
                raise StoreUnavailable("the classify cache cannot be read now") from err
            raise
        if row is None:
            return None
        return CachedLabel(
            label=row.label, confidence=row.confidence, served_model=row.served_model, created_at=row.created_at
        )

    async def put(self, key: str, team_id: str, entry: CachedLabel) -> None:
        """Store (or refresh) the label under `key`; raises StoreUnavailable while the database is away."""
        values = {
            "key": key,
            "team_id": team_id,
            "label": entry.label,
            "confidence": entry.confidence,
            "served_model": entry.served_model,
            "created_at": entry.created_at,
        }
        try:
            async with self._sessions.begin() as session:
                insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
                statement = insert(ClassifyCacheRow).values(**values)
                statement = statement.on_conflict_do_update(
                    index_elements=[ClassifyCacheRow.key],
                    set_={k: statement.excluded[k] for k in ("label", "confidence", "served_model", "created_at")},
                )
                await session.execute(statement)
        except Exception as err:
            if unreachable(err):
                raise StoreUnavailable("the classify cache cannot be written now") from err
            raise

    async def purge(self, before: datetime) -> int:
        """Forget entries older than `before`; how many. Raises StoreUnavailable while the database is away."""
        with unavailable_as("the classify cache cannot be purged now"):
            async with self._sessions.begin() as session:
                result = await session.execute(delete(ClassifyCacheRow).where(ClassifyCacheRow.created_at < before))
        return result.rowcount
