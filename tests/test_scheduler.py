"""The schedule inside `frugal run`: the digest tick runs at start (catching up), every interval, and stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.catalog import Catalog
from bot.config import normalize_database_url
from bot.infra.db.button_texts import SqlButtonTexts
from bot.infra.db.classify_cache import SqlClassifyCache
from bot.infra.db.deliveries import SqlDeliveries
from bot.infra.db.digest_queries import SqlDigestQueries
from bot.infra.db.digest_store import SqlDigestStore
from bot.infra.db.digest_tables import DigestSubscriptionRow
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.quota_store import SqlQuotaStore
from bot.ports.digest_store import Frequency
from bot.scheduler import build_scheduler
from bot.services.digest import DigestBuilder, DigestService
from bot.slack.digest_chart import daily_cost_chart
from bot.slack.digest_publisher import SlackDigestPublisher, static_token
from tests.conftest import BOT_TOKEN

UTC = ZoneInfo("UTC")


def _service(url: str, api_url: str) -> tuple[DigestService, AsyncEngine]:
    """A digest service on the real clock, as `frugal run` builds it."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    builder = DigestBuilder(
        SqlDigestQueries(sessions), Catalog.load(None), primary_model="gpt-4.1-nano", baseline_model="gpt-4o", tz=UTC
    )
    publisher = SlackDigestPublisher(api_url, static_token(BOT_TOKEN))
    return DigestService(SqlDigestStore(sessions), builder, publisher, daily_cost_chart, tz=UTC), engine


class CountedTicks:
    """The digest service as the scheduler drives it, counting the ticks that have finished."""

    def __init__(self, service: DigestService) -> None:
        self.service = service
        self.finished = 0
        self.posted: list[int] = []
        self._changed = asyncio.Event()

    async def tick(self) -> int:
        try:
            posted = await self.service.tick()
            self.posted.append(posted)
            return posted
        finally:
            self.finished += 1
            self._changed.set()

    async def aclose(self) -> None:
        await self.service.aclose()

    async def after(self, ticks: int, timeout: float = 20.0) -> None:
        """Wait until `ticks` more ticks have finished (raised or not)."""
        target = self.finished + ticks
        async with asyncio.timeout(timeout):
            while self.finished < target:
                self._changed.clear()
                await self._changed.wait()


async def test_the_tick_runs_at_start_and_catches_up_a_missed_digest(migrated_url, make_settings, fake_slack):
    now = datetime.now(timezone.utc)
    two_hours_ago = (now - timedelta(hours=2)).time().replace(second=0, microsecond=0)
    service, engine = _service(migrated_url, fake_slack.api_url)
    # Sends 2 h and 26 h ago were missed while the bot was down (both within the 36 h grace), the one 50 h ago is too old.
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, two_hours_ago)
    await _backdate_subscriptions(engine, now - timedelta(days=3))
    ticks = CountedTicks(service)
    scheduler = build_scheduler(make_settings(migrated_url), ticks, tick_seconds=3600)
    try:
        scheduler.start()
        await ticks.after(1)  # the tick at start, to its end
        assert ticks.posted == [2]
        assert [p.params["channel"] for p in fake_slack.calls_to("chat.postMessage")] == ["C1", "C1"]
        assert scheduler.apscheduler.get_job("digests").next_run_time > datetime.now(timezone.utc) + timedelta(
            minutes=59
        )
    finally:
        await scheduler.stop()
        await engine.dispose()
    assert not scheduler.apscheduler.running
    assert await service.tick() == 0  # stopped: no new tick starts
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


async def test_stopping_waits_for_a_digest_being_posted(migrated_url, make_settings, fake_slack):
    now = datetime.now(timezone.utc)
    service, engine = _service(migrated_url, fake_slack.api_url)
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(0))
    await _backdate_subscriptions(engine, now - timedelta(days=1, hours=1))
    fake_slack.method_latency["chat.postMessage"] = 0.5
    scheduler = build_scheduler(make_settings(migrated_url), service, tick_seconds=3600)
    try:
        scheduler.start()
        await fake_slack.await_calls("chat.postMessage", timeout=20)
        await scheduler.stop()  # called while Slack is still answering
        runs = await _statuses(engine)
    finally:
        await engine.dispose()
    assert runs and all(status == "posted" for status in runs)


