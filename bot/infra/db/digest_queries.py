"""The digest's ledger aggregations: GROUP BY over the covering ix_usage_ledger_digest index (team, channel, time first)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.infra.db.engine import unavailable_as
from bot.infra.db.money_sum import MoneySum
from bot.infra.db.tables import LedgerRow
from bot.ports.digest_queries import UsageGroup, UserCost

L = LedgerRow
# A digest is built before it is claimed: an outage then leaves nothing claimed, and the tick says so.
_UNAVAILABLE = unavailable_as("the usage ledger cannot be read now")


class SqlDigestQueries:
    """DigestQueries on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @_UNAVAILABLE
    async def usage_groups(self, team_id: str, channel_id: str, bounds: Sequence[datetime]) -> list[UsageGroup]:
        """Groups of the rows in [bounds[0], bounds[-1]); bucket i is [bounds[i], bounds[i+1])."""
        if len(bounds) < 2:
            return []
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            money = MoneySum(dialect)
            result = await session.execute(usage_groups_statement(dialect, team_id, channel_id, bounds))
            return [
                UsageGroup(
                    bucket=int(b),
                    model=model,
                    ok=outcome == "ok",
                    error_code=code,
                    rows=int(n),
                    prompt_tokens=int(p),
                    cached_tokens=int(c),
                    completion_tokens=int(o),
                    cost_usd=money.usd(cost),
                    unpriced=int(unpriced),
                    compared=int(compared),
                    compared_cost_usd=money.usd(c_cost),
                    compared_baseline_usd=money.usd(c_base),
                    energy_wh=float(wh),
                    energy_missing=int(wh_missing),
                )
                for b, model, outcome, code, n, p, c, o, cost, unpriced, compared, c_cost, c_base, wh, wh_missing in result
            ]

    @_UNAVAILABLE
    async def top_users(
        self, team_id: str, channel_id: str, start: datetime, end: datetime, limit: int
    ) -> list[UserCost]:
        """The users with the highest cost in [start, end)."""
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            money = MoneySum(dialect)
            result = await session.execute(top_users_statement(dialect, team_id, channel_id, start, end, limit))
            return [UserCost(user_id, int(n), money.usd(total)) for user_id, n, total in result]


def top_users_statement(
    dialect: str, team_id: str, channel_id: str, start: datetime, end: datetime, limit: int
) -> Select:
    """The GROUP BY user over one channel's answered requests in [start, end), costliest first."""
    cost = MoneySum(dialect).sum(L.cost_usd)
    return (
        _in_window(team_id, channel_id, start, end)
        .where(L.outcome == "ok")
        .add_columns(L.user_id, func.count(), cost)
        .group_by(L.user_id)
        .order_by(cost.desc(), func.count().desc(), L.user_id)
        .limit(limit)
    )


def usage_groups_statement(dialect: str, team_id: str, channel_id: str, bounds: Sequence[datetime]) -> Select:
    """The GROUP BY (bucket, model, outcome, error code) over one channel's rows in [bounds[0], bounds[-1])."""
    # Ascending bounds, so the first matching WHEN is the row's bucket; integers inline for the planner.
    inner = bounds[1:-1]
    last = literal_column(str(len(bounds) - 2))
    bucket = (
        case(*[(L.created_at < b, literal_column(str(i))) for i, b in enumerate(inner)], else_=last) if inner else last
    )
    money = MoneySum(dialect)
    rows = (
        _in_window(team_id, channel_id, bounds[0], bounds[-1])
        .add_columns(
            bucket.label("bucket"),
            L.requested_model,
            L.outcome,
            L.error_code,
            L.prompt_tokens,
            L.cached_tokens,
            L.completion_tokens,
            L.cost_usd,
            L.baseline_cost_usd,
            L.energy_wh,
        )
        .subquery()
    )
    both = and_(rows.c.cost_usd.is_not(None), rows.c.baseline_cost_usd.is_not(None))
    return select(
        rows.c.bucket,
        rows.c.requested_model,
        rows.c.outcome,
        rows.c.error_code,
        func.count(),
        func.coalesce(func.sum(rows.c.prompt_tokens), 0),
        func.coalesce(func.sum(rows.c.cached_tokens), 0),
        func.coalesce(func.sum(rows.c.completion_tokens), 0),
        money.sum(rows.c.cost_usd),
        func.count() - func.count(rows.c.cost_usd),
        func.count(case((both, literal_column("1")))),
        money.sum(case((both, rows.c.cost_usd))),
        money.sum(case((both, rows.c.baseline_cost_usd))),
        func.coalesce(func.sum(rows.c.energy_wh), 0.0),
        func.count() - func.count(rows.c.energy_wh),
    ).group_by(rows.c.bucket, rows.c.requested_model, rows.c.outcome, rows.c.error_code)


def _in_window(team_id: str, channel_id: str, start: datetime, end: datetime):
    return (
        select()
        .select_from(L)
        .where(L.team_id == team_id, L.channel_id == channel_id, L.created_at >= start, L.created_at < end)
    )
