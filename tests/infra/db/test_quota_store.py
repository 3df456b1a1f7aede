"""SqlQuotaStore on real migrated databases (SQLite and PostgreSQL): reserve, settle, release, expire."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import normalize_database_url
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.infra.db.migrate import upgrade
from bot.infra.db.quota_store import SqlQuotaStore
from bot.infra.db.quota_tables import QuotaCounterRow, QuotaHoldRow, QuotaReservationRow
from bot.ports.ledger import LedgerEntry
from bot.ports.quota import Metric, Period
from bot.ports.quota_store import DuplicateReservation, Level, LimitRecord, ReserveRequest, Scope, Usage
from bot.services.quota_spec import MAX_AMOUNT, period_starts

UTC = timezone.utc
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TEAM, CHANNEL, USER = "T1", "C1", "U1"
LEVELS = (Level(tokens=100, usd=Decimal("0.001")), Level(tokens=200, usd=Decimal("0.01")))


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(migrated_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> SqlQuotaStore:
    return SqlQuotaStore(engine)


@pytest.fixture
async def sqlite_engine(tmp_path) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite file only: for what only SQLite's single write lock shows."""
    url = normalize_database_url(f"sqlite:///{tmp_path / 'frugal.db'}")
    await upgrade(url)
    engine = make_engine(url)
    yield engine
    await engine.dispose()


def starts(at: datetime = NOW) -> dict[Period, datetime]:
    return period_starts(at, ZoneInfo("UTC"))


def request(
    key: str | None = None,
    *,
    levels: tuple[Level, ...] = LEVELS,
    at: datetime = NOW,
    channel: str = CHANNEL,
    user: str = USER,
    hold_for: timedelta = timedelta(minutes=5),
) -> ReserveRequest:
    return ReserveRequest(
        reservation_id=str(uuid.uuid4()),
        request_key=key or f"command:{uuid.uuid4().hex}",
        team_id=TEAM,
        channel_id=channel,
        user_id=user,
        levels=levels,
        starts=starts(at),
        now=at,
        expires_at=at + hold_for,
    )


async def set_limit(store: SqlQuotaStore, scope: Scope, target: str, metric: Metric, period: Period, amount) -> None:
    limit = LimitRecord(scope, target, metric, period, Decimal(amount))
    await store.set_limit(TEAM, limit, set_by="U0", starts=starts(), now=NOW)


async def counter(store: SqlQuotaStore, metric: Metric, *, at: datetime = NOW, channel: str = CHANNEL):
    states = await store.applicable(TEAM, channel, USER, starts(at))
    [state] = [s for s in states if s.limit.metric is metric]
    return state


async def test_no_limit_means_nothing_is_held(store):
    reservation = await store.reserve(request())
    assert (reservation.level, reservation.held, reservation.counters) == (1, False, ())


async def test_without_a_limit_sqlite_reserves_without_the_write_lock_and_with_one_under_it(sqlite_engine):
    # SQLite only: PostgreSQL's reserve locks only the counter rows it holds.
    engine, store = sqlite_engine, SqlQuotaStore(sqlite_engine)
    other = make_engine(str(engine.url))  # another replica, holding SQLite's single write lock
    try:
        async with other.connect() as writer:
            await writer.exec_driver_sql("BEGIN IMMEDIATE")
            async with asyncio.timeout(2):
                free = await store.reserve(request())
            assert free.held is False
            await writer.rollback()
        await set_limit(store, Scope.USER, USER, Metric.REQUESTS, Period.DAY, 5)
        async with other.connect() as writer:
            await writer.exec_driver_sql("BEGIN IMMEDIATE")
            limited = asyncio.create_task(store.reserve(request()))
            await asyncio.sleep(0.3)
            assert not limited.done()  # a limit applies: it queues for the lock
            await writer.rollback()
        async with asyncio.timeout(5):
            assert (await limited).held is True
    finally:
        await other.dispose()


async def test_reserve_holds_the_largest_level_that_fits_then_settle_counts_real_usage(store):
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.TOKENS, Period.DAY, 250)
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 10)
    reservation = await store.reserve(request())
    assert reservation.level == 1 and reservation.held
    tokens = await counter(store, Metric.TOKENS)
    assert (tokens.used, tokens.reserved) == (0, 200)
    # 50 tokens are left while 200 are held: not even the first level (100) fits.
    second = await store.reserve(request())
    assert second.level is None and not second.held
    assert await store.settle(reservation.reservation_id, Usage(requests=1, tokens=120, usd=Decimal("0.0004")))
    tokens, requests = await counter(store, Metric.TOKENS), await counter(store, Metric.REQUESTS)
    assert (tokens.used, tokens.reserved, requests.used, requests.reserved) == (120, 0, 1, 0)
    # Now 130 tokens are left: the first level fits, the second does not.
    assert (await store.reserve(request())).level == 0


