"""Group commit: rows written at about the same time go to the database in one statement, and wait out an outage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# A bound on one statement's size; under any real load a batch is far smaller.
MAX_BATCH = 500
# Rows kept in memory while the database is unreachable: about a minute of a busy process's ledger.
MAX_KEPT = 20_000
# Between tries while the database is unreachable: quick at first, then every few seconds.
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0


class KeptTooMany(Exception):
    """The database has been unreachable so long that no more rows can be kept in memory."""


class GroupCommit(Generic[T]):
    """Writes submitted items in batches; each submitter returns once its own batch is committed, or gets its error.

    Nothing waits on a timer: the first item starts a write at the next turn of the event loop, and
    whatever arrives while a write is in flight goes in the next one. Idle, an item is written at once;
    under load, one round trip and one commit serve many requests (bench/load.py).

    With ``keep`` (which errors mean the database is unreachable, not that a row is wrong), an outage
    does not fail the submitters: their rows are kept in memory, in order, and each submitter returns
    as if written; the writer tries again until the database is back and then writes them, oldest
    first, before anything newer. At most ``max_kept`` rows are kept; past that, submit raises
    KeptTooMany.
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int = MAX_BATCH,
        keep: Callable[[BaseException], bool] | None = None,
        max_kept: int = MAX_KEPT,
        what: str = "rows",
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._keep = keep
        self._max_kept = max_kept
        self._what = what
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._outage = False

    @property
    def kept(self) -> int:
        """How many items wait in memory for the database to come back (0 when it is reachable)."""
        return len(self._pending) if self._outage else 0

    async def submit(self, item: T) -> None:
        """Write ``item`` with whatever else is pending; raises what the write raised."""
        if self._outage:
            # The database is unreachable: the item joins the kept ones, and its submitter goes on.
            if len(self._pending) >= self._max_kept:
                raise KeptTooMany(f"{len(self._pending)} {self._what} already wait for the database")
            self._pending.append((item, _written()))
            return
        done = asyncio.get_running_loop().create_future()
        # Marks the error as seen even when the submitter was cancelled and nobody awaits it any more.
        done.add_done_callback(_retrieve)
        self._pending.append((item, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending(), name="group-commit")
        # Shielded: a submitter that is cancelled leaves its row to be written with the rest.
        await asyncio.shield(done)

    async def drain(self, timeout: float | None = None) -> int:
        """Wait until everything submitted so far is written (or has failed), at most ``timeout`` s; how many are left."""
        try:
            async with asyncio.timeout(timeout):
                while self._writer is not None:
                    await asyncio.shield(self._writer)
        except TimeoutError:
            pass
        return len(self._pending)

    async def _write_pending(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        wait = RETRY_FIRST_S
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    await self._write([item for item, _ in batch])
                except Exception as err:
                    if self._kept_back(batch, err) or (len(batch) > 1 and await self._write_alone(batch)):
                        batch = []  # kept: tried again, first, once the wait is over
                        await asyncio.sleep(wait)
                        wait = min(wait * 2, RETRY_MAX_S)
                        continue
                    if len(batch) == 1:
                        _settle(batch, err)  # handled where the submitter awaits it
                else:
                    _settle(batch)
                self._back()
                wait = RETRY_FIRST_S
        finally:
            self._writer = None
            self._outage = False
            if lost := sum(1 for _, done in self._pending if done.done()):
                log.error("%d %s kept in memory were never written: the database stayed unreachable", lost, self._what)
            # Anything left unsettled means the writer itself was cancelled (shutdown): nothing more is written.
            _settle(batch + self._pending, asyncio.CancelledError())
            self._pending = []

    def _kept_back(self, batch: list[tuple[T, asyncio.Future[None]]], err: Exception) -> bool:
        """On an unreachable database: keep ``batch`` at the head of the queue and let its submitters go on."""
        if self._keep is None or not self._keep(err):
            return False
        if not self._outage:
            log.warning(
                "database unreachable (%s): %s are kept in memory until it is back", type(err).__name__, self._what
            )
        self._outage = True
        _settle(batch)
        self._pending = batch + self._pending
        return True

    def _back(self) -> None:
        if self._outage:
            self._outage = False
            log.warning("database reachable again: the %s kept in memory are written", self._what)

    async def _write_alone(self, batch: list[tuple[T, asyncio.Future[None]]]) -> bool:
        """One bad row must not fail its batch-mates: each is written alone, as without batching; True if the rest were kept."""
        for index, (item, done) in enumerate(batch):
            try:
                await self._write([item])
            except Exception as err:
                if self._kept_back(batch[index:], err):
                    return True
                _settle([(item, done)], err)
            else:
                _settle([(item, done)])
        return False


def _written() -> asyncio.Future[None]:
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def _settle(batch: list[tuple[Any, asyncio.Future[None]]], error: BaseException | None = None) -> None:
    """Tell each submitter of ``batch`` its outcome: written, or the error (handled where it is awaited)."""
    for _, done in batch:
        if not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()
