"""The writes of one process to one SQLite file: whole transactions on the event loop, queued, never in the busy handler.

SQLite has one writer at a time, and a local write transaction is short: a claim, a ledger batch, a
quota reserve or settle each take well under a millisecond of SQLite's own time. What made them slow
was getting there. Run through aiosqlite, every statement is a round trip to its thread and back
through the event loop, and a busy loop makes each one wait its turn (and the thread wait for the
interpreter lock): a reserve of eight statements held the write lock for tens of milliseconds, the
writers queued behind it for seconds, and so did the acks waiting for their claims (bench/mixed.py).

So a write is a *job* (`SqliteWriter.run`): a plain function of a synchronous connection, run as one
transaction (BEGIN IMMEDIATE, its statements, COMMIT) on the event loop's own thread, on a connection
of the writer's. Nothing else runs meanwhile, so nothing can interleave; when no write is queued, a
job runs at once. Jobs queue only while the file is locked by someone else:

- by another process: SQLite answers "busy" at once (busy_timeout 0 on this connection, so the loop
  never sleeps in the busy handler), and the job is tried again a moment later, without blocking;
- by a writer that stays on the async engine (`write_turn(engine)`): it takes the writer's turn, and
  the jobs wait until its block ends. Take the turn before the connection (turn, connect, begin ...
  commit, release). A holder of the turn must not wait for a job: that would never end.

Urgent jobs (the once-only claims, on which a delivery's ack waits) go before the queued ones. This
connection never checkpoints the write-ahead log itself (that writes the database file and syncs it):
every so many commits a passive checkpoint runs on a thread instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from bot.infra.db.engine import sqlite_pragmas

log = logging.getLogger(__name__)

T = TypeVar("T")

URGENT, NORMAL = 0, 1
# Waits between tries while another process holds the file's write lock.
BUSY_FIRST_S = 0.001
BUSY_MAX_S = 0.05
# A passive checkpoint every so many commits (SQLite's own default is at 1,000 pages of log).
CHECKPOINT_EVERY = 500


class _Busy(Exception):
    """Another connection holds the write lock: the job was rolled back and is tried again later."""


@dataclass(order=True)
class _Queued:
    """A job waiting to run, or (with no job) an async writer waiting for its turn."""

    priority: int
    order: int
    job: Callable[[], None] | None = field(compare=False, default=None)
    granted: asyncio.Future[None] | None = field(compare=False, default=None)
    released: asyncio.Event | None = field(compare=False, default=None)


class SqliteWriter:
    """The writer of one SQLite file on one event loop, with its own connection (BEGIN IMMEDIATE, busy_timeout 0)."""

    def __init__(self, url: URL) -> None:
        self._url = url.set(drivername="sqlite")
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._queue: list[_Queued] = []
        self._order = itertools.count()
        self._draining: asyncio.Task[None] | None = None
        self._held = False
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None

    async def run(self, job: Callable[[Connection], T], *, urgent: bool = False) -> T:
        """Run ``job(connection)`` as one transaction; its result, or what it raised.

        A caller that is cancelled while its job waits leaves the job queued: it still runs, and its
        result is dropped.
        """
        if not self._queue and not self._held:
            try:
                return self._transaction(job)
            except _Busy:
                pass  # queued below, tried again in a moment
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def queued() -> None:
            try:
                result = self._transaction(job)
            except _Busy:
                raise
            except BaseException as err:  # handed to the caller, who handles it
                if not done.done():
                    done.set_exception(err)
            else:
                if not done.done():
                    done.set_result(result)

        self._enqueue(_Queued(URGENT if urgent else NORMAL, next(self._order), job=queued))
        return await done

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the writer's turn for the block: the jobs wait until it ends."""
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        released = asyncio.Event()
        self._enqueue(_Queued(NORMAL, next(self._order), granted=granted, released=released))
        try:
            await granted
            yield
        finally:
            released.set()

    def _enqueue(self, queued: _Queued) -> None:
        heapq.heappush(self._queue, queued)
        if self._draining is None:
            self._draining = asyncio.get_running_loop().create_task(self._drain(), name="sqlite-writer")

    async def _drain(self) -> None:
        wait = BUSY_FIRST_S
        try:
            while self._queue:
                queued = self._queue[0]
                if queued.job is None:
                    heapq.heappop(self._queue)
                    assert queued.granted is not None and queued.released is not None
                    if queued.granted.done():
                        continue  # its waiter was cancelled before its turn came
                    self._held = True
                    queued.granted.set_result(None)
                    await queued.released.wait()
                    self._held = False
                    continue
                try:
                    queued.job()
                except _Busy:
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, BUSY_MAX_S)
                    continue
                heapq.heappop(self._queue)
                wait = BUSY_FIRST_S
                await asyncio.sleep(0)  # the loop runs everything else between two queued jobs
        finally:
            self._draining = None
            self._held = False

    def _transaction(self, job: Callable[[Connection], T]) -> T:
        conn = self._connection()
        try:
            with conn.begin():
                result = job(conn)
        except OperationalError as err:
            if _is_busy(err):
                raise _Busy from err
            raise
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._commits = 0
            self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_off_loop())
        return result

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            if self._engine is None:
                self._engine = _sync_engine(self._url)
            self._conn = self._engine.connect()
        return self._conn

    async def _checkpoint_off_loop(self) -> None:
        try:
            await asyncio.to_thread(_checkpoint, str(self._url.database))
        except sqlite3.Error as err:
            log.warning("SQLite checkpoint failed (%s); the next one tries again", type(err).__name__)
        finally:
            self._checkpoint = None


def _is_busy(err: OperationalError) -> bool:
    code = getattr(err.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(err.orig)


def _checkpoint(path: str) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _sync_engine(url: URL) -> Engine:
    """The writer's own synchronous engine: one connection, no BEGIN of the driver's, BEGIN IMMEDIATE of ours."""
    engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        # The sqlite3 module's own deferred BEGIN would let a read-then-write transaction race another
        # process's writer; the "begin" hook below takes the write lock up front instead.
        dbapi_connection.isolation_level = None
        sqlite_pragmas(dbapi_connection, record)
        cursor = dbapi_connection.cursor()
        # On the event loop: never sleep waiting for the lock, never checkpoint inline.
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# Per event loop (a writer's queue and connection belong to one), per database file.
_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SqliteWriter]] = weakref.WeakKeyDictionary()


def sqlite_writer(engine: AsyncEngine) -> SqliteWriter | None:
    """This loop's writer of ``engine``'s SQLite file; None on other databases (and on in-memory SQLite)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    writers = _WRITERS.setdefault(asyncio.get_running_loop(), {})
    writer = writers.get(url.database)
    if writer is None:
        writer = writers[url.database] = SqliteWriter(url)
    return writer


def write_turn(engine: AsyncEngine) -> AbstractAsyncContextManager[object]:
    """Hold this process's write turn on ``engine``'s SQLite file for the block; nothing on other databases."""
    writer = sqlite_writer(engine)
    if writer is None:
        return contextlib.nullcontext()
    return writer.turn()
