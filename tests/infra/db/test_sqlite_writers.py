"""One writer per SQLite file per event loop: whole transactions on the loop, queued in process, never in the busy handler."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, text

from bot.infra.db.deliveries import DeliveryRow, SqlDeliveries
from bot.infra.db.engine import make_engine
from bot.infra.db.sqlite_writers import sqlite_writer, write_turn


async def test_engines_on_one_file_share_one_writer_and_other_files_do_not(tmp_path):
    engines = [make_engine(f"sqlite+aiosqlite:///{tmp_path / name}") for name in ("a.db", "a.db", "b.db")]
    try:
        first, same, other = (sqlite_writer(engine) for engine in engines)
        assert first is same
        assert first is not other and other is not None
    finally:
        for engine in engines:
            await engine.dispose()


async def test_postgresql_and_in_memory_sqlite_have_no_writer_and_no_turn_to_take():
    for url in ("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", "sqlite+aiosqlite://"):
        engine = make_engine(url)  # never connects
        try:
            assert sqlite_writer(engine) is None
            async with write_turn(engine):
                pass
        finally:
            await engine.dispose()


async def test_a_job_is_one_transaction_and_its_error_reaches_the_caller(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    writer = sqlite_writer(engine)
    try:
        await writer.run(lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")))

        def write(conn, x):
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
            if x == 2:
                raise ValueError("this job's rows are rolled back")
            return x

        assert await writer.run(lambda conn: write(conn, 1)) == 1
        with pytest.raises(ValueError):
            await writer.run(lambda conn: write(conn, 2))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [1]
    finally:
        await engine.dispose()


async def test_while_another_process_holds_the_lock_jobs_wait_without_blocking_the_loop(tmp_path):
    path = tmp_path / "a.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    writer = sqlite_writer(engine)
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    try:
        await writer.run(lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")))
        other.execute("BEGIN IMMEDIATE")
        job = asyncio.create_task(writer.run(lambda conn: conn.execute(text("INSERT INTO t VALUES (1)")).rowcount))
        ticks = 0
        while ticks < 20:  # the loop keeps turning meanwhile
            await asyncio.sleep(0.005)
            ticks += 1
        assert not job.done()
        other.execute("ROLLBACK")
        async with asyncio.timeout(5):
            assert await job == 1
    finally:
        other.close()
        await engine.dispose()


async def test_urgent_jobs_go_before_queued_ones_and_the_turn_holds_every_job(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    writer = sqlite_writer(engine)
    order: list[str] = []
    try:
        async with write_turn(engine):
            normal = [asyncio.create_task(writer.run(lambda conn, i=i: order.append(f"normal {i}"))) for i in range(3)]
            await asyncio.sleep(0.05)
            urgent = asyncio.create_task(writer.run(lambda conn: order.append("urgent"), urgent=True))
            await asyncio.sleep(0.05)
            assert order == [], "nothing runs while the turn is held"
        await asyncio.gather(urgent, *normal)
        assert order == ["urgent", "normal 0", "normal 1", "normal 2"]
    finally:
        await engine.dispose()


async def test_a_cancelled_turn_waiter_does_not_keep_the_writer_waiting(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    writer = sqlite_writer(engine)
    try:
        held = asyncio.Event()

        async def hold_then_wait() -> None:
            async with write_turn(engine):
                held.set()
                await asyncio.sleep(3600)

        holder = asyncio.create_task(hold_then_wait())
        await held.wait()
        waiter = asyncio.create_task(write_turn(engine).__aenter__())
        await asyncio.sleep(0.05)
        waiter.cancel()
        holder.cancel()
        async with asyncio.timeout(5):
            assert await writer.run(lambda conn: "ran") == "ran"
    finally:
        await engine.dispose()


async def test_claims_and_finishes_from_two_stores_all_land(migrated_url):
    # On SQLite the claims and done marks are jobs of the file's writer; on PostgreSQL they write side by side.
    engine = make_engine(migrated_url)
    store = SqlDeliveries.beside(engine, clock=lambda: datetime(2026, 11, 25, tzinfo=timezone.utc))
    try:
        keys = [f"command:{i}" for i in range(60)]

        async def one(key: str) -> None:
            assert await store.claim(key, team_id="T1", kind="command") == 1
            await store.finish(key)

        await asyncio.gather(*(one(key) for key in keys))
        async with engine.connect() as conn:
            done = (
                await conn.execute(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.state == "done"))
            ).scalar_one()
        assert done == len(keys)
    finally:
        await store.aclose()
        await engine.dispose()
