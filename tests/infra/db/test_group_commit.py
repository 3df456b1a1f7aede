"""Group commit: concurrent submissions share a write, each submitter returns once its own batch is written."""

from __future__ import annotations

import asyncio

import pytest

from bot.infra.db.group_commit import GroupCommit


class Writer:
    """Records each batch; can be held mid-write, or fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_with: Exception | None = None

    async def __call__(self, items: list[int]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.batches.append(items)


async def test_submissions_at_the_same_moment_share_one_write():
    writer = Writer()
    commit = GroupCommit(writer)

    await asyncio.gather(*(commit.submit(i) for i in range(20)))

    assert writer.batches == [list(range(20))]


async def test_a_lone_submission_is_written_at_once():
    writer = Writer()
    commit = GroupCommit(writer)

    await commit.submit(1)
    await commit.submit(2)

    assert writer.batches == [[1], [2]]


async def test_what_arrives_during_a_write_goes_in_the_next_one_and_each_waits_for_its_own():
    writer = Writer()
    writer.gate = asyncio.Event()
    commit = GroupCommit(writer)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)  # the write of [1] has started and is held
    later = [asyncio.create_task(commit.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0.01)

    assert not first.done() and not any(t.done() for t in later)
    writer.gate.set()
    await asyncio.gather(first, *later)
    assert writer.batches == [[1], [2, 3]]


async def test_a_failed_write_raises_in_each_of_its_submitters_and_the_next_batch_still_goes():
    writer = Writer()
    writer.fail_with = RuntimeError("database down")
    commit = GroupCommit(writer)

    results = await asyncio.gather(*(commit.submit(i) for i in range(3)), return_exceptions=True)
    writer.fail_with = None
    await commit.submit(9)

    assert [type(r) for r in results] == [RuntimeError] * 3
    assert writer.batches == [[9]]


async def test_one_bad_row_fails_alone_and_its_batch_mates_are_written():
    batches: list[list[int]] = []

    async def write(items: list[int]) -> None:
        if 13 in items:
            raise ValueError("value too long for the column")
        batches.append(items)

    commit = GroupCommit(write)

    results = await asyncio.gather(*(commit.submit(i) for i in (11, 12, 13, 14)), return_exceptions=True)

    assert [type(r) for r in results] == [type(None), type(None), ValueError, type(None)]
    assert batches == [[11], [12], [14]]


async def test_a_cancelled_submitter_s_item_is_written_with_the_rest():
    writer = Writer()
    writer.gate = asyncio.Event()
    commit = GroupCommit(writer)
    impatient = asyncio.create_task(commit.submit(1))
    patient = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)

    impatient.cancel()
    writer.gate.set()
    await patient

    assert impatient.cancelled()
    assert writer.batches == [[1, 2]]


async def test_drain_waits_for_everything_submitted():
    writer = Writer()
    writer.gate = asyncio.Event()
    commit = GroupCommit(writer)
    submitted = [asyncio.create_task(commit.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_later(0.01, writer.gate.set)

    await commit.drain()

    assert writer.batches == [[0, 1, 2]]
    assert all(t.done() for t in submitted)


async def test_batches_are_bounded():
    writer = Writer()
    commit = GroupCommit(writer, max_batch=4)

    await asyncio.gather(*(commit.submit(i) for i in range(10)))

    assert writer.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_stopping_the_writer_fails_what_it_had_not_written():
    writer = Writer()
    writer.gate = asyncio.Event()
    commit = GroupCommit(writer)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)

    commit._writer.cancel()  # what loop shutdown does to a pending task

    for task in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert writer.batches == []
