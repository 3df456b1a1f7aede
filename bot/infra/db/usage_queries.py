"""Usage reports' ledger aggregation: one GROUP BY over the (team_id, channel_id, created_at) index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, false, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.infra.db.money_sum import MoneySum
from bot.infra.db.tables import LedgerRow
from bot.ports.usage_queries import UsageTotals

L = LedgerRow


class SqlUsageQueries:
    """UsageQueries on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def totals(
        self,
        start: datetime,
        end: datetime,
        *,
        team_id: str | None = None,
        channel_id: str | None = None,
        split: datetime | None = None,
    ) -> list[UsageTotals]:
        """Rows in [start, end) grouped by workspace, channel and model (and by before/after `split`)."""
        ok = L.outcome == "ok"
        priced = and_(ok, L.cost_usd.is_not(None))
        compared = and_(priced, L.baseline_cost_usd.is_not(None))
        recent = (L.created_at >= split) if split is not None else false()
        async with self._sessions() as session:
            money = MoneySum(session.get_bind().dialect.name)
            query = (
                select(
                    L.team_id,
                    L.channel_id,
                    L.requested_model,
                    recent.label("recent"),
                    func.count(case((ok, literal_column("1")))),
                    _int_sum(case((ok, L.prompt_tokens))),
                    _int_sum(case((ok, L.cached_tokens))),
                    _int_sum(case((ok, L.completion_tokens))),
                    money.sum(case((priced, L.cost_usd))),
                    func.count(case((and_(ok, L.cost_usd.is_(None)), literal_column("1")))),
                    money.sum(case((compared, L.cost_usd))),
                    money.sum(case((compared, L.baseline_cost_usd))),
                    func.count(case((L.outcome != "ok", literal_column("1")))),
                )
                .where(L.created_at >= start, L.created_at < end)
                .group_by(L.team_id, L.channel_id, L.requested_model, literal_column("recent"))
            )
            if team_id is not None:
                query = query.where(L.team_id == team_id)
            if channel_id is not None:
                query = query.where(L.channel_id == channel_id)
            result = await session.execute(query)
            return [
                UsageTotals(
                    team_id=team,
                    channel_id=channel,
                    model=model,
                    recent=bool(is_recent),
                    requests=int(n),
                    prompt_tokens=int(p),
                    cached_tokens=int(c),
                    completion_tokens=int(o),
                    cost_usd=money.usd(cost),
                    unpriced=int(unpriced),
                    compared_cost_usd=money.usd(c_cost),
                    compared_baseline_usd=money.usd(c_base),
                    failed=int(failed),
                )
                for team, channel, model, is_recent, n, p, c, o, cost, unpriced, c_cost, c_base, failed in result
            ]


def _int_sum(column: ColumnElement) -> ColumnElement:
    return func.coalesce(func.sum(column), literal_column("0"))
