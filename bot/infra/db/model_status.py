"""Models known to be unavailable, shared by every replica: the table and its SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base
from bot.ports.model_status import UnavailableModel


class ModelStatusRow(Base):
    """A model the endpoint reported as not found; probed again after retry_at."""

    __tablename__ = "model_status"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    marked_at: Mapped[datetime]
    retry_at: Mapped[datetime]


class SqlModelStatusStore:
    """ModelStatusStore on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def mark_unavailable(self, mark: UnavailableModel) -> None:
        """Record (or renew) that a model is unavailable."""
        values = {"model": mark.model, "reason": mark.reason, "marked_at": mark.marked_at, "retry_at": mark.retry_at}
        async with self._sessions.begin() as session:
            insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
            statement = insert(ModelStatusRow).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=[ModelStatusRow.model],
                set_={k: statement.excluded[k] for k in ("reason", "marked_at", "retry_at")},
            )
            await session.execute(statement)

    async def clear(self, model: str) -> None:
        """Forget that a model was unavailable."""
        async with self._sessions.begin() as session:
            await session.execute(delete(ModelStatusRow).where(ModelStatusRow.model == model))

    async def unavailable(self) -> list[UnavailableModel]:
        """Every model currently marked unavailable."""
        async with self._sessions() as session:
            rows = (await session.scalars(select(ModelStatusRow).order_by(ModelStatusRow.model))).all()
        return [UnavailableModel(r.model, r.reason, r.marked_at, r.retry_at) for r in rows]
