"""The async engine, tuned per backend."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.ports.store import StoreUnavailable

_SQLITE_PASSING = ("locked", "busy", "disk I/O", "unable to open")

P = ParamSpec("P")
R = TypeVar("R")


def make_engine(url: str) -> AsyncEngine:
    """Create the async engine for a normalized DATABASE_URL."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    # No pool_pre_ping: on asyncpg it costs three round trips (BEGIN, ping, ROLLBACK) before every
    # statement. A connection that died with the server fails its statement instead, and SQLAlchemy then
    # invalidates the whole pool, so the next checkouts reconnect (tests/faults/test_database_restart.py).
    # Sized for ~200 requests a second: connections beyond pool_size are closed on return, and when
    # most requests overflowed the pool it opened and closed connections all the time (connect, TLS
    # probe, type introspection, statement preparation: a fifth of the CPU, bench/load.py).
    return create_async_engine(url, pool_size=20, max_overflow=10, pool_recycle=1800)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Run a trivial query; raises when the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the database could not be reached (down, restarting, cut off, locked), not that a statement was wrong."""
    if isinstance(err, DBAPIError):
        if err.connection_invalidated:
            return True
        if type(err.orig).__module__.startswith("sqlite3"):
            # sqlite3 calls a syntax error or a missing table "operational" too: only these are passing.
            return isinstance(err, OperationalError) and any(word in str(err.orig) for word in _SQLITE_PASSING)
        return isinstance(err, (OperationalError, InterfaceError))
    # A refused or reset connection surfaces from the driver's connect as the OS error itself.
    return isinstance(err, (OSError, TimeoutError))


def cannot_connect(err: BaseException) -> bool:
    """Whether ``err`` says no connection could be had: unreachable, or refused (no such database or role, a bad password).

    What `frugal migrate`, `frugal run` and `frugal check` tell the operator as "cannot use the database":
    a statement that failed (it has its SQL) is not one of these.
    """
    return unreachable(err) or (isinstance(err, DBAPIError) and err.statement is None)


class unavailable_as:  # lower case: it reads as a function, `with unavailable_as(...)`, `@unavailable_as(...)`
    """Turn an error saying the database could not be reached into ``StoreUnavailable(what)``, its cause chained.

    Any other error (a wrong statement, a constraint) passes through unchanged; ``when`` decides which
    are translated (default: ``unreachable``). Use it as a context manager around the statements, or
    as a decorator of an async function.
    """

    def __init__(self, what: str, *, when: Callable[[BaseException], bool] = unreachable) -> None:
        self._what = what
        self._when = when

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, _tb: TracebackType | None) -> bool:
        if err is not None and self._when(err):
            raise StoreUnavailable(self._what) from err
        return False

    def __call__(self, method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        # Only coroutine functions: wrapping a plain function would translate nothing its awaitable raises later.
        if not inspect.iscoroutinefunction(method):
            raise TypeError(f"unavailable_as decorates async functions, not {method!r}")

        @functools.wraps(method)
        async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return await method(*args, **kwargs)

        return translated


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """Per-connection SQLite settings, the same on every engine and on the SQLite writer's own connection."""
    # WAL lets readers run beside the single writer; busy_timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL skips the fsync at each commit (one per claim, ledger row, quota settle), which
    # capped throughput; the database stays consistent, only an OS crash or power cut can lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
