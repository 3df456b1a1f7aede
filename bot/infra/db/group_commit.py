"""Group commit: rows written at about the same time go to the database in one statement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# A bound on one statement's size; under any real load a batch is far smaller.
MAX_BATCH = 500


class GroupCommit(Generic[T]):
    """Writes submitted items in batches; each submitter returns once its own batch is committed, or gets its error.

    Nothing waits on a timer: the first item starts a write at the next turn of the event loop, and
    whatever arrives while a write is in flight goes in the next one. Idle, an item is written at once;
    under load, one round trip and one commit serve many requests (bench/load.py).
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[None]], *, max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Write ``item`` with whatever else is pending; raises what the write raised."""
        done = asyncio.get_running_loop().create_future()
        # Marks the error as seen even when the submitter was cancelled and nobody awaits it any more.
        done.add_done_callback(_retrieve)
        self._pending.append((item, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending(), name="group-commit")
        # Shielded: a submitter that is cancelled leaves its row to be written with the rest.
        await asyncio.shield(done)

    async def drain(self) -> None:
        """Wait until everything submitted so far is written (or has failed)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_pending(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    await self._write([item for item, _ in batch])
                except Exception as err:
                    if len(batch) == 1:
                        _settle(batch, err)  # handled where the submitter awaits it
                    else:
                        await self._write_alone(batch)
                else:
                    _settle(batch)
        finally:
            self._writer = None
            # Anything left unsettled means the writer itself was cancelled (shutdown): nothing more is written.
            _settle(batch + self._pending, asyncio.CancelledError())
            self._pending = []

    async def _write_alone(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        # One bad row must not fail its batch-mates: each is written alone, as without batching.
        for item, done in batch:
            try:
                await self._write([item])
            except Exception as err:
                _settle([(item, done)], err)
            else:
                _settle([(item, done)])


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
