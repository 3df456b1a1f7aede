"""The writers of one process to one SQLite file take turns on an asyncio lock, not in SQLite's busy handler."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import AsyncContextManager

from sqlalchemy.ext.asyncio import AsyncEngine

# Per event loop (an asyncio.Lock belongs to one), per database file.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def write_turn(engine: AsyncEngine) -> AsyncContextManager[object]:
    """Hold this process's write turn on ``engine``'s SQLite file for the block; nothing on other databases.

    SQLite has one writer at a time; a writer that finds the lock taken sleeps in its busy handler, in
    steps of up to 100 ms however soon the lock frees, which showed as seconds of latency under load
    (bench/load.py). Queued here, the next writer starts the moment the last one commits. Writers in
    other processes still meet in the busy handler (busy_timeout).

    Take it before the connection (turn, connect, begin ... commit, release): the other order, tried,
    had every queued writer hold a pooled connection while it waited, and halved throughput at
    210 requests/s. No holder of the turn needs a second connection, so it cannot deadlock; a holder
    can wait for a connection when readers fill the pool.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(str(engine.url.database), asyncio.Lock())
