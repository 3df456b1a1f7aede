"""The router on a real database: a retired model is called once, then skipped, also after a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.catalog import Catalog
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.infra.db.model_status import SqlModelStatusStore
from bot.infra.db.tables import LedgerRow
from bot.router.router import ModelRouter
from tests.fakes.openai_server import Fail
from tests.router.conftest import CTX, REQUEST

NANO, MINI = "gpt-4.1-nano", "gpt-4o-mini"


@pytest.fixture
async def start_replica(migrated_url, chat_model, clock) -> AsyncIterator[Callable[[], ModelRouter]]:
    """Start a 'process': its own engine and router on the shared database."""
    engines = []

    def start() -> ModelRouter:
        engine = make_engine(migrated_url)
        engines.append(engine)
        sessions = make_sessionmaker(engine)
        return ModelRouter(
            chat_model,
            Catalog.load(),
            SqlLedger(sessions),
            (NANO, MINI),
            baseline_model="gpt-4o",
            clock=clock,
            sleep=clock.sleep,
            status_store=SqlModelStatusStore(sessions),
        )

    yield start
    for engine in engines:
        await engine.dispose()


async def _ledger(migrated_url) -> list[tuple[str, str, str | None, int]]:
    engine = make_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(LedgerRow).order_by(LedgerRow.id))).all()
    finally:
        await engine.dispose()
    return [(r.requested_model, r.outcome, r.error_code, r.attempt) for r in rows]


async def test_a_retired_model_is_called_once_then_skipped_also_after_a_restart(
    start_replica, fake_openai, migrated_url, clock
):
    fake_openai.set_behaviour(NANO, Fail.model_not_found(NANO))

    first = await start_replica().complete(CTX, REQUEST)
    restarted = start_replica()
    second = await restarted.complete(CTX, REQUEST)

    assert (first.served_model, second.served_model) == (MINI, MINI)
    assert second.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano is unavailable (retired, or no access)"
    assert len(fake_openai.calls_for(NANO)) == 1
    [health, _] = await restarted.model_health()
    assert (health.state, health.until) == ("unavailable", clock.now + timedelta(hours=24))
    assert await _ledger(migrated_url) == [
        (NANO, "error", "model_not_found", 1),
        (MINI, "ok", None, 2),
        (MINI, "ok", None, 1),
    ]


async def test_a_probe_that_succeeds_clears_the_mark_for_every_replica(start_replica, fake_openai, migrated_url, clock):
    fake_openai.set_behaviour(NANO, Fail.model_not_found(NANO))
    replica_a, replica_b = start_replica(), start_replica()
    await replica_a.complete(CTX, REQUEST)
    fake_openai.set_behaviour(NANO, None)

    clock.advance(hours=24, seconds=1)
    probed = await replica_b.complete(CTX, REQUEST)
    restarted = await start_replica().complete(CTX, REQUEST)

    assert (probed.served_model, restarted.served_model) == (NANO, NANO)
    engine = make_engine(migrated_url)
    try:
        assert await SqlModelStatusStore(make_sessionmaker(engine)).unavailable() == []
    finally:
        await engine.dispose()
