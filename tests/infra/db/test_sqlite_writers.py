"""One write turn per SQLite file per process: the hot-path writers queue in process, not in SQLite's busy handler."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from sqlalchemy import func, select

from bot.infra.db.deliveries import DeliveryRow, SqlDeliveries
from bot.infra.db.engine import make_engine
from bot.infra.db.sqlite_writers import write_turn


async def test_engines_on_one_file_share_one_turn_and_other_files_do_not(tmp_path):
    engines = [make_engine(f"sqlite+aiosqlite:///{tmp_path / name}") for name in ("a.db", "a.db", "b.db")]
    try:
        first, same, other = (write_turn(engine) for engine in engines)
        assert first is same
        assert first is not other
        assert isinstance(first, asyncio.Lock)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_postgresql_has_no_turn_to_take():
    engine = make_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")  # never connects
    try:
        assert not isinstance(write_turn(engine), asyncio.Lock)
        async with write_turn(engine):
            pass
    finally:
        await engine.dispose()


async def test_claims_on_their_own_pool_and_finishes_on_the_main_one_all_land(migrated_url):
    # On SQLite the two pools take turns on one file; on PostgreSQL they write side by side.
    engine = make_engine(migrated_url)
    store = SqlDeliveries.beside(engine, clock=lambda: datetime(2026, 11, 25, tzinfo=timezone.utc))
    try:
        keys = [f"command:{i}" for i in range(60)]

        async def one(key: str) -> None:
            assert await store.claim(key, team_id="T1", kind="command") == 1
            await store.finish(key)

        await asyncio.gather(*(one(key) for key in keys))
        async with engine.connect() as conn:
            done = (await conn.execute(
                select(func.count()).select_from(DeliveryRow).where(DeliveryRow.state == "done")
            )).scalar_one()
        assert done == len(keys)
    finally:
        await store.aclose()
        await engine.dispose()
