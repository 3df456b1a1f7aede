"""The App Home's ledger reads: per-channel totals of one workspace, over the (team_id, channel_id, created_at) index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.infra.db.money_sum import MoneySum
from bot.infra.db.tables import LedgerRow
from bot.ports.home_queries import ChannelUsage

L = LedgerRow


class SqlHomeQueries:
    """HomeQueries on the Frugal database; every query is bounded to one team_id."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def usage_by_channel(self, team_id: str, start: datetime, end: datetime) -> list[ChannelUsage]:
        """Every channel of the workspace with answered requests in [start, end)."""
        async with self._sessions() as session:
            money = MoneySum(session.get_bind().dialect.name)
            query = (
                _answered(team_id, start, end)
                .add_columns(
                    L.channel_id,
                    func.count(),
                    func.coalesce(func.sum(L.prompt_tokens + L.completion_tokens), 0),
                    money.sum(L.cost_usd),
                    func.count() - func.count(L.cost_usd),
                )
                .group_by(L.channel_id)
            )
            rows = await session.execute(query)
            return [
                ChannelUsage(channel_id, int(n), int(tokens), money.usd(cost), int(unpriced))
                for channel_id, n, tokens, cost, unpriced in rows
            ]

    async def channels_used_by(self, team_id: str, user_id: str, start: datetime, end: datetime) -> set[str]:
        """The channels where the user had requests answered in [start, end)."""
        async with self._sessions() as session:
            query = _answered(team_id, start, end).add_columns(L.channel_id).where(L.user_id == user_id).distinct()
            return set((await session.scalars(query)).all())


def _answered(team_id: str, start: datetime, end: datetime):
    # Failed attempts cost nothing and are not requests people got answers to.
    return (
        select()
        .select_from(L)
        .where(L.team_id == team_id, L.created_at >= start, L.created_at < end, L.outcome == "ok")
    )
