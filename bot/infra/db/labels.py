"""Each channel's /classify label set: the table and its SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base


class ChannelLabelsRow(Base):
    """The labels /classify uses in one channel when none are given."""

    __tablename__ = "channel_labels"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    labels: Mapped[list[Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime]


class SqlChannelLabels:
    """ChannelLabelStore on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, team_id: str, channel_id: str) -> tuple[str, ...] | None:
        """The channel's labels, or None when it has none of its own."""
        async with self._sessions() as session:
            labels = await session.scalar(
                select(ChannelLabelsRow.labels).where(
                    ChannelLabelsRow.team_id == team_id, ChannelLabelsRow.channel_id == channel_id
                )
            )
        return tuple(labels) if labels is not None else None

    async def set(self, team_id: str, channel_id: str, labels: tuple[str, ...], user_id: str, at: datetime) -> None:
        """Replace the channel's labels."""
        values = {
            "team_id": team_id,
            "channel_id": channel_id,
            "labels": list(labels),
            "updated_by": user_id,
            "updated_at": at,
        }
        async with self._sessions.begin() as session:
            insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
            statement = insert(ChannelLabelsRow).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=[ChannelLabelsRow.team_id, ChannelLabelsRow.channel_id],
                set_={k: statement.excluded[k] for k in ("labels", "updated_by", "updated_at")},
            )
            await session.execute(statement)

    async def clear(self, team_id: str, channel_id: str) -> bool:
        """Remove the channel's labels; True when it had some."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ChannelLabelsRow).where(
                    ChannelLabelsRow.team_id == team_id, ChannelLabelsRow.channel_id == channel_id
                )
            )
        return result.rowcount > 0
