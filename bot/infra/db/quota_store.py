"""QuotaStore in SQL: one PL/pgSQL call per reserve or settle on PostgreSQL, one writer job on SQLite.

On SQLite a request no limit applies to is checked with one read and no write lock: such a reserve
writes nothing, so reading the last committed state is the same as taking the lock and running just
before a concurrent `set_limit`. Requests some limit applies to run as one job of the file's writer
(bot.infra.db.sqlite_writers): BEGIN IMMEDIATE, read again under the lock, write, COMMIT.
SQLite's amounts are exact decimal text (QuotaAmount), so their arithmetic is done here, in Python.

Settlements are group-committed and, while the database is unreachable, kept in memory and written
once it is back (a model call that was made is counted); a hold whose request's delivery was taken
over by a Slack retry after its process died is settled by that retry (`take_over`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ColumnElement

from bot.infra.db.deliveries import DeliveryRow
from bot.infra.db.engine import unavailable_as, unreachable
from bot.infra.db.group_commit import GroupCommit
from bot.infra.db.money_sum import MoneySum
from bot.infra.db.quota_tables import (
    QuotaAlertRow,
    QuotaCounterRow,
    QuotaHoldRow,
    QuotaLimitRow,
    QuotaReservationRow,
)
from bot.infra.db.sqlite_writers import sqlite_writer
from bot.infra.db.tables import LedgerRow
from bot.ports.quota import Metric, Mode, Period
from bot.ports.quota_store import (
    CounterState,
    DuplicateReservation,
    ExpiredHold,
    FiredAlert,
    LimitRecord,
    Reservation,
    ReserveRequest,
    Scope,
    Settled,
    Usage,
    choose_level,
    hold_need,
)

_RESERVE = text(
    "SELECT * FROM frugal_quota_reserve_v2(:id, :key, :team, :channel, :user, "
    "CAST(:tokens AS BIGINT[]), CAST(:usd AS NUMERIC[]), CAST(:cheap_tokens AS BIGINT), CAST(:cheap_usd AS NUMERIC), "
    ":day, :week, :month, :now, :expires)"
)
_SETTLE = text("SELECT * FROM frugal_quota_settle_v2(:id, :requests, :tokens, :usd, :now)")
_NO_USAGE = Usage(requests=0, tokens=0, usd=Decimal(0))
# At shutdown, how long to wait for settlements kept through a database outage.
DRAIN_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass
class _Settlement:
    """One settle (or release) on its way to the database; `owned` once written: whether it found its hold."""

    reservation_id: str
    usage: Usage
    owned: bool | None = None
    alerts: tuple[FiredAlert, ...] = ()


class SqlQuotaStore:
    """Limits, counters and reservations on the Frugal database, atomic across processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        # Shares the engine's pool; each reserve or settle is one statement, atomic on its own, so it
        # needs no BEGIN/COMMIT round trips (PostgreSQL only: on aiosqlite switching costs thread hops).
        self._single_statements = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._money = MoneySum(engine.dialect.name)
        self._settlements: GroupCommit[_Settlement] = GroupCommit(
            self._write_settlements, keep=unreachable, what="quota settlements"
        )

    # --- reserve, settle, release, expire, take over -----------------------------------------

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

    async def settle(self, reservation_id: str, usage: Usage) -> Settled:
        """Replace the hold by the real usage, recording each alert threshold now reached for the first time.

        Not owned when the reservation is gone (expired or settled). While the database is unreachable
        the settlement waits in memory, in order, and this returns owned, with no alerts (the next
        settle of the counter, once written, finds the thresholds reached and records them).
        """
        settlement = _Settlement(reservation_id, usage)
        await self._settlements.submit(settlement)
        return Settled(settlement.owned is not False, settlement.alerts)

    async def release(self, reservation_id: str) -> bool:
        """Drop the hold without counting anything; False when the reservation is gone."""
        return (await self.settle(reservation_id, _NO_USAGE)).owned

    async def drain(self, timeout: float | None = DRAIN_TIMEOUT_S) -> None:
        """Wait until every settlement so far is written (before the engine closes), at most ``timeout`` s."""
        if left := await self._settlements.drain(timeout):
            log.error("%d quota settlements are still waiting for the database at shutdown", left)

    async def expire(self, now: datetime) -> int:
        """Settle every reservation past its expiry to what the ledger recorded; how many there were."""
        holds = await self._holds(QuotaReservationRow.expires_at <= now)
        settled = 0
        for hold in holds:
            settled += (await self.settle(hold.reservation_id, hold.usage)).owned
        return settled

    async def expired(self, now: datetime) -> list[ExpiredHold]:
        """Reservations past their expiry, each with the ledger's record of its request (ok attempts)."""
        return await self._holds(QuotaReservationRow.expires_at <= now)

    async def take_over(self, request_key: str) -> bool:
        """Settle the hold left on this request key by a process that lost its delivery (a Slack retry took the
        delivery over after its lease), to what the ledger recorded of it; True if there was one to settle."""
        # The claim that took the delivery over is newer than the hold: it was made by an earlier claimer.
        newer_claim = (
            select(literal(1))
            .where(
                DeliveryRow.key == QuotaReservationRow.request_key,
                DeliveryRow.claimed_at > QuotaReservationRow.created_at,
            )
            .exists()
        )
        holds = await self._holds(and_(QuotaReservationRow.request_key == request_key, newer_claim))
        for hold in holds:
            if await self.settle(hold.reservation_id, hold.usage):
                log.warning("took over the quota hold of a request whose earlier process stopped answering it")
                return True
        return False

    async def _holds(self, which: ColumnElement[bool]) -> list[ExpiredHold]:
        """The reservations matching ``which``, each with the ledger's record of its request (ok attempts)."""
        reservations = select(QuotaReservationRow.request_key).where(which)
        ok = (
            select(
                LedgerRow.request_key,
                func.count().label("answers"),
                func.coalesce(func.sum(LedgerRow.prompt_tokens + LedgerRow.completion_tokens), 0).label("tokens"),
                self._money.sum(LedgerRow.cost_usd).label("usd"),
            )
            .where(LedgerRow.outcome == "ok", LedgerRow.request_key.in_(reservations))
            .group_by(LedgerRow.request_key)
            .subquery()
        )
        query = (
            select(QuotaReservationRow.id, QuotaReservationRow.request_key, ok.c.answers, ok.c.tokens, ok.c.usd)
            .outerjoin(ok, ok.c.request_key == QuotaReservationRow.request_key)
            .where(which)
        )
        # The minute job's expire() reads here first: while the database is away, StoreUnavailable.
        with unavailable_as("the quota holds cannot be read now"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [
            ExpiredHold(
                reservation_id=row.id,
                request_key=row.request_key,
                usage=Usage(
                    requests=1 if row.answers else 0,
                    tokens=int(row.tokens or 0),
                    usd=self._money.usd(row.usd) if row.usd is not None else Decimal(0),
                ),
            )
            for row in rows
        ]

    async def _write_settlements(self, batch: list[_Settlement]) -> None:
        if self._postgres:
            # Each is one autocommitted call, atomic on its own; side by side, as the requests finish.
            outcomes = await asyncio.gather(*(self._settle_postgres(item) for item in batch), return_exceptions=True)
            if errors := [outcome for outcome in outcomes if isinstance(outcome, BaseException)]:
                raise errors[0]
            return
        now = datetime.now(timezone.utc)
        outcomes = await self._transaction(
            lambda conn: [_settle_sqlite(conn, item.reservation_id, item.usage, now) for item in batch]
        )
        for item, outcome in zip(batch, outcomes, strict=True):
            # Known once committed: a batch that fails is rolled back whole.
            item.owned, item.alerts = outcome.owned, outcome.alerts

    async def _settle_postgres(self, settlement: _Settlement) -> None:
        usage = settlement.usage
        async with self._single_statements.connect() as conn:
            params = {
                "id": settlement.reservation_id,
                "requests": usage.requests,
                "tokens": usage.tokens,
                "usd": usage.usd,
                "now": datetime.now(timezone.utc),
            }
            rows = (await conn.execute(_SETTLE, params)).all()
        owned = bool(rows and rows[0].r_owned)
        fired = tuple(
            FiredAlert(
                team_id=row.r_team,
                limit=_limit_of(
                    row.r_scope,
                    row.r_target,
                    row.r_metric,
                    row.r_period,
                    row.r_amount,
                    row.r_mode,
                    row.r_alerts,
                    row.r_downgrade,
                ),
                counted=row.r_counted,
                period_start=row.r_start,
                threshold=row.r_threshold,
                used=Decimal(row.r_used),
            )
            for row in rows
            if row.r_threshold is not None
        )
        # Committed on its own: a batch written again after another's failure finds it gone, and it stays owned.
        if owned:
            settlement.alerts = fired
        settlement.owned = settlement.owned or owned

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
            "mode": limit.mode.value,
            "alerts": ",".join(str(pct) for pct in limit.alerts),
            "downgrade": limit.downgrade,
        }
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(QuotaLimitRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["team_id", "scope", "target", "metric", "period"],
            set_={
                "amount": statement.excluded.amount,
                "set_by": statement.excluded.set_by,
                "set_at": now,
                "mode": statement.excluded.mode,
                "alerts": statement.excluded.alerts,
                "downgrade": statement.excluded.downgrade,
            },
        )
        postgres, money = self._postgres, self._money

        def write(conn: Connection) -> None:
            conn.execute(statement)
            if not limit.scope.is_default:
                # Defaults are counted per channel or person: those counters start from the ledger when first used.
                _ensure_counter(conn, team_id, limit, limit.target, starts[limit.period], postgres, money)

        await self._transaction(write)

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
        return await self._transaction(lambda conn: conn.execute(statement).rowcount)

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
        return await self._read_counters(team_id, channel_id, user_id, starts, _applies(team_id, channel_id, user_id))

    async def applicable_to_user(
        self, team_id: str, user_id: str, starts: Mapping[Period, datetime]
    ) -> list[CounterState]:
        """The per-person limits that apply to a user (their own, or the per-person default), with counters."""
        which = and_(
            _applies(team_id, "", user_id), QuotaLimitRow.scope.in_([Scope.USER.value, Scope.DEFAULT_USER.value])
        )
        return await self._read_counters(team_id, "", user_id, starts, which)

    async def _read_counters(
        self,
        team_id: str,
        channel_id: str,
        user_id: str | None,
        starts: Mapping[Period, datetime],
        which: ColumnElement[bool],
    ) -> list[CounterState]:
        counted = _counted(channel_id, user_id)
        start = _start_of(starts)
        query = (
            select(
                QuotaLimitRow, QuotaCounterRow.id.label("counter_id"), QuotaCounterRow.used, QuotaCounterRow.reserved
            )
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
            .where(which)
            .order_by(QuotaLimitRow.scope, QuotaLimitRow.metric, QuotaLimitRow.period)
        )
        money = self._money

        def read(conn: Connection) -> list[CounterState]:
            states = []
            for row in conn.execute(query).all():
                limit = _limit(row)
                who = (user_id if limit.scope.per_user else channel_id) or ""
                used, reserved = row.used, row.reserved
                if used is None:
                    used = _ledger_used(conn, team_id, limit, who, starts[limit.period], money)
                    reserved = Decimal(0)
                states.append(
                    CounterState(
                        limit,
                        starts[limit.period],
                        Decimal(used),
                        Decimal(reserved),
                        counter_id=row.counter_id,
                        counted=who,
                    )
                )
            return states

        async with self._engine.connect() as conn:
            return await conn.run_sync(read)

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
            "cheap_tokens": request.cheapest.tokens if request.cheapest else None,
            "cheap_usd": request.cheapest.usd if request.cheapest else None,
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
                _limit_of(
                    row.r_scope,
                    row.r_target,
                    row.r_metric,
                    row.r_period,
                    row.r_amount,
                    row.r_mode,
                    row.r_alerts,
                    row.r_downgrade,
                ),
                row.r_start,
                Decimal(row.r_used),
                Decimal(row.r_reserved),
                counter_id=row.r_counter,
                counted=row.r_counted,
            )
            for row in rows
        )
        return Reservation(
            request.reservation_id,
            level,
            held=level is not None,
            counters=counters,
            downgraded=bool(rows[0].r_downgraded),
        )

    # --- alerts -------------------------------------------------------------------------------

    async def record_refusal(self, team_id: str, counter: CounterState, threshold: int) -> FiredAlert | None:
        """Record that a full limit refused (threshold `threshold`); the alert if this was the first record."""
        if counter.counter_id is None:
            return None
        statement = _insert_alert(
            self._postgres,
            counter.counter_id,
            threshold,
            counter.limit.amount,
            counter.used,
            datetime.now(timezone.utc),
        )
        if not await self._transaction(lambda conn: conn.execute(statement).first() is not None):
            return None
        return FiredAlert(
            team_id, counter.limit, counter.counted, counter.period_start, threshold, counter.used, refused=True
        )

    async def top_user(
        self, team_id: str, scope: Scope, counted: str, metric: Metric, start: datetime
    ) -> tuple[str, Decimal] | None:
        """Who used most of a channel's limit since `start` (or, for a person's limit, in which channel)."""
        measure = _measure(metric, self._money).label("amount")
        by, where = (
            (LedgerRow.channel_id, LedgerRow.user_id) if scope.per_user else (LedgerRow.user_id, LedgerRow.channel_id)
        )
        query = (
            select(by.label("who"), measure)
            .where(
                LedgerRow.team_id == team_id, where == counted, LedgerRow.outcome == "ok", LedgerRow.created_at >= start
            )
            .group_by(by)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return None
        amounts = [
            (row.who, self._money.usd(row.amount) if metric is Metric.USD else Decimal(row.amount or 0)) for row in rows
        ]
        # Summed exactly in Python for USD on SQLite, so the largest is picked here, not by ORDER BY.
        return max(amounts, key=lambda pair: (pair[1], pair[0]))

    # --- SQLite -------------------------------------------------------------------------------

    async def _transaction(self, work: Callable[[Connection], R]) -> R:
        """Run ``work`` in one write transaction: a job of the SQLite file's writer, or a transaction here."""
        if (writer := sqlite_writer(self._engine)) is not None:
            return await writer.run(work)
        async with self._engine.begin() as conn:
            return await conn.run_sync(work)

    async def _reserve_sqlite(self, request: ReserveRequest) -> Reservation:
        params = {"team": request.team_id, "channel": request.channel_id, "user": request.user_id}
        async with self._engine.connect() as conn:
            applies = (await conn.execute(_ANY_APPLIES, params)).first() is not None
        if not applies:
            return Reservation(request.reservation_id, len(request.levels) - 1, held=False, counters=())
        money = self._money
        return await self._transaction(lambda conn: _reserve_sqlite(conn, request, money))


def _reserve_sqlite(conn: Connection, request: ReserveRequest, money: MoneySum) -> Reservation:
    """The reserve under SQLite's write lock (BEGIN IMMEDIATE): read the counters again, hold, or refuse."""
    limits = [
        _limit(row)
        for row in conn.execute(
            select(QuotaLimitRow).where(_applies(request.team_id, request.channel_id, request.user_id))
        ).all()
    ]
    if not limits:
        return Reservation(request.reservation_id, len(request.levels) - 1, held=False, counters=())
    counters: list[tuple[int, CounterState]] = []
    for limit in limits:
        who = request.user_id if limit.scope.per_user else request.channel_id
        start = request.starts[limit.period]
        row = _ensure_counter(conn, request.team_id, limit, who, start, False, money)
        counters.append(
            (
                row.id,
                CounterState(
                    limit,
                    start,
                    Decimal(row.used),
                    Decimal(row.reserved),
                    counter_id=row.id,
                    counted=who,
                ),
            )
        )
    counters.sort(key=lambda pair: pair[0])
    states = tuple(state for _, state in counters)
    held, level, downgraded = choose_level(states, request)
    if held is None:
        return Reservation(request.reservation_id, None, held=False, counters=states, downgraded=downgraded)
    conn.execute(
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
    conn.execute(
        _SET_RESERVED,
        [
            {"counter": counter_id, "new_reserved": state.reserved + hold_need(state, held)}
            for counter_id, state in counters
        ],
    )
    conn.execute(
        insert(QuotaHoldRow),
        [{"reservation_id": request.reservation_id, "counter_id": counter_id} for counter_id, _ in counters],
    )
    return Reservation(request.reservation_id, level, held=True, counters=states, downgraded=downgraded)


def _settle_sqlite(conn: Connection, reservation_id: str, usage: Usage, now: datetime) -> Settled:
    """The settle under SQLite's write lock: whoever deletes the reservation owns it, moves its counters, and
    records the alert thresholds they now reach (each once: its unique key)."""
    counters = conn.execute(_HELD_COUNTERS, {"rid": reservation_id}).all()
    # The holds go with it (ON DELETE CASCADE; foreign keys are on, see engine.sqlite_pragmas).
    if conn.execute(_DROP_RESERVATION, {"rid": reservation_id}).rowcount != 1:
        return Settled(False)
    real = {
        Metric.REQUESTS.value: Decimal(usage.requests),
        Metric.TOKENS.value: Decimal(usage.tokens),
        Metric.USD.value: usage.usd,
    }
    if not counters:
        return Settled(True)
    used = {row.id: row.used + real[row.metric] for row in counters}
    conn.execute(
        _SET_COUNTER,
        [
            {"counter": row.id, "new_used": used[row.id], "new_reserved": row.reserved - _held_of(row)}
            for row in counters
        ],
    )
    fired: list[FiredAlert] = []
    for row in counters:
        if row.l_amount is None:
            continue  # the limit was cleared meanwhile
        limit = _limit_of(
            row.scope, row.l_target, row.metric, row.period, row.l_amount, row.l_mode, row.l_alerts, row.l_downgrade
        )
        for pct in limit.alerts:
            if used[row.id] * 100 < pct * limit.amount:
                break
            if conn.execute(_insert_alert(False, row.id, pct, limit.amount, used[row.id], now)).first() is not None:
                fired.append(FiredAlert(row.team_id, limit, row.counted, row.period_start, pct, used[row.id]))
    return Settled(True, tuple(fired))


def _held_of(row: Any) -> Decimal:
    """What the reservation being settled holds on this counter."""
    if row.metric == Metric.REQUESTS.value:
        return Decimal(1)
    if row.metric == Metric.TOKENS.value:
        return Decimal(row.held_tokens)
    return Decimal(row.held_usd or 0)


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
        mine = QuotaLimitRow.__table__.alias("mine")
        shadowed_by_own = (
            select(literal(1))
            .select_from(mine)
            .where(
                mine.c.team_id == QuotaLimitRow.team_id,
                mine.c.scope == Scope.USER.value,
                mine.c.target == user_id,
                mine.c.metric == QuotaLimitRow.metric,
                mine.c.period == QuotaLimitRow.period,
            )
            .exists()
        )
        scopes.append(and_(QuotaLimitRow.scope == Scope.USER.value, QuotaLimitRow.target == user_id))
        scopes.append(
            and_(QuotaLimitRow.scope == Scope.DEFAULT_USER.value, QuotaLimitRow.target == "", ~shadowed_by_own)
        )
    return and_(QuotaLimitRow.team_id == team_id, or_(*scopes))


def _counted(channel_id: str, user_id: str | None) -> ColumnElement[str]:
    return case(
        (QuotaLimitRow.scope.in_([Scope.USER.value, Scope.DEFAULT_USER.value]), literal(user_id or "")),
        else_=literal(channel_id),
    )


def _start_of(starts: Mapping[Period, datetime]) -> ColumnElement[datetime]:
    return case(
        *(
            (QuotaLimitRow.period == period.value, literal(start, QuotaCounterRow.period_start.type))
            for period, start in starts.items()
        ),
    )


def _ensure_counter(
    conn: Connection, team_id: str, limit: LimitRecord, who: str, start: datetime, postgres: bool, money: MoneySum
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
    found = conn.execute(select(QuotaCounterRow).where(*key)).one_or_none()
    if found is not None:
        return found
    used = _ledger_used(conn, team_id, limit, who, start, money)
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    conn.execute(
        dialect_insert(QuotaCounterRow)
        .values(
            team_id=team_id,
            scope=limit.scope.value,
            counted=who,
            metric=limit.metric.value,
            period=limit.period.value,
            period_start=start,
            used=used,
            reserved=Decimal(0),
        )
        .on_conflict_do_nothing()
    )
    return conn.execute(select(QuotaCounterRow).where(*key)).one()


def _ledger_used(
    conn: Connection, team_id: str, limit: LimitRecord, who: str, start: datetime, money: MoneySum
) -> Decimal:
    """What the ledger's answered calls used of the limit's metric since `start` (USD summed exactly)."""
    measure = _measure(limit.metric, money)
    column = LedgerRow.user_id if limit.scope.per_user else LedgerRow.channel_id
    query = select(measure).where(
        LedgerRow.team_id == team_id, column == who, LedgerRow.outcome == "ok", LedgerRow.created_at >= start
    )
    value = conn.execute(query).scalar_one()
    if limit.metric is Metric.USD:
        return money.usd(value)
    return Decimal(value or 0)


def _measure(metric: Metric, money: MoneySum) -> ColumnElement[Any]:
    return {
        Metric.REQUESTS: func.count(func.distinct(LedgerRow.request_key)),
        Metric.TOKENS: func.coalesce(func.sum(LedgerRow.prompt_tokens + LedgerRow.completion_tokens), 0),
        Metric.USD: money.sum(LedgerRow.cost_usd),
    }[metric]


def _limit(row: Any) -> LimitRecord:
    return _limit_of(row.scope, row.target, row.metric, row.period, row.amount, row.mode, row.alerts, row.downgrade)


def _limit_of(
    scope: str, target: str, metric: str, period: str, amount: Any, mode: str, alerts: str, downgrade: int | None
) -> LimitRecord:
    return LimitRecord(
        Scope(scope),
        target,
        Metric(metric),
        Period(period),
        Decimal(amount),
        mode=Mode(mode),
        alerts=tuple(int(pct) for pct in alerts.split(",") if pct),
        downgrade=downgrade,
    )


def _insert_alert(
    postgres: bool, counter_id: int, threshold: int, amount: Decimal, used: Decimal, now: datetime
) -> Any:
    """Insert the alert's row unless it is there; RETURNING gives a row only to the insert that made it."""
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    return (
        dialect_insert(QuotaAlertRow)
        .values(counter_id=counter_id, threshold=threshold, amount=amount, used=used, fired_at=now)
        .on_conflict_do_nothing()
        .returning(QuotaAlertRow.id)
    )


# Built once, bound per call: these run on every request.
_ANY_APPLIES = (
    select(QuotaLimitRow.id)
    .where(
        _applies(bindparam("team"), bindparam("channel"), bindparam("user"))  # type: ignore[arg-type]
    )
    .limit(1)
)
_COUNTER_LIMIT = QuotaLimitRow.__table__.alias("counter_limit")
_HELD_COUNTERS = (
    select(
        QuotaCounterRow.id,
        QuotaCounterRow.team_id,
        QuotaCounterRow.scope,
        QuotaCounterRow.counted,
        QuotaCounterRow.metric,
        QuotaCounterRow.period,
        QuotaCounterRow.period_start,
        QuotaCounterRow.used,
        QuotaCounterRow.reserved,
        QuotaReservationRow.held_tokens,
        QuotaReservationRow.held_usd,
        _COUNTER_LIMIT.c.target.label("l_target"),
        _COUNTER_LIMIT.c.amount.label("l_amount"),
        _COUNTER_LIMIT.c.mode.label("l_mode"),
        _COUNTER_LIMIT.c.alerts.label("l_alerts"),
        _COUNTER_LIMIT.c.downgrade.label("l_downgrade"),
    )
    .select_from(QuotaReservationRow)
    .join(QuotaHoldRow, QuotaHoldRow.reservation_id == QuotaReservationRow.id)
    .join(QuotaCounterRow, QuotaCounterRow.id == QuotaHoldRow.counter_id)
    .outerjoin(
        _COUNTER_LIMIT,
        and_(
            _COUNTER_LIMIT.c.team_id == QuotaCounterRow.team_id,
            _COUNTER_LIMIT.c.scope == QuotaCounterRow.scope,
            _COUNTER_LIMIT.c.metric == QuotaCounterRow.metric,
            _COUNTER_LIMIT.c.period == QuotaCounterRow.period,
            _COUNTER_LIMIT.c.target
            == case(
                (QuotaCounterRow.scope.in_([Scope.DEFAULT.value, Scope.DEFAULT_USER.value]), literal("")),
                else_=QuotaCounterRow.counted,
            ),
        ),
    )
    .where(QuotaReservationRow.id == bindparam("rid"))
)
_SET_RESERVED = (
    update(QuotaCounterRow)
    .where(QuotaCounterRow.id == bindparam("counter"))
    .values(reserved=bindparam("new_reserved", type_=QuotaCounterRow.reserved.type))
)
_SET_COUNTER = (
    update(QuotaCounterRow)
    .where(QuotaCounterRow.id == bindparam("counter"))
    .values(
        used=bindparam("new_used", type_=QuotaCounterRow.used.type),
        reserved=bindparam("new_reserved", type_=QuotaCounterRow.reserved.type),
    )
)
_DROP_RESERVATION = delete(QuotaReservationRow).where(QuotaReservationRow.id == bindparam("rid"))
