"""Apply Alembic migrations under a lock, so replicas starting together are safe."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from bot.infra.db.engine import cannot_connect, make_engine, unavailable_as

# Any constant works; it only has to be the same in every replica.
_PG_LOCK_KEY = 0x46525547414C  # "FRUGAL"


@dataclass(frozen=True)
class AppliedRevision:
    """One migration an upgrade applied: its revision ID and its one-line description."""

    revision: str
    description: str


def migrations_dir() -> Path:
    """The Alembic scripts shipped inside the package (bot/migrations), wherever it is installed."""
    # A wheel installs them as plain files, so the resource is a real folder Alembic can read.
    return Path(str(files("bot") / "migrations"))


def alembic_config() -> Config:
    """The Alembic configuration for the package's migrations."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


@unavailable_as("the database cannot be migrated now", when=cannot_connect)
async def upgrade(url: str, revision: str = "heads") -> list[AppliedRevision]:
    """Bring the database at `url` to `revision` (default: the newest); the revisions applied, oldest first.

    Raises StoreUnavailable when no connection can be had (nor, for SQLite, its folder written); a
    migration that fails raises its own error.
    """
    engine = make_engine(url)
    try:
        async with _sqlite_file_lock(url):
            async with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    # Released at commit; a second replica waits here, then finds nothing to do.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                applied = await conn.run_sync(_upgrade, revision)
                await conn.commit()
                return applied
    finally:
        await engine.dispose()


@unavailable_as("the database's migrations cannot be read now", when=cannot_connect)
async def pending_revisions(url: str) -> list[str]:
    """Revisions not yet applied to the database at `url`; StoreUnavailable when no connection can be had."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_pending)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, revision: str) -> list[AppliedRevision]:
    config = alembic_config()
    config.attributes["connection"] = connection
    # env.py records each step it applies here (alembic's on_version_apply).
    config.attributes["applied"] = applied = []
    command.upgrade(config, revision)
    return [AppliedRevision(rev, (doc or "").strip()) for rev, doc in applied]


def _pending(connection: Connection) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    current = set(MigrationContext.configure(connection).get_current_heads())
    pending = []
    for rev in script.walk_revisions():
        if rev.revision in current:
            break
        pending.append(rev.revision)
    return pending


@asynccontextmanager
async def _sqlite_file_lock(url: str) -> AsyncIterator[None]:
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".migrate-lock"), "a") as handle:
        # flock blocks; waiting in a thread keeps the event loop (and a second upgrade in it) running.
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