async def _backdate_subscriptions(engine: AsyncEngine, since: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(DigestSubscriptionRow).values(created_at=since))


async def _statuses(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT status FROM digest_runs"))]


async def test_two_replicas_schedulers_post_each_digest_once(migrated_url, make_settings, fake_slack):
    now = datetime.now(timezone.utc)
    one, engine_one = _service(migrated_url, fake_slack.api_url)
    two, engine_two = _service(migrated_url, fake_slack.api_url)
    await one.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, (now - timedelta(hours=2)).time().replace(microsecond=0))
    await one.subscribe("T1", "C2", "UADMIN", Frequency.DAILY, (now - timedelta(hours=1)).time().replace(microsecond=0))
    await _backdate_subscriptions(engine_one, now - timedelta(days=3))
    # Each replica would post 2 digests per channel (2 h / 26 h and 1 h / 25 h late): 4 in all, each once.
    ticks = [CountedTicks(one), CountedTicks(two)]
    schedulers = [build_scheduler(make_settings(migrated_url), t, tick_seconds=0.2) for t in ticks]
    try:
        for scheduler in schedulers:
            scheduler.start()
        await fake_slack.await_calls("chat.postMessage", count=4, timeout=30)
        # Several more ticks of both, each finished: none posts a digest again.
        await asyncio.gather(*(t.after(3) for t in ticks))
    finally:
        for scheduler in schedulers:
            await scheduler.stop()
        runs = await _statuses(engine_one)
        await engine_one.dispose()
        await engine_two.dispose()
    assert sorted(c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")) == ["C1", "C1", "C2", "C2"]
    assert runs == ["posted"] * 4


def _unreachable_url() -> str:
    """A PostgreSQL URL whose port nothing listens on: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return normalize_database_url(f"postgresql://postgres@127.0.0.1:{port}/frugal")


async def test_a_tick_while_the_database_is_away_is_skipped_with_a_warning_each_time(make_settings, fake_slack, caplog):
    url = _unreachable_url()
    service, engine = _service(url, fake_slack.api_url)
    ticks = CountedTicks(service)
    scheduler = build_scheduler(make_settings(url), ticks, tick_seconds=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
            scheduler.start()
            await ticks.after(2)  # the scheduler goes on ticking
    finally:
        await scheduler.stop()
        await engine.dispose()
    skipped = [r.getMessage() for r in caplog.records if r.name == "bot.scheduler"]
    assert skipped and set(skipped) == {"digest tick skipped: database unavailable (ConnectionRefusedError)"}
    assert ticks.posted == [] and fake_slack.calls_to("chat.postMessage") == []


async def test_the_minute_and_daily_jobs_are_skipped_with_a_warning_while_the_database_is_away(
    make_settings, fake_slack, caplog
):
    url = _unreachable_url()
    service, engine = _service(url, fake_slack.api_url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(timezone.utc)

    # The jobs of bot/composition.py, on the stores those reach.
    async def expire_holds() -> int:
        return await SqlQuotaStore(engine).expire(now)

    async def purge_deliveries() -> int:
        return await SqlDeliveries(engine).purge()

    async def purge_buttons() -> int:
        return await SqlButtonTexts(sessions).purge()

    async def purge_classify_cache() -> int:
        return await SqlClassifyCache(sessions).purge(now)

    daily = [purge_deliveries, purge_buttons, purge_classify_cache]
    scheduler = build_scheduler(make_settings(url), service, daily, tick_seconds=3600, minute_jobs=[expire_holds])
    try:
        with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
            # Each as the scheduler runs it; the daily one would first run tomorrow.
            for job in scheduler.apscheduler.get_jobs():
                if job.id != "digests":
                    await job.func(*job.args)
    finally:
        await engine.dispose()
    # Each message starts with the job's qualified name (the test's <locals>.name).
    skipped = sorted(r.getMessage().rpartition(".")[2] for r in caplog.records if r.name == "bot.scheduler")
    assert skipped == [
        f"{name} skipped: database unavailable (ConnectionRefusedError)"
        for name in ("expire_holds", "purge_buttons", "purge_classify_cache", "purge_deliveries")
    ]
