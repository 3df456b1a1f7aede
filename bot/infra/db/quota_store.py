"""QuotaStore in SQL: one PL/pgSQL call per reserve or settle on PostgreSQL, BEGIN IMMEDIATE on SQLite.

On SQLite a request no limit applies to is checked with one read and no write lock: such a reserve
writes nothing, so reading the last committed state is the same as taking the lock and running just
before a concurrent `set_limit`. Requests some limit applies to take the lock and read again under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, AsyncIterator

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from bot.infra.db.sqlite_writers import write_turn
from bot.infra.db.quota_tables import QuotaCounterRow, QuotaHoldRow, QuotaLimitRow, QuotaReservationRow
from bot.infra.db.tables import LedgerRow
from bot.ports.quota import Metric, Period
from bot.ports.quota_store import (
    CounterState,
    DuplicateReservation,
    ExpiredHold,
    LimitRecord,
    Reservation,
    ReserveRequest,
    Scope,
    Usage,
    best_level,
)

_RESERVE = text(
    "SELECT * FROM frugal_quota_reserve(:id, :key, :team, :channel, :user, "
    "CAST(:tokens AS BIGINT[]), CAST(:usd AS NUMERIC[]), :day, :week, :month, :now, :expires)"
)
_SETTLE = text("SELECT frugal_quota_settle(:id, :requests, :tokens, :usd)")
_NO_USAGE = Usage(requests=0, tokens=0, usd=Decimal(0))


class SqlQuotaStore:
    """Limits, counters and reservations on the Frugal database, atomic across processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        # Shares the engine's pool; each reserve or settle is one statement, atomic on its own, so it
        # needs no BEGIN/COMMIT round trips (PostgreSQL only: on aiosqlite switching costs thread hops).
        self._single_statements = engine.execution_options(isolation_level="AUTOCOMMIT")

    # --- reserve, settle, release, expire ---------------------------------------------------

    async def reserve(self, request: ReserveRequest) -> Reservation:
        """Atomically hold the largest fitting level on every applying counter, or hold nothing."""
        try:
            if self._postgres:
                return await self._reserve_postgres(request)
            return await self._reserve_sqlite(request)
        except IntegrityError as err:
            if "request_key" in str(err.orig):
                raise DuplicateReservation(request.request_key) from None
            raise

    async def settle(self, reservation_id: str, usage: Usage) -> bool:
        """Replace the hold by the real usage; False when the reservation is gone (expired or settled)."""
        if self._postgres:
            async with self._single_statements.connect() as conn:
                params = {"id": reservation_id, "requests": usage.requests, "tokens": usage.tokens, "usd": usage.usd}
                return bool((await conn.execute(_SETTLE, params)).scalar_one())
        async with self._immediate() as conn:
            return await _settle_sqlite(conn, reservation_id, usage)

    async def release(self, reservation_id: str) -> bool:
        """Drop the hold without counting anything; False when the reservation is gone."""
        return await self.settle(reservation_id, _NO_USAGE)

    async def expire(self, now: datetime) -> int:
        """Settle every reservation past its expiry to what the ledger recorded; how many there were."""
        holds = await self.expired(now)
        settled = 0
        for hold in holds:
            settled += await self.settle(hold.reservation_id, hold.usage)
        return settled

    async def expired(self, now: datetime) -> list[ExpiredHold]:
        """Reservations past their expiry, each with the ledger's record of its request (ok attempts)."""
        ok = (
            select(
                LedgerRow.request_key,
                func.count().label("answers"),
                func.coalesce(func.sum(LedgerRow.prompt_tokens + LedgerRow.completion_tokens), 0).label("tokens"),
                func.coalesce(func.sum(LedgerRow.cost_usd), 0).label("usd"),
            )
            .where(LedgerRow.outcome == "ok")
            .where(
                LedgerRow.request_key.in_(
                    select(QuotaReservationRow.request_key).where(QuotaReservationRow.expires_at <= now)
                )
            )
            .group_by(LedgerRow.request_key)
            .subquery()
        )
        query = (
            select(QuotaReservationRow.id, QuotaReservationRow.request_key, ok.c.answers, ok.c.tokens, ok.c.usd)
            .outerjoin(ok, ok.c.request_key == QuotaReservationRow.request_key)
            .where(QuotaReservationRow.expires_at <= now)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ExpiredHold(
                reservation_id=row.id,
                request_key=row.request_key,
                usage=Usage(
                    requests=1 if row.answers else 0, tokens=int(row.tokens or 0), usd=Decimal(row.usd or 0)
                ),
            )
            for row in rows
        ]

    # --- limits -------------------------------------------------------------------------------

    async def set_limit(
        self, team_id: str, limit: LimitRecord, *, set_by: str, starts: Mapping[Period, datetime], now: datetime
    ) -> None:
        """Create or replace a limit; the current period's counters start from the ledger's usage so far."""
        values = {
            "team_id": team_id,
            "scope": limit.scope.value,
            "target": limit.target,
            "metric": limit.metric.value,
            "period": limit.period.value,
            "amount": limit.amount,
            "set_by": set_by,
            "set_at": now,
        }
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(QuotaLimitRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["team_id", "scope", "target", "metric", "period"],
            set_={"amount": statement.excluded.amount, "set_by": statement.excluded.set_by, "set_at": now},
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement)
            if limit.scope is not Scope.DEFAULT:
                # Default limits are counted per channel: those counters start from the ledger when first used.
                await _ensure_counter(conn, team_id, limit, limit.target, starts[limit.period], self._postgres)

    async def clear_limits(
        self, team_id: str, scope: Scope, target: str, metric: Metric | None = None, period: Period | None = None
    ) -> int:
        """Remove the target's limits (or only the one of that metric and period); how many were removed."""
        statement = delete(QuotaLimitRow).where(
            QuotaLimitRow.team_id == team_id, QuotaLimitRow.scope == scope.value, QuotaLimitRow.target == target
        )
        if metric is not None:
            statement = statement.where(QuotaLimitRow.metric == metric.value)
        if period is not None:
            statement = statement.where(QuotaLimitRow.period == period.value)
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount

    async def limits(self, team_id: str, scope: Scope, target: str) -> list[LimitRecord]:
        """The limits set on exactly this target."""
        query = (
            select(QuotaLimitRow)
            .where(QuotaLimitRow.team_id == team_id, QuotaLimitRow.scope == scope.value, QuotaLimitRow.target == target)
            .order_by(QuotaLimitRow.metric, QuotaLimitRow.period)
        )
        async with self._engine.connect() as conn:
            return [_limit(row) for row in (await conn.execute(query)).all()]

    async def applicable(
        self, team_id: str, channel_id: str, user_id: str | None, starts: Mapping[Period, datetime]
    ) -> list[CounterState]:
        """The limits that apply to a channel (and user, if given), with current counters; nothing is changed."""
        counted = _counted(channel_id, user_id)
        start = _start_of(starts)
        query = (
            select(QuotaLimitRow, QuotaCounterRow.used, QuotaCounterRow.reserved)
            .outerjoin(
                QuotaCounterRow,
                and_(
                    QuotaCounterRow.team_id == QuotaLimitRow.team_id,
                    QuotaCounterRow.scope == QuotaLimitRow.scope,
                    QuotaCounterRow.counted == counted,
                    QuotaCounterRow.metric == QuotaLimitRow.metric,
                    QuotaCounterRow.period == QuotaLimitRow.period,
                    QuotaCounterRow.period_start == start,
                ),
            )
            .where(_applies(team_id, channel_id, user_id))
            .order_by(QuotaLimitRow.scope, QuotaLimitRow.metric, QuotaLimitRow.period)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            states = []
            for row in rows:
                limit = _limit(row)
                who = user_id if limit.scope is Scope.USER else channel_id
                used, reserved = row.used, row.reserved
                if used is None:
                    used = await _ledger_used(conn, team_id, limit, who or "", starts[limit.period])
                    reserved = Decimal(0)
                states.append(CounterState(limit, starts[limit.period], Decimal(used), Decimal(reserved)))
        return states

    # --- PostgreSQL ---------------------------------------------------------------------------

    async def _reserve_postgres(self, request: ReserveRequest) -> Reservation:
        params = {
            "id": request.reservation_id,
            "key": request.request_key,
            "team": request.team_id,
            "channel": request.channel_id,
            "user": request.user_id,
            "tokens": [level.tokens for level in request.levels],
            "usd": [level.usd for level in request.levels],
            "day": request.starts[Period.DAY],
            "week": request.starts[Period.WEEK],
            "month": request.starts[Period.MONTH],
            "now": request.now,
            "expires": request.expires_at,
        }
        async with self._single_statements.connect() as conn:
            rows = (await conn.execute(_RESERVE, params)).all()
        if not rows:
            return Reservation(request.reservation_id, len(request.levels) - 1, held=False, counters=())
        level = rows[0].r_level
        counters = tuple(
            CounterState(
                LimitRecord(Scope(row.r_scope), row.r_target, Metric(row.r_metric), Period(row.r_period), row.r_amount),
                row.r_start,
                Decimal(row.r_used),
                Decimal(row.r_reserved),
            )
            for row in rows
        )
        return Reservation(request.reservation_id, level, held=level is not None, counters=counters)

    # --- SQLite -------------------------------------------------------------------------------

    @asynccontextmanager
    async def _immediate(self) -> AsyncIterator[AsyncConnection]:
        # BEGIN IMMEDIATE takes SQLite's write lock up front, so read-then-write is serialized
        # across processes; the driver's own deferred BEGIN would let two readers race.
        async with write_turn(self._engine), self._engine.connect() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def _reserve_sqlite(self, request: ReserveRequest) -> Reservation:
        params = {"team": request.team_id, "channel": request.channel_id, "user": request.user_id}
        async with self._engine.connect() as conn:
            applies = (await conn.execute(_ANY_APPLIES, params)).first() is not None
        if not applies:
            return Reservation(request.reservation_id, len(request.levels) - 1, held=False, counters=())
        async with self._immediate() as conn:
            limits = [_limit(row) for row in (await conn.execute(
                select(QuotaLimitRow).where(_applies(request.team_id, request.channel_id, request.user_id))
            )).all()]
            if not limits:
                return Reservation(request.reservation_id, len(request.levels) - 1, held=False, counters=())
            counters: list[tuple[int, CounterState]] = []
            for limit in limits:
                who = request.user_id if limit.scope is Scope.USER else request.channel_id
                start = request.starts[limit.period]
                row = await _ensure_counter(conn, request.team_id, limit, who, start, postgres=False)
                counters.append((row.id, CounterState(limit, start, Decimal(row.used), Decimal(row.reserved))))
            counters.sort(key=lambda pair: pair[0])
            states = tuple(state for _, state in counters)
            level = best_level(states, request.levels)
            if level is None:
                return Reservation(request.reservation_id, None, held=False, counters=states)
            held = request.levels[level]
            await conn.execute(
                insert(QuotaReservationRow).values(
                    id=request.reservation_id,
                    request_key=request.request_key,
                    team_id=request.team_id,
                    channel_id=request.channel_id,
                    user_id=request.user_id,
                    held_tokens=held.tokens,
                    held_usd=held.usd,
                    created_at=request.now,
                    expires_at=request.expires_at,
                )
            )
            for counter_id, state in counters:
                await conn.execute(
                    update(QuotaCounterRow)
                    .where(QuotaCounterRow.id == counter_id)
                    .values(reserved=QuotaCounterRow.reserved + state.need(held))
                )
            await conn.execute(
                insert(QuotaHoldRow),
                [{"reservation_id": request.reservation_id, "counter_id": counter_id} for counter_id, _ in counters],
            )
            return Reservation(request.reservation_id, level, held=True, counters=states)


async def _settle_sqlite(conn: AsyncConnection, reservation_id: str, usage: Usage) -> bool:
    # Two statements under the write lock: a reservation that is gone has no holds, so the update
    # changes nothing, and the delete's row count says whether this call owned the reservation.
    params = {
        "rid": reservation_id,
        "requests": Decimal(usage.requests),
        "tokens": Decimal(usage.tokens),
        "usd": usage.usd,
    }
    await conn.execute(_SETTLE_COUNTERS, params)
    # The holds go with it (ON DELETE CASCADE; foreign keys are on, see engine._sqlite_pragmas).
    return (await conn.execute(_DROP_RESERVATION, {"rid": reservation_id})).rowcount == 1


def _by_metric(requests: Any, tokens: Any, usd: Any) -> ColumnElement[Decimal]:
    return case(
        (QuotaCounterRow.metric == Metric.REQUESTS.value, requests),
        (QuotaCounterRow.metric == Metric.TOKENS.value, tokens),
        else_=usd,
    )


def _held(column: Any) -> Any:
    """What the reservation being settled holds of one metric (a scalar subquery)."""
    return select(column).where(QuotaReservationRow.id == bindparam("rid")).scalar_subquery()


# --- shared SQL ---------------------------------------------------------------------------------


def _applies(team_id: str, channel_id: str, user_id: str | None) -> ColumnElement[bool]:
    """Limits on the channel, on the user, and the defaults the channel has no own limit for."""
    own = QuotaLimitRow.__table__.alias("own")
    shadowed = (
        select(literal(1))
        .select_from(own)
        .where(
            own.c.team_id == QuotaLimitRow.team_id,
            own.c.scope == Scope.CHANNEL.value,
            own.c.target == channel_id,
            own.c.metric == QuotaLimitRow.metric,
            own.c.period == QuotaLimitRow.period,
        )
        .exists()
    )
    scopes = [
        and_(QuotaLimitRow.scope == Scope.CHANNEL.value, QuotaLimitRow.target == channel_id),
        and_(QuotaLimitRow.scope == Scope.DEFAULT.value, QuotaLimitRow.target == "", ~shadowed),
    ]
    if user_id is not None:
        scopes.append(and_(QuotaLimitRow.scope == Scope.USER.value, QuotaLimitRow.target == user_id))
    return and_(QuotaLimitRow.team_id == team_id, or_(*scopes))


def _counted(channel_id: str, user_id: str | None) -> ColumnElement[str]:
    return case((QuotaLimitRow.scope == Scope.USER.value, literal(user_id or "")), else_=literal(channel_id))


def _start_of(starts: Mapping[Period, datetime]) -> ColumnElement[datetime]:
    return case(
        *((QuotaLimitRow.period == period.value, literal(start, QuotaCounterRow.period_start.type))
          for period, start in starts.items()),
    )


async def _ensure_counter(
    conn: AsyncConnection, team_id: str, limit: LimitRecord, who: str, start: datetime, postgres: bool
) -> Any:
    """This period's counter of the limit for `who`, created from the ledger's usage if missing."""
    key = (
        QuotaCounterRow.team_id == team_id,
        QuotaCounterRow.scope == limit.scope.value,
        QuotaCounterRow.counted == who,
        QuotaCounterRow.metric == limit.metric.value,
        QuotaCounterRow.period == limit.period.value,
        QuotaCounterRow.period_start == start,
    )
    found = (await conn.execute(select(QuotaCounterRow).where(*key))).one_or_none()
    if found is not None:
        return found
    used = await _ledger_used(conn, team_id, limit, who, start)
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    await conn.execute(
        dialect_insert(QuotaCounterRow)
        .values(
            team_id=team_id, scope=limit.scope.value, counted=who, metric=limit.metric.value,
            period=limit.period.value, period_start=start, used=used, reserved=Decimal(0),
        )
        .on_conflict_do_nothing()
    )
    return (await conn.execute(select(QuotaCounterRow).where(*key))).one()


async def _ledger_used(conn: AsyncConnection, team_id: str, limit: LimitRecord, who: str, start: datetime) -> Decimal:
    """What the ledger's answered calls used of the limit's metric since `start`."""
    measure = {
        Metric.REQUESTS: func.count(func.distinct(LedgerRow.request_key)),
        Metric.TOKENS: func.coalesce(func.sum(LedgerRow.prompt_tokens + LedgerRow.completion_tokens), 0),
        Metric.USD: func.coalesce(func.sum(LedgerRow.cost_usd), 0),
    }[limit.metric]
    column = LedgerRow.user_id if limit.scope is Scope.USER else LedgerRow.channel_id
    query = select(measure).where(
        LedgerRow.team_id == team_id, column == who, LedgerRow.outcome == "ok", LedgerRow.created_at >= start
    )
    return Decimal((await conn.execute(query)).scalar_one() or 0)


def _limit(row: Any) -> LimitRecord:
    return LimitRecord(Scope(row.scope), row.target, Metric(row.metric), Period(row.period), Decimal(row.amount))


# Built once, bound per call: these run on every request.
_ANY_APPLIES = select(QuotaLimitRow.id).where(
    _applies(bindparam("team"), bindparam("channel"), bindparam("user"))  # type: ignore[arg-type]
).limit(1)
_SETTLE_COUNTERS = (
    update(QuotaCounterRow)
    .where(
        QuotaCounterRow.id.in_(select(QuotaHoldRow.counter_id).where(QuotaHoldRow.reservation_id == bindparam("rid")))
    )
    .values(
        reserved=QuotaCounterRow.reserved
        - _by_metric(
            literal(Decimal(1), QuotaCounterRow.used.type),
            _held(QuotaReservationRow.held_tokens),
            func.coalesce(_held(QuotaReservationRow.held_usd), 0),
        ),
        used=QuotaCounterRow.used
        + _by_metric(
            bindparam("requests", type_=QuotaCounterRow.used.type),
            bindparam("tokens", type_=QuotaCounterRow.used.type),
            bindparam("usd", type_=QuotaCounterRow.used.type),
        ),
    )
)
_DROP_RESERVATION = delete(QuotaReservationRow).where(QuotaReservationRow.id == bindparam("rid"))
