"""The export's ledger aggregation: one GROUP BY (bucket, workspace, channel, user, model) over a time window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.infra.db.money_sum import MoneySum
from bot.infra.db.tables import LedgerRow
from bot.ports.usage_export import BucketUsage

L = LedgerRow
_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlUsageExport:
    """UsageExportQueries on the Frugal database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def bucket_usage(self, bounds: Sequence[datetime], *, channel_id: str | None = None) -> list[BucketUsage]:
        """Rows in [bounds[0], bounds[-1]) grouped by bucket, workspace, channel, user and model."""
        if len(bounds) < 2:
            return []
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            money = MoneySum(dialect)
            query = bucket_usage_statement(dialect, bounds, channel_id)
            return [
                BucketUsage(
                    bucket=int(b),
                    team_id=team,
                    channel_id=channel,
                    user_id=user,
                    model=model,
                    requests=int(n),
                    prompt_tokens=int(p),
                    cached_tokens=int(c),
                    cache_write_tokens=int(w),
                    completion_tokens=int(o),
                    reasoning_tokens=int(r),
                    cost_usd=money.usd(cost),
                    unpriced=int(unpriced),
                    baseline_usd=money.usd(base),
                    baseline_unknown=int(base_unknown),
                    failed=int(failed),
                )
                for b, team, channel, user, model, n, p, c, w, o, r, cost, unpriced, base, base_unknown, failed in await session.execute(
                    query
                )
            ]


def bucket_usage_statement(dialect: str, bounds: Sequence[datetime], channel_id: str | None = None):
    """The GROUP BY over the rows in [bounds[0], bounds[-1]); bucket i is [bounds[i], bounds[i+1])."""
    rows = select(
        _bucket(dialect, bounds).label("bucket"),
        L.team_id,
        L.channel_id,
        L.user_id,
        L.requested_model,
        L.outcome,
        L.prompt_tokens,
        L.cached_tokens,
        L.cache_write_tokens,
        L.completion_tokens,
        L.reasoning_tokens,
        L.cost_usd,
        L.baseline_cost_usd,
    ).where(L.created_at >= bounds[0], L.created_at < bounds[-1])
    if channel_id is not None:
        rows = rows.where(L.channel_id == channel_id)
    r = rows.subquery()
    money = MoneySum(dialect)
    ok = r.c.outcome == "ok"
    one = literal_column("1")
    return select(
        r.c.bucket,
        r.c.team_id,
        r.c.channel_id,
        r.c.user_id,
        r.c.requested_model,
        func.count(case((ok, one))),
        _int_sum(case((ok, r.c.prompt_tokens))),
        _int_sum(case((ok, r.c.cached_tokens))),
        _int_sum(case((ok, r.c.cache_write_tokens))),
        _int_sum(case((ok, r.c.completion_tokens))),
        _int_sum(case((ok, r.c.reasoning_tokens))),
        money.sum(case((and_(ok, r.c.cost_usd.is_not(None)), r.c.cost_usd))),
        func.count(case((and_(ok, r.c.cost_usd.is_(None)), one))),
        money.sum(case((and_(ok, r.c.baseline_cost_usd.is_not(None)), r.c.baseline_cost_usd))),
        func.count(case((and_(ok, r.c.baseline_cost_usd.is_(None)), one))),
        func.count(case((r.c.outcome != "ok", one))),
    ).group_by(r.c.bucket, r.c.team_id, r.c.channel_id, r.c.user_id, r.c.requested_model)


def _bucket(dialect: str, bounds: Sequence[datetime]) -> ColumnElement:
    """Each row's bucket index. A run of whole days is one WHEN with arithmetic on the row's epoch second, so a
    ten-year window costs a few dozen WHENs (one per daylight-saving change), not one per day."""
    segments = _segments(bounds)
    seconds = _epoch_seconds(dialect)
    thens = [
        literal_column(str(first))
        if start is None
        else literal_column(str(first))
        + (seconds - literal_column(str(start), BigInteger)) // literal_column("86400", BigInteger)
        for first, start, _ in segments
    ]
    if len(segments) == 1:
        return thens[0]
    return case(
        *[(L.created_at < upper, then) for (_, _, upper), then in zip(segments[:-1], thens, strict=False)],
        else_=thens[-1],
    )


def _segments(bounds: Sequence[datetime]) -> list[tuple[int, int | None, datetime]]:
    """(first bucket, epoch second it starts at or None for a lone bucket, upper bound) per run of buckets."""
    segments: list[tuple[int, int | None, datetime]] = []
    for i, (lower, upper) in enumerate(pairwise(bounds)):
        whole_day = upper - lower == _DAY and lower.microsecond == 0
        previous = segments[-1] if segments else None
        if whole_day and previous is not None and previous[1] is not None:
            segments[-1] = (previous[0], previous[1], upper)
        else:
            segments.append((i, _epoch(lower) if whole_day else None, upper))
    return segments


def _epoch(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(seconds=1)


def _epoch_seconds(dialect: str) -> ColumnElement:
    """The row's created_at as whole seconds since 1970 (UTC), rounded down."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", L.created_at)), BigInteger)
    # SQLite keeps the UTC timestamp as text; strftime('%s') drops the fraction of a second.
    return cast(func.strftime("%s", L.created_at), BigInteger)


def _int_sum(column: ColumnElement) -> ColumnElement:
    return func.coalesce(func.sum(column), literal_column("0"))
