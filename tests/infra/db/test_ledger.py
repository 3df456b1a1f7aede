"""The ledger's SQL: every entry committed before record() returns, concurrent entries sharing one INSERT."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.infra.db.tables import LedgerRow
from bot.ports.ledger import LedgerEntry


def _entry(i: int) -> LedgerEntry:
    return LedgerEntry(
        team_id="T1",
        channel_id="C1",
        user_id="U1",
        request_key=f"command:{i}",
        task="rewrite",
        requested_model="gpt-4.1-nano",
        served_model="gpt-4.1-nano",
        prompt_tokens=10,
        cached_tokens=0,
        completion_tokens=5,
        cost_usd=Decimal("0.000003"),
        baseline_cost_usd=Decimal("0.00005"),
        energy_wh=0.01,
        latency_ms=800.0,
        outcome="ok",
        error_code=None,
        attempt=1,
        created_at=datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc),
    )


async def test_concurrent_entries_share_an_insert_and_each_is_committed_when_record_returns(migrated_url):
    engine = make_engine(migrated_url)
    inserts: list[bool] = []

    def count(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO USAGE_LEDGER"):
            inserts.append(executemany)

    # On every engine: on an SQLite file the rows are written on its writer's own engine.
    event.listen(Engine, "before_cursor_execute", count)
    ledger = SqlLedger(make_sessionmaker(engine))
    try:
        await asyncio.gather(*(ledger.record(_entry(i)) for i in range(40)))

        async with engine.connect() as conn:
            keys = set((await conn.execute(select(LedgerRow.request_key))).scalars())
            assert (await conn.execute(select(func.count()).select_from(LedgerRow))).scalar_one() == 40
        assert keys == {f"command:{i}" for i in range(40)}
        assert 1 <= len(inserts) < 40, "the entries recorded together went in fewer statements than entries"
    finally:
        event.remove(Engine, "before_cursor_execute", count)
        await ledger.drain()
        await engine.dispose()


async def test_a_recorded_entry_is_readable_at_once(migrated_url):
    engine = make_engine(migrated_url)
    ledger = SqlLedger(make_sessionmaker(engine))
    try:
        await ledger.record(_entry(1))

        async with engine.connect() as conn:
            assert (await conn.execute(select(LedgerRow.request_key))).scalar_one() == "command:1"
    finally:
        await engine.dispose()
