"""The database as `frugal check` and GET /healthz see it: where it is, whether it answers, what it still lacks.

Each raises StoreUnavailable (bot/ports/store.py) when no connection can be had, so neither the
check nor the web server handles SQLAlchemy's errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.infra.db.engine import cannot_connect, make_engine, make_sessionmaker, ping, unavailable_as
from bot.infra.db.migrate import pending_revisions
from bot.infra.db.model_status import SqlModelStatusStore
from bot.ports.model_status import UnavailableModel


@dataclass(frozen=True)
class DatabaseLocation:
    """Where DATABASE_URL points: the URL to show (password hidden), and the SQLite file it names."""

    shown: str
    sqlite_file: Path | None  # None for PostgreSQL and an in-memory SQLite database


@dataclass(frozen=True)
class DatabaseState:
    """What a reachable database lacks: the migrations not applied, else the models the router marked unavailable."""

    pending: list[str]
    unavailable_models: list[UnavailableModel] | None  # read only once every migration is applied


def database_location(url: str) -> DatabaseLocation:
    """Where the normalized DATABASE_URL `url` points, read without connecting."""
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:"
    return DatabaseLocation(parsed.render_as_string(hide_password=True), Path(parsed.database) if sqlite else None)


async def database_state(url: str, *, timeout: float) -> DatabaseState:
    """Ping within `timeout` seconds, then read the pending migrations and the router's marks.

    StoreUnavailable (its cause the driver's error, or TimeoutError) when no connection can be had.
    """
    engine = make_engine(url)
    try:
        with unavailable_as("the database cannot be reached", when=cannot_connect):
            await asyncio.wait_for(ping(engine), timeout)
            pending = await pending_revisions(url)
            if pending:
                return DatabaseState(pending, None)
            return DatabaseState([], await SqlModelStatusStore(make_sessionmaker(engine)).unavailable())
    finally:
        await engine.dispose()


def database_ping(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """A trivial query on `engine`, for GET /healthz; StoreUnavailable when no connection can be had."""

    @unavailable_as("the database does not answer", when=cannot_connect)
    async def ping_database() -> None:
        await ping(engine)

    return ping_database
