"""The real migrations run on SQLite and PostgreSQL, also from two replicas at once."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from bot.infra.db.engine import make_engine
from bot.infra.db.metadata import target_metadata
from bot.infra.db.migrate import alembic_config, pending_revisions, upgrade


def _chain() -> list[str]:
    from alembic.script import ScriptDirectory

    return [rev.revision for rev in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))]


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_creates_every_table_and_leaves_nothing_pending(database_url):
    assert await pending_revisions(database_url)
    await upgrade(database_url)

    expected = {t for metadata in target_metadata for t in metadata.tables}
    assert expected <= await _tables(database_url)
    assert await pending_revisions(database_url) == []


async def test_upgrade_reports_each_revision_it_applied_oldest_first(database_url):
    applied = await upgrade(database_url)

    assert [step.revision for step in applied] == _chain()
    assert applied[0].description == "The usage ledger: one row per model call attempt."
    assert all(step.description for step in applied)
    assert await upgrade(database_url) == []


async def test_two_replicas_migrating_together_are_safe(database_url):
    first, second = await asyncio.gather(upgrade(database_url), upgrade(database_url))

    # One replica applied everything, the other found nothing left to do.
    assert min(first, second, key=len) == []
    assert [step.revision for step in first + second] == _chain()

    assert await pending_revisions(database_url) == []


async def test_upgrade_is_idempotent(migrated_url):
    await upgrade(migrated_url)
    assert await pending_revisions(migrated_url) == []


async def test_migrations_match_the_models(migrated_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def diff(sync_conn):
        changes = []
        for metadata in target_metadata:
            # Each MetaData is compared alone, so reflected tables it does not define are not "removed".
            def mine(obj, name, type_, reflected, compare_to, metadata=metadata):
                return type_ != "table" or name in metadata.tables

            context = MigrationContext.configure(sync_conn, opts={"compare_type": True, "include_object": mine})
            changes += compare_metadata(context, metadata)
        return changes

    engine = make_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
