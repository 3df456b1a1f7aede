"""The in-process schedule of `frugal run`: due digests every minute, plus daily jobs, on AsyncIOScheduler.

One interval job asks the database which digests are due instead of one cron job per
subscription: every replica runs the same job, the claim in the database decides who posts,
and a changed subscription takes effect on the next tick without rescheduling anything.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.ports.store import StoreUnavailable

log = logging.getLogger(__name__)

TICK_SECONDS = 60.0
DailyJob = Callable[[], Awaitable[object]]


class DigestRunner(Protocol):
    """What the scheduler drives (bot.services.digest.DigestService)."""

    async def tick(self) -> int:
        """Post what is due; returns how many digests were posted; StoreUnavailable while the database is away."""
        ...

    async def aclose(self) -> None:
        """Finish the running tick and start no other."""
        ...


class Scheduler:
    """The AsyncIOScheduler and the digest runner it drives, started and stopped together."""

    def __init__(self, apscheduler: AsyncIOScheduler, runner: DigestRunner) -> None:
        self.apscheduler = apscheduler
        self._runner = runner

    def start(self) -> None:
        """Start the jobs; the first digest tick runs at once, so missed digests are caught up."""
        self.apscheduler.start()

    async def stop(self) -> None:
        """Let a digest being posted finish (so it is not left half-done), then stop."""
        await self._runner.aclose()
        if self.apscheduler.running:
            self.apscheduler.shutdown(wait=False)


def build_scheduler(
    settings: Settings,
    digest_runner: DigestRunner,
    daily_jobs: Sequence[DailyJob] = (),
    *,
    tick_seconds: float = TICK_SECONDS,
    minute_jobs: Sequence[DailyJob] = (),
) -> Scheduler:
    """The digest tick every `tick_seconds` (first run at start) and each daily job once a day after start."""
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    now = datetime.now(settings.timezone)
    scheduler.add_job(
        _digest_tick,
        IntervalTrigger(seconds=tick_seconds, timezone=settings.timezone),
        args=[digest_runner],
        id="digests",
        next_run_time=now,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    for job in daily_jobs:
        scheduler.add_job(
            _store_job,
            IntervalTrigger(days=1, timezone=settings.timezone),
            args=[job],
            id=f"daily:{getattr(job, '__qualname__', repr(job))}",
            next_run_time=now + timedelta(days=1),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    for job in minute_jobs:
        # E.g. expiring quota holds left by crashed processes; every replica may run it, the database decides.
        scheduler.add_job(
            _store_job,
            IntervalTrigger(seconds=tick_seconds, timezone=settings.timezone),
            args=[job],
            id=f"minute:{getattr(job, '__qualname__', repr(job))}",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    return Scheduler(scheduler, digest_runner)


async def _store_job(job: DailyJob) -> None:
    try:
        await job()
    except StoreUnavailable as err:
        # The database is down or unreachable: nothing was changed; the next run tries again.
        log.warning("%s skipped: database unavailable (%s)", getattr(job, "__qualname__", "job"), err.cause_name)


async def _digest_tick(runner: DigestRunner) -> None:
    try:
        posted = await runner.tick()
    except StoreUnavailable as err:
        # The database is down or unreachable: nothing was claimed; the next tick tries again.
        log.warning("digest tick skipped: database unavailable (%s)", err.cause_name)
        return
    if posted:
        log.info("digest tick: %d digest(s) posted", posted)
