"""Once-only claims of Slack deliveries, on SQLite and PostgreSQL, also from two replicas at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from bot.infra.db.deliveries import LEASE, RETENTION, DeliveryRow, SqlDeliveries
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.sqlite_writers import sqlite_writer, write_turn

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand (time travel, not sleeping)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["shared engine", "own claim pool"])
async def replicas(request, engines, clock):
    """One store per replica: claiming on the replica's engine, or on a small pool of its own as `frugal run` does."""
    if request.param == "shared engine":
        yield [SqlDeliveries(engine, clock=clock) for engine in engines]
        return
    stores = [SqlDeliveries.beside(engine, clock=clock) for engine in engines]
    yield stores
    for store in stores:
        await store.aclose()


@pytest.fixture
def rows(engines):
    """Read every delivery row, by key."""

    async def read() -> dict[str, DeliveryRow]:
        async with make_sessionmaker(engines[0])() as session:
            return {row.key: row for row in await session.scalars(select(DeliveryRow))}

    return read


async def test_the_first_claim_wins_and_a_duplicate_is_refused(replicas, rows):
    store = replicas[0]

    assert await store.claim("event:Ev1", team_id="T1", kind="event") == 1
    assert await store.claim("event:Ev1", team_id="T1", kind="event") is None
    assert await store.claim("event:Ev2", team_id="T1", kind="event") == 1

    row = (await rows())["event:Ev1"]
    assert (row.team_id, row.kind, row.state, row.claims) == ("T1", "event", "claimed", 1)
    assert (row.first_seen_at, row.claimed_at, row.lease_expires_at) == (T0, T0, T0 + LEASE)
    assert row.done_at is None


async def test_a_finished_delivery_is_never_claimed_again(replicas, clock, rows):
    store = replicas[0]
    await store.claim("command:1.2.3", team_id="T1", kind="command")
    clock.advance(timedelta(seconds=4))
    await store.finish("command:1.2.3")

    clock.advance(LEASE * 10)
    assert await store.claim("command:1.2.3", team_id="T1", kind="command") is None

    row = (await rows())["command:1.2.3"]
    assert (row.state, row.claims, row.done_at) == ("done", 1, T0 + timedelta(seconds=4))


async def test_an_unfinished_delivery_is_taken_over_once_its_lease_expired(replicas, clock, rows):
    store = replicas[0]
    await store.claim("event:Ev1", team_id="T1", kind="event")

    clock.advance(LEASE)
    assert await store.claim("event:Ev1", team_id="T1", kind="event") is None, "the lease is still running"

    clock.advance(timedelta(microseconds=1))
    assert await store.claim("event:Ev1", team_id="T1", kind="event") == 2
    assert await store.claim("event:Ev1", team_id="T1", kind="event") is None, "the takeover holds a new lease"

    row = (await rows())["event:Ev1"]
    assert (row.state, row.claims, row.first_seen_at) == ("claimed", 2, T0)
    assert (row.claimed_at, row.lease_expires_at) == (clock.now, clock.now + LEASE)


async def _race(replicas: list[SqlDeliveries], keys: list[str]) -> dict[str, list[int | None]]:
    """Each key claimed four times at once, twice per replica; a few keys at a time, to stay within the pools."""
    results: dict[str, list[int | None]] = {}
    for wave in range(0, len(keys), 4):
        batch = keys[wave : wave + 4]
        outcomes = await asyncio.gather(
            *(store.claim(key, team_id="T1", kind="event") for key in batch for store in replicas for _ in range(2))
        )
        for i, key in enumerate(batch):
            results[key] = sorted(outcomes[i * 4 : (i + 1) * 4], key=lambda r: r is None)
    return results


async def test_concurrent_claims_from_two_replicas_have_exactly_one_winner(replicas, rows):
    keys = [f"event:Ev{i}" for i in range(24)]

    results = await _race(replicas, keys)

    assert results == {key: [1, None, None, None] for key in keys}
    assert len(await rows()) == len(keys)


async def test_concurrent_takeovers_from_two_replicas_have_exactly_one_winner(replicas, clock):
    keys = [f"event:Ev{i}" for i in range(10)]
    for key in keys:
        await replicas[0].claim(key, team_id="T1", kind="event")
    clock.advance(LEASE + timedelta(seconds=1))

    results = await _race(replicas, keys)

    assert results == {key: [2, None, None, None] for key in keys}


async def test_purge_deletes_deliveries_older_than_the_retention(replicas, clock, rows):
    store = replicas[0]
    await store.claim("event:old", team_id="T1", kind="event")
    await store.finish("event:old")
    clock.advance(timedelta(hours=1))
    await store.claim("event:old-unfinished", team_id="T1", kind="event")
    clock.advance(RETENTION - timedelta(minutes=30))
    await store.claim("event:recent", team_id="T1", kind="event")

    assert await store.purge() == 1
    assert set(await rows()) == {"event:old-unfinished", "event:recent"}

    clock.advance(timedelta(hours=1))
    assert await store.purge() == 1
    assert set(await rows()) == {"event:recent"}
    assert await store.purge() == 0


# On an SQLite file, claims are jobs of its writer (the next test): each test runs on its backend only.
@pytest.mark.parametrize("migrated_url", ["postgres"], indirect=True)
async def test_claims_beside_a_postgresql_database_run_on_their_own_autocommit_pool(engines):
    store = SqlDeliveries.beside(engines[0])
    claim_engine = store._claim_engine
    assert claim_engine is not None and claim_engine is not engines[0]
    assert claim_engine.url == engines[0].url

    assert await store.claim("event:own", team_id="T1", kind="event") == 1
    assert await SqlDeliveries(engines[1]).claim("event:own", team_id="T1", kind="event") is None
    async with claim_engine.connect() as conn:
        # Never committed, yet seen at once by another engine: the pool's connections are in autocommit.
        await conn.execute(update(DeliveryRow).where(DeliveryRow.key == "event:own").values(team_id="T2"))
        async with engines[1].connect() as other:
            assert await other.scalar(select(DeliveryRow.team_id).where(DeliveryRow.key == "event:own")) == "T2"

    await store.aclose()
    assert claim_engine.pool.checkedin() == 0, "aclose() closed the claims' connections"


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
async def test_claims_on_an_sqlite_file_go_before_the_writes_queued_ahead_of_them(engines):
    store = SqlDeliveries.beside(engines[0], clock=lambda: T0)
    assert store._claim_engine is None
    await store.claim("event:done-first", team_id="T1", kind="event")
    seen: list[str | None] = []
    urgent = select(DeliveryRow.key).where(DeliveryRow.key == "event:urgent")
    writer = sqlite_writer(engines[0])
    async with write_turn(engines[0]):  # the writer is held: what comes now queues
        done_marks = asyncio.create_task(store.finish("event:done-first"))
        other_write = asyncio.create_task(writer.run(lambda conn: seen.append(conn.execute(urgent).scalar())))
        await asyncio.sleep(0.05)
        claim = asyncio.create_task(store.claim("event:urgent", team_id="T1", kind="event"))
        await asyncio.sleep(0.05)
        assert not claim.done() and not other_write.done()
    assert await claim == 1
    await asyncio.gather(done_marks, other_write)
    assert seen == ["event:urgent"], "the claim, on which an ack waits, went before the write queued ahead of it"
    await store.aclose()


async def test_claims_beside_an_in_memory_sqlite_database_share_its_engine():
    engine = make_engine("sqlite+aiosqlite://")
    try:
        assert SqlDeliveries.beside(engine)._claim_engine is None, "a second engine would see another database"
    finally:
        await engine.dispose()
