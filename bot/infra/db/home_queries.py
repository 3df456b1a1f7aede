"""The App Home's ledger reads: per-channel totals of one workspace, over the (team_id, channel_id, created_at) index."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ColumnElement, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.infra.db.tables import LedgerRow
from bot.services.home import ChannelUsage

L = LedgerRow
_NANOS = Decimal(1).scaleb(-9)


class SqlHomeQueries:
    """HomeQueries on the Frugal database; every query is bounded to one team_id."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def usage_by_channel(self, team_id: str, start: datetime, end: datetime) -> list[ChannelUsage]:
        """Every channel of the workspace with answered requests in [start, end)."""
        async with self._sessions() as session:
            exact = session.get_bind().dialect.name == "postgresql"
            query = (
                _answered(team_id, start, end)
                .add_columns(
                    L.channel_id,
                    func.count(),
                    func.coalesce(func.sum(L.prompt_tokens + L.completion_tokens), 0),
                    _money_sum(L.cost_usd, exact),
                    func.count() - func.count(L.cost_usd),
                )
                .group_by(L.channel_id)
            )
            rows = await session.execute(query)
            return [
                ChannelUsage(channel_id, int(n), int(tokens), _usd(cost, exact), int(unpriced))
                for channel_id, n, tokens, cost, unpriced in rows
            ]

    async def channels_used_by(self, team_id: str, user_id: str, start: datetime, end: datetime) -> set[str]:
        """The channels where the user had requests answered in [start, end)."""
        async with self._sessions() as session:
            query = _answered(team_id, start, end).add_columns(L.channel_id).where(L.user_id == user_id).distinct()
            return set((await session.scalars(query)).all())


def _answered(team_id: str, start: datetime, end: datetime):
    # Failed attempts cost nothing and are not requests people got answers to.
    return select().select_from(L).where(
        L.team_id == team_id, L.created_at >= start, L.created_at < end, L.outcome == "ok"
    )


def _money_sum(column: ColumnElement, exact: bool) -> ColumnElement:
    # SQLite keeps NUMERIC as REAL: summing whole nano-dollars stays exact where floats would drift.
    if not exact:
        column = cast(func.round(column * literal_column("1000000000")), BigInteger)
    return func.coalesce(func.sum(column), literal_column("0"))


def _usd(value: object, exact: bool) -> Decimal:
    if exact:
        return value if isinstance(value, Decimal) else Decimal(value)
    return Decimal(int(value)) * _NANOS
