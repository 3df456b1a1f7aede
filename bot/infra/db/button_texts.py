"""Button texts: what Frugal's buttons act on, kept for a day: the table and its SQL."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import Index, String, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base
from bot.infra.db.engine import unavailable_as, unreachable
from bot.infra.db.sqlite_writers import write_turn
from bot.ports.button_texts import ButtonText
from bot.ports.store import StoreUnavailable

# Long enough for an ephemeral answer that stays on screen; the daily job deletes what is older.
LIFETIME = timedelta(days=1)
ID_BYTES = 16
# secrets.token_urlsafe(16): 22 characters of [A-Za-z0-9_-]. Anything else is not one of ours.
_ID = re.compile(r"[A-Za-z0-9_-]{22}")


class ButtonTextRow(Base):
    """One answer's buttons: the text they post or rework, who asked and where."""

    __tablename__ = "button_texts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    original: Mapped[str | None] = mapped_column(Text)
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (Index(None, "expires_at"),)


# Built once, on the table rather than the ORM class: each put only binds its parameters.
_INSERT = insert(ButtonTextRow.__table__)


class SqlButtonTexts:
    """ButtonTexts on the Frugal database."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._engine: AsyncEngine = sessions.kw["bind"]
        # Each answer with buttons writes one row before it is shown: on PostgreSQL the lone INSERT is
        # atomic on its own, and autocommit saves its BEGIN and COMMIT round trips (as the ledger does,
        # bot/infra/db/ledger.py).
        self._put_engine = (
            self._engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._engine.dialect.name == "postgresql"
            else self._engine
        )
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    async def put(self, entry: ButtonText) -> str:
        """Keep `entry` for LIFETIME; returns its new random id."""
        button_id = secrets.token_urlsafe(ID_BYTES)
        now = self._clock()
        values = {
            "id": button_id,
            "team_id": entry.team_id,
            "channel_id": entry.channel_id,
            "user_id": entry.user_id,
            "kind": entry.kind,
            "text": entry.text,
            "original": entry.original,
            "thread_ts": entry.thread_ts,
            "created_at": now,
            "expires_at": now + LIFETIME,
        }
        try:
            async with write_turn(self._engine), self._put_engine.begin() as conn:
                await conn.execute(_INSERT, values)
        except Exception as err:
            if unreachable(err):
                raise StoreUnavailable("the button texts cannot be written now") from err
            raise
        return button_id

    async def get(self, button_id: str) -> ButtonText | None:
        """The live entry of `button_id`, or None."""
        if not isinstance(button_id, str) or not _ID.fullmatch(button_id):
            return None
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(ButtonTextRow).where(ButtonTextRow.id == button_id, ButtonTextRow.expires_at > self._clock())
                )
            ).first()
        if row is None:
            return None
        return ButtonText(
            team_id=row.team_id,
            channel_id=row.channel_id,
            user_id=row.user_id,
            kind=row.kind,
            text=row.text,
            original=row.original,
            thread_ts=row.thread_ts,
        )

    async def purge(self) -> int:
        """Delete the expired entries; returns how many. Raises StoreUnavailable while the database is away."""
        with unavailable_as("the button texts cannot be purged now"):
            async with write_turn(self._engine), self._engine.begin() as conn:
                result = await conn.execute(delete(ButtonTextRow).where(ButtonTextRow.expires_at <= self._clock()))
        return result.rowcount