async def test_settle_and_release_are_idempotent(store):
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 3)
    held = await store.reserve(request())
    assert await store.settle(held.reservation_id, Usage(1, 10, Decimal(0)))
    assert not await store.settle(held.reservation_id, Usage(1, 10, Decimal(0)))
    assert not await store.release(held.reservation_id)
    released = await store.reserve(request())
    assert await store.release(released.reservation_id)
    assert not await store.release(released.reservation_id)
    state = await counter(store, Metric.REQUESTS)
    assert (state.used, state.reserved) == (1, 0)


async def test_usd_limit_refuses_a_level_with_unknown_price(store):
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, "5")
    levels = (Level(tokens=100, usd=Decimal("0.01")), Level(tokens=100, usd=None))
    assert (await store.reserve(request(levels=levels))).level == 0
    assert (await store.reserve(request(levels=levels[1:]))).level is None


async def test_default_applies_per_channel_unless_the_channel_has_its_own(store):
    await set_limit(store, Scope.DEFAULT, "", Metric.REQUESTS, Period.DAY, 1)
    await set_limit(store, Scope.CHANNEL, "C2", Metric.REQUESTS, Period.DAY, 3)
    assert (await store.reserve(request(channel="C1"))).held
    assert (await store.reserve(request(channel="C1"))).level is None
    # Another channel has its own count under the default.
    assert (await store.reserve(request(channel="C3"))).held
    # C2's own limit replaces the default.
    for _ in range(3):
        assert (await store.reserve(request(channel="C2"))).held
    refused = await store.reserve(request(channel="C2"))
    assert refused.level is None
    assert [c.limit.scope for c in refused.counters] == [Scope.CHANNEL]


async def test_user_limit_counts_the_user_in_every_channel(store):
    await set_limit(store, Scope.USER, USER, Metric.REQUESTS, Period.WEEK, 2)
    assert (await store.reserve(request(channel="C1"))).held
    assert (await store.reserve(request(channel="C2"))).held
    assert (await store.reserve(request(channel="C3"))).level is None
    other = await store.reserve(request(channel="C3", user="U2"))
    assert (other.level, other.held) == (1, False)  # no limit on U2: not refused, nothing held


async def test_a_new_period_is_a_new_counter(store):
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 1)
    held = await store.reserve(request())
    await store.settle(held.reservation_id, Usage(1, 5, Decimal(0)))
    assert (await store.reserve(request())).level is None
    tomorrow = NOW + timedelta(days=1)
    assert (await store.reserve(request(at=tomorrow))).held
    assert (await counter(store, Metric.REQUESTS)).used == 1  # yesterday's row is kept as history


async def test_set_limit_starts_from_the_ledger_and_keeps_a_running_counter(store, engine):
    ledger = SqlLedger(make_sessionmaker(engine))
    for key, outcome, cost in (("a", "ok", "1.5"), ("b", "error", "0"), ("c", "ok", "2"), ("c", "ok", "0.5")):
        await ledger.record(ledger_entry(key, outcome, Decimal(cost), NOW - timedelta(hours=1)))
    await ledger.record(ledger_entry("old", "ok", Decimal(9), NOW - timedelta(days=40)))
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, "5")
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.MONTH, 100)
    assert (await counter(store, Metric.USD)).used == 4
    assert (await counter(store, Metric.REQUESTS)).used == 2  # distinct answered requests
    held = await store.reserve(request())
    await store.settle(held.reservation_id, Usage(1, 10, Decimal("0.25")))
    # Replacing the amount keeps what was counted.
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, "6")
    state = await counter(store, Metric.USD)
    assert (state.used, state.limit.amount) == (Decimal("4.25"), 6)


async def test_clear_and_limits(store):
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, "5")
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 200)
    assert {(r.metric, r.period) for r in await store.limits(TEAM, Scope.CHANNEL, CHANNEL)} == {
        (Metric.USD, Period.MONTH),
        (Metric.REQUESTS, Period.DAY),
    }
    assert await store.clear_limits(TEAM, Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH) == 1
    assert await store.clear_limits(TEAM, Scope.CHANNEL, CHANNEL) == 1
    assert await store.clear_limits(TEAM, Scope.CHANNEL, CHANNEL) == 0
    assert await store.limits(TEAM, Scope.CHANNEL, CHANNEL) == []


