"""Throwaway databases for the benchmarks: a PostgreSQL database created and dropped, or a temp SQLite file."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from bot.config import normalize_database_url

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_server() -> str:
    """The PostgreSQL server to benchmark on: TEST_DATABASE_URL, else the local default."""
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES


async def _admin(base: URL) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username, password=base.password, database=base.database
    )


@asynccontextmanager
async def throwaway_postgres(server_url: str | None = None, prefix: str = "frugal_bench") -> AsyncIterator[str]:
    """A new database on the server of `server_url` (its normalized URL), dropped afterwards."""
    base = make_url(normalize_database_url(server_url or postgres_server()))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await _admin(base)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await _admin(base)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def temp_sqlite() -> AsyncIterator[str]:
    """A normalized URL of an SQLite file in a temp folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="frugal-bench-") as folder:
        yield normalize_database_url(f"sqlite:///{Path(folder) / 'bench.db'}")
