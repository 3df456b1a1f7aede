"""Migration 0013 keeps the limits set before it: hard, alerting at 80 and 100 %; it goes down and up again."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from alembic import command
from sqlalchemy import text

from bot.infra.db.engine import make_engine
from bot.infra.db.migrate import alembic_config, upgrade
from bot.infra.db.quota_store import SqlQuotaStore
from bot.ports.quota import Metric, Mode, Period
from bot.ports.quota_store import Level, LimitRecord, ReserveRequest, Scope
from bot.services.quota_spec import period_starts

TEAM, CHANNEL, USER = "T0001", "C0001", "U0001"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


async def _execute(url: str, statement: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement), {"now": NOW})
    finally:
        await engine.dispose()


async def _downgrade(url: str, revision: str) -> None:
    def down(connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        config.attributes["applied"] = []
        command.downgrade(config, revision)

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(down)
            await conn.commit()
    finally:
        await engine.dispose()


async def _limits(url: str) -> list[LimitRecord]:
    engine = make_engine(url)
    try:
        store = SqlQuotaStore(engine)
        return await store.limits(TEAM, Scope.CHANNEL, CHANNEL) + await store.limits(TEAM, Scope.DEFAULT_USER, "")
    finally:
        await engine.dispose()


async def test_limits_set_before_0013_stay_hard_with_default_alerts_and_still_reserve(database_url):
    await upgrade(database_url, "0009")
    await _execute(
        database_url,
        "INSERT INTO quota_limits (team_id, scope, target, metric, period, amount, set_by, set_at) "
        f"VALUES ('{TEAM}', 'channel', '{CHANNEL}', 'requests', 'day', 2, 'U9', :now)",
    )

    await upgrade(database_url)

    assert await _limits(database_url) == [
        LimitRecord(Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, Decimal(2), Mode.HARD, (80, 100), None)
    ]
    engine = make_engine(database_url)
    try:
        store = SqlQuotaStore(engine)
        requests = [
            ReserveRequest(
                reservation_id=f"r{i}",
                request_key=f"k{i}",
                team_id=TEAM,
                channel_id=CHANNEL,
                user_id=USER,
                levels=(Level(100, Decimal("0.001")),),
                starts=period_starts(NOW, timezone.utc),
                now=NOW,
                expires_at=NOW.replace(hour=13),
            )
            for i in range(3)
        ]
        held = [await store.reserve(request) for request in requests]
        assert [r.level for r in held] == [0, 0, None]  # the old limit still refuses the third
    finally:
        await engine.dispose()


async def test_0013_goes_down_dropping_per_person_defaults_and_up_again(migrated_url):
    await _execute(
        migrated_url,
        "INSERT INTO quota_limits (team_id, scope, target, metric, period, amount, set_by, set_at, mode, alerts) "
        f"VALUES ('{TEAM}', 'channel', '{CHANNEL}', 'usd', 'month', 5, 'U9', :now, 'warn', '50'), "
        f"('{TEAM}', 'default_user', '', 'requests', 'day', 50, 'U9', :now, 'hard', '80,100')",
    )

    await _downgrade(migrated_url, "0009")
    await upgrade(migrated_url)

    # The options went with their columns (back to hard, 80 and 100 %); the per-person default with its scope.
    assert await _limits(migrated_url) == [
        LimitRecord(Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, Decimal(5), Mode.HARD, (80, 100), None)
    ]