async def test_a_duplicate_request_key_holds_nothing_twice(store):
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 5)
    await store.reserve(request("event:1"))
    with pytest.raises(DuplicateReservation):
        await store.reserve(request("event:1"))
    assert (await counter(store, Metric.REQUESTS)).reserved == 1


async def test_expire_settles_to_the_ledger_and_leaves_no_phantom_spend(store, engine):
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, "1")
    await set_limit(store, Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.MONTH, 10)
    answered = await store.reserve(request("command:answered"))
    crashed_early = await store.reserve(request("command:early"))
    fresh = await store.reserve(request("command:fresh", hold_for=timedelta(hours=1)))
    assert answered.held and crashed_early.held and fresh.held
    ledger = SqlLedger(make_sessionmaker(engine))
    await ledger.record(ledger_entry("command:answered", "error", Decimal(0), NOW))
    await ledger.record(ledger_entry("command:answered", "ok", Decimal("0.003"), NOW, tokens=(70, 30)))
    assert await store.expire(NOW + timedelta(minutes=4)) == 0
    assert await store.expire(NOW + timedelta(minutes=6)) == 2
    usd, requests = await counter(store, Metric.USD), await counter(store, Metric.REQUESTS)
    assert (usd.used, usd.reserved) == (Decimal("0.003"), LEVELS[1].usd)  # only `fresh` still held
    assert (requests.used, requests.reserved) == (1, 1)
    # The process was only slow: its late settle finds the hold gone and counts nothing twice.
    assert not await store.settle(answered.reservation_id, Usage(1, 100, Decimal("0.003")))
    assert await store.expire(NOW + timedelta(hours=2)) == 1
    assert (await counter(store, Metric.REQUESTS)).reserved == 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(QuotaHoldRow))).scalar_one() == 0
        assert (await conn.execute(select(func.count()).select_from(QuotaReservationRow))).scalar_one() == 0


def ledger_entry(key: str, outcome: str, cost: Decimal, at: datetime, tokens: tuple[int, int] = (10, 5)) -> LedgerEntry:
    return LedgerEntry(
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=USER,
        request_key=key,
        task="rewrite",
        requested_model="gpt-4.1-nano",
        served_model="gpt-4.1-nano" if outcome == "ok" else None,
        prompt_tokens=tokens[0],
        cached_tokens=0,
        completion_tokens=tokens[1],
        cost_usd=cost,
        baseline_cost_usd=cost,
        energy_wh=None,
        latency_ms=5.0,
        outcome=outcome,
        error_code=None if outcome == "ok" else "server_error",
        attempt=1,
        created_at=at,
    )


@pytest.mark.parametrize("replicas", [1, 3])
async def test_concurrent_reserves_hold_exactly_the_limit(migrated_url, replicas):
    """Many reserves at once, over several engines (separate pools, as separate replicas would have)."""
    engines = [make_engine(migrated_url) for _ in range(replicas)]
    try:
        stores = [SqlQuotaStore(engine) for engine in engines]
        await set_limit(stores[0], Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 7)
        await set_limit(stores[0], Scope.DEFAULT, "", Metric.TOKENS, Period.DAY, 10_000)
        results = await asyncio.gather(*(stores[i % replicas].reserve(request()) for i in range(30)))
        held = [r for r in results if r.held]
        assert len(held) == 7
        assert sum(r.level is None for r in results) == 23
        state = await counter(stores[0], Metric.REQUESTS)
        assert (state.used, state.reserved) == (0, 7)
        # Settling concurrently (twice each: a retry must count nothing more) leaves exact counters.
        outcomes = await asyncio.gather(
            *(stores[i % replicas].settle(r.reservation_id, Usage(1, 50, Decimal(0))) for i, r in enumerate(held * 2))
        )
        assert sum(outcome.owned for outcome in outcomes) == 7
        requests, tokens = await counter(stores[0], Metric.REQUESTS), await counter(stores[0], Metric.TOKENS)
        assert (requests.used, requests.reserved, tokens.used, tokens.reserved) == (7, 0, 350, 0)
        async with engines[0].connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(QuotaCounterRow))).scalar_one()
        assert rows == 2  # the racing first reserves created each counter once
    finally:
        for engine in engines:
            await engine.dispose()


async def test_the_largest_limits_fit_the_columns(store):
    for metric, amount in MAX_AMOUNT.items():
        await set_limit(store, Scope.CHANNEL, CHANNEL, metric, Period.MONTH, amount)
    held = await store.reserve(request())
    assert held.held and {c.limit.amount for c in held.counters} == set(MAX_AMOUNT.values())
